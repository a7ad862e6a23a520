"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens? (compute)"""

from __future__ import annotations


import numpy as np
from scipy.stats import mannwhitneyu

from ... import data, stimuli
from ...errors import LaminaError
from ...models.depth import layer_at
from ...recording import record
from ...stats.divergence import SEED_EPSILON, group_divergences
from ...stats.multiple import significant
from ...stats.norms import layer_log_norms
from ..base import Context, ModelFacts
from .config import AttnKLConfig
from . import inference, labels
from .result import (AttnKLResult, LayerStats, Replicate, StartChoice,
                     SweepEntry, TokenLength, Tokens, UnsupportedBins, WindowStarts, default_window, other_skip)

BATCH_TOKENS = 1024  # windows per forward pass: about this many tokens


def window_length(model, config: AttnKLConfig) -> int:
    """Tokens per window: ``config.window``, or min(context length − BOS, :func:`default_window`)."""
    room = model.context_length - int(model.prepend_bos)
    if config.window is None:
        return min(room, default_window(config.replicates))
    if config.window > room:
        bos = " minus 1 for the BOS token" if model.prepend_bos else ""
        raise LaminaError(f"window={config.window} does not fit {model.name}'s context of {model.context_length} "
                          f"tokens{bos}; use --set window={room} or less.")
    return config.window


def focus_index(model, layer: int | float) -> int:
    """The block that ``focus_layer`` names on this model (an index, or a relative depth)."""
    return layer_at(layer, "attn.out", model.n_layers, setting="focus_layer", model=model.name)


def _record(model, config, length, ctx):
    """Windows of the book in one recording: token table (known next token only), log norms, notes."""
    with ctx.stage("data"):
        stim = stimuli.windows(data.book(config.book), model, length, config.replicates,
                               max_length=model.context_length - int(model.prepend_bos))
    with ctx.stage("record"):
        # Labels from another run: this model's own predictions are not needed, so no LM head runs.
        rec = record(model, stim, sites=["attn.out"], batch_size=max(1, BATCH_TOKENS // length),
                     progress=ctx.progress, loss=config.labels_from is None)
    tokens = rec.tokens
    known = tokens["next_id"].to_numpy() >= 0  # only the book's last token has no next token
    acts = rec["attn.out"]  # (n_layers, n_windows, length, width)
    values = np.concatenate([layer_log_norms(acts[:, w], np.arange(length), what="attention outputs")
                             for w in range(len(stim))], axis=1)[:, known]
    notes = list(stim.notes)
    if not known.all():
        notes.append(f"the last window ends with the book, so its last token has no next token and is left out "
                     f"({int(known.sum())} of {len(known)} tokens are used)")
    return stim, tokens[known].reset_index(drop=True), values, notes


def _choice(analysis: inference.Analysis) -> StartChoice:
    h = analysis.headline
    return StartChoice(skip_first=analysis.skip_first, n_tokens=len(analysis.labels), unit=h["unit"],
                       difference=h["difference"], difference_significant=h["difference_significant"],
                       js_corrected=h["js_corrected"], js_significant=h["js_significant"])


def window_starts(values, correct, position, main: inference.Analysis, other: inference.Analysis | None,
                  skip_first: int) -> WindowStarts:
    """The start-of-window transient (accuracy, log norms) and the main decisions under both choices."""
    k = max(skip_first, other_skip(skip_first))
    start = position < k
    rest = values[:, ~start]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values[:, start].mean(axis=1) - rest.mean(axis=1)) / rest.std(axis=1)
    used = _choice(main)
    alt = None if other is None else _choice(other)
    if alt is None:
        stable_diff = stable_js = np.zeros(len(values), dtype=bool)
    else:
        stable_diff = (used.difference_significant & alt.difference_significant
                       & (np.sign(used.difference) == np.sign(alt.difference)))
        stable_js = used.js_significant & alt.js_significant
    return WindowStarts(start_tokens=k, accuracy_start=float(correct[start].mean()),
                        accuracy_rest=float(correct[~start].mean()), log_norm_start_z=z, used=used, other=alt,
                        stable_difference=stable_diff, stable_js=stable_js)


