"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from .. import data, stimuli
from ..errors import LaminaError
from ..stats.norms import log_norms as stats_log_norms
from ..plots import figure
from ..plots.histograms import binary_strip, density_by_group, null_histogram, probability_lines, signed_profile
from ..plots.profiles import layer_profile, null_range
from ..record import record
from ..stats.divergence import (SEED_EPSILON, bin_edges, check_groups, group_histograms, js_divergence,
                                js_noise_floor, kl, probabilities, symmetric_kl_to_mixture, unsupported_bins)
from ..stats.multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue
from ..stats.permutation import js_permutation_null
from .base import Context, Experiment, Result

DEFAULT_WINDOW_CAP = 1024  # SmolLM2's context is 8192 tokens: the seed's "whole context" is slow on a CPU
CORRECTION_NAMES = {"max": "max-statistic", "bh": "Benjamini–Hochberg"}


@dataclass
class AttnKLConfig:
    book: str = "alice"  # a name in lamina.data.BOOKS, a Gutenberg id or a text file path
    window: int | None = None  # tokens from the middle of the book; None: min(context - BOS, 1024)
    focus_layer: int = 4  # the layer of the seed's single-layer figures (negative counts from the end)
    bins: int = 30  # histogram bins (the seed's torch.linspace(min, max, 31): 31 edges)
    bins_sweep: tuple[int, int] = (9, 49)  # bin counts swept, inclusive (the seed's nbins = 10..50 edges)
    n_permutations: int = 1000
    correction: str = "max"  # across layers: "max" (max-statistic, family-wise) or "bh" (Benjamini-Hochberg)
    alpha: float = 0.05

    def check(self):
        if self.window is not None and self.window < 2 * 2:
            raise LaminaError(f"window={self.window} is too short; two groups of at least 2 tokens need 4 or more.")
        if self.bins < 2:
            raise LaminaError(f"bins must be at least 2, not {self.bins}.")
        lo, hi = self.bins_sweep
        if not 1 <= lo <= hi:
            raise LaminaError(f"bins_sweep=({lo}, {hi}) needs 1 <= first <= last, e.g. --set bins_sweep=9,49.")
        if self.n_permutations < 1:
            raise LaminaError(f"n_permutations must be at least 1, not {self.n_permutations}.")
        if self.correction not in CORRECTION_NAMES:
            raise LaminaError(f"correction must be 'max' (max-statistic) or 'bh' (Benjamini-Hochberg), "
                              f"not {self.correction!r}.")
        if not 0 < self.alpha < 1:
            raise LaminaError(f"alpha must be between 0 and 1, not {self.alpha}.")


def window_length(model, config: AttnKLConfig) -> int:
    """The window's length in tokens: ``config.window``, or min(context length − BOS, 1024)."""
    room = model.context_length - int(model.prepend_bos)
    if config.window is None:
        return min(room, DEFAULT_WINDOW_CAP)
    if config.window > room:
        bos = " minus 1 for the BOS token" if model.prepend_bos else ""
        raise LaminaError(f"window={config.window} does not fit {model.name}'s context of {model.context_length} "
                          f"tokens{bos}; use --set window={room} or less.")
    return config.window


def focus_index(model, layer: int) -> int:
    n = model.n_layers
    if not -n <= layer < n:
        raise LaminaError(f"focus_layer={layer} is not a layer of {model.name} (0..{n - 1}, or -{n}..-1); "
                          "use --set focus_layer=N with N in that range.")
    return layer % n


