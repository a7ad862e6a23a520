"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens? (compute)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from ... import data, stimuli
from ...errors import LaminaError
from ...models.depth import check_layer_setting, layer_at
from ...record import record
from ...stats.divergence import SEED_EPSILON, check_groups, group_divergences
from ...stats.multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue
from ...stats.norms import layer_log_norms
from ...stats.permutation import js_permutation_null
from ..base import Context, ModelFacts, profile_table
from .result import AttnKLResult, LayerStats, SweepEntry, TokenLength, Tokens, UnsupportedBins

DEFAULT_WINDOW_CAP = 1024  # SmolLM2's context is 8192 tokens: the seed's "whole context" is slow on a CPU
CORRECTION_NAMES = {"max": "max-statistic", "bh": "Benjamini–Hochberg"}


@dataclass
class AttnKLConfig:
    book: str = "alice"  # a name in lamina.data.BOOKS, a Gutenberg id or a text file path
    window: int | None = None  # tokens from the middle of the book; None: min(context - BOS, 1024)
    # The layer of the single-layer figures: an index, or a relative depth (models/depth.py). The seed's
    # layer 4 of gpt2-large's 36 is depth 0.125 (block 4 of 36, block 3 of SmolLM2's 30).
    focus_layer: int | float = 0.125
    bins: int = 30  # histogram bins (the seed's torch.linspace(min, max, 31): 31 edges)
    bins_sweep: tuple[int, int] = (9, 49)  # bin counts swept, inclusive (the seed's nbins = 10..50 edges)
    n_permutations: int = 1000
    correction: str = "max"  # across layers: "max" (max-statistic, family-wise) or "bh" (Benjamini-Hochberg)
    alpha: float = 0.05

    def check(self):
        check_layer_setting(self.focus_layer, setting="focus_layer")
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


def focus_index(model, layer: int | float) -> int:
    """The block that ``focus_layer`` names on this model (an index, or a relative depth)."""
    return layer_at(layer, "attn.out", model.n_layers, setting="focus_layer", model=model.name)


def compute(model, config: AttnKLConfig, ctx: Context) -> AttnKLResult:
    focus = focus_index(model, config.focus_layer)
    length = window_length(model, config)
    with ctx.stage("data"):
        stim = stimuli.window(data.book(config.book), model, length, where="middle",
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
        values = layer_log_norms(rec["attn.out"][:, 0], rec.tokens["position"].to_numpy(),
                                 what="attention outputs")[:, known]
        next_texts = np.array(model.token_texts(tokens["next_id"]), dtype=str)
        token_length = np.array([len(t) for t in next_texts], dtype=float)
        device = model.device if model.device.type == "cuda" else None
        null = js_permutation_null(values, correct, config.n_permutations, ctx.rng, n_bins=config.bins,
                                   device=device)
        p_raw = permutation_pvalue(null.observed, null.null)
        p_max = max_statistic_pvalue(null.observed, null.null)
        p_bh = benjamini_hochberg(p_raw)
        p_corrected = p_max if config.correction == "max" else p_bh
        focus_div = group_divergences(values[focus], correct, config.bins, what="log norms")
        lo, hi = config.bins_sweep
        sweep = [(b, group_divergences(values[focus], correct, b, what="log norms")) for b in range(lo, hi + 1)]
        # the seed's value at every layer, for the documented relation to the JS divergence
        seed_layers = [group_divergences(row, correct, config.bins)["mixture_kl"] / config.bins for row in values]
        _, mw_p = mannwhitneyu(token_length[correct], token_length[~correct])
        mean_correct, mean_incorrect = values[:, correct].mean(axis=1), values[:, ~correct].mean(axis=1)
    significant = p_corrected < config.alpha
    layers = tuple(LayerStats(
        layer=layer, mean_log_norm_correct=mean_correct[layer], mean_log_norm_incorrect=mean_incorrect[layer],
        difference=mean_correct[layer] - mean_incorrect[layer], js=null.observed[layer], p_value=p_raw[layer],
        p_corrected=p_corrected[layer], p_max=p_max[layer], p_bh=p_bh[layer], significant=significant[layer],
        null_mean=null.null[:, layer].mean(), null_min=null.null[:, layer].min(), null_max=null.null[:, layer].max(),
        seed_symmetric_kl=seed_layers[layer]) for layer in range(len(null.observed)))
    return AttnKLResult(
        n_tokens=len(correct), window=length, window_start=int(stim.meta["start"][0]), n_correct=int(correct.sum()),
        accuracy=float(correct.mean()),
        token_length=TokenLength(correct_mean=token_length[correct].mean(),
                                 incorrect_mean=token_length[~correct].mean(), p_mannwhitney=float(mw_p)),
        focus_layer=focus, bins=config.bins, kl_correct_to_incorrect=focus_div["kl_true_false"],
        kl_incorrect_to_correct=focus_div["kl_false_true"], kl_epsilon=SEED_EPSILON,
        kl_unsupported_bins=UnsupportedBins(correct_to_incorrect=focus_div["unsupported_true_false"],
                                            incorrect_to_correct=focus_div["unsupported_false_true"]),
        js=null.observed[focus], seed_symmetric_kl=focus_div["mixture_kl"] / config.bins,  # the tested value
        bins_sweep=tuple(SweepEntry(bins=b, edges=b + 1, js=s["js"], seed_symmetric_kl=s["mixture_kl"] / b)
                         for b, s in sweep),
        n_permutations=config.n_permutations, correction=config.correction, alpha=config.alpha,
        n_significant=int(significant.sum()), n_significant_uncorrected=int((p_raw < config.alpha).sum()),
        n_significant_bh=int((p_bh < config.alpha).sum()), n_significant_max=int((p_max < config.alpha).sum()),
        layers=layers, model=ModelFacts.of(model), data_notes=tuple(stim.notes),
        tokens=Tokens(position=tokens["position"].to_numpy(), token=tokens["token"].to_numpy(dtype=str),
                      next_token=next_texts, predicted=tokens["predicted"].to_numpy(dtype=str), correct=correct,
                      next_token_length=token_length.astype(np.int64), loss=tokens["loss"].to_numpy(),
                      focus_log_norm=values[focus], focus_null=null.null[:, focus], focus_edges=focus_div["edges"],
                      focus_probs=focus_div["probs"]))


def tables(result: AttnKLResult) -> dict[str, pd.DataFrame]:
    t = result.tokens
    return {
        "tokens": pd.DataFrame({
            "position": t.position, "token": t.token, "next_token": t.next_token, "predicted": t.predicted,
            "correct": t.correct, "next_token_length": t.next_token_length, "loss": t.loss,
            f"log_norm_layer{result.focus_layer}": t.focus_log_norm}),
        "layers": pd.DataFrame([vars(layer) for layer in result.layers]),
        "bins_sweep": pd.DataFrame([vars(entry) for entry in result.bins_sweep]),
        "null_focus_layer": pd.DataFrame({"permutation": np.arange(result.n_permutations), "js": t.focus_null}),
    }


def profiles(result: AttnKLResult) -> pd.DataFrame:
    """Per block: the JS divergence and the mean log norms of attn.out by group (:func:`profile_table`)."""
    return profile_table(*[("attn.out", name, result.column(name), None) for name in (
        "js", "difference", "mean_log_norm_correct", "mean_log_norm_incorrect")])
