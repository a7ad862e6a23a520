"""Issue 27: the laminar profile of prediction itself, by the logit lens (and the tuned lens) at every
``hidden`` entry (compute: no figures here).

Windows of a book (:func:`lamina.stimuli.windows`) are recorded at every ``hidden`` entry with the loss,
a group of windows at a time (at most :data:`RECORD_BYTES` of hidden states in memory). Each entry is
decoded through the model's final norm and LM head (:mod:`lamina.models.head`; the last entry, the final
norm's output, through the head alone), streamed over the vocabulary (:mod:`.decode`), and per token:
cross-entropy against the next token, KL(final || lens), top-1 agreement with the model's own prediction
and the lens's entropy. Per window (the replicate) the mean of each; per entry the windows' mean with a t
interval. Before any of that, the built-in check: the last entry's cross-entropy must be the recording's
own loss at every token, or the model is refused (a norm, soft-cap or logit scale lamina does not apply
as the model does would make every entry wrong).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ... import data, stimuli
from ...errors import LaminaError
from ...models.head import lm_head
from ...models.identity import weights_identity
from ...recording import record
from ...stats.replicates import t_interval
from ..base import Context, ModelFacts
from .config import LENSES, LensConfig
from . import decode, tuned
from .result import METRICS, Check, Crossing, Grid, Lens, LensResult, Profile, Training, Windows

LEVEL = 95.0  # every interval
#: hidden entries of one group of windows held in memory (float32; twice that while they are copied out of the
#: recording); more windows are recorded group by group
RECORD_BYTES = 256 << 20
#: the recording's own forward pass computes a batch's full logits for its loss (HF does): batch × tokens × V
#: float32 at most this many bytes, at least one window
LOGIT_BYTES = 256 << 20
BATCH_TOKENS = 1024  # and at most about this many tokens per forward pass
#: |last entry's cross-entropy − the model's own loss| allowed per token, nats: float32 rounding of two
#: matrix products in another order; 16-bit models' own logits are rounded to 8 or 11 bits
TOLERANCE = {torch.float32: 2e-3, torch.float64: 2e-3}
TOLERANCE_16BIT = 0.25
GRID = 12  # positions of window 0 (its last) whose top-1 tokens are kept for the predictions figure


def window_length(model, config: LensConfig) -> int:
    room = model.context_length - int(model.prepend_bos)
    if config.window > room:
        bos = " minus 1 for the BOS token" if model.prepend_bos else ""
        raise LaminaError(f"window={config.window} does not fit {model.name}'s context of {model.context_length} "
                          f"tokens{bos}; use --set window={room} or less.")
    return config.window


def record_batch(model, length: int) -> int:
    """Windows per forward pass: the pass's full logits stay under :data:`LOGIT_BYTES`."""
    tokens = length + int(model.prepend_bos)
    return max(1, min(BATCH_TOKENS // tokens, LOGIT_BYTES // (4 * tokens * model.vocab_size)))


def window_groups(model, n_windows: int, length: int) -> list[np.ndarray]:
    """Consecutive windows whose hidden entries together stay under :data:`RECORD_BYTES` (at least one)."""
    per_window = (model.n_layers + 1) * length * model.d_model * 4
    size = max(1, RECORD_BYTES // per_window)
    return [np.arange(a, min(a + size, n_windows)) for a in range(0, n_windows, size)]


def entries(rec, known: np.ndarray, n_entries: int) -> np.ndarray:
    """``(E, N, d)`` float32: every ``hidden`` entry at the recording's tokens with a known next token."""
    return np.stack([rec.flat("hidden", e)[known] for e in range(n_entries)]).astype(np.float32, copy=False)


def window_means(values: np.ndarray, window_of: np.ndarray, n_windows: int) -> np.ndarray:
    """``(..., N)`` per-token values -> ``(..., n_windows)`` means over each window's tokens (NaN: none)."""
    onehot = np.zeros((len(window_of), n_windows))
    onehot[np.arange(len(window_of)), window_of] = 1.0
    counts = onehot.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, (values @ onehot) / counts, np.nan)


def check_last_entry(model, head, lens_ce: np.ndarray, model_loss: np.ndarray) -> float:
    """The largest |lens − model| loss over the tokens, or a LaminaError when it exceeds the tolerance."""
    diff = np.abs(lens_ce - model_loss)
    worst = float(diff.max()) if diff.size else 0.0
    tol = tolerance(model)
    if not worst <= tol:  # NaN fails too
        cfg = model.text_config
        raise LaminaError(
            f"{model.name}: decoding the last hidden entry with its LM head does not give the model's own loss "
            f"(largest difference {worst:.3g} nats, {int((~(diff <= tol)).sum())} of {diff.size} tokens beyond "
            f"{tol:g}); lamina's head for {getattr(cfg, 'model_type', '?')} (soft-cap {head.softcap}, logit scale "
            f"{head.logit_scale:g}, hidden scale {head.hidden_scale:g}) is not what its forward computes, so every "
            "lens entry would be wrong.")
    return worst


def tolerance(model) -> float:
    return TOLERANCE.get(model.dtype, TOLERANCE_16BIT)


def profile(values: np.ndarray) -> Profile:
    """``(E, R)`` per-window values -> the windows' mean and t interval per entry."""
    mean, low, high = t_interval(values.T, LEVEL)
    return Profile(mean=mean, ci_low=low, ci_high=high)


def crossing(agreement: Profile) -> Crossing:
    """The first entry whose mean agreement exceeds one half, and the first whose interval does."""
    above = np.flatnonzero(agreement.mean > 0.5)
    sure = np.flatnonzero(agreement.ci_low > 0.5)
    i = int(above[0]) if len(above) else -1
    pick = (lambda a: float(a[i])) if i >= 0 else (lambda a: float("nan"))
    return Crossing(entry=i, mean=pick(agreement.mean), ci_low=pick(agreement.ci_low),
                    ci_high=pick(agreement.ci_high), first_above=int(sure[0]) if len(sure) else -1)


def fit_tuned(model, head, text: str, evaluated, length: int, config: LensConfig, ctx: Context):
    """The tuned lens's translators (cached), and how they were fitted: ``(translate, Training, cache name)``."""
    with ctx.stage("data"):
        train = tuned.training_windows(text, model, length, evaluated, config.tuned_windows)
    identity = weights_identity(model)
    key = tuned.cache_key(identity, model, train, config, ctx.seed) if identity else None
    fitted = tuned.load_cached(key) if key else None
    name = None if key is None else f"{key[:32]}.npz"
    if fitted is None:
        with ctx.stage("record"):
            rec = record(model, train, sites=["hidden"], loss=False, batch_size=record_batch(model, length),
                         progress=ctx.progress)
        known = rec.tokens["next_id"].to_numpy() >= 0
        hidden = entries(rec, known, model.n_layers + 1)
        del rec
        with ctx.stage("train"):
            fitted = tuned.fit(model, head, hidden, steps=config.tuned_steps, batch=config.tuned_batch,
                               lr=config.tuned_lr, seed=ctx.seed, progress=ctx.progress)
        if key:
            tuned.save_cached(key, fitted)
    training = Training(n_windows=len(train), n_tokens=int(train.lengths.sum()), steps=config.tuned_steps,
                        batch=config.tuned_batch, lr=config.tuned_lr, kl_first=fitted["kl_first"],
                        kl_last=fitted["kl_last"])
    translate = tuned.translator(torch.as_tensor(fitted["a"], dtype=torch.float32),
                                 torch.as_tensor(fitted["b"], dtype=torch.float32))
    return translate, training, name


def compute(model, config: LensConfig, ctx: Context) -> LensResult:
    length = window_length(model, config)
    head = lm_head(model)
    n_entries = model.n_layers + 1
    with ctx.stage("data"):
        text = data.book(config.book)
        stim = stimuli.windows(text, model, length, config.replicates,
                               max_length=model.context_length - int(model.prepend_bos))
    r = len(stim)
    lenses: list = [None]
    training = cache_name = None
    if config.lens == "tuned":
        translate, training, cache_name = fit_tuned(model, head, text, stim, length, config, ctx)
        lenses.append(translate)
    values = np.full((len(lenses), len(METRICS), n_entries, r), np.nan)
    n_tokens, loss_sum, lens_sum, worst = np.zeros(r, np.int64), np.zeros(r), 0.0, 0.0
    grid = None
    for group in window_groups(model, r, length):
        with ctx.stage("record"):
            rec = record(model, stim.subset(group), sites=["hidden"], batch_size=record_batch(model, length),
                         progress=ctx.progress)
        tokens = rec.tokens
        known = tokens["next_id"].to_numpy() >= 0  # only the book's last token has no next token
        window_of = group[tokens["sequence"].to_numpy()[known]]
        targets = tokens["next_id"].to_numpy()[known]
        model_loss = tokens["loss"].to_numpy(dtype=float)[known]
        hidden = entries(rec, known, n_entries)
        del rec
        with ctx.stage("lens"):
            lens_ce = decode.final_cross_entropy(head, torch.as_tensor(hidden[-1]),
                                                 torch.as_tensor(targets, dtype=torch.int64), config.vocab_chunk)
            worst = max(worst, check_last_entry(model, head, lens_ce, model_loss))
            lens_sum += float(lens_ce.sum())
            np.add.at(n_tokens, window_of, 1)
            np.add.at(loss_sum, window_of, model_loss)
            for k, translate in enumerate(lenses):
                metrics, top1 = decode.token_metrics(head, hidden, targets, config.vocab_chunk, translate)
                values[k][..., group] = window_means(metrics, window_of - group[0], len(group))
                if group[0] == 0:
                    grid = _grid(grid, k, len(lenses), tokens, known, top1)
    notes = list(stim.notes)
    if n_tokens.sum() < r * length:
        notes.append(f"the last window ends with the book, so its last token has no next token and is left out "
                     f"({int(n_tokens.sum())} of {r * length} tokens are used)")
    with ctx.stage("stats"):
        built = []
        for k, kind in enumerate(LENSES[:len(lenses)]):
            profiles = {m: profile(values[k, i]) for i, m in enumerate(METRICS)}
            built.append(Lens(kind=kind, **profiles, agreement_crossing=crossing(profiles["top1_agreement"])))
    total = int(n_tokens.sum())
    check = Check(max_abs_difference=worst, tolerance=tolerance(model), lens_loss=lens_sum / total,
                  model_loss=float(loss_sum.sum() / total))
    return LensResult(
        n_tokens=total, window=length, n_replicates=r, level=LEVEL, vocab_size=head.vocab_size,
        vocab_chunk=config.vocab_chunk, softcap=head.softcap, logit_scale=head.logit_scale, check=check,
        lenses=tuple(built), training=training, model=ModelFacts.of(model), data_notes=tuple(notes),
        tuned_cache=cache_name, token_texts=_texts(model, grid),
        windows=Windows(start=stim.meta["start"].to_numpy().astype(np.int64), n_tokens=n_tokens,
                        model_loss=loss_sum / np.maximum(n_tokens, 1), values=values),
        grid=Grid(**grid))


def _grid(grid, k: int, n_lenses: int, tokens: pd.DataFrame, known: np.ndarray, top1: np.ndarray):
    """Window 0's last :data:`GRID` tokens: inputs, next tokens, and each lens's top-1 id and probability."""
    rows = np.flatnonzero(tokens["sequence"].to_numpy()[known] == 0)[-GRID:]
    if grid is None:
        ids = tokens["token_id"].to_numpy()[known][rows]
        grid = {"position": tokens["position"].to_numpy()[known][rows], "token_id": ids,
                "next_id": tokens["next_id"].to_numpy()[known][rows],
                "top1_id": np.zeros((n_lenses, top1.shape[1], len(rows)), np.int64),
                "top1_p": np.zeros((n_lenses, top1.shape[1], len(rows)))}
    grid["top1_id"][k] = top1[0][:, rows].astype(np.int64)
    grid["top1_p"][k] = top1[1][:, rows]
    return grid


def _texts(model, grid: dict) -> dict[str, str]:
    ids = np.unique(np.concatenate([grid["token_id"], grid["next_id"], grid["top1_id"].ravel()]))
    return {str(int(i)): model.tokenizer.decode([int(i)]) for i in ids if i >= 0}
