"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens? (compute)"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

from ... import data, stimuli
from ...errors import LaminaError
from ...models.depth import layer_at
from ...recording import record
from ...stats.divergence import group_divergences
from ...stats.norms import layer_log_norms
from ..base import Context, ModelFacts
from .config import AttnKLConfig
from . import inference, labels
from .result import AttnKLResult, StartChoice, WindowStarts, default_window, other_skip

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


def window_starts(values, correct, position, main: inference.Analysis, other: inference.Analysis | None,
                  skip_first: int) -> WindowStarts:
    """The start-of-window transient (accuracy, log norms) and the main decisions under both choices."""
    k = max(skip_first, other_skip(skip_first))
    start = position < k
    rest = values[:, ~start]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values[:, start].mean(axis=1) - rest.mean(axis=1)) / rest.std(axis=1)
    used = StartChoice.of(main)
    alt = None if other is None else StartChoice.of(other)
    if alt is None:
        stable_diff = stable_js = np.zeros(len(values), dtype=bool)
    else:
        stable_diff = (used.difference_significant & alt.difference_significant
                       & (np.sign(used.difference) == np.sign(alt.difference)))
        stable_js = used.js_significant & alt.js_significant
    return WindowStarts(start_tokens=k, accuracy_start=float(correct[start].mean()),
                        accuracy_rest=float(correct[~start].mean()), log_norm_start_z=z, used=used, other=alt,
                        stable_difference=stable_diff, stable_js=stable_js)


def analyses(values, correct, window_of, position, token_length, config: AttnKLConfig, device, rng,
             notes: list) -> tuple[inference.Analysis, inference.Analysis | None]:
    """:func:`inference.analyse` with ``config.skip_first`` and with the other handling of window starts (for
    the report's stability statement; None, with a note, where its tests cannot run)."""
    settings = dict(token_length=token_length, shuffle=config.shuffle, n_bins=config.bins,
                    n_permutations=config.n_permutations, correction=config.correction, alpha=config.alpha,
                    device=device)
    main = inference.analyse(values, correct, window_of, position, skip_first=config.skip_first, rng=rng, **settings)
    try:
        other = inference.analyse(values, correct, window_of, position, skip_first=other_skip(config.skip_first),
                                  rng=rng, **settings)
    except LaminaError as err:
        other = None
        notes.append(f"with skip_first={other_skip(config.skip_first)} the tests cannot run ({err}), so the "
                     "report cannot say whether its layers depend on the handling of window starts")
    left_out = [r for r, w in enumerate(main.windows) if w is None]
    if left_out:
        notes.append(f"{len(left_out)} of {len(main.windows)} windows ({', '.join(map(str, left_out))}) have fewer "
                     "than 2 correct or 2 incorrect predictions: they count in the pooled tests but have no "
                     "tests of their own and are left out of the tests across windows")
    return main, other


def compute(model, config: AttnKLConfig, ctx: Context) -> AttnKLResult:
    focus = focus_index(model, config.focus_layer)
    length = window_length(model, config)
    if length - config.skip_first < 2 * 2:
        raise LaminaError(f"skip_first={config.skip_first} leaves {length - config.skip_first} of each window's "
                          f"{length} tokens; two groups of at least 2 tokens need 4 or more (lower skip_first).")
    stim, tokens, values, notes = _record(model, config, length, ctx)
    next_texts = np.array(model.token_texts(tokens["next_id"]), dtype=str)
    if config.labels_from is not None:
        theirs = labels.labels_from(config.labels_from, config, tokens, next_texts)
        tokens = tokens.assign(**{k: theirs[k].to_numpy() for k in theirs})
        notes.append(f"correct and incorrect are the predictions of the model that made the run in "
                     f"{config.labels_from} (labels_from), not {model.name}'s own; the token table's predicted, "
                     "correct and loss columns are that model's")
    with ctx.stage("stats"):
        correct, position = tokens["correct"].to_numpy(dtype=bool), tokens["position"].to_numpy()
        token_length = np.array([len(t) for t in next_texts], dtype=float)
        main, other = analyses(values, correct, tokens["sequence"].to_numpy(), position, token_length, config,
                               model.device if model.device.type == "cuda" else None, ctx.rng, notes)
        starts = window_starts(values, correct, position, main, other, config.skip_first)
        used = values[:, main.keep]
        focus_div = group_divergences(used[focus], main.labels, config.bins, what="log norms")
        lo, hi = config.bins_sweep
        sweep = [(b, group_divergences(used[focus], main.labels, b, what="log norms")) for b in range(lo, hi + 1)]
        # the seed's value at every layer, for the documented relation to the JS divergence
        seed_layers = [group_divergences(row, main.labels, config.bins)["mixture_kl"] / config.bins for row in used]
        _, mw_p = mannwhitneyu(token_length[main.keep][main.labels], token_length[main.keep][~main.labels])
    return AttnKLResult.of(config, main, starts, values=values, tokens=tokens, next_token=next_texts,
                           token_length=token_length, window=length, starts=stim.meta["start"].to_numpy(),
                           focus=focus, focus_divergences=focus_div, sweep=sweep, seed_symmetric_kl=seed_layers,
                           p_mannwhitney=float(mw_p), model=ModelFacts.of(model), notes=notes)
