"""Issue 26: the laminar lesion profile (compute: no figures here).

A sweep (``lamina.recording.prefix.sweep``) over windows of a book: per batch of windows, one clean
pass (which also records the ablated sites: a mean or resample ablation's reference), then per site
and layer one ablated pass that replays the clean blocks before the ablated one and computes the rest,
token outputs only. Per window (the replicate): Δ mean loss and Δ accuracy,
edited − clean, and Δ loss on the tokens the clean model predicts correctly and incorrectly.
"""

from __future__ import annotations

import numpy as np

from ... import data, stimuli
from ...errors import LaminaError
from ...recording import edits
from ...recording.prefix import sweep
from ..base import Context, ModelFacts
from .config import LesionConfig
from . import labels
from .result import LEVEL, LesionResult, SiteLesion, Tokens, Windows

BATCH_TOKENS = 1024  # windows per forward pass: about this many tokens


def window_length(model, config: LesionConfig) -> int:
    room = model.context_length - int(model.prepend_bos)
    if config.window > room:
        bos = " minus 1 for the BOS token" if model.prepend_bos else ""
        raise LaminaError(f"window={config.window} does not fit {model.name}'s context of {model.context_length} "
                          f"tokens{bos}; use --set window={room} or less.")
    return config.window


def ablation_edit(ablation: str, site: str, layer: int, clean, seed: int):
    """The edit that lesions ``site`` at ``layer``; ``clean`` is the clean recording (the reference)."""
    if ablation == "zero":
        return edits.zero(site, layers=layer)
    if ablation == "mean":
        return edits.mean(site, layers=layer, reference=clean)
    return edits.resample(site, layers=layer, source=clean, seed=seed)


def ablation_sweep(model, stim, ablation: str, sites, seed: int, batch_size: int, progress=None, layers=None):
    """Token columns (see ``lamina.recording.prefix.sweep``) of the clean run and, per site and layer
    (``layers``: None for every block), of the run with that site ablated at that layer: ``(clean,
    ablated)`` with ``ablated[s][i]`` for ``sites[s]`` at ``layers[i]``."""
    layers = list(range(model.n_layers)) if layers is None else list(layers)

    def edit_sets(reference):
        return [[ablation_edit(ablation, site, layer, reference, seed)] for site in sites for layer in layers]

    if ablation == "zero":
        clean, *edited = sweep(model, stim, edit_sets(None), batch_size=batch_size, progress=progress)
    else:  # a mean or resample ablation draws from the clean sites, recorded in the sweep's clean passes
        clean, *edited = sweep(model, stim, edit_sets, batch_size=batch_size, progress=progress,
                               reference_sites=list(sites), reference_layers=layers)
    return clean, [edited[s * len(layers):(s + 1) * len(layers)] for s in range(len(sites))]


def window_means(values, window_of, n_windows: int, mask=None) -> np.ndarray:
    """Mean of ``values`` per window (over ``mask``'s tokens); NaN for a window with none."""
    keep = np.ones(len(values), bool) if mask is None else np.asarray(mask, bool)
    sums = np.bincount(window_of[keep], weights=values[keep], minlength=n_windows)
    counts = np.bincount(window_of[keep], minlength=n_windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def compute(model, config: LesionConfig, ctx: Context) -> LesionResult:
    length = window_length(model, config)
    with ctx.stage("data"):
        stim = stimuli.windows(data.book(config.book), model, length, config.replicates,
                               max_length=model.context_length - int(model.prepend_bos))
    batch = max(1, BATCH_TOKENS // length)
    with ctx.stage("record"):
        clean, ablated = ablation_sweep(model, stim, config.ablation, config.sites, ctx.seed, batch, ctx.progress)
    known = clean["next_id"] >= 0  # only the book's last token has no next token
    window_of = clean["sequence"][known]
    r = len(stim)
    loss0, correct0 = clean["loss"][known].astype(float), clean["correct"][known]
    position, next_id = clean["position"][known], clean["next_id"][known]
    split0 = correct0 if config.labels_from is None else labels.labels_from(
        config.labels_from, config, window_of, position, next_id)
    shape = (len(config.sites), model.n_layers, r)
    d_loss, d_acc, d_cor, d_inc = (np.full(shape, np.nan) for _ in range(4))
    for s, per_layer in enumerate(ablated):
        for layer, cols in enumerate(per_layer):
            diff = cols["loss"][known].astype(float) - loss0
            d_loss[s, layer] = window_means(diff, window_of, r)
            d_acc[s, layer] = window_means(cols["correct"][known].astype(float) - correct0, window_of, r)
            d_cor[s, layer] = window_means(diff, window_of, r, split0)
            d_inc[s, layer] = window_means(diff, window_of, r, ~split0)
    notes = list(stim.notes)
    if config.labels_from is not None:
        notes.append(f"the correct/incorrect split uses the clean labels of the run {config.labels_from} "
                     f"(labels_from): {int(split0.sum())} of {len(split0)} tokens correct there, "
                     f"{int(correct0.sum())} here")
    if not known.all():
        notes.append(f"the last window ends with the book, so its last token has no next token and is left out "
                     f"({int(known.sum())} of {len(known)} tokens are used)")
    with ctx.stage("stats"):
        split_ok = np.isfinite(d_cor[0, 0]) & np.isfinite(d_inc[0, 0])  # the clean labels: same for every layer
        n_split = int(split_ok.sum())
        if n_split < r:
            notes.append(f"{r - n_split} of {r} windows have no correct or no incorrect clean prediction: they are "
                         "left out of the correct/incorrect split")
        if n_split < 2:
            notes.append("fewer than 2 windows have both correct and incorrect clean predictions, so the "
                         "correct/incorrect split is not tested")
        windows = Windows(start=stim.meta["start"].to_numpy().astype(np.int64),
                          clean_loss=window_means(loss0, window_of, r),
                          clean_accuracy=window_means(correct0.astype(float), window_of, r),
                          n_tokens=np.bincount(window_of, minlength=r).astype(np.int64),
                          n_correct=np.bincount(window_of[correct0], minlength=r).astype(np.int64),
                          delta_loss=d_loss, delta_accuracy=d_acc, delta_loss_correct=d_cor, delta_loss_incorrect=d_inc)
        sites = tuple(SiteLesion.of(site, windows, s, split_ok, config.correction, config.alpha, ctx.rng)
                      for s, site in enumerate(config.sites))
    return LesionResult(
        n_tokens=int(known.sum()), window=length, n_replicates=r, ablation=config.ablation,
        correction=config.correction, alpha=config.alpha, level=LEVEL, clean_loss=float(loss0.mean()),
        clean_accuracy=float(correct0.mean()), n_correct=int(correct0.sum()), sites=sites,
        model=ModelFacts.of(model), data_notes=tuple(notes), labels_from=config.labels_from, windows=windows,
        tokens=Tokens(window=window_of.astype(np.int64), position=position.astype(np.int64),
                      next_id=next_id.astype(np.int64), loss=loss0, correct=correct0, split_correct=split0))
