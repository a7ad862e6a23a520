"""Figures for comparing processing stages (seed 003): density curves, bars with intervals,
violins, and scatters coloured by layer."""

from __future__ import annotations

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D

#: One colour and marker per stage / stage pair, in order (the seed's 'rbmkyc' and 'so^P*X',
#: with tab colours that stay readable on white).
COLORS = ["tab:red", "tab:blue", "tab:purple", "k", "tab:olive", "tab:cyan"]
MARKERS = "so^P*X"
MAX_BINS = 400  # 'fd' bins of heavy-tailed activations can number thousands; the curve needs fewer


def density_curve(ax, values, *, label=None, color=None, bins="fd"):
    """Density of ``values`` (any shape, flattened) as a line through the left bin edges (the seed's
    ``np.histogram(..., bins='fd', density=True)``), with at most ``MAX_BINS`` bins."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(values, bins=bins)
    if len(edges) - 1 > MAX_BINS:
        edges = np.linspace(values.min(), values.max(), MAX_BINS + 1)
    density, edges = np.histogram(values, bins=edges, density=True)
    ax.plot(edges[:-1], density, linewidth=2, label=label, color=color)


def bars_with_ci(ax, values, low, high, labels, group_labels, *, colors=("tab:blue", "tab:orange")):
    """Grouped bars with interval whiskers.

    Args:
        values, low, high: shape ``(k, g)``: k bar positions (e.g. stage pairs), g groups side by side.
        labels: k tick labels; group_labels: g legend entries.
    """
    values = np.asarray(values, dtype=float)
    k, g = values.shape
    width = 0.8 / g
    for j in range(g):
        x = np.arange(k) + (j - (g - 1) / 2) * width
        yerr = np.vstack([values[:, j] - np.asarray(low)[:, j], np.asarray(high)[:, j] - values[:, j]])
        ax.bar(x, values[:, j], width, color=colors[j % len(colors)], label=group_labels[j], edgecolor="k",
               linewidth=0.5)
        ax.errorbar(x, values[:, j], yerr=np.clip(yerr, 0, None), fmt="none", ecolor="k", capsize=3,
                    linewidth=1)
    ax.set_xticks(range(k), labels)


def violins(ax, data, labels, *, colors=COLORS):
    """One violin per column of ``data`` (shape ``(n, k)``, e.g. layers by stages), coloured per column."""
    data = np.asarray(data, dtype=float)
    parts = ax.violinplot([column[np.isfinite(column)] for column in data.T])
    for body, color in zip(parts["bodies"], colors):
        body.set_facecolor(color)
        body.set_alpha(0.7)
    for key in ("cbars", "cmins", "cmaxes"):
        parts[key].set_edgecolor("k")
    ax.set_xticks(range(1, data.shape[1] + 1), labels)


def layer_scatter(ax, x, y, *, marker="o", cmap="plasma", n_layers=None, label=None):
    """Scatter of ``y`` against ``x`` (shape ``(n_layers,)``), each point coloured by its layer."""
    n_layers = len(x) if n_layers is None else n_layers
    ax.scatter(x, y, 70, marker=marker, c=np.arange(len(x)), cmap=cmap, vmin=0, vmax=max(n_layers - 1, 1),
               edgecolor="k", linewidth=0.5, alpha=0.8, label=label)


def layer_colorbar(ax, n_layers: int, cmap="plasma"):
    """A colour bar beside ``ax`` mapping colour to layer index (for :func:`layer_scatter`)."""
    bar = ax.figure.colorbar(ScalarMappable(Normalize(0, max(n_layers - 1, 1)), cmap=cmap), ax=ax, pad=0.01)
    bar.set_label("Layer", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return bar


def marker_legend(ax, labels, *, colors=COLORS, markers=MARKERS, **kwargs):
    """A legend with one line-and-marker entry per label (profiles whose lines carry no label)."""
    handles = [Line2D([], [], color=c, marker=m, markersize=6, linewidth=0.8)
               for _, c, m in zip(labels, colors, markers)]
    ax.legend(handles, labels, **kwargs)
