"""Figures of ``attn-autoregression``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib as mpl
import numpy as np

from ...errors import LaminaError
from ...plots import figure
from ...plots.profiles import layer_profile, interval_band
from ...stats.multiple import significant
from ..across import column
from ..base import Figure
from .result import AutoregressionResult


@dataclass
class AutoregressionOptions:
    histogram_bins: int | None = None  # bins of the log-norm histograms; None: Freedman–Diaconis per layer
    colormap: str = "plasma"  # colour of each layer in the log-norm figure

    def check(self):
        if self.histogram_bins is not None and self.histogram_bins < 1:
            raise LaminaError(f"histogram_bins must be at least 1 (or none), not {self.histogram_bins}.")
        if self.colormap not in mpl.colormaps:
            raise LaminaError(f"colormap {self.colormap!r} is not a matplotlib colormap (e.g. plasma, viridis).")


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
    many = result.replicates > 1
    for lag, color, marker in (("t1", "C3", "s"), ("t2", "C0", "o")):
        beta = result.column(f"beta_{lag}")
        if many:  # the passages' mean and its t interval: the across-passage band
            entries = [getattr(layer.across, lag) for layer in result.layers]
            interval_band(ax, column(entries, "ci_low"), column(entries, "ci_high"), color=color)
        layer_profile(ax, beta, significant=significant(result.column(f"p_{lag}"), alpha), color=color,
                      marker=marker, label=f"t-{lag[1]}")
        bh = significant(result.column(f"p_{lag}_bh"), alpha)
        ax.plot(layers[bh], beta[bh], "o", markersize=14, markerfacecolor="none", markeredgecolor="k",
                linestyle="none")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.plot([], [], "o", markersize=12, markerfacecolor="none", markeredgecolor="k", label="significant after BH")
    ax.legend(fontsize=9)
    ax.set(ylabel="Beta", title="Predicting a token's update from the previous tokens' updates")
    caption = (f"Betas for t-1 and t-2 per layer{' (all passages pooled)' if many else ''}: filled markers "
               f"p ≤ {alpha}, hollow not; black rings mark layers that stay significant after Benjamini-Hochberg.")
    if many:
        caption += (f" Bands: the mean of the {result.replicates} passages' own betas with its 95% t interval "
                    "(passages as the unit).")
    out["betas"] = Figure(fig, caption)
    return out
