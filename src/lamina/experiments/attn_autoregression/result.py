"""The typed result of ``attn-autoregression``: results.json key for key, plus the log norms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..across import Across, Interval, column
from ..base import ModelFacts, profile_table
from ..typed import FloatArray, Typed, array_field, detail_field

LAGS = ("t1", "t2")
# The default start (the seed's), here (not in compute.py) so that the report imports no torch.
GATSBY_OPENING = "In my younger and more vulnerable years"


@dataclass(frozen=True, eq=False)
class SignificantLayers(Typed):
    """Layers with p <= alpha. Headline: the position-adjusted, bias-corrected betas and the word-order
    difference, family-wise over the tested (not constant) layers by the result's ``correction``. The
    seed's pooled fit (no position terms): raw and after Benjamini–Hochberg, descriptive."""

    t1: int
    t2: int
    order_t1: int  # real − shuffled β₁
    t1_raw: int  # the seed's pooled fit, p <= alpha uncorrected
    t1_bh: int
    t2_raw: int
    t2_bh: int


@dataclass(frozen=True, eq=False)
class LayerAdjusted(Typed):
    """One layer's autoregression beyond position across passages: y[t] = a + b log t + c/t + β₁ y[t-1] +
    β₂ y[t-2] per passage, each passage's betas bias-corrected (parametric bootstrap), passages as the unit.
    NaN (and never significant) where the layer is ``constant``."""

    constant: bool  # log norms constant to float32 precision: not tested
    log_norm_sd: float  # SD of the log norms the fits use (all passages)
    t1: Across  # β₁: mean over passages, t interval, p, family-wise p (``correction``)
    t2: Across
    bias_t1: float  # mean bootstrap bias of the passages' OLS β₁ (subtracted)
    bias_t2: float
    partial_r2: Interval  # the lags' partial R² beyond position: 1 − SSR(full) / SSR(position terms only)
    partial_r2_adj: Interval  # the same, each SSR over its degrees of freedom (about 0 without dependence)
    r2_position: float  # mean R² of the position terms alone
    shuffled_t1: Interval  # β₁ of the same passages with their tokens in a shuffled order
    order_t1: Across  # real − shuffled β₁, paired by passage
    p_ljung_box: float  # residual autocorrelation of the position-adjusted fits, 10 lags, df 10 − 2 per passage


@dataclass(frozen=True, eq=False)
class LayerFit(Typed):
    """One layer's least squares of y[t] on y[t-1] and y[t-2], all passages pooled, no position terms (the
    seed's fit, kept for parity; one intercept per passage)."""

    intercept: float
    beta_t1: float
    beta_t2: float
    p_t1: float
    p_t2: float
    r2: float
    se_t1: float  # ordinary or Newey-West (HAC), as the result's `se` says
    se_t2: float
    p_t1_bh: float  # Benjamini–Hochberg across layers, lag t-1 alone
    p_t2_bh: float
    p_ljung_box: float  # residual autocorrelation up to 10 lags, df 10 − 2 per passage, passages summed


@dataclass(frozen=True, eq=False)
class PassageFits(Typed):
    """Each passage's own fits per layer, shape ``(n_passages, n_layers)``: the seed's (no position terms:
    ``beta_*``, ``p_*``, ``r2``) and the position-adjusted one (``adjusted_*``: bias-corrected betas)."""

    beta_t1: FloatArray
    p_t1: FloatArray
    beta_t2: FloatArray
    p_t2: FloatArray
    r2: FloatArray
    adjusted_t1: FloatArray
    adjusted_t2: FloatArray
    bias_t1: FloatArray
    bias_t2: FloatArray
    partial_r2: FloatArray
    partial_r2_adj: FloatArray
    shuffled_t1: FloatArray  # bias-corrected β₁ of the shuffled passage
    shuffled_partial_r2: FloatArray


@dataclass(frozen=True, eq=False)
class Norms(Typed):
    log_norms: np.ndarray  # (n_layers, n_tokens) float64, log L2 norm of attn.out, passages one after another
    tokens: np.ndarray  # (n_tokens,) str
    passage: np.ndarray  # (n_tokens,) int64, the passage of each token
    shuffled_log_norms: np.ndarray  # (n_layers, n_tokens): the same passages with their tokens shuffled
    shuffled_tokens: np.ndarray  # (n_tokens,) str, in the order they were fed


