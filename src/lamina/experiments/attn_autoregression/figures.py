"""Figures of ``attn-autoregression``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib as mpl
import numpy as np

from ...plots import figure
from ...plots.profiles import layer_profile, interval_band
from .. import settings as shared
from ..base import Figure
from ..presentation import colormap
from .result import AutoregressionResult


@dataclass
class AutoregressionOptions:
    # bins of the log-norm histograms; None: Freedman–Diaconis per layer
    histogram_bins: int | None = shared.bins(None)
    colormap: str = colormap("plasma")  # colour of each layer in the log-norm figure


def figures(result: AutoregressionResult, config, options: AutoregressionOptions) -> dict[str, Figure]:
    norms, alpha = result.norms.log_norms, result.alpha
    n_layers = norms.shape[0]
    later = np.r_[False, np.diff(result.norms.passage) == 0]  # every token but each passage's first
    rng = np.random.default_rng(0)  # jitter only: a fixed seed redraws the same figure
    colors = mpl.colormaps[options.colormap](np.arange(n_layers) / n_layers)
    fig, (a, b) = figure(2, size=(13, 4.5))
    for layer in range(n_layers):
        values = norms[layer, later]  # the first token's update is of another kind (seed 002 drops it)
        a.plot(rng.normal(layer, 0.08, len(values)), values, "h", color=colors[layer], markersize=5, alpha=0.4)
        counts, edges = np.histogram(values, bins=options.histogram_bins or "fd")
        b.plot(edges[:-1], counts, "s-", color=colors[layer], markersize=3, linewidth=1)
    step = max(1, n_layers // 15)
    a.set(xticks=range(0, n_layers, step), xlabel="Layer", ylabel="Attention norm (log)",
          title="A) Attention-output log norms")
    b.set(xlabel="Attention norm (log)", ylabel="Count", title="B) Distributions (colour = layer)")
    out = {"log_norms": Figure(fig, "Log norm of every token's attention output per layer (first token of each "
                                    "passage excluded), as points (A) and histograms (B).")}
    fig, ax = figure(1, size=(11, 4))
    layers = np.arange(n_layers)
    for lag, color, marker in (("t1", "C3", "s"), ("t2", "C0", "o")):
        # the headline: beyond position, bias-corrected, passages' mean with its 95% interval
        interval_band(ax, result.adjusted_column(lag, "ci_low"), result.adjusted_column(lag, "ci_high"), color=color)
        sig = np.array([getattr(layer, lag).significant for layer in result.adjusted])
        layer_profile(ax, result.adjusted_column(lag), significant=sig, color=color, marker=marker,
                      label=f"t-{lag[1]} beyond position")
    ax.plot(layers, result.adjusted_column("shuffled_t1"), "s--", color="C3", markerfacecolor="none", markersize=5,
            linewidth=1, label="t-1, tokens shuffled")
    ax.plot(layers, result.column("beta_t1"), ":", color="gray", linewidth=1.2,
            label="t-1, seed's fit (no position terms)")
    constant = list(result.constant_layers)
    if constant:
        ax.plot(constant, np.zeros(len(constant)), "x", color="k", linestyle="none", label="constant: not tested")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.legend(fontsize=8)
    ax.set(xlabel="Layer", ylabel="Beta", title="Predicting a token's update from the previous tokens' updates, "
                                                "beyond the trend over position")
    unit = (f"the mean of the {result.replicates} passages' bias-corrected betas with its 95% t interval"
            if result.replicates > 1 else "the passage's bias-corrected betas with their 95% t intervals")
    caption = (f"Betas of y[t-1] and y[t-2] with position terms (log t, 1/t) in each passage's fit: {unit}. Filled "
               f"markers: p ≤ {alpha} family-wise over layers; hollow: not. Dashed: t-1 for the same passages with "
               "their tokens shuffled; dotted: the seed's fit without position terms.")
    if constant:
        caption += " Crosses: layers constant to float32 precision, not tested."
    out["betas"] = Figure(fig, caption)
    return out
