"""Seed 000: decode a token's position from its next-token loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from .. import data, stimuli
from ..errors import LaminaError
from ..plots import figure
from ..plots.confusion import accuracy_bars, confusion_heatmap
from ..plots.distributions import density_lines, means_with_points
from ..plots.regression import coefficient_bars, jitter_scatter
from ..record import record
from ..stats import classification, confusion_table, fit_logistic, ols
from .base import Context, Experiment, Result


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


def _losses(model, texts, config, ctx, label):
    stim = stimuli.first_tokens(texts, model, config.seqlen)
    rec = record(model, stim, sites=["loss"], batch_size=config.batch_size, progress=ctx.progress)
    tokens = rec.tokens[rec.tokens.position < config.seqlen - 1]
    losses = tokens["loss"].to_numpy(dtype=float).reshape(len(stim), config.seqlen - 1)
    table = tokens[["sequence", "position", "token", "loss"]].assign(
        split=label, text_index=stim.meta["text_index"].to_numpy()[tokens["sequence"].to_numpy()])
    return losses, table, stim.notes


class PositionExperiment(Experiment):
    name = "position"
    title = "Decoding token position from next-token loss"
    description = "decode token position from per-token loss (OLS, logistic regression, held-out test)"
    seed_notebook = "000"
    question = ("Does the loss a model assigns to its next-token prediction carry information about where in "
                "the sequence the token sits? Early tokens have little context, so their predictions should "
                "be worse; if so, position is decodable from loss alone.")
    method = ("The first {seqlen} tokens of HellaSwag {split} contexts (rows {train_start}-{train_end} for "
              "training, {test_start}-{test_end} held out) go through the model; the loss at position t is "
              "-log p(token t+1 | tokens up to t). Position is regressed on loss with OLS (statsmodels) and "
              "decoded with a multinomial logistic regression (scikit-learn, lbfgs) fit on the training "
              "contexts and evaluated on both sets. Chance is 1/{n_classes} positions.")
    Config = PositionConfig

    def method_text(self, config: PositionConfig) -> str:
        return self.method.format(seqlen=config.seqlen, split=config.split, train_start=config.train_start,
                                  train_end=config.train_start + config.n_samples - 1,
                                  test_start=config.test_start, test_end=config.test_start + config.n_samples - 1,
                                  n_classes=config.seqlen - 1)

    def run(self, model, config: PositionConfig, ctx: Context) -> Result:
        k = config.seqlen - 1
        with ctx.stage("data"):
            table = data.hellaswag(config.split)
            need = max(config.train_start, config.test_start) + config.n_samples
            if need > len(table):
                raise LaminaError(f"HellaSwag {config.split} has {len(table)} rows; this config needs {need}.")
            train_texts = table["ctx"].iloc[config.train_start:config.train_start + config.n_samples].tolist()
            test_texts = table["ctx"].iloc[config.test_start:config.test_start + config.n_samples].tolist()
        with ctx.stage("record"):
            train, train_table, train_notes = _losses(model, train_texts, config, ctx, "train")
            test, test_table, test_notes = _losses(model, test_texts, config, ctx, "test")
        with ctx.stage("stats"):
            positions = np.tile(np.arange(k), (len(train), 1))
            fit = ols(positions.ravel(), train.ravel(), names=["loss"])
            logistic = fit_logistic(train.reshape(-1, 1), positions.ravel(), seed=ctx.seed)
            test_positions = np.tile(np.arange(k), (len(test), 1)).ravel()
            scores = {
                "train": classification(positions.ravel(), logistic.predict(train.reshape(-1, 1)), k),
                "test": classification(test_positions, logistic.predict(test.reshape(-1, 1)), k),
            }
            linear_pred = fit["params"]["const"] + fit["params"]["loss"] * train.ravel()
            chance = 100 / k
            binom = {split: binomtest(int(np.trace(s["confusion"])), int(s["confusion"].sum()), 1 / k,
                                      alternative="greater").pvalue for split, s in scores.items()}
        with ctx.stage("figures"):
            figures = self._figures(train, positions, linear_pred, logistic, scores, chance, ctx.rng)

        summary = {
            "n_train": int(len(train)), "n_test": int(len(test)), "seqlen": config.seqlen,
            "loss_by_position": train.mean(axis=0),
            "test_loss_by_position": test.mean(axis=0),
            "ols": {"const": fit["params"]["const"], "slope": fit["params"]["loss"],
                    "p_const": fit["pvalues"]["const"], "p_slope": fit["pvalues"]["loss"], "r2": fit["r2"]},
            "logistic": {"intercepts": logistic.intercept_, "coefs": logistic.coef_[:, 0]},
            "chance_percent": chance,
        }
        for split, s in scores.items():
            summary[split] = {"accuracy_by_position": s["accuracy_by_class"], "confusion": s["confusion"],
                              "accuracy": s["accuracy"], "p_above_chance": binom[split]}
        tables = {
            "losses": pd.concat([train_table, test_table], ignore_index=True),
            "confusion_train": confusion_table(scores["train"]["confusion"], "position"),
            "confusion_test": confusion_table(scores["test"]["confusion"], "position"),
            "accuracy_by_position": pd.DataFrame({
                "position": np.arange(k), "train_percent": scores["train"]["accuracy_by_class"],
                "test_percent": scores["test"]["accuracy_by_class"], "mean_loss_train": train.mean(axis=0),
                "mean_loss_test": test.mean(axis=0)}),
        }
        key_numbers = [
            ("OLS slope of position on loss", f"{fit['params']['loss']:.3f} positions per nat",
             f"t = {fit['tvalues']['loss']:.2f}, p = {fit['pvalues']['loss']:.2g}, R² = {fit['r2']:.3f}"),
            ("Train accuracy (logistic)", f"{scores['train']['accuracy']:.1f}% (chance {chance:.1f}%)",
             f"binomial test vs chance: p = {binom['train']:.2g}"),
            ("Held-out test accuracy", f"{scores['test']['accuracy']:.1f}% (chance {chance:.1f}%)",
             f"binomial test vs chance: p = {binom['test']:.2g}"),
            ("Mean loss at position 0 vs last", f"{train[:, 0].mean():.2f} vs {train[:, -1].mean():.2f} nats", ""),
        ]
        notes = train_notes + test_notes + [
            "The seed reads HellaSwag's ctx_a; lamina's local copy holds ctx (ctx_a followed by ctx_b). Their "
            "first tokens agree whenever ctx_a is at least seqlen tokens long.",
            "The seed's test confusion matrix reuses the training position vector; here each split uses its "
            "own (identical when both splits keep every context).",
        ]
        if model.prepend_bos:
            notes.append(f"{model.name} gets a BOS token before each context (its family's policy), so the "
                         "loss at position 0 is conditioned on BOS and the first token.")
        return Result(summary=summary, tables=tables, figures=figures, key_numbers=key_numbers, notes=notes)

    def _figures(self, train, positions, linear_pred, logistic, scores, chance, rng):
        k = train.shape[1]
        figures = {}
        fig, (a, b) = figure(2, size=(12, 4), width_ratios=[2, 1])
        means_with_points(a, train, rng)
        a.set(xlabel="Token position", ylabel="Loss", title="A) Next-token prediction loss")
        density_lines(b, train, [f"Token {i}" for i in range(k)])
        b.set(xlabel="Per-token loss", ylabel="Probability density", title="B) Distribution by token position")
        figures["loss_by_position"] = (fig, "Next-token loss by position (training contexts): mean with every "
                                            "token (A) and its distribution per position (B).")
        fig, ax = figure(1, size=(8, 4))
        jitter_scatter(ax, positions.ravel().astype(float), linear_pred, rng)
        ax.set(xlabel="True positions", ylabel="Predicted positions", xticks=range(k), yticks=range(k),
               title="Linear regression: predicted vs true position")
        figures["linear_predictions"] = (fig, "Positions predicted by the OLS fit of position on loss, against "
                                              "the true positions (jittered).")
        fig, (a, b) = figure(2, size=(12, 4))
        coefficient_bars(a, logistic.coef_[:, 0], [0.9, 0.7, 0.7])
        a.set(xlabel="Token position", ylabel="Coefficient value", title="A) Relative slopes")
        coefficient_bars(b, logistic.intercept_, [0.7, 0.7, 0.9])
        b.set(xlabel="Token position", ylabel="Coefficient value", title="B) Relative intercepts")
        figures["logistic_coefficients"] = (fig, "Multinomial logistic regression: per-position slope on loss (A) "
                                                 "and intercept (B).")
        for split in ("train", "test"):
            fig, (a, b) = figure(2, size=(11, 4))
            accuracy_bars(a, scores[split]["accuracy_by_class"], chance)
            a.set(xlabel="Token position", ylabel="Prediction accuracy (%)",
                  title="A) Position-specific prediction accuracy")
            confusion_heatmap(b, scores[split]["confusion_pct"])
            b.set(xlabel="Predicted position", ylabel="True position", title="B) Confusion matrix (% row-wise)")
            fig.suptitle(f"{split.upper()} performance", fontsize=14, fontweight="bold")
            which = "training contexts" if split == "train" else "held-out contexts"
            figures[f"{split}_performance"] = (fig, f"Logistic decoding on the {which}: accuracy per position "
                                                    f"with chance dashed (A), row-normalised confusion (B).")
        return figures


EXPERIMENT = PositionExperiment()
