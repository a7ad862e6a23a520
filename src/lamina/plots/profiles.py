"""Laminar profiles: one value per layer, significant layers marked."""

from __future__ import annotations

import numpy as np


def layer_profile(ax, values, *, significant=None, label=None, color="C0", marker="o", layers=None):
    """Plot ``values`` (shape ``(n_layers,)``) against layer, filled markers where ``significant``.

    Non-significant layers get hollow markers, so a reader sees which layers pass the test.
    """
    values = np.asarray(values, dtype=float)
    layers = np.arange(len(values)) if layers is None else np.asarray(layers)
    ax.plot(layers, values, color=color, linewidth=0.8, label=label)
    sig = np.ones(len(values), bool) if significant is None else np.asarray(significant, bool)
    ax.plot(layers[sig], values[sig], marker, color=color, markersize=8, linestyle="none")
    ax.plot(layers[~sig], values[~sig], marker, color=color, markerfacecolor="white", markersize=7,
            linestyle="none")
    ax.set_xlabel("Layer")


def null_range(ax, null_min, null_max, null_mean, *, layers=None):
    """Vertical lines for each layer's permutation-null range with its mean as a square."""
    null_mean = np.asarray(null_mean, dtype=float)
    layers = np.arange(len(null_mean)) if layers is None else np.asarray(layers)
    ax.vlines(layers, null_min, null_max, color="k", linewidth=0.5)
    ax.plot(layers, null_mean, "ks", markersize=3, label="null mean and range")


def replicate_band(ax, mean, low, high, *, replicates=None, significant=None, label=None, color="C0", marker="o",
                   level: float = 95.0, layers=None):
    """The across-replicate profile: each replicate's values as thin lines, the mean across replicates with
    its interval as a shaded band, filled markers where ``significant``.

    Args:
        mean, low, high: shape ``(n_layers,)``: the mean across replicates and its interval.
        replicates: shape ``(R, n_layers)`` or None: one faint line per replicate.
        significant: shape ``(n_layers,)`` bool, the across-replicate test's decision.
        level: the interval's level, for the legend.
    """
    mean = np.asarray(mean, dtype=float)
    layers = np.arange(len(mean)) if layers is None else np.asarray(layers)
    if replicates is not None:
        for row in np.atleast_2d(np.asarray(replicates, dtype=float)):
            ax.plot(layers, row, color=color, linewidth=0.5, alpha=0.3)
    ax.fill_between(layers, low, high, color=color, alpha=0.2, linewidth=0, label=f"{level:g}% interval")
    layer_profile(ax, mean, significant=significant, label=label, color=color, marker=marker, layers=layers)


def interval_band(ax, low, high, *, color="C0", label=None, layers=None, alpha: float = 0.15):
    """The across-replicate band per layer: the replicates' mean's interval, ``low..high`` (each ``(n_layers,)``)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    layers = np.arange(len(low)) if layers is None else np.asarray(layers)
    ax.fill_between(layers, low, high, color=color, alpha=alpha, linewidth=0, label=label)