def log_norms(acts: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Shape ``(n_layers, n_tokens)``: log of each token's attention-output norm (float32 math, like the seed).

    Args:
        acts: ``attn.out`` of one sequence, shape ``(n_layers, n_tokens, width)``.
        positions: shape ``(n_tokens,)``, token positions (named in the error for a zero norm).
    """
    return stats_log_norms(acts, what="attention outputs",
                           where=lambda i: f"layer {i[0]}, position {positions[i[1]]}")


def focus_divergences(values: np.ndarray, correct: np.ndarray, n_bins: int) -> dict:
    """Histograms of correct vs incorrect ``values`` (shape ``(n_tokens,)``) and their divergences (nats)."""
    edges = bin_edges(values, n_bins, "log norms")
    counts = group_histograms(values, correct, edges)
    p, q = probabilities(counts)
    return {"edges": edges, "counts": counts, "probs": np.stack([p, q]), "js": float(js_divergence(p, q)),
            "kl_ci": float(kl(p, q, SEED_EPSILON)), "kl_ic": float(kl(q, p, SEED_EPSILON)),
            "unsupported_ci": int(unsupported_bins(p, q)), "unsupported_ic": int(unsupported_bins(q, p)),
            "seed": float(symmetric_kl_to_mixture(p, q) / n_bins)}


class AttnKLExperiment(Experiment):
    name = "attn-kl"
    title = "Prediction accuracy and attention-output norms"
    description = "attention-output norms of correctly vs incorrectly predicted tokens (JS divergence, permutations)"
    seed_notebook = "001"
    question = ("When a model predicts the next token correctly, is its attention adjustment to that token larger "
                "or smaller than when it is wrong? The question is asked layer by layer: at which depths do the "
                "distributions of attention-output norms of correct and incorrect predictions differ?")
    Config = AttnKLConfig

    def method_text(self, config: AttnKLConfig) -> str:
        window = f"{config.window} tokens" if config.window else (
            f"min(context length − BOS, {DEFAULT_WINDOW_CAP}) tokens")
        return (f"A window of {window} from the middle of the book '{config.book}' (Gutenberg header and footer "
                "removed) goes through the model in one pass. A token counts as correct when the argmax of the "
                "logits at its position is the next token of the book (for the last token, the token after the "
                "window). The attention output after its output projection (site attn.out) is recorded at every "
                "layer, and each token's log norm is compared between correct and incorrect predictions: "
                f"histograms over {config.bins} equal bins from the layer's smallest to largest log norm, the "
                "Kullback–Leibler divergence in both directions and the Jensen–Shannon (JS) divergence in nats. "
                f"A permutation test shuffles the correct/incorrect labels {config.n_permutations} times (the same "
                "shuffles at every layer); p = (1 + #{null ≥ observed}) / (1 + permutations), corrected across "
                f"layers by the {CORRECTION_NAMES[config.correction]} method "
                f"at alpha = {config.alpha}.")

    def run(self, model, config: AttnKLConfig, ctx: Context) -> Result:
        focus = focus_index(model, config.focus_layer)
        length = window_length(model, config)
        with ctx.stage("data"):
            text = data.book(config.book)
            stim = stimuli.window(text, model, length, where="middle",
                                  max_length=model.context_length - int(model.prepend_bos))
        with ctx.stage("record"):
            rec = record(model, stim, sites=["attn.out"], batch_size=1, progress=ctx.progress)
        with ctx.stage("stats"):
            tokens = rec.tokens
            known = tokens["next_id"].to_numpy() >= 0  # only the book's last token has no next token
            tokens = tokens[known].reset_index(drop=True)
            if not known.all():
                stim.notes.append(f"the window ends with the book, so its last token has no next token and is "
                                  f"left out ({len(tokens)} of {length} tokens are used)")
            correct = check_groups(tokens["correct"].to_numpy(dtype=bool))
            values = log_norms(rec["attn.out"][:, 0], rec.tokens["position"].to_numpy())[:, known]
            next_texts = model.token_texts(tokens["next_id"])
            token_length = np.array([len(t) for t in next_texts], dtype=float)
            stats = self._stats(values, correct, token_length, focus, config, ctx, model)
        summary = self._summary(stats, correct, token_length, focus, config, length, int(stim.meta["start"][0]))
        with ctx.stage("figures"):
            figures = self._figures(stats, correct, token_length, focus, config, ctx.rng)
        tables = {
            "tokens": pd.DataFrame({
                "position": tokens["position"], "token": tokens["token"], "next_token": next_texts,
                "predicted": tokens["predicted"], "correct": correct,
                "next_token_length": token_length.astype(int), "loss": tokens["loss"],
                f"log_norm_layer{focus}": values[focus]}),
            "layers": pd.DataFrame(summary["layers"]),
            "bins_sweep": pd.DataFrame(summary["bins_sweep"]),
            "null_focus_layer": pd.DataFrame({"permutation": np.arange(config.n_permutations),
                                              "js": stats["null"].null[:, focus]}),
        }
        return Result(summary=summary, tables=tables, figures=figures,
                      key_numbers=self._key_numbers(summary, stats, focus, config),
                      notes=self._notes(model, stim, config, summary, length))

    def _stats(self, values, correct, token_length, focus, config, ctx, model) -> dict:
        device = model.device if model.device.type == "cuda" else None
        null = js_permutation_null(values, correct, config.n_permutations, ctx.rng, n_bins=config.bins,
                                   device=device)
        p_raw = permutation_pvalue(null.observed, null.null)
        p_max = max_statistic_pvalue(null.observed, null.null)
        p_bh = benjamini_hochberg(p_raw)
        lo, hi = config.bins_sweep
        sweep = [(b, focus_divergences(values[focus], correct, b)) for b in range(lo, hi + 1)]
        seed_layers = []
        for row in values:  # the seed's value at every layer, for the documented relation
            p, q = probabilities(group_histograms(row, correct, bin_edges(row, config.bins)))
            seed_layers.append(float(symmetric_kl_to_mixture(p, q) / config.bins))
        _, mw_p = mannwhitneyu(token_length[correct], token_length[~correct])
        return {"null": null, "p_raw": p_raw, "p_max": p_max, "p_bh": p_bh,
                "p_corrected": p_max if config.correction == "max" else p_bh,
                "focus": focus_divergences(values[focus], correct, config.bins), "sweep": sweep,
                "seed_layers": np.array(seed_layers), "mw_p": float(mw_p),
                "mean_correct": values[:, correct].mean(axis=1), "mean_incorrect": values[:, ~correct].mean(axis=1)}

    def _summary(self, stats, correct, token_length, focus, config, length, start) -> dict:
        null, f = stats["null"], stats["focus"]
        significant = stats["p_corrected"] < config.alpha
        layers = [{
            "layer": layer, "mean_log_norm_correct": stats["mean_correct"][layer],
            "mean_log_norm_incorrect": stats["mean_incorrect"][layer],
            "difference": stats["mean_correct"][layer] - stats["mean_incorrect"][layer],
            "js": null.observed[layer], "p_value": stats["p_raw"][layer], "p_corrected": stats["p_corrected"][layer],
            "p_max": stats["p_max"][layer], "p_bh": stats["p_bh"][layer], "significant": bool(significant[layer]),
            "null_mean": null.null[:, layer].mean(), "null_min": null.null[:, layer].min(),
            "null_max": null.null[:, layer].max(), "seed_symmetric_kl": stats["seed_layers"][layer],
        } for layer in range(len(null.observed))]
        return {
            "n_tokens": int(len(correct)), "window": length, "window_start": start,
            "n_correct": int(correct.sum()), "accuracy": float(correct.mean()),
            "token_length": {"correct_mean": token_length[correct].mean(),
                             "incorrect_mean": token_length[~correct].mean(), "p_mannwhitney": stats["mw_p"]},
            "focus_layer": focus, "bins": config.bins,
            "kl_correct_to_incorrect": f["kl_ci"], "kl_incorrect_to_correct": f["kl_ic"],
            "kl_epsilon": SEED_EPSILON,
            "kl_unsupported_bins": {"correct_to_incorrect": f["unsupported_ci"],
                                    "incorrect_to_correct": f["unsupported_ic"]},
            "js": null.observed[focus], "seed_symmetric_kl": f["seed"],  # the tested value, to the last digit
            "bins_sweep": [{"bins": b, "edges": b + 1, "js": s["js"], "seed_symmetric_kl": s["seed"]}
                           for b, s in stats["sweep"]],
            "n_permutations": config.n_permutations, "correction": config.correction, "alpha": config.alpha,
            "n_significant": int(significant.sum()),
            "n_significant_uncorrected": int((stats["p_raw"] < config.alpha).sum()),
            "n_significant_bh": int((stats["p_bh"] < config.alpha).sum()),
            "n_significant_max": int((stats["p_max"] < config.alpha).sum()),
            "layers": layers,
        }

    def _key_numbers(self, s, stats, focus, config) -> list[tuple[str, str, str]]:
        L = s["layers"][focus]
        tl = s["token_length"]
        unsup = s["kl_unsupported_bins"]

        def kl_text(value, n):
            return f"{value:.3f} nats" + (f" (ε-driven: {n} bin{'s' if n > 1 else ''} without support)" if n else "")

        corr = CORRECTION_NAMES[config.correction]
        return [
            ("Prediction accuracy", f"{100 * s['accuracy']:.1f}% ({s['n_correct']}/{s['n_tokens']} tokens)", ""),
            ("Next-token length, correct vs incorrect", f"{tl['correct_mean']:.2f} vs {tl['incorrect_mean']:.2f} "
             "characters", f"Mann–Whitney U, two-sided: p = {tl['p_mannwhitney']:.2g}"),
            (f"JS divergence of log norms, layer {focus}", f"{s['js']:.4f} nats (maximum ln 2 = 0.693)",
             f"permutation p = {L['p_value']:.3g} ({config.n_permutations} shuffles); {corr} p = "
             f"{L['p_corrected']:.3g}"),
            (f"KL(correct ‖ incorrect), layer {focus}", kl_text(s["kl_correct_to_incorrect"],
                                                               unsup["correct_to_incorrect"]), ""),
            (f"KL(incorrect ‖ correct), layer {focus}", kl_text(s["kl_incorrect_to_correct"],
                                                               unsup["incorrect_to_correct"]), ""),
            ("Layers where the distributions differ", f"{s['n_significant']} of {len(s['layers'])}",
             f"{corr} corrected p < {config.alpha} (uncorrected: {s['n_significant_uncorrected']}, "
             f"Benjamini–Hochberg: {s['n_significant_bh']}, max-statistic: {s['n_significant_max']})"),
            (f"Mean log norm correct − incorrect, layer {focus}", f"{L['difference']:+.3f}",
             "sign of the difference; tested through the JS divergence above"),
            (f"Seed's symmetric_KL, layer {focus}", f"{s['seed_symmetric_kl']:.4f}",
             f"= ½[KL(M‖P) + KL(M‖Q)] / {config.bins} bins, ε = 1e-15; not the JS divergence (see notes)"),
        ]

    def _notes(self, model, stim, config, s, length) -> list[str]:
        ratio = s["seed_symmetric_kl"] * s["bins"] / s["js"] if s["js"] > 0 else float("nan")
        notes = list(stim.notes) + [
            "The seed's symmetric_KL is not the Jensen–Shannon divergence. F.kl_div(log(P + 1e-15), M, "
            "reduction='batchmean') is KL(M‖P) divided by the number of bins, so the seed reports "
            "½[KL(M‖P) + KL(M‖Q)] / n_bins: it shrinks as bins are added, and an empty bin in one histogram "
            "makes it depend on the 1e-15. lamina reports the true JS divergence ½KL(P‖M) + ½KL(Q‖M) in nats "
            f"(0 to ln 2) and keeps the seed's value beside it (seed_symmetric_kl). At layer {s['focus_layer']}: "
            f"JS = {s['js']:.4f} nats; seed value = {s['seed_symmetric_kl']:.5f}, times {s['bins']} bins = "
            f"{s['seed_symmetric_kl'] * s['bins']:.4f} nats ({ratio:.2f} × JS).",
            "KL in both directions is Σ p·ln(p / (q + 1e-15)) over the focus layer's bins: the seed's smoothing "
            "without its division by the number of bins. The true KL is infinite whenever one group fills a bin "
            "the other leaves empty (counted in results.json as kl_unsupported_bins); then the value measures "
            "the ε more than the data, which is why the tests use the JS divergence. The seed's 'Target is "
            "incorrect' line prints KL(incorrect ‖ correct) / n_bins.",
            "p-values are (1 + #{null ≥ observed}) / (1 + n), never 0; the seed's (null > observed).sum() / n can "
            f"be exactly 0. Across layers lamina adds a {CORRECTION_NAMES[config.correction]} "
            "correction (results.json has both: p_max, p_bh; p_corrected is the one chosen by --set correction); "
            "the seed marks layers with uncorrected p < 0.05.",
            "The histogram edges span both groups (min to max over all tokens), so a label shuffle never moves "
            "them: lamina bins each layer once and counts every shuffle at every layer with one matrix product "
            "(the same shuffles at every layer). The seed recomputes the same edges for every shuffle.",
            "The seed's nbins is the number of linspace edges: its default 31 gives 30 bins, and its sweep "
            "nbins = 10..50 is 9..49 bins. lamina counts bins (bins=30, bins_sweep=9..49 here), so the "
            "histograms are the seed's.",
            "The seed's comment calls pg11.txt 'Through the Looking Glass'; it is Alice's Adventures in "
            "Wonderland (Gutenberg #11). lamina removes the Gutenberg header and footer before taking the middle "
            f"of the book, so the window (tokens {s['window_start']}..{s['window_start'] + length - 1} of the "
            "stripped text) is not the seed's exact window.",
        ]
        if config.window is None and model.context_length - int(model.prepend_bos) > DEFAULT_WINDOW_CAP:
            notes.append(f"The seed uses the whole context ({model.context_length} tokens for {model.name}); lamina "
                         f"caps the default window at {DEFAULT_WINDOW_CAP} tokens for speed (--set window= changes "
                         "it).")
        if model.prepend_bos:
            notes.append(f"{model.name} gets a BOS token before the window (its family's policy); BOS is fed to "
                         "the model but never recorded or counted.")
        notes.append("Token length is the length in characters of the token being predicted (the next token), as "
                     "in the seed. accuracy in results.json is a fraction of the window's tokens.")
        return notes

    def _figures(self, stats, correct, token_length, focus, config, rng) -> dict:
        figures = {}
        null, f = stats["null"], stats["focus"]
        fig, ax = figure(1, size=(10, 3))
        binary_strip(ax, correct, rng)
        ax.set(xlabel="Token position in the window",
               title=f"Accuracy by token position ({100 * correct.mean():.1f}% correct)")
        figures["accuracy_by_position"] = (fig, "Each token's prediction (argmax of the logits = next token), "
                                                "jittered vertically.")
        fig, ax = figure(1, size=(10, 3))
        density_by_group(ax, token_length, correct, unit=" chars", integer=True)
        ax.set(xlabel="Next-token length (characters)", ylabel="Density",
               title="Token length distributions by prediction accuracy")
        figures["token_lengths"] = (fig, "Length of the token to be predicted, for correct and incorrect "
                                         "predictions (density, one bin per character count; the seed's "
                                         "Freedman–Diaconis bins leave empty bins between whole numbers).")
        fig, ax = figure(1, size=(10, 4))
        probability_lines(ax, f["edges"], f["probs"])
        ax.set(xlabel="Log norm of the attention output", ylabel="Probability",
               title=f"Layer {focus}: JS = {f['js']:.4f} nats, KL(C‖I) = {f['kl_ci']:.3f}, "
                     f"KL(I‖C) = {f['kl_ic']:.3f}")
        figures["focus_histograms"] = (fig, f"Layer {focus}: probability of each of {config.bins} log-norm bins "
                                            "for correct and incorrect predictions (bins span both groups).")
        bins = np.array([b for b, _ in stats["sweep"]])
        fig, (a, b) = figure(2, size=(12, 4))
        a.plot(bins, [s["js"] for _, s in stats["sweep"]], "kh", markersize=9, markerfacecolor=[0.7, 0.7, 0.9],
               label="observed")
        a.plot(bins, js_noise_floor(bins, correct.sum(), (~correct).sum()), "k--", linewidth=1,
               label="expected without any difference")
        a.legend(fontsize=9)
        a.set(xlabel="Number of histogram bins", ylabel="JS divergence (nats)", title="A) True JS divergence")
        b.plot(bins, [s["seed"] for _, s in stats["sweep"]], "ks", markersize=7, markerfacecolor=[0.9, 0.7, 0.7])
        b.set(xlabel="Number of histogram bins", ylabel="Seed's value", title="B) Seed's symmetric_KL (÷ bins)")
        figures["bins_sweep"] = (fig, f"Layer {focus}: the divergence against the number of bins. (A) The JS "
                                      "divergence of two histograms grows with the number of bins even when the "
                                      "groups do not differ: sampling noise adds about (bins − 1)/8 · (1/n_correct "
                                      "+ 1/n_incorrect) nats (dashed). Compare observed values with the permutation "
                                      "null at the same bins, not across bin counts. (B) The seed's value, divided "
                                      "by the number of bins and driven by the 1e-15 wherever a bin is empty.")
        fig, ax = figure(1, size=(10, 3))
        p = stats["p_raw"][focus]
        null_histogram(ax, null.null[:, focus], null.observed[focus], label="Observed JS")
        ax.set(xlabel="JS divergence (nats)", ylabel="Count",
               title=f"Layer {focus}: permutation test of the JS divergence (p = {p:.3g})")
        figures["focus_null"] = (fig, f"Layer {focus}: JS divergence under {config.n_permutations} shuffles of "
                                      "the correct/incorrect labels, and the observed value.")
        figures["laminar_profile"] = self._profile(stats, config)
        return figures

    def _profile(self, stats, config):
        null = stats["null"]
        sig = stats["p_corrected"] < config.alpha
        fig, (a, b, c) = figure(3, size=(15, 4))
        layer_profile(a, stats["mean_incorrect"], label="Incorrect", color="tab:red", marker="h")
        layer_profile(a, stats["mean_correct"], label="Correct", color="tab:blue", marker="s")
        a.legend(fontsize=9)
        a.set(ylabel="Mean log norm", title="A) Distribution means")
        null_range(b, null.null.min(0), null.null.max(0), null.null.mean(0))
        layer_profile(b, null.observed, significant=sig, label="observed (filled: significant)", color="tab:green",
                      marker="h")
        b.legend(fontsize=8)
        b.set(ylabel="JS divergence (nats)", title="B) Observed JS with $H_0$ range")
        signed_profile(c, stats["mean_correct"] - stats["mean_incorrect"], sig)
        c.set(ylabel="Correct − incorrect", title="C) Difference of means")
        which = CORRECTION_NAMES[config.correction]
        return fig, (f"Per layer: mean log norm by group (A); observed JS divergence against the permutation "
                     f"null's range and mean (B); difference of means (C), blue above zero, red below. Filled or "
                     f"large markers: {which} corrected p < {config.alpha}.")


EXPERIMENT = AttnKLExperiment()
