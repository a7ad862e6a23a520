"""The typed result of ``attn-autoregression``: results.json key for key, plus the log norms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..across import Across
from ..base import ModelFacts
from ..typed import FloatArray, Typed, array_field, detail_field

LAGS = ("t1", "t2")


@dataclass(frozen=True, eq=False)
class SignificantLayers(Typed):
    """Layers with p <= alpha per lag: the pooled fit raw and after Benjamini–Hochberg, and across passages."""

    t1_raw: int
    t1_bh: int
    t2_raw: int
    t2_bh: int
    t1_across: int | None  # across-passage t test, BH across layers (None with one passage)
    t2_across: int | None


@dataclass(frozen=True, eq=False)
class LayerAcross(Typed):
    """One layer across passages: each lag's beta tested against 0 (BH across layers, per lag), and R²."""

    t1: Across
    t2: Across
    r2_mean: float
    r2_ci: tuple[float, float]  # 95% t interval


@dataclass(frozen=True, eq=False)
class LayerFit(Typed):
    """One layer's least squares of y[t] on y[t-1] and y[t-2], all passages pooled."""

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
    p_ljung_box: float  # residual autocorrelation up to 10 lags, passages summed
    across: LayerAcross | None  # None with one passage


@dataclass(frozen=True, eq=False)
class PassageFits(Typed):
    """Each passage's own fit per layer, shape ``(n_passages, n_layers)``."""

    beta_t1: FloatArray
    p_t1: FloatArray
    beta_t2: FloatArray
    p_t2: FloatArray
    r2: FloatArray


@dataclass(frozen=True, eq=False)
class Norms(Typed):
    log_norms: np.ndarray  # (n_layers, n_tokens) float64, log L2 norm of attn.out, passages one after another
    tokens: np.ndarray  # (n_tokens,) str
    passage: np.ndarray  # (n_tokens,) int64, the passage of each token


@dataclass(frozen=True, eq=False)
class AutoregressionResult(Typed):
    n_tokens: int  # all passages
    n_targets: int  # regression rows of the pooled fit
    passage_tokens: tuple[int, ...]
    source: str
    alpha: float
    replicates: int  # passages
    se: str  # "ols" or "hac"
    hac_lags: int | None  # Newey–West truncation lag (None with se = ols)
    significant_layers: SignificantLayers
    layers: tuple[LayerFit, ...]
    per_passage: PassageFits
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    norms: Norms = array_field()

    def column(self, name: str) -> np.ndarray:
        """One value per layer, shape ``(n_layers,)``: e.g. ``column("beta_t1")``."""
        return np.array([getattr(layer, name) for layer in self.layers])
