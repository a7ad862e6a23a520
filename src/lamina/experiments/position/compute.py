"""Seed 000: decode a token's position from its next-token loss (compute: no figures here)."""

from __future__ import annotations

import numpy as np

from ... import data, stimuli
from ...errors import LaminaError
from ...recording import record
from ...stats import classification, fit_logistic, ols
from ...stats.clusters import cluster_mean
from ...stats.multiple import significant
from ..across import across_layers
from ..base import Context, ModelFacts
from .config import PositionConfig
from .result import LEVEL, AcrossMean, AcrossSubsets, PositionResult, Tokens, span


def row_ranges(config: PositionConfig, n_rows: int) -> list[tuple[int, int]]:
    """``(train_start, test_start)`` of each replicate; an error when the split has too few rows."""
    step = span(config)
    need = max(config.train_start, config.test_start) + config.n_samples + (config.replicates - 1) * step
    if need > n_rows:
        room = (n_rows - max(config.train_start, config.test_start) - config.n_samples) // step + 1
        raise LaminaError(f"HellaSwag {config.split} has {n_rows} rows; {config.replicates} replicates of "
                          f"{config.n_samples} training and {config.n_samples} held-out contexts need {need}"
                          + (f". Use --set replicates={room} or fewer, or a smaller n_samples." if room >= 1 else "."))
    return [(config.train_start + r * step, config.test_start + r * step) for r in range(config.replicates)]


def _losses(model, table, ranges, config, ctx):
    """One recording of every replicate's contexts: per (replicate, split) losses ``(n, k)`` float32, token
    texts ``(n, k)`` and HellaSwag rows ``(n,)``, and the stimuli notes."""
    k = config.seqlen - 1
    blocks = [(r, split, start) for r, pair in enumerate(ranges) for split, start in zip(("train", "test"), pair)]
    texts = [text for _, _, start in blocks for text in table["ctx"].iloc[start:start + config.n_samples]]
    stim = stimuli.first_tokens(texts, model, config.seqlen)
    rec = record(model, stim, sites=["loss"], batch_size=config.batch_size, progress=ctx.progress)
    tokens = rec.tokens[rec.tokens.position < k]
    losses = tokens["loss"].to_numpy().reshape(len(stim), k)
    words = tokens["token"].to_numpy(dtype=str).reshape(len(stim), k)
    index = stim.meta["text_index"].to_numpy()  # position in `texts`
    out = {}
    for b, (r, split, start) in enumerate(blocks):
        keep = index // config.n_samples == b
        out[r, split] = (losses[keep], words[keep], start + index[keep] % config.n_samples)
    return out, stim.notes


def _fit(train, test, seed: int, alpha: float) -> dict:
    """OLS (cluster-robust by context) and the logistic decoder of one training set, scored on its test set."""
    k = train.shape[1]
    positions = np.tile(np.arange(k), (len(train), 1)).ravel()
    contexts = np.repeat(np.arange(len(train)), k)
    fit = ols(positions, train.ravel(), names=["loss"], groups=contexts, level=LEVEL)
    iid = ols(positions, train.ravel(), names=["loss"], level=LEVEL)
    logistic = fit_logistic(train.reshape(-1, 1), positions, seed=seed)
    test_positions = np.tile(np.arange(k), (len(test), 1))
    predicted = logistic.predict(test.reshape(-1, 1)).reshape(test.shape)
    held_out = cluster_mean(100.0 * (predicted == test_positions), null=100 / k, alternative="greater", level=LEVEL)
    return {"ols": fit, "iid": iid, "logistic": logistic,
            "train": classification(positions, logistic.predict(train.reshape(-1, 1)), k),
            "test": classification(test_positions.ravel(), predicted.ravel(), k), "held_out": held_out,
            "significant": bool(significant(held_out.p, alpha))}


def _across(fits: list[dict], pooled: dict, chance: float, alpha: float) -> AcrossSubsets:
    """The replicates' held-out accuracy (one-sided against chance) and slope (two-sided against 0), replicates
    as the unit, each test its own family; and how many replicates reach the pooled decision."""
    def test(values, null: float, alternative: str) -> AcrossMean:
        return AcrossMean.of(across_layers(np.asarray(values), alpha=alpha, null=null, alternative=alternative,
                                           correction="none", level=LEVEL))

    return AcrossSubsets(n=len(fits), level=LEVEL,
                         test_accuracy=test([f["held_out"].mean for f in fits], chance, "greater"),
                         slope=test([f["ols"]["params"]["loss"] for f in fits], 0.0, "two-sided"),
                         n_agree=sum(f["significant"] == pooled["significant"] for f in fits))


def compute(model, config: PositionConfig, ctx: Context) -> PositionResult:
    k = config.seqlen - 1
    with ctx.stage("data"):
        table = data.hellaswag(config.split)
        ranges = row_ranges(config, len(table))
    with ctx.stage("record"):
        blocks, notes = _losses(model, table, ranges, config, ctx)
    with ctx.stage("stats"):
        tokens = Tokens.of(blocks)
        pooled = _fit(tokens.train_losses.astype(float), tokens.test_losses.astype(float), ctx.seed, config.alpha)
        fits, across = [pooled], None
        if config.replicates > 1:
            fits = [_fit(blocks[r, "train"][0].astype(float), blocks[r, "test"][0].astype(float), ctx.seed,
                         config.alpha) for r in range(config.replicates)]
            across = _across(fits, pooled, 100 / k, config.alpha)
    return PositionResult.of(config, pooled, fits, ranges, across, tokens, model=ModelFacts.of(model), notes=notes)
