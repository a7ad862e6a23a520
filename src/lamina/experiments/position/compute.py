"""Seed 000: decode a token's position from its next-token loss (compute: no figures here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ... import data, stimuli
from ...errors import LaminaError
from ...record import record
from ...stats import classification, confusion_table, fit_logistic, ols
from ..base import Context, ModelFacts, profile_table
from .result import LogisticFit, OLSFit, PositionResult, SplitScores, Tokens


@dataclass
class PositionConfig:
    seqlen: int = 6  # tokens per context; losses exist for positions 0..seqlen-2
    n_samples: int = 500  # contexts per split
    train_start: int = 0  # HellaSwag rows train_start.. (seed: 0-499)
    test_start: int = 1000  # held-out rows (seed: 1000-1499)
    split: str = "validation"
    batch_size: int = 100

    def check(self):
        if self.seqlen < 3:
            raise LaminaError("seqlen must be at least 3 (two positions to tell apart).")
        if self.n_samples < 2:
            raise LaminaError("n_samples must be at least 2.")
        if self.train_start < 0 or self.test_start < 0:
            raise LaminaError("train_start and test_start must be non-negative.")
        lo, hi = sorted([(self.train_start, "train"), (self.test_start, "test")])
        if lo[0] + self.n_samples > hi[0]:
            raise LaminaError(f"the train rows {self.train_start}.. and test rows {self.test_start}.. overlap "
                              f"with n_samples={self.n_samples}; held-out rows must be distinct.")


def _losses(model, texts, config, ctx):
    """Losses ``(n, k)`` float32, token texts ``(n, k)``, text index ``(n,)`` and the stimuli notes."""
    k = config.seqlen - 1
    stim = stimuli.first_tokens(texts, model, config.seqlen)
    rec = record(model, stim, sites=["loss"], batch_size=config.batch_size, progress=ctx.progress)
    tokens = rec.tokens[rec.tokens.position < k]
    losses = tokens["loss"].to_numpy().reshape(len(stim), k)
    texts = tokens["token"].to_numpy(dtype=str).reshape(len(stim), k)
    return losses, texts, stim.meta["text_index"].to_numpy(), stim.notes


def compute(model, config: PositionConfig, ctx: Context) -> PositionResult:
    k = config.seqlen - 1
    with ctx.stage("data"):
        table = data.hellaswag(config.split)
        need = max(config.train_start, config.test_start) + config.n_samples
        if need > len(table):
            raise LaminaError(f"HellaSwag {config.split} has {len(table)} rows; this config needs {need}.")
        train_texts = table["ctx"].iloc[config.train_start:config.train_start + config.n_samples].tolist()
        test_texts = table["ctx"].iloc[config.test_start:config.test_start + config.n_samples].tolist()
    with ctx.stage("record"):
        train32, train_tokens, train_index, train_notes = _losses(model, train_texts, config, ctx)
        test32, test_tokens, test_index, test_notes = _losses(model, test_texts, config, ctx)
    with ctx.stage("stats"):
        train, test = train32.astype(float), test32.astype(float)
        positions = np.tile(np.arange(k), (len(train), 1)).ravel()
        fit = ols(positions, train.ravel(), names=["loss"])
        logistic = fit_logistic(train.reshape(-1, 1), positions, seed=ctx.seed)
        test_positions = np.tile(np.arange(k), (len(test), 1)).ravel()
        scores = {"train": classification(positions, logistic.predict(train.reshape(-1, 1)), k),
                  "test": classification(test_positions, logistic.predict(test.reshape(-1, 1)), k)}
        split = {name: SplitScores(
            accuracy_by_position=s["accuracy_by_class"], confusion=s["confusion"], accuracy=s["accuracy"],
            p_above_chance=binomtest(int(np.trace(s["confusion"])), int(s["confusion"].sum()), 1 / k,
                                     alternative="greater").pvalue) for name, s in scores.items()}
    return PositionResult(
        n_train=len(train), n_test=len(test), seqlen=config.seqlen,
        loss_by_position=train.mean(axis=0), test_loss_by_position=test.mean(axis=0),
        ols=OLSFit(const=fit["params"]["const"], slope=fit["params"]["loss"], p_const=fit["pvalues"]["const"],
                   p_slope=fit["pvalues"]["loss"], r2=fit["r2"]),
        logistic=LogisticFit(intercepts=logistic.intercept_, coefs=logistic.coef_[:, 0]),
        chance_percent=100 / k, train=split["train"], test=split["test"],
        ols_t_slope=fit["tvalues"]["loss"], model=ModelFacts.of(model), data_notes=tuple(train_notes + test_notes),
        tokens=Tokens(train_losses=train32, test_losses=test32, train_tokens=train_tokens, test_tokens=test_tokens,
                      train_text_index=train_index, test_text_index=test_index))


def _loss_table(losses, texts, text_index, split) -> pd.DataFrame:
    n, k = losses.shape
    return pd.DataFrame({"sequence": np.repeat(np.arange(n), k), "position": np.tile(np.arange(k), n),
                         "token": texts.ravel(), "loss": losses.ravel(), "split": split,
                         "text_index": np.repeat(text_index, k)})


def tables(result: PositionResult) -> dict[str, pd.DataFrame]:
    t, k = result.tokens, result.seqlen - 1
    return {
        "losses": pd.concat([_loss_table(t.train_losses, t.train_tokens, t.train_text_index, "train"),
                             _loss_table(t.test_losses, t.test_tokens, t.test_text_index, "test")],
                            ignore_index=True),
        "confusion_train": confusion_table(result.train.confusion, "position"),
        "confusion_test": confusion_table(result.test.confusion, "position"),
        "accuracy_by_position": pd.DataFrame({
            "position": np.arange(k), "train_percent": result.train.accuracy_by_position,
            "test_percent": result.test.accuracy_by_position, "mean_loss_train": result.loss_by_position,
            "mean_loss_test": result.test_loss_by_position}),
    }


def profiles(result: PositionResult) -> pd.DataFrame:
    """No per-layer metrics: position reads only the model's output (an empty profile table)."""
    return profile_table()
