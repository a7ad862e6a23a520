"""The typed result of ``attn-kl``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class TokenLength(Typed):
    """Length in characters of the token being predicted, by group."""

    correct_mean: float
    incorrect_mean: float
    p_mannwhitney: float  # two-sided Mann–Whitney U


@dataclass(frozen=True, eq=False)
class UnsupportedBins(Typed):
    """Bins where the first group has tokens and the second none (the true KL is then infinite)."""

    correct_to_incorrect: int
    incorrect_to_correct: int


@dataclass(frozen=True, eq=False)
class SweepEntry(Typed):
    """The focus layer's divergences with another number of bins."""

    bins: int
    edges: int  # bins + 1 (the seed's nbins)
    js: float
    seed_symmetric_kl: float


@dataclass(frozen=True, eq=False)
class LayerStats(Typed):
    layer: int
    mean_log_norm_correct: float
    mean_log_norm_incorrect: float
    difference: float  # correct − incorrect
    js: float  # nats
    p_value: float  # uncorrected permutation p
    p_corrected: float  # the chosen correction
    p_max: float
    p_bh: float
    significant: bool
    null_mean: float
    null_min: float
    null_max: float
    seed_symmetric_kl: float


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """The compared tokens (n = n_tokens) and the focus layer's arrays."""

    position: np.ndarray  # (n,) int64
    token: np.ndarray  # (n,) str
    next_token: np.ndarray  # (n,) str, the token being predicted
    predicted: np.ndarray  # (n,) str, the argmax
    correct: np.ndarray  # (n,) bool
    next_token_length: np.ndarray  # (n,) int64, characters
    loss: np.ndarray  # (n,) float32, nats
    focus_log_norm: np.ndarray  # (n,) float64, log norm of attn.out at the focus layer
    focus_null: np.ndarray  # (n_permutations,) JS divergence of each shuffle at the focus layer
    focus_edges: np.ndarray  # (bins + 1,) the focus layer's histogram edges
    focus_probs: np.ndarray  # (2, bins) probability per bin, correct then incorrect


@dataclass(frozen=True, eq=False)
class AttnKLResult(Typed):
    n_tokens: int
    window: int
    window_start: int
    n_correct: int
    accuracy: float  # fraction
    token_length: TokenLength
    focus_layer: int
    bins: int
    kl_correct_to_incorrect: float
    kl_incorrect_to_correct: float
    kl_epsilon: float
    kl_unsupported_bins: UnsupportedBins
    js: float
    seed_symmetric_kl: float
    bins_sweep: tuple[SweepEntry, ...]
    n_permutations: int
    correction: str
    alpha: float
    n_significant: int
    n_significant_uncorrected: int
    n_significant_bh: int
    n_significant_max: int
    layers: tuple[LayerStats, ...]
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    tokens: Tokens = array_field()

    def column(self, name: str) -> np.ndarray:
        """One value per layer, shape ``(n_layers,)``: e.g. ``column("js")``."""
        return np.array([getattr(layer, name) for layer in self.layers])
