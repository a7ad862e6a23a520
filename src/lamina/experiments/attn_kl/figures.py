"""Figures of ``attn-kl``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import LaminaError
from ...plots import figure
from ...plots.histograms import binary_strip, density_by_group, null_histogram, probability_lines, signed_profile
from ...plots.profiles import layer_profile, null_range
from ...stats.divergence import js_divergence, js_noise_floor
from ..base import Figure
from .compute import CORRECTION_NAMES
from .result import AttnKLResult


@dataclass
class AttnKLOptions:
    null_bins: int | None = None  # bins of the focus layer's null histogram; None: Freedman–Diaconis

    def check(self):
        if self.null_bins is not None and self.null_bins < 1:
            raise LaminaError(f"null_bins must be at least 1 (or none), not {self.null_bins}.")


def figures(result: AttnKLResult, config, options: AttnKLOptions) -> dict[str, Figure]:
    t, focus = result.tokens, result.focus_layer
    correct = t.correct
    rng = np.random.default_rng(0)  # jitter only: a fixed seed redraws the same figure
    out = {}
    fig, ax = figure(1, size=(10, 3))
    binary_strip(ax, correct, rng)
    ax.set(xlabel="Token position in the window",
           title=f"Accuracy by token position ({100 * correct.mean():.1f}% correct)")
    out["accuracy_by_position"] = Figure(fig, "Each token's prediction (argmax of the logits = next token), "
                                              "jittered vertically.")
    fig, ax = figure(1, size=(10, 3))
    density_by_group(ax, t.next_token_length.astype(float), correct, unit=" chars", integer=True)
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
    a.set(xlabel="Number of histogram bins", ylabel="JS divergence (nats)", title="A) True JS divergence")
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


def _profile(result: AttnKLResult) -> Figure:
    sig = result.column("significant")
    mean_correct, mean_incorrect = result.column("mean_log_norm_correct"), result.column("mean_log_norm_incorrect")
    fig, (a, b, c) = figure(3, size=(15, 4))
    layer_profile(a, mean_incorrect, label="Incorrect", color="tab:red", marker="h")
    layer_profile(a, mean_correct, label="Correct", color="tab:blue", marker="s")
    a.legend(fontsize=9)
    a.set(ylabel="Mean log norm", title="A) Distribution means")
    null_range(b, result.column("null_min"), result.column("null_max"), result.column("null_mean"))
    layer_profile(b, result.column("js"), significant=sig, label="observed (filled: significant)",
                  color="tab:green", marker="h")
    b.legend(fontsize=8)
    b.set(ylabel="JS divergence (nats)", title="B) Observed JS with $H_0$ range")
    signed_profile(c, result.column("difference"), sig)
    c.set(ylabel="Correct − incorrect", title="C) Difference of means")
    which = CORRECTION_NAMES[result.correction]
    return Figure(fig, f"Per layer: mean log norm by group (A); observed JS divergence against the permutation "
                       f"null's range and mean (B); difference of means (C), blue above zero, red below. Filled or "
                       f"large markers: {which} corrected p < {result.alpha}.")
