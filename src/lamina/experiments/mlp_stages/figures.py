"""Figures of ``mlp-stages``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ...plots.matrices import matrix_image
from ...plots.profiles import layer_profile, interval_band
from ...plots.stages import (COLORS, MARKERS, bars_with_ci, density_curve, layer_colorbar, layer_scatter,
                             marker_legend, violins)
from ...stats.ranges import central_range
from ...stats.similarity import cosine_matrix, upper
from .. import settings as shared
from ..base import Figure
from ..settings import setting
from .result import CI_LEVEL, PAIR_NAMES, SET_TITLES, SETS, SITES, STAGES, MlpStagesResult


@dataclass
class MlpStagesOptions:
    # percent of values inside histogram x-ranges and stage-vs-stage colour limits
    coverage: float = setting(99.0, gt=0, le=100)
    density_bins: int | None = shared.bins(None)  # bins of the density curves; None: Freedman–Diaconis (at most 400)


def figures(result: MlpStagesResult, config, options: MlpStagesOptions) -> dict[str, Figure]:
    focus, kind = result.focus_layer, result.kind_sentence()
    bins = options.density_bins or "fd"
    acts = {w: getattr(result.items, w) for w in SETS}
    matrices = {w: np.stack([cosine_matrix(acts[w].stage(s)) for s in STAGES]) for w in SETS}  # (4, n, n)
    out = {}
    fig, axes = figure(2, size=(12, 4))
    values = {w: [acts[w].stage(s) for s in STAGES] for w in SETS}
    xlim = central_range(values["one"] + values["many"], options.coverage)
    for ax, which, letter in zip(axes, SETS, "AB"):
        for i, s in enumerate(STAGES):
            density_curve(ax, values[which][i], label=f"L{focus} {SITES[s]}", color=COLORS[i], bins=bins)
        ax.set(xlabel="Activation value", ylabel="Density", xlim=xlim, title=f"{letter}) {SET_TITLES[which]}")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    out["activation_histograms"] = Figure(fig, f"Distribution of activation values at layer {focus}, per MLP "
                                               f"stage, for the one-sequence (A) and many-sequence (B) items. {kind}")
    fig, axes = figure(4, 2, size=(14, 7))
    for row, which in enumerate(SETS):
        axis_label = "Tokens" if which == "one" else "Occurrences"
        for i, s in enumerate(STAGES):
            matrix_image(axes[row, i], matrices[which][i])
            axes[row, i].set(xticks=[], yticks=[], xlabel=axis_label, ylabel=axis_label,
                             title=f"{SET_TITLES[which]}: L{focus} {SITES[s]}")
    out["cosine_matrices"] = Figure(fig, f"Cosine similarity between items at layer {focus}, per stage: different "
                                         "tokens of one sequence (top, in text order) and the target word in "
                                         "different short sequences (bottom, in text order).")
    fig, axes = figure(2, size=(12, 3.8))
    for ax, which, letter in zip(axes, SETS, "AB"):
        for i, s in enumerate(STAGES):
            density_curve(ax, upper(matrices[which][i]), label=f"L{focus} {SITES[s]}", color=COLORS[i], bins=bins)
        ax.set(xlabel="Cosine similarity", ylabel="Density", title=f"{letter}) {SET_TITLES[which]}")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    out["cosine_distributions"] = Figure(fig, f"Distribution of the pairwise cosine similarities (upper "
                                              f"triangles) at layer {focus}, per stage.")
    out["stage_vs_stage"] = _stage_vs_stage(acts, focus, kind, options.coverage, bins)
    out["rsa_focus"] = _rsa_focus(result)
    out["dimensionality_focus"] = _dimensionality_focus(result)
    out["laminar_profiles"] = _profiles(result)
    fig, axes = figure(4, size=(13, 3.3))
    titles = ["A) One-seq part. ratio", "B) One-seq eff. dim.", "C) Many-seq part. ratio", "D) Many-seq eff. dim."]
    for ax, (which, metric), title in zip(axes, [(w, m) for w in SETS for m in ("pr", "effdim")], titles):
        violins(ax, result.dims(metric, which), list(STAGES))
        ax.set(title=title, ylabel="Participation ratio" if metric == "pr" else "Effective dim.", xlabel="Stage")
    out["dimensionality_violins"] = Figure(fig, f"Participation ratio and effective dimensionality over all "
                                                f"{len(result.layers)} layers, per stage (in, pre, post, out = "
                                                "mlp.in, mlp.pre, mlp.post, mlp.raw).")
    return out


def _stage_vs_stage(acts, focus, kind, coverage, bins) -> Figure:
    fig, axes = figure(3, 2, size=(12, 7.5))
    for row, which in enumerate(SETS):
        X = acts[which]
        in_out = cosine_matrix(X.stage("in"), X.stage("out"))
        pre_post = cosine_matrix(X.stage("pre"), X.stage("post"))
        for ax, matrix, (a, b), letter in zip(axes[row], (in_out, pre_post), (("in", "out"), ("pre", "post")),
                                              "AB" if row == 0 else "DE"):
            low, high = central_range([matrix], coverage, symmetric=True)
            matrix_image(ax, matrix, vmin=low, vmax=high, cmap="plasma")
            ax.set(xticks=[], yticks=[], xlabel=f"Items ({SITES[b]})", ylabel=f"Items ({SITES[a]})",
                   title=f"{letter}) {SET_TITLES[which]}: {SITES[a]} vs {SITES[b]}")
        ax = axes[row, 2]
        density_curve(ax, in_out, label="mlp.in vs mlp.raw", color=COLORS[0], bins=bins)
        density_curve(ax, pre_post, label="mlp.pre vs mlp.post", color=COLORS[1], bins=bins)
        ax.set(xlabel="Cosine similarity", ylabel="Density", title=f"{'CF'[row]}) Distributions")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    return Figure(fig, f"Cosine similarity between the items at two stages, layer {focus}: mlp.in vs mlp.raw (both "
                       "d_model wide) and mlp.pre vs mlp.post (both d_mlp wide); the diagonal pairs an item with "
                       f"itself. Colour limits cover the central {coverage:g}% of values. {kind}")


def _rsa_focus(result: MlpStagesResult) -> Figure:
    focus = result.focus_layer
    fig, (a, b) = figure(2, size=(12, 3.8))
    rsa = {w: result.rsa(w)[focus] for w in SETS}
    ci = {w: result.ci(w)[:, focus] for w in SETS}
    values = np.stack([rsa["one"], rsa["many"]], axis=1)
    low = np.stack([ci["one"][0], ci["many"][0]], axis=1)
    high = np.stack([ci["one"][1], ci["many"][1]], axis=1)
    bars_with_ci(a, values, low, high, PAIR_NAMES, [SET_TITLES[w] for w in SETS])
    a.set(xlabel="Stage pair", ylabel="RSA score", ylim=(min(0.0, float(np.nanmin(low)) - 0.05), 1.0),
          title=f"A) RSA at layer {focus}")
    a.legend(fontsize=8, loc="lower left")
    diff = rsa["one"] - rsa["many"]
    dlo, dhi = result.ci("diff")[:, focus]
    b.axhline(0, color="k", linewidth=0.8, linestyle="--")
    b.errorbar(np.arange(6), diff, yerr=np.clip(np.vstack([diff - dlo, dhi - diff]), 0, None), fmt="o",
               color="k", markerfacecolor="tab:green", markersize=8, capsize=4)
    b.set(xticks=range(6), xticklabels=PAIR_NAMES, xlabel="Stage pair", ylabel="RSA one − many",
          title="B) Difference")
    return Figure(fig, f"RSA between the cosine matrices of two MLP stages at layer {focus} (A), with "
                       f"{CI_LEVEL:.0f}% bootstrap intervals (blocks of tokens for one sequence, items for many), "
                       "and the one-sequence minus many-sequence difference with its (uncorrected) interval (B): "
                       "where it excludes the dashed zero line, the two designs differ at this layer. in, pre, "
                       "post, out = mlp.in, mlp.pre, mlp.post, mlp.raw.")


def _dimensionality_focus(result: MlpStagesResult) -> Figure:
    focus, labels = result.focus_layer, [SITES[s] for s in STAGES]
    fig, axes = figure(3, 2, size=(12, 6))
    for row, which in enumerate(SETS):
        pr, ed = result.dims("pr", which)[focus], result.dims("effdim", which)[focus]
        axes[row, 0].bar(range(4), pr, color=COLORS[:4])
        axes[row, 1].bar(range(4), ed, color=COLORS[:4])
        for i in range(4):
            axes[row, 2].plot(pr[i], ed[i], MARKERS[i], color=COLORS[i], markersize=10, label=labels[i],
                              markeredgecolor="k")
        letters = "ABC" if row == 0 else "DEF"
        axes[row, 0].set(xticks=range(4), xticklabels=labels, ylabel="PR",
                         title=f"{letters[0]}) {SET_TITLES[which]}: participation ratio")
        axes[row, 1].set(xticks=range(4), xticklabels=labels, ylabel="Eff. dim.",
                         title=f"{letters[1]}) {SET_TITLES[which]}: effective dim.")
        axes[row, 2].set(xlabel="Participation ratio", ylabel="Effective dim.", title=f"{letters[2]}) Comparison")
        axes[row, 2].legend(fontsize=8)
    fig.suptitle(f"Dimensionality at layer {focus}", fontweight="bold")
    return Figure(fig, f"Participation ratio and effective dimensionality (components for the variance threshold; "
                       f"the seed's value + 1) of the items at layer {focus}, per stage.")


def _band(ax, result, metric, index, color):
    """The across-replicate band (mean's t interval) of ``metric`` at stage or pair ``index``, if any."""
    if result.replicates > 1:
        interval_band(ax, result.across(metric, "ci_low")[:, index], result.across(metric, "ci_high")[:, index],
                       color=color)


def _profiles(result: MlpStagesResult) -> Figure:
    labels, n_layers = [SITES[s] for s in STAGES], len(result.layers)
    pr, effdim = {w: result.dims("pr", w) for w in SETS}, {w: result.dims("effdim", w) for w in SETS}
    rsa, differs = {w: result.rsa(w) for w in SETS}, result.differs()
    many = result.replicates > 1
    fig, axes = figure(3, 3, size=(14, 10))
    layers = np.arange(n_layers)
    for row, which in enumerate(SETS):
        for i in range(4):
            _band(axes[row, 0], result, f"pr_{which}", i, COLORS[i])
            _band(axes[row, 1], result, f"effdim_{which}", i, COLORS[i])
            layer_profile(axes[row, 0], pr[which][:, i], color=COLORS[i], marker=MARKERS[i])
            layer_profile(axes[row, 1], effdim[which][:, i], color=COLORS[i], marker=MARKERS[i])
        lo, hi = result.ci(which)
        for j in range(len(PAIR_NAMES)):
            if many:
                _band(axes[row, 2], result, f"rsa_{which}", j, COLORS[j])
            else:
                axes[row, 2].fill_between(layers, lo[:, j], hi[:, j], color=COLORS[j], alpha=0.15, linewidth=0)
            layer_profile(axes[row, 2], rsa[which][:, j], significant=differs[:, j], color=COLORS[j],
                          marker=MARKERS[j])
        letters = "ABC" if row == 0 else "DEF"
        axes[row, 0].set(ylabel="Participation ratio", title=f"{letters[0]}) {SET_TITLES[which]} (part. ratio)")
        axes[row, 1].set(ylabel="Effective dim.", title=f"{letters[1]}) {SET_TITLES[which]} (eff. dim.)")
        axes[row, 2].set(ylabel="RSA score", title=f"{letters[2]}) {SET_TITLES[which]} (RSA)")
        for col, names in enumerate((labels, labels, PAIR_NAMES)):
            marker_legend(axes[row, col], names, fontsize=7, ncol=2)
    for col, which in enumerate(SETS):
        ax = axes[2, col]
        for i in range(4):
            layer_scatter(ax, pr[which][:, i], effdim[which][:, i], marker=MARKERS[i], n_layers=n_layers,
                          label=labels[i])
        r = np.corrcoef(pr[which].ravel(), effdim[which].ravel())[0, 1]
        ax.set(xlabel="Participation ratio", ylabel="Effective dim.",
               title=f"{'GH'[col]}) {SET_TITLES[which]}: comparison (r = {r:.2f})")
        layer_colorbar(ax, n_layers)
    ax = axes[2, 2]
    for j, p in enumerate(PAIR_NAMES):
        layer_scatter(ax, rsa["one"][:, j], rsa["many"][:, j], marker=MARKERS[j], n_layers=n_layers, label=p)
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), 1.0]
    ax.plot(lims, lims, "k--", linewidth=0.6)
    ax.set(xlabel="RSA, one sequence", ylabel="RSA, many sequences", xlim=lims, ylim=lims, title="I) RSA comparison")
    layer_colorbar(ax, n_layers)
    band = (f"bands: the {result.replicates} replicates' mean with its {CI_LEVEL:.0f}% t interval, at "
            f"{result.n_per_replicate} items per set (participation ratio and effective dimensionality grow with "
            "the number of items, so their bands lie below the pooled lines)" if many else
            f"RSA with its {CI_LEVEL:.0f}% bootstrap band")
    return Figure(fig, ("Laminar profiles. Rows 1-2: participation ratio, effective dimensionality and RSA per layer "
                        f"for each set, all items pooled; {band}; filled RSA markers where one and many sequences "
                        "differ (bootstrap test of one − many, Benjamini–Hochberg over every layer × pair), hollow "
                        "where not. Row 3: the two dimensionality measures against each other and RSA of one vs "
                        "many sequences, coloured by layer (markers: stage or pair as in the legends above)."))