def compute(model, config: AttnKLConfig, ctx: Context) -> AttnKLResult:
    focus = focus_index(model, config.focus_layer)
    length = window_length(model, config)
    if length - config.skip_first < 2 * 2:
        raise LaminaError(f"skip_first={config.skip_first} leaves {length - config.skip_first} of each window's "
                          f"{length} tokens; two groups of at least 2 tokens need 4 or more (lower skip_first).")
    stim, tokens, all_values, notes = _record(model, config, length, ctx)
    next_texts = np.array(model.token_texts(tokens["next_id"]), dtype=str)
    if config.labels_from is not None:
        theirs = labels.labels_from(config.labels_from, config, tokens, next_texts)
        tokens = tokens.assign(**{k: theirs[k].to_numpy() for k in theirs})
        notes.append(f"correct and incorrect are the predictions of the model that made the run in "
                     f"{config.labels_from} (labels_from), not {model.name}'s own; the token table's predicted, "
                     "correct and loss columns are that model's")
    with ctx.stage("stats"):
        all_correct = tokens["correct"].to_numpy(dtype=bool)
        all_window = tokens["sequence"].to_numpy()
        all_position = tokens["position"].to_numpy()
        all_length = np.array([len(t) for t in next_texts], dtype=float)
        device = model.device if model.device.type == "cuda" else None
        settings = dict(token_length=all_length, shuffle=config.shuffle, n_bins=config.bins,
                        n_permutations=config.n_permutations, correction=config.correction, alpha=config.alpha,
                        device=device)
        main = inference.analyse(all_values, all_correct, all_window, all_position, skip_first=config.skip_first,
                                 rng=ctx.rng, **settings)
        try:  # the other handling of window starts, for the report's stability statement
            other = inference.analyse(all_values, all_correct, all_window, all_position,
                                      skip_first=other_skip(config.skip_first), rng=ctx.rng, **settings)
        except LaminaError as err:
            other = None
            notes.append(f"with skip_first={other_skip(config.skip_first)} the tests cannot run ({err}), so the "
                         "report cannot say whether its layers depend on the handling of window starts")
        starts_summary = window_starts(all_values, all_correct, all_position, main, other, config.skip_first)
        keep = main.keep
        values, correct, window_of = all_values[:, keep], main.labels, main.window_of
        token_length = all_length[keep]
        pooled, fixed, windows, across = main.pooled, main.fixed, main.windows, main.across
        diff_sig, sig = main.difference_significant, main.js_significant
        left_out = [r for r, w in enumerate(windows) if w is None]
        if left_out:
            notes.append(f"{len(left_out)} of {len(windows)} windows ({', '.join(map(str, left_out))}) have fewer "
                         "than 2 correct or 2 incorrect predictions: they count in the pooled tests but have no "
                         "tests of their own and are left out of the tests across windows")
        focus_div = group_divergences(values[focus], correct, config.bins, what="log norms")
        lo, hi = config.bins_sweep
        sweep = [(b, group_divergences(values[focus], correct, b, what="log norms")) for b in range(lo, hi + 1)]
        # the seed's value at every layer, for the documented relation to the JS divergence
        seed_layers = [group_divergences(row, correct, config.bins)["mixture_kl"] / config.bins for row in values]
        _, mw_p = mannwhitneyu(token_length[correct], token_length[~correct])
        mean_correct, mean_incorrect = values[:, correct].mean(axis=1), values[:, ~correct].mean(axis=1)
    null = pooled.js_null
    within, js_corrected = pooled.within, pooled.js_corrected
    layers = tuple(LayerStats(
        layer=layer, mean_log_norm_correct=mean_correct[layer], mean_log_norm_incorrect=mean_incorrect[layer],
        difference=pooled.difference[layer], difference_expected=pooled.expected[layer],
        difference_within=within[layer], difference_ci_low=pooled.ci[0][layer], difference_ci_high=pooled.ci[1][layer],
        p_difference=pooled.p_difference[layer], p_difference_corrected=fixed["p_difference_corrected"][layer],
        difference_significant=diff_sig[layer], js=pooled.js[layer], js_corrected=js_corrected[layer],
        js_z=pooled.js_z[layer], p_value=pooled.p_js[layer], p_corrected=fixed["p_corrected"][layer],
        p_max=fixed["p_max"][layer], p_bh=fixed["p_bh"][layer], significant=sig[layer], null_mean=null[:, layer].mean(),
        null_sd=null[:, layer].std(), null_min=null[:, layer].min(), null_max=null[:, layer].max(),
        seed_symmetric_kl=seed_layers[layer]) for layer in range(len(values)))
    starts = stim.meta["start"].to_numpy()
    replicates = tuple(Replicate(
        replicate=r, start=int(starts[r]), n_tokens=int((window_of == r).sum()),
        n_correct=int(correct[window_of == r].sum()), accuracy=float(correct[window_of == r].mean()),
        tested=w is not None, **_window_arrays(w, len(values)), same_sign=k, agrees=a)
        for r, (w, k, a) in enumerate(zip(windows, main.same, main.agree)))
    return AttnKLResult(
        n_tokens=len(correct), window=length, skip_first=config.skip_first, window_start=int(starts[0]),
        n_replicates=len(stim), shuffle=config.shuffle, n_correct=int(correct.sum()), accuracy=float(correct.mean()),
        token_length=TokenLength(correct_mean=token_length[correct].mean(),
                                 incorrect_mean=token_length[~correct].mean(), p_mannwhitney=float(mw_p)),
        focus_layer=focus, bins=config.bins, kl_correct_to_incorrect=focus_div["kl_true_false"],
        kl_incorrect_to_correct=focus_div["kl_false_true"], kl_epsilon=SEED_EPSILON,
        kl_unsupported_bins=UnsupportedBins(correct_to_incorrect=focus_div["unsupported_true_false"],
                                            incorrect_to_correct=focus_div["unsupported_false_true"]),
        js=pooled.js[focus], js_corrected=js_corrected[focus],
        seed_symmetric_kl=focus_div["mixture_kl"] / config.bins,  # the tested value
        bins_sweep=tuple(SweepEntry(bins=b, edges=b + 1, js=s["js"], seed_symmetric_kl=s["mixture_kl"] / b)
                         for b, s in sweep),
        n_permutations=config.n_permutations, correction=config.correction, alpha=config.alpha,
        n_significant=int(sig.sum()), n_significant_uncorrected=int(significant(pooled.p_js, config.alpha).sum()),
        n_significant_bh=int(significant(fixed["p_bh"], config.alpha).sum()),
        n_significant_max=int(significant(fixed["p_max"], config.alpha).sum()),
        n_significant_difference=int(diff_sig.sum()),
        n_difference_positive=int((diff_sig & (within > 0)).sum()), stratified_scale=pooled.scale,
        layers=layers, replicates=replicates, across=across, window_starts=starts_summary,
        model=ModelFacts.of(model), data_notes=tuple(notes),
        tokens=Tokens(used=keep, replicate=all_window, position=all_position,
                      token=tokens["token"].to_numpy(dtype=str), next_token=next_texts,
                      predicted=tokens["predicted"].to_numpy(dtype=str), correct=all_correct,
                      next_token_length=all_length.astype(np.int64), loss=tokens["loss"].to_numpy(),
                      focus_log_norm=all_values[focus], focus_null=null[:, focus], focus_edges=focus_div["edges"],
                      focus_probs=focus_div["probs"]))


def _window_arrays(tests, n_layers: int) -> dict[str, np.ndarray]:
    """A window's per-layer statistics for :class:`Replicate`; NaN for a window without tests."""
    if tests is None:
        return dict.fromkeys(("difference", "difference_expected", "difference_within", "p_difference", "js",
                              "js_corrected", "js_z", "p_value"), np.full(n_layers, np.nan))
    return dict(difference=tests.difference, difference_expected=tests.expected, difference_within=tests.within,
                p_difference=tests.p_difference, js=tests.js, js_corrected=tests.js_corrected, js_z=tests.js_z,
                p_value=tests.p_js)
