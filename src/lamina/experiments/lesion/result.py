"""The typed result of ``lesion``: results.json key for key, plus the per-window values behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..across import AcrossLayers, across_layers
from ..base import ModelFacts, profile_table
from ..typed import FloatArray, Typed, array_field, detail_field, dims

# The correction's vocabulary and its sign flips, here (not in compute.py) so that the report imports no torch.
CORRECTIONS = {"max": "max-|t| over sign flips of whole windows (family-wise)", "holm": "Holm (family-wise)"}
N_FLIPS = 10_000
LEVEL = 95.0  # every interval


def layer_tests(values, correction: str, alpha: float, rng) -> AcrossLayers:
    """Windows × layers ``values``: mean, t interval, one-sample t test against 0, corrected across layers."""
    return across_layers(values, alpha=alpha, correction=correction, level=LEVEL, n_flips=N_FLIPS, rng=rng)


@dataclass(frozen=True, eq=False)
class SiteLesion(Typed):
    """The lesion sweep of one site: one ablated layer at a time."""

    site: str
    # Per layer (n_layers,), windows as the unit: the windows' mean, its t interval, the one-sample t test
    # against 0 and its p-value corrected across layers (family-wise: the result's correction).
    delta_loss: AcrossLayers  # edited − clean mean loss per window, nats
    delta_accuracy: AcrossLayers  # edited − clean top-1 accuracy per window (fraction)
    worst_layer: int  # the layer whose ablation raises the mean loss most (largest mean Δ loss)
    delta_loss_correct: FloatArray  # mean over split windows of Δ loss on the clean model's correct tokens
    delta_loss_incorrect: FloatArray  # ... on its incorrect tokens
    split: AcrossLayers | None  # Δ loss correct − incorrect per window; None with fewer than 2 split windows
    n_split_windows: int  # windows with at least one correct and one incorrect clean prediction

    @classmethod
    def of(cls, site: str, windows: "Windows", s: int, split_ok: np.ndarray, correction: str, alpha: float,
           rng) -> SiteLesion:
        """The tests of site ``s`` of ``windows`` (its Δ values, layers × windows) across windows;
        ``split_ok`` ``(R,)``: the windows holding both correct and incorrect clean predictions."""
        d_cor, d_inc = windows.delta_loss_correct[s], windows.delta_loss_incorrect[s]
        n_split, n_layers = int(split_ok.sum()), windows.delta_loss.shape[1]
        dl = layer_tests(windows.delta_loss[s].T, correction, alpha, rng)
        da = layer_tests(windows.delta_accuracy[s].T, correction, alpha, rng)
        split = layer_tests((d_cor - d_inc)[:, split_ok].T, correction, alpha, rng) if n_split >= 2 else None
        with np.errstate(invalid="ignore"):
            mean_cor = d_cor[:, split_ok].mean(axis=1) if n_split else np.full(n_layers, np.nan)
            mean_inc = d_inc[:, split_ok].mean(axis=1) if n_split else np.full(n_layers, np.nan)
        return cls(site=site, delta_loss=dl, delta_accuracy=da, worst_layer=int(np.argmax(dl.mean)),
                   delta_loss_correct=mean_cor, delta_loss_incorrect=mean_inc, split=split, n_split_windows=n_split)


@dataclass(frozen=True, eq=False)
class Windows(Typed):
    """Per window (R) and per site × layer × window (S, L, R): the values the tests use."""

    start: np.ndarray = dims("window")  # int64, first token of each window in the book
    clean_loss: np.ndarray = dims("window")  # float64, mean clean loss
    clean_accuracy: np.ndarray = dims("window")  # float64
    n_tokens: np.ndarray = dims("window")  # int64, tokens with a known next token
    n_correct: np.ndarray = dims("window")  # int64
    delta_loss: np.ndarray = dims("ablated_site", "block", "window")  # float64
    delta_accuracy: np.ndarray = dims("ablated_site", "block", "window")
    delta_loss_correct: np.ndarray = dims("ablated_site", "block", "window")  # NaN where a window has no correct token
    delta_loss_incorrect: np.ndarray = dims("ablated_site", "block", "window")  # NaN: no incorrect token in a window


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """Per token with a known next token (N, all windows, recording order): the clean run's outputs."""

    window: np.ndarray  # (N,) int64, the window (replicate) of the token
    position: np.ndarray  # (N,) int64, its position in the window
    next_id: np.ndarray  # (N,) int64, the next token's id
    loss: np.ndarray  # (N,) float64, clean loss
    correct: np.ndarray  # (N,) bool, the clean model's top-1 prediction is the next token
    split_correct: np.ndarray  # (N,) bool, the labels of the correct/incorrect split (``correct``, or
    # the labels_from run's)


