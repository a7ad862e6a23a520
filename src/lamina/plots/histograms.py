"""Histograms of two groups, permutation nulls, and a per-layer difference coloured by sign (seed 001)."""

from __future__ import annotations

import numpy as np

# Seed 001's colours: correct blue squares, incorrect red hexagons.
GROUP_STYLE = {
    True: {"color": "tab:blue", "marker": "s", "face": [0.5, 0.5, 0.9]},
    False: {"color": "tab:red", "marker": "h", "face": [0.9, 0.5, 0.5]},
}


def binary_strip(ax, labels, rng: np.random.Generator, *, names=("Incorrect", "Correct"), jitter: float = 0.05):
    """Each item's 0/1 label (shape ``(n,)``) against its index, jittered vertically (seed 001 part 2a)."""
    labels = np.asarray(labels, dtype=float)
    ax.plot(labels + rng.normal(0, jitter, labels.shape), "ws", markerfacecolor="k", markersize=4, alpha=0.7)
    ax.set(yticks=[0, 1], yticklabels=list(names), ylim=[-0.5, 1.5])


def density_by_group(ax, values, labels, *, names=("Correct", "Incorrect"), unit="", integer=False):
    """Density lines of ``values`` (shape ``(n,)``) for the True and False groups of ``labels``.

    Freedman–Diaconis bins per group at their left edges, as in seed 001; with ``integer`` one
    bin per integer, at the integer (FD bins on counts leave empty bins between integers).
    The legend gives each group's mean.
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    for flag, name in ((False, names[1]), (True, names[0])):
        group = values[labels == flag]
        bins = np.arange(group.min(), group.max() + 2) - 0.5 if integer else "fd"
        density, edges = np.histogram(group, bins=bins, density=True)
        x = edges[:-1] + 0.5 if integer else edges[:-1]
        style = GROUP_STYLE[flag]
        ax.plot(x, density, "-", marker=style["marker"], color=style["color"],
                markerfacecolor=style["face"], markersize=8, label=f"{name} (mean {group.mean():.2f}{unit})")
    ax.legend(fontsize=9)


def probability_lines(ax, edges, probs, names=("Correct", "Incorrect")):
    """Each group's probability per bin (``probs`` shape ``(2, n_bins)``) at the bins' left edges."""
    for row, flag, name in zip(probs, (True, False), names):
        ax.plot(np.asarray(edges)[:-1], row, linewidth=2, color=GROUP_STYLE[flag]["color"], label=name)
    ax.legend(fontsize=9)


def null_histogram(ax, null, observed: float, *, label="Observed", bins="fd"):
    """Histogram of a permutation null (shape ``(n,)``) with the observed value as a thick line
    (``bins``: a number, or a NumPy rule such as "fd", Freedman–Diaconis)."""
    ax.hist(null, bins=bins, edgecolor="k", linewidth=0.3, color=[0.5, 0.3, 0.3], label="$H_0$ distribution")
    ax.axvline(observed, linewidth=4, color="k", label=label)
    ax.legend(fontsize=9)


def signed_profile(ax, values, significant):
    """Per-layer ``values`` (shape ``(n_layers,)``): blue squares above 0, red hexagons below;
    large filled markers where ``significant``, small pale ones elsewhere (seed 001 part 6C)."""
    values = np.asarray(values, dtype=float)
    significant = np.asarray(significant, dtype=bool)
    layers = np.arange(len(values))
    ax.axhline(0, linestyle="--", color="k", linewidth=0.5)
    for positive in (True, False):
        style = GROUP_STYLE[positive]
        side = values > 0 if positive else values <= 0
        for sig, size, alpha in ((True, 10, 0.9), (False, 6, 0.35)):
            keep = side & (significant == sig)
            ax.plot(layers[keep], values[keep], style["marker"], color=style["color"], markersize=size,
                    markerfacecolor=style["face"] + [alpha], linestyle="none")
    ax.set_xlabel("Layer")
