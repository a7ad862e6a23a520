"""The typed result of ``categories``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..across import Across, Interval
from ..base import ModelFacts
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field

GROUPS = ("within", "across_word_vs_places", "across_places")  # part B's pair groups


@dataclass(frozen=True, eq=False)
class WordLayer(Typed):
    """Part A at one hidden layer."""

    layer: int
    within_mean: float
    across_mean: float
    delta: float  # within − across
    t: float  # Welch
    t_student: float  # the seed's
    p_perm: float  # one-sided permutation p
    p_maxstat: float  # family-wise corrected across layers
    p_bh: float  # Benjamini–Hochberg
    null_mean: float  # mean of Δ under shuffled category labels (the permutation null)
    null_sd: float  # its standard deviation


@dataclass(frozen=True, eq=False)
class Words(Typed):
    """Part A: one-token words by category."""

    used: dict[str, tuple[str, ...]]
    dropped: dict[str, tuple[str, ...]]  # not single tokens
    n_used: int
    n_dropped: int
    n_within_pairs: int
    n_across_pairs: int
    n_permutations: int
    alpha: float
    significant_layers: tuple[int, ...]  # p_maxstat <= alpha
    significant_layers_bh: tuple[int, ...]  # p_bh <= alpha
    layers: tuple[WordLayer, ...]


@dataclass(frozen=True, eq=False)
class ContextAcross(Typed):
    """Part B at one layer across replicates (replicates as the unit)."""

    delta: Across  # one-sided t test of Δ > 0; p_corrected: sign-flip max-t across layers (family-wise)
    delta_p_bh: float  # the same t tests' p, Benjamini–Hochberg across layers
    within_mean: Interval
    across_mean: Interval


@dataclass(frozen=True, eq=False)
class ContextLayer(Typed):
    """Part B at one hidden layer."""

    layer: int
    within_mean: float  # pairs of contexts of the same word
    across_word_vs_places: float  # the first word's contexts with another word's
    across_places: float  # two different words other than the first (NaN with two words)
    across_mean: float  # all across-word pairs
    delta: float  # within − all across
    t: float
    p_perm: float
    p_maxstat: float
    p_bh: float
    across: ContextAcross | None  # None with one replicate


@dataclass(frozen=True, eq=False)
class ContextReplicates(Typed):
    """Each replicate's part B per layer, shape ``(R, n_layers)``; ``counts`` ``(R, n_words)``."""

    counts: IntArray
    within_mean: FloatArray
    across_mean: FloatArray
    delta: FloatArray


@dataclass(frozen=True, eq=False)
class Contexts(Typed):
    """Part B: one word in many contexts."""

    words: tuple[str, ...]
    counts: dict[str, int]
    context_length: int
    book: str
    significant_layers: tuple[int, ...]
    replicates: int  # interleaved subsets of each word's contexts
    significant_layers_across: tuple[int, ...] | None  # across replicates, family-wise (None with one)
    bin_edges: FloatArray  # the tornado bins
    layers: tuple[ContextLayer, ...]
    per_replicate: ContextReplicates


@dataclass(frozen=True, eq=False)
class WordArrays(Typed):
    """Part A's arrays; ``n`` used words, ``m`` words in the list."""

    codes: np.ndarray  # (n,) int64 category index of each used word
    variance: np.ndarray  # (n_layers, width) each hidden dimension's variance across the words
    similarity: np.ndarray  # (n, n) cosine similarities at the figure layer
    null: np.ndarray  # (n_permutations, n_layers) Δ under shuffled category labels
    category: np.ndarray  # (m,) str: the words table
    word: np.ndarray  # (m,) str
    n_tokens_with_space: np.ndarray  # (m,) int64
    n_tokens_without_space: np.ndarray  # (m,) int64
    single: np.ndarray  # (m,) bool
    used: np.ndarray  # (m,) bool
    next_token: np.ndarray  # (m,) str ("" where unused)
    token_id: np.ndarray  # (m,) int64 (-1 where unused)


@dataclass(frozen=True, eq=False)
class ContextArrays(Typed):
    """Part B's arrays; ``n`` contexts."""

    codes: np.ndarray  # (n,) int64 which word each context ends in
    similarity: np.ndarray  # (n, n) at the figure layer
    null: np.ndarray  # (n_permutations, n_layers)
    hist_within: np.ndarray  # (n_layers, n_bins) probability per tornado bin
    hist_across_word_vs_places: np.ndarray
    hist_across_places: np.ndarray | None  # None with two words (no pairs)
    occurrence: np.ndarray  # (n,) int64: the contexts table
    position: np.ndarray  # (n,) int64, token position of the word in the text
    replicate: np.ndarray  # (n,) int64, occurrence mod replicates
    last_tokens: np.ndarray  # (n,) str, the last 5 tokens of each context
    next_token: np.ndarray  # (n,) str, predicted


@dataclass(frozen=True, eq=False)
class CategoriesResult(Typed):
    words: Words
    next_tokens: dict[str, str]
    contexts: Contexts | None
    layer: int = detail_field()  # the hidden layer of the single-layer figures
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    contexts_notes: tuple[str, ...] = detail_field()
    tornado_outside: dict[str, float] = detail_field()  # share of each group's values outside the bins
    word_arrays: WordArrays = array_field()
    context_arrays: ContextArrays | None = array_field()

    def hist(self) -> dict[str, np.ndarray]:
        """Part B's tornado histograms by group (groups without pairs left out)."""
        arrays = self.context_arrays
        found = {g: getattr(arrays, f"hist_{g}") for g in GROUPS}
        return {g: h for g, h in found.items() if h is not None}