@dataclass(frozen=True, eq=False)
class AutoregressionResult(Typed):
    n_tokens: int  # all passages
    n_targets: int  # regression rows of the pooled fit
    passage_tokens: tuple[int, ...]
    source: str
    alpha: float
    replicates: int  # passages
    se: str  # "ols" or "hac" (the seed's pooled fit)
    hac_lags: int | None  # Newey–West truncation lag (None with se = ols)
    n_boot: int  # bootstrap series per passage and layer for the bias of the betas
    correction: str  # family-wise over layers: "max" (max-|t|, sign flips of passages) or "holm" (one passage)
    constant_layers: tuple[int, ...]  # not tested: log norms constant to float32 precision
    significant_layers: SignificantLayers
    adjusted: tuple[LayerAdjusted, ...]  # the headline: autoregression beyond position
    layers: tuple[LayerFit, ...]  # the seed's pooled fit
    per_passage: PassageFits
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    norms: Norms = array_field()

    def column(self, name: str) -> np.ndarray:
        """One value per layer of the seed's fit, shape ``(n_layers,)``: e.g. ``column("beta_t1")``."""
        return np.array([getattr(layer, name) for layer in self.layers])

    def adjusted_column(self, name: str, field: str = "mean") -> np.ndarray:
        """One value per layer of the position-adjusted fits: e.g. ``adjusted_column("t1", "ci_low")``;
        a float field (``"bias_t1"``) with ``field=None``."""
        return np.array([getattr(layer, name) if field is None else getattr(getattr(layer, name), field)
                         for layer in self.adjusted], dtype=float)


COLUMNS = ("intercept", "beta_t1", "beta_t2", "se_t1", "se_t2", "p_t1", "p_t2", "r2", "p_t1_bh", "p_t2_bh",
           "p_ljung_box")
ADJUSTED_TESTS = ("t1", "t2", "order_t1")  # Across fields of LayerAdjusted
ADJUSTED_INTERVALS = ("partial_r2", "partial_r2_adj", "shuffled_t1")  # Interval fields


def tables(result: AutoregressionResult) -> dict[str, pd.DataFrame]:
    norms = result.norms.log_norms
    n_layers, n_tokens = norms.shape
    regression = pd.DataFrame({"layer": np.arange(n_layers), **{c: result.column(c) for c in COLUMNS}})
    regression.insert(1, "constant", [layer.constant for layer in result.adjusted])
    # the headline (position-adjusted, bias-corrected; across passages): across_t1_*, across_t2_*, order_t1_*
    for name in ADJUSTED_TESTS:
        prefix = f"across_{name}" if name in LAGS else name
        entries = [getattr(layer, name) for layer in result.adjusted]
        for field in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected"):
            regression[f"{prefix}_{field}"] = column(entries, field)
        regression[f"{prefix}_significant"] = [e.significant for e in entries]
    for name in ADJUSTED_INTERVALS:
        for field in ("mean", "ci_low", "ci_high"):
            regression[f"{name}_{field}"] = result.adjusted_column(name, field)
    for name in ("bias_t1", "bias_t2", "r2_position", "log_norm_sd"):
        regression[name] = result.adjusted_column(name, None)
    regression["p_ljung_box_adjusted"] = result.adjusted_column("p_ljung_box", None)
    per = result.per_passage
    names = ("beta_t1", "beta_t2", "p_t1", "p_t2", "r2", "adjusted_t1", "adjusted_t2", "bias_t1", "bias_t2",
             "partial_r2", "partial_r2_adj", "shuffled_t1", "shuffled_partial_r2")
    passages = pd.DataFrame({"passage": np.repeat(np.arange(result.replicates), n_layers),
                             "layer": np.tile(np.arange(n_layers), result.replicates),
                             **{name: getattr(per, name).ravel() for name in names}})
    position = np.concatenate([np.arange(n) for n in result.passage_tokens])
    return {"regression": regression, "passages": passages, "log_norms": pd.DataFrame({
        "layer": np.repeat(np.arange(n_layers), n_tokens), "passage": np.tile(result.norms.passage, n_layers),
        "position": np.tile(position, n_layers), "token": np.tile(result.norms.tokens, n_layers),
        "log_norm": norms.ravel(), "shuffled_token": np.tile(result.norms.shuffled_tokens, n_layers),
        "shuffled_log_norm": result.norms.shuffled_log_norms.ravel()})}


def profiles(result: AutoregressionResult) -> pd.DataFrame:
    """Per block, metrics whose null value is the same at every layer (docs/results.md):

    * ``beta_t1``, ``beta_t2``: the position-adjusted, bias-corrected betas, the passages' mean with its 95% t
      interval (one passage: the fit's t interval); null 0 (no dependence beyond the trend over position);
    * ``partial_r2_adj``: the lags' partial R² beyond position, adjusted for degrees of freedom, mean and t
      interval over passages; null about 0 whatever the passage length;
    * ``order_t1``: real − shuffled β₁, paired by passage, with its t interval; null 0 (token order does not
      matter).

    Layers constant to float32 precision give NaN.
    """
    parts = []
    for metric, name in (("beta_t1", "t1"), ("beta_t2", "t2"), ("partial_r2_adj", "partial_r2_adj"),
                         ("order_t1", "order_t1")):
        parts.append(("attn.out", metric, result.adjusted_column(name),
                      np.stack([result.adjusted_column(name, "ci_low"), result.adjusted_column(name, "ci_high")])))
    return profile_table(*parts)
