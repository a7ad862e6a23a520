"""Figures of ``demo-norms``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.colors import is_color_like

from lamina import LaminaError
from lamina.experiments import Figure
from lamina.plots import figure
from lamina.plots.profiles import replicate_band

from .result import NormsResult


@dataclass
class NormsOptions:
    color: str = "C0"  # colour of the profile

    def check(self):
        if not is_color_like(self.color):
            raise LaminaError(f"color {self.color!r} is not a matplotlib colour (e.g. C0, tab:red, #336699).")


def figures(result: NormsResult, config, options: NormsOptions) -> dict[str, Figure]:
    fig, ax = figure(1, size=(6, 3.5))
    replicate_band(ax, result.column("mean"), result.column("ci_low"), result.column("ci_high"),
                   replicates=result.per_window, significant=[e.significant for e in result.entries],
                   label="mean over windows", color=options.color)
    ax.set(xlabel="Hidden entry (0 = embeddings)", ylabel="Mean log L2 norm", title="Residual-stream norm")
    ax.legend(fontsize=8)
    caption = (f"Mean log norm of the hidden state per entry over {result.replicates} windows of {result.window} "
               f"tokens (thin lines: each window), with its 95% t interval; filled: p ≤ {result.alpha} against 0 "
               "(Benjamini–Hochberg over entries).")
    return {"norms": Figure(fig, caption)}
