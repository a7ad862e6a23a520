"""Figures of ``trace``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass


from ...plots import figure
from ...plots.matrices import matrix_image
from ...plots.profiles import interval_band, layer_profile
from ..base import Figure
from ..presentation import colormap
from .result import TraceResult

COLOURS = {"hidden": "Purples", "attn.out": "Reds", "mlp.out": "Greens"}


@dataclass
class TraceOptions:
    # heatmap colours; None: purple (hidden), red (attn.out), green (mlp.out) as Meng et al.
    colormap: str | None = colormap(None)


def figures(result: TraceResult, config, options: TraceOptions) -> dict[str, Figure]:
    out = {}
    for site, trace in result.sites.items():
        fig, (heat, line) = figure(2, size=(13, 4.2))
        matrix_image(heat, trace.mean, cmap=options.colormap or COLOURS[site], label="normalised indirect effect")
        heat.set(yticks=range(len(result.classes)), yticklabels=[f"{c} (n={n})" for c, n in
                                                                 zip(result.classes, trace.n)],
                 xlabel="Layer" if site != "hidden" else "hidden entry (0: embeddings)",
                 title=f"A) Restoring {site}" + (f", window {trace.window}" if trace.window > 1 else ""))
        for name, colour, marker in (("last subject", "C3", "s"), ("last", "C0", "o")):
            c = result.classes.index(name)
            interval_band(line, trace.ci_low[c], trace.ci_high[c], color=colour)
            layer_profile(line, trace.mean[c], color=colour, marker=marker, label=f"{name} token")
        line.axhline(0, color="gray", linewidth=0.8)
        line.legend(fontsize=8)
        line.set(xlabel="Layer", ylabel="Normalised indirect effect", title="B) Two rows of A, 95% t intervals")
        caption = (f"Causal tracing of {site} on {result.n_prompts} prompts: (restored − corrupted) / (clean − "
                   f"corrupted) p(answer) per prompt ({result.samples} noise samples of SD {result.noise:g}× the "
                   "embeddings' SD on the subject tokens), mean over prompts per position class (A) and, for the last "
                   "subject token and the last token, with pointwise 95% t intervals over prompts (B; each holds for "
                   "its own layer, not for a layer picked from the plot). 0: the restoration brings nothing back; 1: "
                   "all of the clean probability.")
        out[f"trace_{site.replace('.', '_')}"] = Figure(fig, caption)
    return out
