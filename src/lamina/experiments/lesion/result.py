"""The typed result of ``lesion``: results.json key for key, plus the per-window values behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import BoolArray, FloatArray, Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class Across(Typed):
    """Per layer (each ``(n_layers,)``), windows as the unit: the windows' mean, its t interval, the
    one-sample t test against 0 and its p-value corrected across layers (family-wise)."""

    mean: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    t: FloatArray
    p: FloatArray
    p_corrected: FloatArray
    significant: BoolArray  # p_corrected <= alpha


@dataclass(frozen=True, eq=False)
class SiteLesion(Typed):
    """The lesion sweep of one site: one ablated layer at a time."""

    site: str
    delta_loss: Across  # edited − clean mean loss per window, nats
    delta_accuracy: Across  # edited − clean top-1 accuracy per window (fraction)
    worst_layer: int  # the layer whose ablation raises the mean loss most (largest mean Δ loss)
    delta_loss_correct: FloatArray  # mean over split windows of Δ loss on the clean model's correct tokens
    delta_loss_incorrect: FloatArray  # ... on its incorrect tokens
    split: Across | None  # Δ loss correct − incorrect per window; None with fewer than 2 split windows
    n_split_windows: int  # windows with at least one correct and one incorrect clean prediction


@dataclass(frozen=True, eq=False)
class Windows(Typed):
    """Per window (R) and per site × layer × window (S, L, R): the values the tests use."""

    start: np.ndarray  # (R,) int64, first token of each window in the book
    clean_loss: np.ndarray  # (R,) float64, mean clean loss
    clean_accuracy: np.ndarray  # (R,) float64
    n_tokens: np.ndarray  # (R,) int64, tokens with a known next token
    n_correct: np.ndarray  # (R,) int64
    delta_loss: np.ndarray  # (S, L, R) float64
    delta_accuracy: np.ndarray  # (S, L, R)
    delta_loss_correct: np.ndarray  # (S, L, R), NaN where a window has no correct token
    delta_loss_incorrect: np.ndarray  # (S, L, R), NaN where a window has no incorrect token


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
