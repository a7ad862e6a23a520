"""Category-selectivity figures (seed 004): pair masks, group densities, laminar profiles, tornado plots.

Every helper draws onto axes it is given. Text that may come from a user (category names,
words) is drawn with ``parse_math=False`` so a ``$`` in it is shown, not parsed as TeX.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap

from .profiles import layer_profile, null_range

WITHIN_COLOR, ACROSS_COLOR = (0.7, 0.9, 0.7), (0.9, 0.7, 0.7)


def variance_strips(ax, variances, rng: np.random.Generator, *, jitter: float = 0.08):
    """Per layer, one jittered point per hidden dimension: its variance across items.

    Args:
        variances: shape ``(n_layers, width)``; plotted on a log axis (SmolLM2's few huge
            dimensions would flatten everything else on a linear one).
    """
    variances = np.asarray(variances, float)
    n_layers, width = variances.shape
    x = np.arange(n_layers)[:, None] + rng.normal(0, jitter, (n_layers, width))
    ax.plot(x.ravel(), variances.ravel(), "o", markeredgecolor="k", markeredgewidth=0.3, markersize=3, alpha=0.25)
    ax.plot(np.arange(n_layers), np.median(variances, axis=1), "r_", markersize=14, markeredgewidth=2,
            label="median")
    if (variances > 0).all():
        ax.set_yscale("log")
    ax.legend(fontsize=8, loc="upper left")


def pair_groups(codes, names) -> tuple[np.ndarray, list[str], list[bool]]:
    """Each upper-triangle pair's category pair as an index, for the mask image.

    Args:
        codes: ``(n,)`` int labels ``0..k-1``; names: the k category names.

    Returns:
        ``groups`` ``(n, n)`` with -1 on and below the diagonal and ``0..G-1`` above it;
        the G group names (``"a × b"``); whether each group is within-category.
    """
    codes = np.asarray(codes)
    k = len(names)
    index = np.full((k, k), -1)  # (a, b) with a <= b -> group number
    labels, within = [], []
    for a in range(k):
        for b in range(a, k):
            index[a, b] = len(labels)
            labels.append(f"{names[a]} × {names[b]}")
            within.append(a == b)
    lo, hi = np.minimum.outer(codes, codes), np.maximum.outer(codes, codes)
    groups = np.where(np.triu(np.ones(lo.shape, bool), 1), index[lo, hi], -1)
    return groups, labels, within


def pair_mask_image(ax, codes, names, *, max_ticks: int = 21):
    """The category-pair mask: each upper-triangle cell coloured by its pair of categories,
    within-category groups marked "(within)" on the colour bar (seed 004 part 2's ``cat_mask``)."""
    groups, labels, within = pair_groups(codes, names)
    n_groups = len(labels)
    # White where masked: the diagonal and lower triangle are not pairs.
    cmap = ListedColormap(matplotlib.colormaps["rainbow"](np.linspace(0, 1, n_groups))).with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_less(groups, 0), cmap=cmap, vmin=-0.5, vmax=n_groups - 0.5,
                      interpolation="nearest")
    bar = ax.figure.colorbar(image, ax=ax, pad=0.02, fraction=0.047)
    if n_groups <= max_ticks:
        bar.set_ticks(range(n_groups))
        bar.set_ticklabels([f"{label} (within)" if w else label for label, w in zip(labels, within)])
    bar.ax.tick_params(labelsize=7)
    for text in bar.ax.get_yticklabels():
        text.set_parse_math(False)
    return image


def category_lines(ax, codes, *, color="w", linewidth=0.6):
    """Lines between consecutive runs of equal labels on a matrix image (items grouped by label)."""
    codes = np.asarray(codes)
    for b in np.flatnonzero(np.diff(codes) != 0) + 0.5:
        ax.axhline(b, color=color, linewidth=linewidth)
        ax.axvline(b, color=color, linewidth=linewidth)


def group_densities(ax, groups: dict, *, bins=20):
    """One density curve per group of values (``np.histogram(density=True)`` at left bin edges, as
    seed 004 plots ``x[:-1]``); empty groups are skipped."""
    for name, values in groups.items():
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            continue
        density, edges = np.histogram(values, bins=bins, density=True)
        ax.plot(edges[:-1], density, linewidth=2, label=name)
    ax.set_ylim(0, None)
    legend = ax.legend(fontsize=8)
    for text in legend.get_texts():
        text.set_parse_math(False)


