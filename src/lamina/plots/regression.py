"""Regression figures: jittered true-vs-predicted scatter, coefficient bars."""

from __future__ import annotations

import numpy as np


def jitter_scatter(ax, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, jitter: float = 0.03):
    """Scatter of ``y`` against ``x`` (both shape ``(n,)``) with Gaussian jitter on x."""
    ax.plot(x + rng.normal(0, jitter, x.shape), y, "ko", markerfacecolor=[0.7, 0.7, 0.9, 0.5], markersize=4,
            alpha=0.6)


def coefficient_bars(ax, values: np.ndarray, color):
    """Bars of ``values`` (shape ``(k,)``) with a dashed zero line."""
    ax.axhline(0, color="k", linestyle="--", linewidth=0.5)
    ax.bar(range(len(values)), values, color=color, edgecolor="k", linewidth=0.5)
    ax.set_xticks(range(len(values)))
