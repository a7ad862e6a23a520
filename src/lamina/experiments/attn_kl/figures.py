"""Figures of ``attn-kl``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ...plots.histograms import binary_strip, density_by_group, null_histogram, probability_lines, signed_profile
from ...plots.profiles import layer_profile, null_range, replicate_band
from ...stats.divergence import js_divergence, js_noise_floor
from .. import settings as shared
from ..base import Figure
from .result import CORRECTION_NAMES, SHUFFLES, AttnKLResult


@dataclass
class AttnKLOptions:
    null_bins: int | None = shared.bins(None)  # bins of the focus layer's null histogram; None: Freedman–Diaconis


def figures(result: AttnKLResult, config, options: AttnKLOptions) -> dict[str, Figure]:
    t, focus = result.tokens, result.focus_layer
    correct = t.correct
    rng = np.random.default_rng(0)  # jitter only: a fixed seed redraws the same figure
    out = {}
    fig, ax = figure(1, size=(10, 3))
    binary_strip(ax, correct, rng)
    bounds = np.flatnonzero(np.diff(t.replicate)) + 0.5
    for x in bounds:
        ax.axvline(x, color="0.6", linewidth=0.8, linestyle=":")
    many = result.n_replicates > 1
    skipped = np.flatnonzero(~t.used)
    for first, last in _runs(skipped):
        ax.axvspan(first - 0.5, last + 0.5, color="0.85", zorder=0, linewidth=0)
    ax.set(xlabel="Token (windows one after another)" if many else "Token position in the window",
           title=f"Accuracy by token position ({100 * correct.mean():.1f}% correct)")
    windows = (f" The {result.n_replicates} windows of {result.window} tokens follow each other (dotted lines): "
               "window 0 is the middle of the book, the others in book order." if many else "")
    skip = (f" Shaded: each window's first {result.skip_first} tokens, left out of both groups (skip_first)."
            if result.skip_first else "")
    out["accuracy_by_position"] = Figure(fig, "Each token's prediction (argmax of the logits = next token), "
                                              "jittered vertically." + windows + skip)
    correct = correct[t.used]
    fig, ax = figure(1, size=(10, 3))
    density_by_group(ax, t.next_token_length[t.used].astype(float), correct, unit=" chars", integer=True)
    ax.set(xlabel="Next-token length (characters)", ylabel="Density",
           title="Token length distributions by prediction accuracy")
    out["token_lengths"] = Figure(fig, "Length of the token to be predicted, for correct and incorrect "
                                       "predictions (density, one bin per character count; the seed's "
                                       "Freedman–Diaconis bins leave empty bins between whole numbers).")
    fig, ax = figure(1, size=(10, 4))
    probability_lines(ax, t.focus_edges, t.focus_probs)
    ax.set(xlabel="Log norm of the attention output", ylabel="Probability",
           title=f"Layer {focus}: JS = {float(js_divergence(*t.focus_probs)):.4f} nats, "
                 f"KL(C‖I) = {result.kl_correct_to_incorrect:.3f}, KL(I‖C) = {result.kl_incorrect_to_correct:.3f}")
    out["focus_histograms"] = Figure(fig, f"Layer {focus}: probability of each of {result.bins} log-norm bins "
                                          "for correct and incorrect predictions (bins span both groups).")
    bins = np.array([s.bins for s in result.bins_sweep])
    fig, (a, b) = figure(2, size=(12, 4))
    a.plot(bins, [s.js for s in result.bins_sweep], "kh", markersize=9, markerfacecolor=[0.7, 0.7, 0.9],
           label="observed")
    a.plot(bins, js_noise_floor(bins, correct.sum(), (~correct).sum()), "k--", linewidth=1,
           label="expected without any difference")
    a.legend(fontsize=9)
    a.set(xlabel="Number of histogram bins", ylabel="JS divergence (nats)", title="A) Plug-in JS divergence")
    b.plot(bins, [s.seed_symmetric_kl for s in result.bins_sweep], "ks", markersize=7,
           markerfacecolor=[0.9, 0.7, 0.7])
    b.set(xlabel="Number of histogram bins", ylabel="Seed's value", title="B) Seed's symmetric_KL (÷ bins)")
    out["bins_sweep"] = Figure(fig, f"Layer {focus}: the divergence against the number of bins. (A) The JS "
                                    "divergence of two histograms grows with the number of bins even when the "
                                    "groups do not differ: sampling noise adds about (bins − 1)/8 · (1/n_correct "
                                    "+ 1/n_incorrect) nats (dashed). Compare observed values with the permutation "
                                    "null at the same bins, not across bin counts. (B) The seed's value, divided "
                                    "by the number of bins and driven by the 1e-15 wherever a bin is empty.")
    fig, ax = figure(1, size=(10, 3))
    layer = result.layers[focus]
    null_histogram(ax, t.focus_null, layer.js, label="Observed JS", bins=options.null_bins or "fd")
    ax.set(xlabel="JS divergence (nats)", ylabel="Count",
           title=f"Layer {focus}: permutation test of the JS divergence (p = {layer.p_value:.3g})")
    out["focus_null"] = Figure(fig, f"Layer {focus}: JS divergence under {result.n_permutations} shuffles of "
                                    "the correct/incorrect labels, and the observed value.")
    out["laminar_profile"] = _profile(result)
    return out


def _runs(indices) -> list[tuple[int, int]]:
    """Consecutive runs of sorted integer ``indices`` as inclusive ``(first, last)`` pairs."""
    indices = np.asarray(indices, dtype=int)
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.r_[indices[0], indices[breaks + 1]]
    ends = np.r_[indices[breaks], indices[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


def _profile(result: AttnKLResult) -> Figure:
    sig, diff_sig = result.column("significant"), result.column("difference_significant")
    mean_correct, mean_incorrect = result.column("mean_log_norm_correct"), result.column("mean_log_norm_incorrect")
    a = result.across
    fig, axes = figure(3, 2 if a is not None else 1, size=(15, 8 if a is not None else 4))
    top = axes[0] if a is not None else axes
    layer_profile(top[0], mean_incorrect, label="Incorrect", color="tab:red", marker="h")
    layer_profile(top[0], mean_correct, label="Correct", color="tab:blue", marker="s")
    top[0].legend(fontsize=9)
    top[0].set(ylabel="Mean log norm", title="A) Distribution means")
    null_range(top[1], result.column("null_min"), result.column("null_max"), result.column("null_mean"))
    layer_profile(top[1], result.column("js"), significant=sig, label="observed (filled: significant)",
                  color="tab:green", marker="h")
    top[1].legend(fontsize=8)
    top[1].set(ylabel="JS divergence (nats)", title="B) Observed (plug-in) JS with $H_0$ range")
    top[2].vlines(np.arange(len(sig)), result.column("difference_ci_low"), result.column("difference_ci_high"),
                  color="0.5", linewidth=0.8)
    signed_profile(top[2], result.column("difference_within"), diff_sig)
    top[2].set(ylabel="Correct − incorrect", title="C) Difference of means (within strata)")
    which = CORRECTION_NAMES[result.correction]
    pooled = "all windows' tokens, labels shuffled " + SHUFFLES[result.shuffle]
    caption = (f"Per layer ({pooled}): mean log norm by group (A); observed plug-in JS divergence against the "
               f"permutation null's range and mean (B, the seed's panel: the null's mean is the plug-in bias, "
               f"which differs between layers), filled where the JS test's {which} corrected p <= "
               f"{result.alpha}; within-stratum difference of means (C) with its "
               f"{result.across.level if a else 95:g}% shift interval, blue above zero, red below, large where "
               f"the difference's own test (same shuffles, {which} corrected) has p <= {result.alpha}.")
    if a is not None:
        bottom = axes[1]
        excess = result.per_replicate("difference_within")
        bottom[0].axhline(0, linestyle="--", color="k", linewidth=0.5)
        replicate_band(bottom[0], a.difference.mean, a.difference.ci_low, a.difference.ci_high, replicates=excess,
                       significant=a.difference.significant, label="mean of windows", color="tab:purple",
                       marker="s", level=a.level)
        bottom[0].legend(fontsize=8)
        bottom[0].set(ylabel="Correct − incorrect", title=f"D) Difference of means across {a.n} windows")
        bottom[1].axhline(0, linestyle="--", color="k", linewidth=0.5)
        replicate_band(bottom[1], a.js.corrected_mean, a.js.corrected_ci_low, a.js.corrected_ci_high,
                       replicates=result.per_replicate("js_corrected"), significant=a.js.significant,
                       label="mean of windows", color="tab:green", marker="h", level=a.level)
        layer_profile(bottom[1], a.js.mean - a.js.mismatched, label="plug-in JS − mismatched-pairing mean",
                      color="0.4", marker=".")
        bottom[1].legend(fontsize=8)
        bottom[1].set(ylabel="JS − null mean (nats)", title=f"E) Bias-corrected JS across {a.n} windows")
        reps = result.replicates
        colours = ["tab:blue" if rep.agrees else "0.7" for rep in reps]
        bottom[2].bar([rep.replicate for rep in reps], [100 * rep.accuracy for rep in reps], color=colours)
        bottom[2].set(xlabel="Window", ylabel="Accuracy (%)", xticks=[rep.replicate for rep in reps],
                      title=f"F) Windows: {a.n_agree} of {a.n} agree with the pooled result")
        flips = "sign flips of whole windows, max |t|" if a.correction == "max" else which
        caption += (f" Across windows, the window as the unit: (D) each window's within-stratum difference "
                    f"(thin lines), their mean and {a.level:g}% t interval (band), filled where the "
                    f"t test across windows ({flips} corrected) has p <= {result.alpha}; (E) each window's "
                    f"bias-corrected JS (its JS minus the mean of its own label shuffles; thin lines), their mean "
                    f"and t interval, and the mean plug-in JS minus the mean JS of one window's log norms split "
                    f"by another window's labels (grey, the other correction), "
                    f"filled where the pairing test ({which} corrected) has p <= {result.alpha}; (F) each window's "
                    f"accuracy, blue where its difference has the pooled sign at more than half of the layers where "
                    f"the pooled difference is significant.")
    return Figure(fig, caption)
