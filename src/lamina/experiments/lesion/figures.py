"""Figures of ``lesion``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ...plots.profiles import replicate_band
from ..base import Figure
from .result import LesionResult

COLORS = {"attn.out": "C0", "mlp.out": "C3"}


@dataclass
class LesionOptions:
    show_windows: bool = True  # each window's profile as a faint line behind the mean
    accuracy_percent: bool = True  # Δ accuracy in percentage points (else as a fraction)


def figures(result: LesionResult, config, options: LesionOptions) -> dict[str, Figure]:
    w, scale = result.windows, (100.0 if options.accuracy_percent else 1.0)
    fig, (a, b) = figure(2, size=(13, 4.5))
    for s, site in enumerate(result.sites):
        color = COLORS.get(site.site, f"C{s}")
        for ax, metric, k in ((a, "delta_loss", 1.0), (b, "delta_accuracy", scale)):
            est = getattr(site, metric)
            reps = getattr(w, metric)[s].T * k if options.show_windows else None
            replicate_band(ax, est.mean * k, est.ci_low * k, est.ci_high * k, replicates=reps,
                           significant=est.significant, label=site.site, color=color, level=result.level)
    for ax in (a, b):
        ax.axhline(0, color="k", linewidth=0.6, linestyle="--")
        ax.legend(fontsize=8)
    unit = "percentage points" if options.accuracy_percent else "fraction"
    a.set(ylabel="Δ mean loss (nats)", title=f"A) Δ loss when one layer's output is {result.ablation}-ablated")
    b.set(ylabel=f"Δ accuracy ({unit})", title="B) Δ top-1 accuracy")
    corr = "sign-flip max-|t|" if result.correction == "max" else "Holm"
    out = {"lesion_profile": Figure(fig, (
        f"The laminar lesion profile: edited − clean mean loss (A) and accuracy (B) when the site at one layer is "
        f"{result.ablation}-ablated, mean over {result.n_replicates} windows of {result.window} tokens with its "
        f"{result.level:g}% t interval shaded (windows as the unit){'; faint lines: each window' if options.show_windows else ''}. "
        f"Filled markers: significant family-wise across layers ({corr}, α = {result.alpha})."))}
    split = [site for site in result.sites if site.split is not None]
    fig, axes = figure(max(1, len(result.sites)), size=(6.5 * max(1, len(result.sites)), 4.5))
    axes = np.atleast_1d(axes)
    for ax, site in zip(axes, result.sites):
        layers = np.arange(len(site.delta_loss.mean))
        ax.plot(layers, site.delta_loss_correct, "o-", color="tab:green", markersize=4, label="correct tokens")
        ax.plot(layers, site.delta_loss_incorrect, "s-", color="tab:red", markersize=4, label="incorrect tokens")
        if site.split is not None:
            replicate_band(ax, site.split.mean, site.split.ci_low, site.split.ci_high,
                           significant=site.split.significant, label="correct − incorrect", color="k",
                           level=result.level)
        ax.axhline(0, color="k", linewidth=0.6, linestyle="--")
        ax.set(ylabel="Δ mean loss (nats)", title=f"{site.site}: Δ loss by the clean model's prediction")
        ax.legend(fontsize=8)
    n = split[0].n_split_windows if split else 0
    text = (f"Δ loss (edited − clean) on the tokens the clean model predicts correctly (green) and incorrectly (red), "
            f"mean over the {n} windows holding both; black: their difference per window, mean with its "
            f"{result.level:g}% t interval, filled where significant family-wise ({corr})." if split else
            "Δ loss on correct and incorrect tokens: fewer than 2 windows hold both, so the difference is not tested.")
    out["correct_incorrect"] = Figure(fig, text)
    return out
