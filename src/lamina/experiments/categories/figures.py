"""Figures of ``categories``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ...plots.matrices import matrix_image
from ...plots.profiles import interval_band
from ...plots.selectivity import (category_lines, delta_with_null, group_densities, laminar_panels, pair_mask_image,
                                  pvalue_profile, tornado, variance_strips)
from ...stats.multiple import significant as is_significant
from ...stats.selectivity import between_mask, pair_masks
from ...stats.similarity import upper
from .. import settings as shared
from ..base import Figure
from ..settings import setting
from .result import GROUPS, CategoriesResult

_MEANS = {"within": "within_mean", "across_word_vs_places": "across_word_vs_places", "across_places": "across_places"}


@dataclass
class CategoriesOptions:
    # colour limits of the similarity matrices (percentiles)
    clip_percentiles: tuple[float, ...] = setting((2.0, 98.0), items=2, ge=0, le=100, order="<", why="low,high")
    word_density_bins: int = shared.bins(20)  # bins of part A's within/across densities
    context_density_bins: int = shared.bins(30)  # bins of part B's pair-group densities
    # the tornado colour scale saturates at this quantile of the filled bins
    tornado_saturation: float = setting(0.99, gt=0, le=1)


def _clip_caption(options) -> str:
    low, high = options.clip_percentiles
    return f"colours clipped to the {low:g}th-{high:g}th percentile"


def figures(result: CategoriesResult, config, options: CategoriesOptions) -> dict[str, Figure]:
    out = _words_figures(result, options)
    if result.contexts is not None:
        out.update(_contexts_figures(result, config, options))
    return out


def _words_figures(result: CategoriesResult, options) -> dict[str, Figure]:
    a, w, layer = result.word_arrays, result.words, result.layer
    delta, t = (np.array([getattr(row, k) for row in w.layers]) for k in ("delta", "t"))
    significant = is_significant([row.p_maxstat for row in w.layers], w.alpha)
    out = {}
    fig, ax = figure(1, size=(11, 3.8))
    variance_strips(ax, a.variance, np.random.default_rng(0))  # jitter only: a fixed seed redraws the same figure
    ax.set(xlabel="Hidden state layer (0 = embeddings)", ylabel="Variance across words",
           title="Variance of each hidden dimension across the words")
    out["hidden_variance"] = Figure(fig, "Part 1 (the seed's blanks filled): for every hidden layer, each "
                                         "dimension's variance across the words, one point per dimension "
                                         "(jittered; red: median), on a log axis.")
    fig, ax = figure(1, size=(7.5, 5.5))
    pair_mask_image(ax, a.codes, list(w.used))
    category_lines(ax, a.codes, color="k")
    ax.set(xlabel="Word index", ylabel="Word index", title="Category-pair mask")
    out["category_mask"] = Figure(fig, "Which similarity-matrix cells count, and as what: each pair above the "
                                       "diagonal coloured by its two categories. Same-category pairs are the "
                                       "within values, the rest the across values (the seed's codes 1, 4, 9 vs "
                                       "2, 3, 6).")
    S = a.similarity
    within_mask, across_mask = pair_masks(a.codes)
    lo, hi = np.percentile(upper(S), list(options.clip_percentiles))
    fig, (m, d) = figure(2, size=(12, 4.8))
    matrix_image(m, S, vmin=lo, vmax=hi, cmap="viridis", label="cosine similarity")
    category_lines(m, a.codes)
    m.set(xlabel="Word index", ylabel="Word index", title=f"A) Cosine similarity, layer {layer}")
    group_densities(d, {"Within-category": S[within_mask], "Across-category": S[across_mask]},
                    bins=options.word_density_bins)
    d.set(xlabel="Cosine similarity", ylabel="Density", title=f"B) Layer {layer}: Δ = {delta[layer]:.3f}, "
                                                               f"t = {t[layer]:.2f}")
    out["layer_similarity"] = Figure(fig, f"Layer {layer}: the words' cosine-similarity matrix (A; white lines "
                                          f"separate categories, {_clip_caption(options)}) and the distributions "
                                          "of within- and across-category similarities (B; Welch t).")
    fig, axs = figure(2, 2, size=(11, 8))
    laminar_panels(axs, *(np.array([getattr(row, k) for row in w.layers]) for k in ("within_mean", "across_mean")),
                   delta, t, significant=significant)
    out["laminar_profile"] = Figure(fig, "Laminar profile: mean within- and across-category similarity with "
                                         "their difference as dotted lines (A), the difference Δ (B; rings: "
                                         "significant after correction across layers), Welch t (C) and Δ "
                                         "against t (D), one point per hidden layer.")
    fig, (p, q) = figure(2, size=(12, 4))
    n = a.null.shape[0]
    delta_with_null(p, delta, a.null, significant)
    p.set(ylabel="Δ (within − across)", title="A) Δ and its permutation null")
    pvalue_profile(q, {label: np.array([getattr(row, k) for row in w.layers]) for label, k in (
        ("raw", "p_perm"), ("max-statistic (FWER)", "p_maxstat"), ("Benjamini–Hochberg", "p_bh"))}, w.alpha, n)
    q.set_title("B) Permutation p-values")
    out["selectivity_permutation"] = Figure(fig, f"Permutation test of Δ per layer (category labels shuffled {n} "
                                                 "times): observed Δ (filled: significant after max-statistic "
                                                 "correction; hollow: not) against the null's range and mean (A), "
                                                 "and the raw and corrected p-values (B). The smallest possible p "
                                                 f"is 1/{n + 1}.")
    return out


def _contexts_figures(result: CategoriesResult, config, options) -> dict[str, Figure]:
    b, c, layer = result.context_arrays, result.contexts, result.layer
    words, hist = c.words, result.hist()
    names = {"within": "Within-word", "across_word_vs_places": f"<{words[0]}, others>",
             "across_places": "<others, others>"}
    if len(words) == 3:
        names.update(across_word_vs_places=f"<{words[0]}, {words[1]}/{words[2]}>",
                     across_places=f"<{words[1]}, {words[2]}>")
    S = b.similarity
    within_mask, across_mask = pair_masks(b.codes)
    first_vs_others = between_mask(b.codes, [0], range(1, len(words)))
    masks = dict(zip(GROUPS, (within_mask, first_vs_others, across_mask & ~first_vs_others)))
    out = {}
    lo, hi = np.percentile(upper(S), list(options.clip_percentiles))
    fig, (k, m, d) = figure(3, size=(12, 4.2), width_ratios=[1, 1, 1.1])
    pair_mask_image(k, b.codes, list(words))
    k.set(xlabel="Context index", ylabel="Context index", title="A) Word-pair mask")
    matrix_image(m, S, vmin=lo, vmax=hi, cmap="viridis")
    category_lines(m, b.codes)
    m.set(xlabel="Context index", ylabel="Context index", title=f"B) Cosine similarity, layer {layer}")
    group_densities(d, {names[g]: S[masks[g]] for g in hist}, bins=options.context_density_bins)
    d.set(xlabel="Cosine similarity", ylabel="Density", title=f"C) Layer {layer} distributions")
    counts = ", ".join(f"{w} {n}" for w, n in c.counts.items())
    out["contexts_similarity"] = Figure(fig, f"Part B, layer {layer}: which pairs belong to which words (A), the "
                                             f"similarity of the last-token hidden states of every context ({counts};"
                                             f" B, {_clip_caption(options)}) and the distributions of within-word "
                                             "pairs, first word vs the others, and pairs among the others (C).")
    # One colour scale for the three panels; a high quantile of the filled bins, so that a layer
    # where all similarities share one bin (layer 0 within-word: identical embeddings) does not
    # darken every other layer.
    filled = np.concatenate([h[np.isfinite(h) & (h > 0)] for h in hist.values()])
    vmax = float(np.quantile(filled, options.tornado_saturation)) if len(filled) else 1.0
    fig, axs = figure(len(hist), size=(4 * len(hist), 4.2))
    for ax, group in zip(axs, hist):
        tornado(ax, hist[group], c.bin_edges, vmax=vmax)
        ax.set_title(names[group])
        ax.title.set_parse_math(False)
    how = ("a fixed range" if config.tornado_range is not None else
           "the observed range rounded out to 0.05 (seed: 0.4 to 1, fitted to GPT-2)")
    out["tornado"] = Figure(fig, f"Tornado plots: the distribution of each pair group's similarities at every "
                                 f"layer (rows), as probability per bin, {len(c.bin_edges) - 1} common bins over "
                                 f"{how}; one colour scale, saturating at {vmax:.2f} (the "
                                 f"{100 * options.tornado_saturation:g}th percentile of filled bins).")
    fig, (p, q) = figure(2, size=(12, 4))
    replicated = c.replicates > 1
    for group, color in zip(hist, ("C2", "C0", "C1")):
        p.plot([getattr(row, _MEANS[group]) for row in c.layers], "o-", color=color, markersize=4, linewidth=1,
               label=names[group])
    p.set(xlabel="Layer", ylabel="Mean cosine similarity", title="A) Mean similarity by pair group")
    legend = p.legend(fontsize=8)
    for text in legend.get_texts():
        text.set_parse_math(False)
    if replicated:
        interval_band(q, [row.across.delta.ci_low for row in c.layers], [row.across.delta.ci_high for row in c.layers],
                       color="C3", label=f"Δ over {c.replicates} replicates (95% t)")
    delta_with_null(q, np.array([row.delta for row in c.layers]), b.null,
                    is_significant([row.p_maxstat for row in c.layers], result.words.alpha))
    q.set(ylabel="Δ (within − across word)", title="B) Within-word minus across-word, with permutation null")
    band = (f" The red band is the mean Δ of the {c.replicates} replicates (each word's contexts dealt out in turn) "
            "with its 95% t interval." if replicated else "")
    out["contexts_profile"] = Figure(fig, "Part B across layers: mean similarity of each pair group (A), and the "
                                          "within-word minus across-word difference against its permutation null "
                                          f"(word labels shuffled {result.words.n_permutations} times; filled: "
                                          "significant after max-statistic correction) (B)." + band)
    return out
