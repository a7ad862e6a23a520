"""Seed 002: is the size of a token's attention update predicted by the two tokens before it? (compute)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from ... import data, stimuli
from ...errors import LaminaError
from ...record import record
from ...stats.multiple import benjamini_hochberg
from ...stats.norms import log_norms
from ...stats.regression import lagged_ols
from ..base import Context, ModelFacts, profile_table
from .result import AutoregressionResult, LayerFit, Norms, SignificantLayers

GATSBY_OPENING = "In my younger and more vulnerable years"
COLUMNS = ("intercept", "beta_t1", "beta_t2", "se_t1", "se_t2", "p_t1", "p_t2", "r2", "p_t1_bh", "p_t2_bh")


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


def compute(model, config: AutoregressionConfig, ctx: Context) -> AutoregressionResult:
    with ctx.stage("data"):
        text, source = passage_text(config, model)
        stim = stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
    with ctx.stage("record"):
        rec = record(model, stim, sites=["attn.out"], progress=ctx.progress)
    with ctx.stage("stats"):
        norms = log_norms(rec["attn.out"][:, 0], what="attention outputs")  # (layer, T)
        fits = lagged_ols(norms, lags=(1, 2), first=config.first_target)
        p_bh = np.stack([benjamini_hochberg(fits["p"][:, j]) for j in range(2)], axis=1)
    layers = tuple(LayerFit(intercept=fits["intercept"][i], beta_t1=fits["beta"][i, 0], beta_t2=fits["beta"][i, 1],
                            p_t1=fits["p"][i, 0], p_t2=fits["p"][i, 1], r2=fits["r2"][i], se_t1=fits["se"][i, 0],
                            se_t2=fits["se"][i, 1], p_t1_bh=p_bh[i, 0], p_t2_bh=p_bh[i, 1])
                   for i in range(len(norms)))
    significant = {f"{lag}_{kind}": int((p < config.alpha).sum())
                   for j, lag in enumerate(("t1", "t2"))
                   for kind, p in (("raw", fits["p"][:, j]), ("bh", p_bh[:, j]))}
    n_tokens = int(norms.shape[1])
    return AutoregressionResult(
        n_tokens=n_tokens, n_targets=n_tokens - config.first_target, source=source, alpha=config.alpha,
        significant_layers=SignificantLayers(**significant), layers=layers, model=ModelFacts.of(model),
        data_notes=tuple(stim.notes), norms=Norms(log_norms=norms, tokens=rec.tokens["token"].to_numpy(dtype=str)))


def tables(result: AutoregressionResult) -> dict[str, pd.DataFrame]:
    norms = result.norms.log_norms
    n_layers, n_tokens = norms.shape
    regression = pd.DataFrame({"layer": np.arange(n_layers), **{c: result.column(c) for c in COLUMNS}})
    return {"regression": regression, "log_norms": pd.DataFrame({
        "layer": np.repeat(np.arange(n_layers), n_tokens), "position": np.tile(np.arange(n_tokens), n_layers),
        "token": np.tile(result.norms.tokens, n_layers), "log_norm": norms.ravel()})}


def profiles(result: AutoregressionResult) -> pd.DataFrame:
    """Per block: both lags' betas with their 95% t intervals (from the OLS standard errors), and R²."""
    crit = t_dist.ppf(0.975, result.n_targets - 3)  # residual df: targets − intercept − two lags
    parts = [("attn.out", f"beta_{lag}", result.column(f"beta_{lag}"),
              result.column(f"beta_{lag}") + np.outer([-crit, crit], result.column(f"se_{lag}")))
             for lag in ("t1", "t2")]
    return profile_table(*parts, ("attn.out", "r2", result.column("r2"), None))
