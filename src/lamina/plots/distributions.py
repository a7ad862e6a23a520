"""Distributions: group means with individual points, density curves per group."""

from __future__ import annotations

import numpy as np


def means_with_points(ax, values: np.ndarray, rng: np.random.Generator, *, jitter: float = 0.03):
    """Bar of each column's mean with every value jittered on top.

    Args:
        values: shape ``(n, k)``: n observations of k groups (e.g. losses by position).
    """
    k = values.shape[1]
    ax.bar(range(k), np.nanmean(values, axis=0), color=[0.7, 0.7, 0.9], edgecolor="k", linewidth=0.5)
    xs = np.tile(np.arange(k), (values.shape[0], 1)) + rng.normal(0, jitter, values.shape)
    ax.plot(xs.ravel(), values.ravel(), "ko", markerfacecolor=[0.9, 0.7, 0.7, 0.5], markersize=4, alpha=0.6)
    ax.set_xticks(range(k))


def density_lines(ax, values: np.ndarray, labels, *, bins=10):
    """One density curve (``np.histogram(density=True)``, left bin edges) per column of ``values``."""
    for column, label in zip(values.T, labels):
        column = column[np.isfinite(column)]
        density, edges = np.histogram(column, bins=bins, density=True)
        ax.plot(edges[:-1], density, linewidth=2, label=label)
    ax.legend(fontsize=8)
