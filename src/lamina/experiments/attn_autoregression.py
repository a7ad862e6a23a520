"""Seed 002: is the size of a token's attention update predicted by the two tokens before it?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from .. import data, stimuli
from ..errors import LaminaError
from ..plots import figure
from ..plots.profiles import layer_profile
from ..record import record
from ..stats.multiple import benjamini_hochberg
from ..stats.norms import log_norms
from ..stats.regression import lagged_design, ols
from .base import Context, Experiment, Result

GATSBY_OPENING = "In my younger and more vulnerable years"


@dataclass
class AutoregressionConfig:
    text: str | None = None  # a passage given directly (overrides book/text_file)
    text_file: str | None = None  # a UTF-8 text file holding the passage
    book: str = "gatsby"  # else: the passage starting at `start` in this book
    start: str = GATSBY_OPENING
    min_tokens: int = 90  # cut the book passage at the first sentence end after this many tokens
    first_target: int = 3  # seed 002 regresses y[t] for t = 3..T-1
    alpha: float = 0.05

    def check(self):
        if self.min_tokens < 8:
            raise LaminaError("min_tokens must be at least 8.")
        if not 0 < self.alpha < 1:
            raise LaminaError("alpha must be between 0 and 1.")
        if self.text is not None and not self.text.strip():
            raise LaminaError("text is empty.")


def passage_text(config: AutoregressionConfig, model) -> tuple[str, str]:
    """(passage, where it came from) for the config."""
    if config.text is not None:
        return config.text, "given text"
    if config.text_file is not None:
        path = Path(config.text_file).expanduser()
        if not path.is_file():
            raise LaminaError(f"text_file {config.text_file!r} does not exist.")
        text = path.read_text(encoding="utf-8-sig").strip()
        if not text:
            raise LaminaError(f"text_file {config.text_file!r} is empty.")
        return text, str(path)
    book = data.book(config.book)
    at = book.find(config.start)
    if at < 0:
        raise LaminaError(f"the book {config.book!r} has no passage starting with {config.start!r}.")
    # Sentences (whitespace normalised) until the passage reaches min_tokens.
    sentences = re.split(r"(?<=[.!?”])\s+", " ".join(book[at:at + 20 * config.min_tokens].split()))
    passage = ""
    for sentence in sentences:
        passage = f"{passage} {sentence}".strip()
        if len(model.encode(passage)) >= config.min_tokens:
            break
    return passage, f"{config.book}, from “{config.start}”"


class AutoregressionExperiment(Experiment):
    name = "attn-autoregression"
    title = "Autoregression of attention-output norms"
    description = "least squares of each token's attention-output log norm on the two tokens before it"
    seed_notebook = "002"
    question = ("Is the size of the attention adjustment a token receives predicted by the adjustments the two "
                "tokens before it received? If attention updates come in runs, the log norm at t should depend "
                "on those at t-1 and t-2, and the dependence may differ from layer to layer.")
    method = ("A passage ({source}; {n_tokens} tokens) goes through the model; at every layer the attention "
              "output after its projection (site attn.out) gives one vector per token, and its log L2 norm y. "
              "Per layer, ordinary least squares fits y[t] = b0 + b1 y[t-1] + b2 y[t-2] over t = {first}..T-1 "
              "(statsmodels: betas, standard errors, two-sided t-test p-values). Across layers the p-values are "
              "corrected with Benjamini-Hochberg (false discovery rate {alpha}).")
    Config = AutoregressionConfig

    def method_text(self, config) -> str:
        return self.method.format(source="a passage", n_tokens="T", first=config.first_target, alpha=config.alpha)

    def run(self, model, config: AutoregressionConfig, ctx: Context) -> Result:
        with ctx.stage("data"):
            text, source = passage_text(config, model)
            stim = stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
        with ctx.stage("record"):
            rec = record(model, stim, sites=["attn.out"], progress=ctx.progress)
        with ctx.stage("stats"):
            norms = log_norms(rec["attn.out"][:, 0], what="attention outputs")  # (layer, T)
            rows = []
            for layer, y in enumerate(norms):
                target, X = lagged_design(y, lags=(1, 2), first=config.first_target)
                fit = ols(target, X, names=["t1", "t2"])
                rows.append({"layer": layer, "intercept": fit["params"]["const"], "beta_t1": fit["params"]["t1"],
                             "beta_t2": fit["params"]["t2"], "se_t1": fit["bse"]["t1"], "se_t2": fit["bse"]["t2"],
                             "p_t1": fit["pvalues"]["t1"], "p_t2": fit["pvalues"]["t2"], "r2": fit["r2"]})
            table = pd.DataFrame(rows)
            for lag in ("t1", "t2"):
                table[f"p_{lag}_bh"] = benjamini_hochberg(table[f"p_{lag}"])
        n_tokens = int(norms.shape[1])
        with ctx.stage("figures"):
            figures = self._figures(norms, table, config.alpha, ctx.rng)
        significant = {f"{lag}_{kind}": int((table[f"p_{lag}{suffix}"] < config.alpha).sum())
                       for lag in ("t1", "t2") for kind, suffix in (("raw", ""), ("bh", "_bh"))}
        summary = {
            "n_tokens": n_tokens, "n_targets": n_tokens - config.first_target,
            "source": source, "alpha": config.alpha, "significant_layers": significant,
            "layers": [{k: row[k] for k in ("intercept", "beta_t1", "beta_t2", "p_t1", "p_t2", "r2",
                                            "se_t1", "se_t2", "p_t1_bh", "p_t2_bh")} for row in table.to_dict(orient="records")],
        }
        n = len(table)
        strongest = table.loc[table["p_t1"].idxmin()]
        key_numbers = [
            ("Layers where t-1 predicts t", f"{significant['t1_raw']} of {n} (p < {config.alpha})",
             f"{significant['t1_bh']} of {n} after Benjamini-Hochberg"),
            ("Layers where t-2 predicts t", f"{significant['t2_raw']} of {n} (p < {config.alpha})",
             f"{significant['t2_bh']} of {n} after Benjamini-Hochberg"),
            ("Strongest t-1 layer", f"layer {int(strongest.layer)}: beta = {strongest.beta_t1:.3f} "
             f"(SE {strongest.se_t1:.3f})", f"p = {strongest.p_t1:.2g}, BH p = {strongest.p_t1_bh:.2g}, "
             f"R² = {strongest.r2:.3f}"),
            ("Mean R² across layers", f"{table['r2'].mean():.3f}", ""),
        ]
        notes = list(stim.notes) + [
            "Seed 002 regresses t = 3..T-1 although t = 2 already has both predictors; lamina keeps that "
            "(setting first_target).",
            "Seed 002 hooks the attention module's output[0]; lamina's attn.out is the output of the projection "
            "inside it, the same tensor in eval mode (docs/sites.md).",
            "Consecutive residuals of a time series may be autocorrelated; the OLS p-values assume they are not.",
        ]
        if model.prepend_bos:
            notes.append(f"{model.name} gets a BOS token before the passage (its family's policy); the BOS position "
                         "is not part of the regression.")
        tables = {"regression": table, "log_norms": pd.DataFrame({
            "layer": np.repeat(np.arange(norms.shape[0]), norms.shape[1]),
            "position": np.tile(np.arange(norms.shape[1]), norms.shape[0]),
            "token": np.tile(rec.tokens["token"].to_numpy(), norms.shape[0]), "log_norm": norms.ravel()})}
        method = self.method.format(source=source, n_tokens=n_tokens, first=config.first_target, alpha=config.alpha)
        return Result(summary=summary, tables=tables, figures=figures, key_numbers=key_numbers, notes=notes,
                      method=method)

    def _figures(self, norms, table, alpha, rng):
        n_layers = norms.shape[0]
        colors = mpl.colormaps["plasma"](np.arange(n_layers) / n_layers)
        fig, (a, b) = figure(2, size=(13, 4.5))
        for layer in range(n_layers):
            values = norms[layer, 1:]  # the first token's update is of another kind (seed 002 drops it)
            a.plot(rng.normal(layer, 0.08, len(values)), values, "h", color=colors[layer], markersize=5,
                   alpha=0.4)
            counts, edges = np.histogram(values, bins="fd")
            b.plot(edges[:-1], counts, "s-", color=colors[layer], markersize=3, linewidth=1)
        step = max(1, n_layers // 15)
        a.set(xticks=range(0, n_layers, step), xlabel="Layer", ylabel="Attention norm (log)",
              title="A) Attention-output log norms")
        b.set(xlabel="Attention norm (log)", ylabel="Count", title="B) Distributions (colour = layer)")
        figures = {"log_norms": (fig, "Log norm of every token's attention output per layer (first token "
                                      "excluded), as points (A) and histograms (B).")}
        fig, ax = figure(1, size=(11, 4))
        for lag, color, marker in (("t1", "C3", "s"), ("t2", "C0", "o")):
            layer_profile(ax, table[f"beta_{lag}"], significant=table[f"p_{lag}"] < alpha, color=color,
                          marker=marker, label=f"t-{lag[1]}")
            bh = table[f"p_{lag}_bh"] < alpha
            ax.plot(table["layer"][bh], table[f"beta_{lag}"][bh], "o", markersize=14, markerfacecolor="none",
                    markeredgecolor="k", linestyle="none")
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.plot([], [], "o", markersize=12, markerfacecolor="none", markeredgecolor="k", label="significant after BH")
        ax.legend(fontsize=9)
        ax.set(ylabel="Beta", title="Predicting a token's update from the previous tokens' updates")
        figures["betas"] = (fig, f"Betas for t-1 and t-2 per layer: filled markers p < {alpha}, hollow not; "
                                 "black rings mark layers that stay significant after Benjamini-Hochberg.")
        return figures


EXPERIMENT = AutoregressionExperiment()
