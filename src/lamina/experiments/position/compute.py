"""Seed 000: decode a token's position from its next-token loss (compute: no figures here)."""

from __future__ import annotations


import numpy as np

from ... import data, stimuli
from ...errors import LaminaError
from ...recording import record
from ...stats import classification, fit_logistic, ols
from ...stats.clusters import cluster_mean
from ...stats.multiple import significant
from ...stats.replicates import across_replicates
from ..base import Context, ModelFacts
from .config import PositionConfig
from .result import (LEVEL, AcrossMean, AcrossSubsets, HeldOutScores, LogisticFit, OLSFit, PositionResult, Subset,
                     Tokens, TrainScores, span)


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


def _across(fits, chance: float, alpha: float) -> AcrossSubsets:
    def summary(values, null, alternative):
        res = across_replicates(np.asarray(values)[:, None], null=null, alternative=alternative, level=LEVEL,
                                correction="none")
        return AcrossMean(mean=res.mean[0], ci_low=res.ci_low[0], ci_high=res.ci_high[0], t=res.t[0], p=res.p[0],
                          significant=bool(significant(res.p[0], alpha)))

    return dict(n=len(fits), level=LEVEL,
                test_accuracy=summary([f["held_out"].mean for f in fits], chance, "greater"),
                slope=summary([f["ols"]["params"]["loss"] for f in fits], 0.0, "two-sided"))


def compute(model, config: PositionConfig, ctx: Context) -> PositionResult:
    k = config.seqlen - 1
    with ctx.stage("data"):
        table = data.hellaswag(config.split)
        ranges = row_ranges(config, len(table))
    with ctx.stage("record"):
        blocks, notes = _losses(model, table, ranges, config, ctx)
    with ctx.stage("stats"):
        reps = range(config.replicates)
        train32 = np.concatenate([blocks[r, "train"][0] for r in reps])
        test32 = np.concatenate([blocks[r, "test"][0] for r in reps])
        train, test = train32.astype(float), test32.astype(float)
        pooled = _fit(train, test, ctx.seed, config.alpha)
        fits = [_fit(blocks[r, "train"][0].astype(float), blocks[r, "test"][0].astype(float), ctx.seed, config.alpha)
                for r in reps] if config.replicates > 1 else [pooled]
        across = None
        if config.replicates > 1:
            across = AcrossSubsets(**_across(fits, 100 / k, config.alpha),
                                   n_agree=sum(f["significant"] == pooled["significant"] for f in fits))
    fit, iid, held_out = pooled["ols"], pooled["iid"], pooled["held_out"]
    subsets = tuple(Subset(
        replicate=r, train_start=ranges[r][0], test_start=ranges[r][1], n_train=len(blocks[r, "train"][0]),
        n_test=len(blocks[r, "test"][0]), slope=f["ols"]["params"]["loss"], slope_ci_low=f["ols"]["ci_low"]["loss"],
        slope_ci_high=f["ols"]["ci_high"]["loss"], p_slope=f["ols"]["pvalues"]["loss"],
        test_accuracy=f["held_out"].mean, test_ci_low=f["held_out"].ci_low, test_ci_high=f["held_out"].ci_high,
        p_above_chance=f["held_out"].p, significant=f["significant"], agrees=f["significant"] == pooled["significant"])
        for r, f in zip(reps, fits))
    s_train, s_test = pooled["train"], pooled["test"]
    return PositionResult(
        n_train=len(train), n_test=len(test), seqlen=config.seqlen, n_replicates=config.replicates,
        alpha=config.alpha, loss_by_position=train.mean(axis=0), test_loss_by_position=test.mean(axis=0),
        ols=OLSFit(const=fit["params"]["const"], slope=fit["params"]["loss"], se_slope=fit["bse"]["loss"],
                   ci_low=fit["ci_low"]["loss"], ci_high=fit["ci_high"]["loss"], p_const=fit["pvalues"]["const"],
                   p_slope=fit["pvalues"]["loss"], r2=fit["r2"], n_contexts=fit["n_groups"],
                   se_slope_iid=iid["bse"]["loss"], p_const_iid=iid["pvalues"]["const"],
                   p_slope_iid=iid["pvalues"]["loss"]),
        logistic=LogisticFit(intercepts=pooled["logistic"].intercept_, coefs=pooled["logistic"].coef_[:, 0]),
        chance_percent=100 / k,
        train=TrainScores(accuracy_by_position=s_train["accuracy_by_class"], confusion=s_train["confusion"],
                          accuracy=s_train["accuracy"]),
        test=HeldOutScores(accuracy_by_position=s_test["accuracy_by_class"], confusion=s_test["confusion"],
                           accuracy=s_test["accuracy"], ci_low=held_out.ci_low, ci_high=held_out.ci_high,
                           p_above_chance=held_out.p, significant=pooled["significant"]),
        replicates=subsets, across=across, ols_t_slope=fit["tvalues"]["loss"], model=ModelFacts.of(model),
        data_notes=tuple(notes),
        tokens=Tokens(train_losses=train32, test_losses=test32,
                      train_tokens=np.concatenate([blocks[r, "train"][1] for r in reps]),
                      test_tokens=np.concatenate([blocks[r, "test"][1] for r in reps]),
                      train_text_index=np.concatenate([blocks[r, "train"][2] for r in reps]),
                      test_text_index=np.concatenate([blocks[r, "test"][2] for r in reps]),
                      train_replicate=np.concatenate([np.full(len(blocks[r, "train"][0]), r) for r in reps]),
                      test_replicate=np.concatenate([np.full(len(blocks[r, "test"][0]), r) for r in reps])))
