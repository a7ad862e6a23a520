"""The typed result of ``categories``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...stats.multiple import significant
from ..across import Across, Interval, column
from ..base import ModelFacts, profile_table
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


def _layer_table(layers, alpha=None) -> pd.DataFrame:
    table = pd.DataFrame([{k: v for k, v in vars(row).items() if k != "across"} for row in layers])
    table["significant"] = significant(table["p_maxstat"].to_numpy(), alpha)
    if getattr(layers[0], "across", None) is not None:
        for name in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected", "significant"):
            table[f"across_delta_{name}"] = [getattr(row.across.delta, name) for row in layers]
        table["across_delta_p_bh"] = [row.across.delta_p_bh for row in layers]
    return table


def tables(result: CategoriesResult) -> dict[str, pd.DataFrame]:
    a = result.word_arrays
    words = pd.DataFrame({
        "category": a.category, "word": a.word, "n_tokens_with_space": a.n_tokens_with_space,
        "n_tokens_without_space": a.n_tokens_without_space, "single": a.single, "used": a.used,
        "next_token": np.where(a.used, a.next_token.astype(object), None),
        "token_id": pd.array([int(t) if u else pd.NA for t, u in zip(a.token_id, a.used)], dtype="Int64")})
    out = {"words": words, "selectivity_by_layer": _layer_table(result.words.layers, result.words.alpha)}
    if result.contexts is not None:
        b, c = result.context_arrays, result.contexts
        out["contexts"] = pd.DataFrame({"word": [c.words[i] for i in b.codes], "occurrence": b.occurrence,
                                        "replicate": b.replicate, "position": b.position, "last_tokens": b.last_tokens,
                                        "next_token": b.next_token})
        out["contexts_by_layer"] = _layer_table(c.layers, alpha=result.words.alpha)
        edges = c.bin_edges
        out["tornado"] = pd.DataFrame([{"group": name, "layer": layer, "bin_low": edges[k], "bin_high": edges[k + 1],
                                        "probability": h[layer, k]}
                                       for name, h in result.hist().items()
                                       for layer in range(h.shape[0]) for k in range(h.shape[1])])
    return out


def profiles(result: CategoriesResult) -> pd.DataFrame:
    """Per hidden entry: part A's within/across mean cosine, Δ and Welch t (``words_*``), and part B's
    (``contexts_*``) when it ran. Part B with replicates: within, across and Δ are the replicates' mean
    with its 95% t interval (t stays the pooled one)."""
    names = ("within_mean", "across_mean", "delta", "t")
    parts = [("hidden", f"words_{name}", [getattr(layer, name) for layer in result.words.layers], None)
             for name in names]
    c = result.contexts
    if c is not None and c.replicates > 1:
        for name in names[:3]:
            entries = [getattr(layer.across, name) for layer in c.layers]
            parts.append(("hidden", f"contexts_{name}", column(entries, "mean"),
                          np.stack([column(entries, "ci_low"), column(entries, "ci_high")])))
        parts.append(("hidden", "contexts_t", [layer.t for layer in c.layers], None))
    elif c is not None:
        parts += [("hidden", f"contexts_{name}", [getattr(layer, name) for layer in c.layers], None) for name in names]
    return profile_table(*parts)