@dataclass(frozen=True, eq=False)
class LesionResult(Typed):
    n_tokens: int  # tokens with a known next token, all windows
    window: int  # tokens per window
    n_replicates: int  # windows
    ablation: str  # mean, zero or resample
    correction: str  # across layers: max (sign-flip max-t) or holm
    alpha: float
    level: float  # interval level, percent
    clean_loss: float  # mean over all tokens
    clean_accuracy: float
    n_correct: int
    sites: tuple[SiteLesion, ...]
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    labels_from: str | None = detail_field()  # the run whose clean labels split the tokens
    windows: Windows = array_field()
    tokens: Tokens = array_field()


METRICS = ("delta_loss", "delta_accuracy")


def tables(result: LesionResult) -> dict[str, pd.DataFrame]:
    w = result.windows
    layers, per_window = [], []
    for s, site in enumerate(result.sites):
        n_layers = len(site.delta_loss.mean)
        row = {"site": site.site, "layer": np.arange(n_layers)}
        for metric in METRICS:
            a = getattr(site, metric)
            row.update({f"{metric}_{k}": getattr(a, k) for k in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected",
                                                                  "significant")})
        row.update(delta_loss_correct=site.delta_loss_correct, delta_loss_incorrect=site.delta_loss_incorrect)
        if site.split is not None:
            row.update({f"split_{k}": getattr(site.split, k) for k in ("mean", "ci_low", "ci_high", "t", "p",
                                                                        "p_corrected", "significant")})
        layers.append(pd.DataFrame(row))
        for layer in range(n_layers):
            per_window.append(pd.DataFrame({
                "site": site.site, "layer": layer, "window": np.arange(result.n_replicates),
                "delta_loss": w.delta_loss[s, layer], "delta_accuracy": w.delta_accuracy[s, layer],
                "delta_loss_correct": w.delta_loss_correct[s, layer],
                "delta_loss_incorrect": w.delta_loss_incorrect[s, layer]}))
    return {
        "layers": pd.concat(layers, ignore_index=True),
        "windows": pd.concat(per_window, ignore_index=True),
        "clean": pd.DataFrame({"window": np.arange(result.n_replicates), "start": w.start, "n_tokens": w.n_tokens,
                               "n_correct": w.n_correct, "loss": w.clean_loss, "accuracy": w.clean_accuracy}),
        # per token: the clean run's outputs and the split's labels (labels_from reads this table)
        "tokens": pd.DataFrame({k: getattr(result.tokens, k) for k in ("window", "position", "next_id", "loss",
                                                                        "correct", "split_correct")}),
    }


def profile_metric(metric: str, site: str) -> str:
    """A profile metric's name: unique across sites (``delta_loss_attn_out``), as lamina compare needs."""
    return f"{metric}_{site.replace('.', '_')}"


def profiles(result: LesionResult) -> pd.DataFrame:
    """Per site and block, each metric with its t interval across windows, named ``METRIC_SITE`` (e.g.
    ``delta_loss_attn_out``, ``delta_loss_correct_minus_incorrect_mlp_out``); every null value is 0 at
    every layer, whatever the model's depth or its clean loss:

    * ``delta_loss``: edited − clean mean loss (nats): 0 when the ablated output carries nothing the rest
      of the model uses beyond what replaces it (its mean, zero, or another token's value);
    * ``delta_accuracy``: edited − clean top-1 accuracy (fraction): 0 likewise;
    * ``delta_loss_correct_minus_incorrect``: Δ loss on the clean model's correct tokens minus Δ loss on
      its incorrect ones: 0 when the lesion costs both kinds of token the same (seed 001's question asked
      causally). Absent when fewer than 2 windows hold both kinds (an untrained control: it predicts
      (almost) nothing correctly).
    """
    parts = []
    for site in result.sites:
        for metric in METRICS:
            a = getattr(site, metric)
            parts.append((site.site, profile_metric(metric, site.site), a.mean, (a.ci_low, a.ci_high)))
        if site.split is not None:
            a = site.split
            parts.append((site.site, profile_metric("delta_loss_correct_minus_incorrect", site.site), a.mean,
                          (a.ci_low, a.ci_high)))
    return profile_table(*parts)
