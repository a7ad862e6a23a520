"""Profiles on relative depth: several models on one axis from 0 (embeddings) to 1 (last block).

A trained model is a solid line with filled markers; its untrained control the same colour,
dashed, hollow markers. Where a profile has an interval its band is shaded (lighter for a control).
"""

from __future__ import annotations

import numpy as np


def depth_profile(ax, depth, value, low=None, high=None, *, label=None, color="C0", control=False,
                  exits=None):
    """Draw one profile against relative depth.

    Args:
        ax: the axes.
        depth, value: shape ``(n_layers,)``: relative depths (0..1) and the metric.
        low, high: the interval per layer (shape ``(n_layers,)``, NaN where none); shaded where finite.
        label: legend entry; color: line colour; control: dashed line and hollow markers.
        exits: optional boolean mask ``(n_layers,)``: layers where this (trained) profile leaves its
            controls' band, ringed in black.
    """
    depth, value = np.asarray(depth, dtype=float), np.asarray(value, dtype=float)
    style = dict(linestyle="--", linewidth=1.0, marker="o", markersize=3.5, markerfacecolor="white") if control \
        else dict(linestyle="-", linewidth=1.4, marker="o", markersize=3.5)
    ax.plot(depth, value, color=color, label=label, **style)
    if low is not None and high is not None:
        low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        where = np.isfinite(low) & np.isfinite(high)
        if where.any():
            ax.fill_between(depth, np.where(where, low, np.nan), np.where(where, high, np.nan), color=color,
                            alpha=0.12 if control else 0.25, linewidth=0, hatch="///" if control else None)
    if exits is not None:
        exits = np.asarray(exits, dtype=bool)
        ax.plot(depth[exits], value[exits], "o", markersize=7, markerfacecolor="none", markeredgecolor="k",
                markeredgewidth=0.8, linestyle="none")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("relative depth")


def difference_profile(ax, grid, difference, low, high, *, label=None, color="C0"):
    """Draw a difference of profiles (shape ``(G,)``) on its grid with its interval and the zero line;
    points whose interval excludes 0 get filled markers, the others hollow ones."""
    grid, difference = np.asarray(grid, dtype=float), np.asarray(difference, dtype=float)
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    ax.axhline(0, color="0.4", linewidth=0.6)
    ax.plot(grid, difference, color=color, linewidth=1.4, label=label)
    ax.fill_between(grid, low, high, color=color, alpha=0.25, linewidth=0)
    excludes = (low > 0) | (high < 0)
    ax.plot(grid[excludes], difference[excludes], "o", color=color, markersize=3.5, linestyle="none")
    ax.plot(grid[~excludes], difference[~excludes], "o", color=color, markersize=3.5, markerfacecolor="white",
            linestyle="none")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("relative depth")
