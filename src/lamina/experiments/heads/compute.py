"""Issue 27: attention heads layer by layer (compute: no figures here).

Windows of a book (the replicates) are recorded with ``attn.pattern`` and ``attn.heads`` at every layer
and ``resid`` at every entry, the BOS kept as slot 0 where one is fed (``keep_bos=True``) so query slot q
is model position q. Layers are recorded in groups that fit a memory budget and reduced to per-window
scores at once (``lamina.stats.attention``); the residual stream gives massive activations; the heads'
output norms on correctly vs incorrectly predicted tokens give seed 001's question per head.
"""

from __future__ import annotations

import numpy as np

from ... import data, stimuli
from ...errors import LaminaError
from ...recording import record
from ...stats import attention as scores
from ...stats.replicates import t_interval
from .. import labelled
from ..across import AcrossLayers, across_layers
from ..base import Context, ModelFacts
from .config import HeadsConfig
from .result import N_FLIPS, SCORES, HeadScore, HeadsResult, LayerSummary, Massive, Tokens, Windows

LEVEL = 95.0
BATCH_TOKENS = 1024  # windows per forward pass: about this many tokens
LAYER_BYTES = 256 * 2**20  # the pattern and heads of one group of layers (float32): about this many bytes


def attention_kinds(config, n_layers: int) -> tuple[tuple[str, ...], int | None]:
    """Per layer "local" (sliding-window attention) or "global", and the sliding window (None without local
    layers), from an HF text config: ``layer_types`` (Gemma-3, Qwen2, ...), else ``sliding_window_pattern``
    (every N-th layer global, older Gemma-3 configs), else every layer global."""
    types = getattr(config, "layer_types", None)
    window = getattr(config, "sliding_window", None)
    if types is not None and len(types) == n_layers:
        kinds = tuple("local" if "sliding" in str(t) else "global" for t in types)
    elif isinstance(getattr(config, "sliding_window_pattern", None), int) and window:
        every = config.sliding_window_pattern
        kinds = tuple("global" if (i + 1) % every == 0 else "local" for i in range(n_layers))
    else:
        kinds = ("global",) * n_layers
    return kinds, (int(window) if "local" in kinds and window else None)


def window_length(model, config: HeadsConfig) -> int:
    room = model.context_length - int(model.prepend_bos)
    if config.window > room:
        raise LaminaError(f"window={config.window} does not fit {model.name}'s context of {model.context_length} "
                          f"tokens; use --set window={room} or less.")
    return config.window