def laminar_panels(axs, within, across, delta, t, *, significant=None):
    """Seed 004 part 3's 2×2: within and across means joined by Δ lines (A), Δ (B), t (C), Δ vs t (D).

    Args:
        axs: a 2×2 array of axes; within, across, delta, t: shape ``(n_layers,)``.
        significant: optional bool ``(n_layers,)``; those layers get a black ring in B.
    """
    n = len(delta)
    layers = np.arange(n)
    colors = matplotlib.colormaps["plasma"](np.linspace(0, 1, n))
    a = axs[0, 0]
    a.plot(layers, within, "kh", markerfacecolor=WITHIN_COLOR, markersize=9, label="Within")
    a.plot(layers, across, "ko", markerfacecolor=ACROSS_COLOR, markersize=8, label="Across")
    a.vlines(layers, across, within, colors="k", linestyles=":", linewidth=0.6, zorder=-10, label="Δ")
    a.set(xlabel="Hidden state layer", ylabel="Mean cosine similarity", title="A) Within and across categories")
    a.legend(fontsize=8)
    b = axs[0, 1]
    b.scatter(layers, delta, s=70, edgecolor="k", c=colors, alpha=0.8)
    if significant is not None and np.any(significant):
        sig = np.asarray(significant, bool)
        b.scatter(layers[sig], np.asarray(delta)[sig], s=160, facecolor="none", edgecolor="k", linewidth=1.2,
                  label="permutation test, corrected")
        b.legend(fontsize=8)
    b.axhline(0, color="k", linewidth=0.5, linestyle="--")
    b.set(xlabel="Hidden state layer", ylabel="Δ (within − across)", title="B) Similarity mean differences")
    c = axs[1, 0]
    c.scatter(layers, t, s=70, edgecolor="k", c=colors, alpha=0.8)
    c.axhline(0, color="k", linewidth=0.5, linestyle="--")
    c.set(xlabel="Hidden state layer", ylabel="Welch t", title="C) t statistics")
    d = axs[1, 1]
    d.scatter(delta, t, s=70, edgecolor="k", c=colors, alpha=0.8)
    d.set(xlabel="Δ (within − across)", ylabel="Welch t", title="D) Δ vs t (colour: layer)")


def tornado(ax, probability, edges, *, vmax=None, cmap="magma"):
    """Distributions across layers as an image: rows = layers (bottom = embeddings), columns = bins.

    Args:
        probability: ``(n_layers, n_bins)`` probability per bin; edges: ``(n_bins + 1,)``.
    """
    probability = np.asarray(probability, float)
    image = ax.imshow(probability, vmin=0, vmax=vmax, aspect="auto", origin="lower", cmap=cmap,
                      extent=[edges[0], edges[-1], -0.5, len(probability) - 0.5], interpolation="nearest")
    bar = ax.figure.colorbar(image, ax=ax, pad=0.02, fraction=0.06)
    bar.ax.tick_params(labelsize=8)
    bar.set_label("probability per bin")
    ax.set(xlabel="Cosine similarity", ylabel="Hidden layer")
    return image


def delta_with_null(ax, delta, null, significant):
    """Observed Δ per layer (filled where ``significant``) over its permutation null's range and mean.

    Args:
        delta: ``(n_layers,)``; null: ``(n_permutations, n_layers)``; significant: bool ``(n_layers,)``.
    """
    null_range(ax, null.min(axis=0), null.max(axis=0), null.mean(axis=0))
    layer_profile(ax, delta, significant=significant, label="Δ observed", color="C3")
    ax.axhline(0, color="k", linewidth=0.5, linestyle="--")
    ax.legend(fontsize=8)


def pvalue_profile(ax, pvalues: dict, alpha: float, n_permutations: int):
    """p-values per layer on a log axis, one line per correction, with α dashed.

    Args:
        pvalues: label -> ``(n_layers,)`` p-values; the axis starts below 1 / (n_permutations + 1).
    """
    for (label, p), marker in zip(pvalues.items(), "os^v"):
        ax.plot(np.arange(len(p)), p, marker=marker, linewidth=0.8, markersize=5, label=label)
    ax.axhline(alpha, color="k", linestyle="--", linewidth=0.8, label=f"α = {alpha}")
    ax.set_yscale("log")
    ax.set_ylim(0.5 / (n_permutations + 1), 1.5)
    ax.set(xlabel="Layer", ylabel="p-value (one-sided)")
    ax.legend(fontsize=8)