def split_differences(norms, correct, use) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, head and window, the mean norm over correct and over incorrect tokens.

    Args:
        norms: ``(L, R, P, H)`` per-slot head-output norms.
        correct, use: ``(R, P)`` bool: the token is predicted correctly; the token is in the split.
    Returns:
        ``(correct_mean, incorrect_mean)``, each ``(L, H, R)``, NaN where a window has no such token.
    """
    out = []
    for mask in (correct & use, ~correct & use):
        n = mask.sum(axis=1)  # (R,)
        sums = np.einsum("lrph,rp->lhr", norms, mask.astype(norms.dtype))
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(n > 0, sums / np.maximum(n, 1), np.nan))
    return out[0], out[1]


def head_scores(values: np.ndarray) -> HeadScore:
    """``(L, H, R)`` per-window values -> mean and t interval per layer and head (windows with NaN left out)."""
    keep = np.isfinite(values).all(axis=(0, 1))
    l, h, _ = values.shape
    if keep.sum() < 2:  # no interval (e.g. induction when fewer than 2 windows repeat a token)
        nan = np.full((l, h), np.nan)
        return HeadScore(mean=nan, ci_low=nan, ci_high=nan)
    mean, low, high = t_interval(values[:, :, keep].reshape(l * h, -1).T, LEVEL)
    return HeadScore(mean=mean.reshape(l, h), ci_low=low.reshape(l, h), ci_high=high.reshape(l, h))


def head_tests(diff: np.ndarray, correction: str, alpha: float, rng) -> AcrossLayers:
    """``(L, H, R)`` correct − incorrect per window -> t interval and test against 0 per layer and head (each
    ``(L, H)``), corrected over L × H."""
    # windows first: a view whose layer × head tests are one family, in the order of diff.reshape(L * H, R)
    return across_layers(np.moveaxis(diff, -1, 0), alpha=alpha, correction=correction, level=LEVEL, n_flips=N_FLIPS,
                         rng=rng)


def layer_groups(model, n_windows: int, n_positions: int) -> list[list[int]]:
    """Consecutive layers whose pattern and head outputs (float32) fit :data:`LAYER_BYTES` together."""
    per_layer = 4 * n_windows * n_positions * model.n_heads * (n_positions + model.d_model)
    size = max(1, LAYER_BYTES // per_layer)
    layers = list(range(model.n_layers))
    return [layers[i:i + size] for i in range(0, len(layers), size)]


def compute(model, config: HeadsConfig, ctx: Context) -> HeadsResult:
    length = window_length(model, config)
    with ctx.stage("data"):
        stim = stimuli.windows(data.book(config.book), model, length, config.replicates,
                               max_length=model.context_length - int(model.prepend_bos))
    bos = bool(model.prepend_bos)
    r, p, n_layers, n_heads = len(stim), length + int(bos), model.n_layers, model.n_heads
    batch = max(1, BATCH_TOKENS // p)
    per_window = {name: np.full((n_layers, n_heads, r), np.nan) for name in SCORES}
    norm_c, norm_i = (np.full((n_layers, n_heads, r), np.nan) for _ in range(2))
    massive = ids = correct = use = None
    for g, group in enumerate(layer_groups(model, r, p)):
        with ctx.stage("record"):
            # the first pass also gives the token table (loss) and the residual stream at every entry
            sites = {"attn.pattern": group, "attn.heads": group, **({"resid": None} if g == 0 else {})}
            rec = record(model, stim, sites=list(sites), layers=sites, loss=g == 0, batch_size=batch,
                         keep_bos=bos, progress=ctx.progress)
        with ctx.stage("stats"):
            if g == 0:
                tok = rec.tokens
                seq, slot = tok["sequence"].to_numpy(), tok["slot"].to_numpy()
                ids = np.zeros((r, p), dtype=np.int64)
                ids[seq, slot] = tok["token_id"].to_numpy()
                correct, use = np.zeros((r, p), bool), np.zeros((r, p), bool)
                stimulus = (~tok["bos"].to_numpy(bool)) if "bos" in tok else np.ones(len(tok), bool)
                known = stimulus & (tok["next_id"].to_numpy() >= 0)
                tokens = {"window": seq[known], "position": tok["position"].to_numpy()[known],
                          "next_id": tok["next_id"].to_numpy()[known], "correct": tok["correct"].to_numpy(bool)[known]}
                tokens["split_correct"] = tokens["correct"] if config.labels_from is None else labelled.read_labels(
                    config.labels_from, config, tokens["window"], tokens["position"], tokens["next_id"])
                correct[seq[known], slot[known]] = tokens["split_correct"]
                use[seq, slot] = known & (tok["position"].to_numpy() >= config.skip_first)
                massive = scores.massive_activations(np.asarray(rec["resid"]))
            pattern = np.asarray(rec["attn.pattern"], dtype=np.float64)  # (Lg, R, H, P, P)
            for name, fn in (("sink", scores.sink_score), ("previous", scores.previous_score),
                             ("entropy", scores.pattern_entropy)):
                per_window[name][group] = fn(pattern).transpose(0, 2, 1)
            for w in range(r):  # the induction mask depends on the window's tokens
                per_window["induction"][group, :, w] = scores.induction_score(pattern[:, w], ids[w])
            del pattern
            norms = np.linalg.norm(np.asarray(rec["attn.heads"], dtype=np.float32), axis=-1)  # (Lg, R, P, H)
            norm_c[group], norm_i[group] = split_differences(norms.astype(np.float64), correct, use)
            del rec, norms
    notes = list(stim.notes)
    if config.labels_from is not None:
        notes.append(f"the correct/incorrect split uses the labels of the run {config.labels_from} (labels_from): "
                     f"{int(tokens['split_correct'].sum())} of {len(tokens['split_correct'])} tokens correct there, "
                     f"{int(tokens['correct'].sum())} here")
    kinds, sliding = attention_kinds(model.text_config, n_layers)
    if sliding is not None and sliding >= p:
        notes.append(f"the local layers' sliding window ({sliding} tokens) is longer than a window here ({p} "
                     "positions), so local and global layers see the same keys in this run")
    with ctx.stage("stats"):
        induction_ok = np.isfinite(per_window["induction"][0, 0])
        if induction_ok.sum() < 2:
            notes.append(f"only {int(induction_ok.sum())} of {r} windows repeat a token, so the induction score is "
                         "not computed (longer windows: --set window=N)")
        elif induction_ok.sum() < r:
            notes.append(f"{r - int(induction_ok.sum())} of {r} windows repeat no token: left out of the induction "
                         "score's interval")
        split_ok = np.isfinite(norm_c[0, 0]) & np.isfinite(norm_i[0, 0])
        n_split = int(split_ok.sum())
        if n_split < r:
            notes.append(f"{r - n_split} of {r} windows have no correct or no incorrect prediction after the first "
                         f"{config.skip_first} tokens: left out of the correct/incorrect split")
        test = (head_tests((norm_c - norm_i)[:, :, split_ok], config.correction, config.alpha, ctx.rng)
                if n_split >= 2 else None)
        if test is None:
            notes.append("fewer than 2 windows hold both correct and incorrect predictions: the correct/incorrect "
                         "difference is not tested")
        first_share = (massive["per_sequence_position"] == 0).mean(axis=1)
    head = {name: head_scores(per_window[name]) for name in SCORES}
    return HeadsResult(
        n_tokens=r * length, window=length, n_replicates=r, n_heads=n_heads, first_is_bos=bos, attention_kind=kinds,
        sliding_window=sliding, level=LEVEL, correction=config.correction, alpha=config.alpha,
        skip_first=config.skip_first, accuracy=float(correct[use].mean()) if use.any() else float("nan"),
        n_split_windows=n_split, induction_windows=int(induction_ok.sum()),
        **head, norm_difference=test,
        massive=Massive(ratio=massive["ratio"], top=massive["top"], median=massive["median"],
                        window=massive["sequence"], position=massive["position"], dim=massive["dim"],
                        token=tuple(model.token_texts(ids[massive["sequence"], massive["position"]].tolist())),
                        first_position_share=first_share),
        sink_max=over_heads(head["sink"], "max"), previous_max=over_heads(head["previous"], "max"),
        induction_max=over_heads(head["induction"], "max"), entropy_mean=over_heads(head["entropy"], "mean"),
        model=ModelFacts.of(model), data_notes=tuple(notes), labels_from=config.labels_from,
        tokens=Tokens(**tokens),
        windows=Windows(start=stim.meta["start"].to_numpy().astype(np.int64), **per_window, norm_correct=norm_c,
                        norm_incorrect=norm_i, massive_position=massive["per_sequence_position"]))


def over_heads(score: HeadScore, reduce: str) -> LayerSummary:
    """A per-layer summary of an ``(L, H)`` score: the head with the largest mean (``"max"``) with that head's
    interval, or the mean over heads (``"mean"``) with the mean of the heads' bounds."""
    if reduce == "mean":
        n = len(score.mean)
        return LayerSummary(value=score.mean.mean(axis=1), ci_low=score.ci_low.mean(axis=1),
                            ci_high=score.ci_high.mean(axis=1), head=np.full(n, -1))
    finite = np.isfinite(score.mean)
    pick = np.where(finite.any(axis=1), np.argmax(np.where(finite, score.mean, -np.inf), axis=1), -1)
    rows = np.arange(len(pick))
    return LayerSummary(value=score.mean[rows, pick], ci_low=score.ci_low[rows, pick],
                        ci_high=score.ci_high[rows, pick], head=pick)  # pick -1: all NaN, so NaN
