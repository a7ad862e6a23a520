"""Seed 002: is the size of a token's attention update predicted by the two tokens before it? (compute)

Replicates are consecutive passages of the book: passage 0 is the one the experiment has always
used (from ``start``), each next one continues where the previous one ends. All passages go through
the model in one recording. Per layer: one least-squares fit on all passages pooled (lags within a
passage), one per passage, and the one-sample t test of the passages' betas (passages as the unit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from ... import data, stimuli
from ...data.local import read_text
from ...errors import LaminaError
from ...recording import record
from ...stats.autoregression import SE_KINDS, ljung_box, lagged_fits, newey_west_lags
from ...stats.multiple import benjamini_hochberg, significant
from ...stats.norms import log_norms
from ...stats.replicates import t_interval
from ...stimuli import Stimuli
from ...stimuli.base import encode
from ..across import across_tests, column
from ..base import Context, ModelFacts, profile_table
from .result import (LAGS, AutoregressionResult, LayerAcross, LayerFit, Norms, PassageFits, SignificantLayers)

GATSBY_OPENING = "In my younger and more vulnerable years"
COLUMNS = ("intercept", "beta_t1", "beta_t2", "se_t1", "se_t2", "p_t1", "p_t2", "r2", "p_t1_bh", "p_t2_bh",
           "p_ljung_box")
SENTENCE_END = r"(?<=[.!?”])\s+"
DEFAULT_PASSAGES = 8  # replicates for a book (cheap: 8 passages of ~100 tokens are one small recording)


@dataclass
class AutoregressionConfig:
    text: str | None = None  # a passage given directly (overrides book/text_file)
    text_file: str | None = None  # a UTF-8 text file holding the passage
    book: str = "gatsby"  # else: consecutive passages starting at `start` in this book
    start: str = GATSBY_OPENING
    min_tokens: int = 90  # cut each book passage at the first sentence end after this many tokens
    first_target: int = 3  # seed 002 regresses y[t] for t = 3..T-1
    alpha: float = 0.05
    # Passages (replicates): None = 8 from a book, 1 for a given text (one passage by definition).
    replicates: int | None = None
    se: str = "ols"  # standard errors: ols (the seed's) or hac (Newey-West within each passage)
    hac_lags: int | None = None  # HAC truncation lag; None: Newey-West's floor(4 (T/100)^(2/9))

    def check(self):
        if self.min_tokens < 8:
            raise LaminaError("min_tokens must be at least 8.")
        if not 0 < self.alpha < 1:
            raise LaminaError("alpha must be between 0 and 1.")
        if self.text is not None and not self.text.strip():
            raise LaminaError("text is empty.")
        given = self.text is not None or self.text_file is not None
        if self.replicates is None:
            self.replicates = 1 if given else DEFAULT_PASSAGES  # config.json then shows the number used
        if isinstance(self.replicates, bool) or int(self.replicates) != self.replicates or self.replicates < 1:
            raise LaminaError(f"replicates must be a positive integer (passages), not {self.replicates!r}.")
        if given and self.replicates > 1:
            raise LaminaError("a given text is one passage, so replicates must be 1; for several passages use a "
                              "book (book=NAME or a path to a text file, with start=OPENING WORDS).")
        if self.se not in SE_KINDS:
            raise LaminaError(f"se must be one of {', '.join(SE_KINDS)}, not {self.se!r}.")
        if self.hac_lags is not None and self.hac_lags < 1:
            raise LaminaError(f"hac_lags must be at least 1 (or none for Newey-West's rule), not {self.hac_lags}.")


def passage_texts(config: AutoregressionConfig, model) -> tuple[list[str], str]:
    """(passages, where they came from) for the config: ``config.replicates`` consecutive passages."""
    if config.text is not None:
        return [config.text], "given text"
    if config.text_file is not None:
        path = Path(config.text_file).expanduser()
        if not path.is_file():
            raise LaminaError(f"text_file {config.text_file!r} "
                              + ("is a directory, not a text file." if path.is_dir() else "does not exist."))
        text = read_text(path).strip()  # UTF-8 (a clear error otherwise), BOM dropped
        if not text:
            raise LaminaError(f"text_file {config.text_file!r} is empty.")
        return [text], str(path)
    room = model.context_length - int(model.prepend_bos)
    if config.min_tokens > room:  # a passage is one sequence; refused before the book is read
        raise LaminaError(f"min_tokens={config.min_tokens} is more than {model.name} takes in one sequence "
                          f"({room} tokens); use min_tokens <= {room}.")
    book = data.book(config.book)
    at = book.find(config.start)
    if at < 0:
        raise LaminaError(f"the book {config.book!r} has no passage starting with {config.start!r}.")
    # Sentences (whitespace normalised), gathered until each passage reaches min_tokens.
    passages, passage = [], ""
    for sentence in re.split(SENTENCE_END, " ".join(book[at:].split())):
        passage = f"{passage} {sentence}".strip()
        if len(encode(model, passage)) >= config.min_tokens:
            passages.append(passage)
            passage = ""
            if len(passages) == config.replicates:
                break
    if len(passages) < config.replicates:
        raise LaminaError(f"the book {config.book!r} holds only {len(passages)} passages of {config.min_tokens}+ "
                          f"tokens after {config.start!r}; use replicates <= {len(passages)}.")
    return passages, f"{config.book}, from “{config.start}”"


def _stimuli(passages, model) -> Stimuli:
    """All passages as one set of stimuli (one recording): meta ``passage``, ``length``."""
    parts = [stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
             for text in passages]
    meta = pd.DataFrame({"passage": np.arange(len(parts)), "length": [len(p.ids[0]) for p in parts]})
    return Stimuli([p.ids[0] for p in parts], meta, notes=[note for p in parts for note in p.notes])


def _across(per, config) -> tuple[LayerAcross, ...]:
    """Per layer: each lag's beta across passages (BH across layers, per lag), and R² with its t interval."""
    lags = {lag: across_tests(per[f"beta_{lag}"], alpha=config.alpha, correction="bh") for lag in LAGS}
    mean, low, high = t_interval(per["r2"])
    return tuple(LayerAcross(t1=lags["t1"][i], t2=lags["t2"][i], r2_mean=mean[i], r2_ci=(low[i], high[i]))
                 for i in range(len(mean)))


def compute(model, config: AutoregressionConfig, ctx: Context) -> AutoregressionResult:
    with ctx.stage("data"):
        texts, source = passage_texts(config, model)
        stim = _stimuli(texts, model)
    with ctx.stage("record"):
        rec = record(model, stim, sites=["attn.out"], batch_size=len(stim), progress=ctx.progress, loss=False)
    with ctx.stage("stats"):
        lengths = stim.lengths
        norms = [log_norms(rec["attn.out"][:, r, :n], what="attention outputs") for r, n in enumerate(lengths)]
        targets = int(np.mean(lengths)) - config.first_target
        maxlags = config.hac_lags or newey_west_lags(targets)
        fits = lagged_fits(norms, first=config.first_target, se=config.se, maxlags=maxlags)
        p_bh = np.stack([benjamini_hochberg(fits["p"][:, j]) for j in range(len(LAGS))], axis=1)  # per lag
        p_lb = ljung_box(fits["resid"], fits["groups"])
        per_fits = [lagged_fits([n], first=config.first_target, se=config.se, maxlags=maxlags) for n in norms]
        per = {f"{kind}_{lag}": np.stack([f[kind][:, j] for f in per_fits]) for kind in ("beta", "p")
               for j, lag in enumerate(LAGS)}
        per["r2"] = np.stack([f["r2"] for f in per_fits])
        across = _across(per, config) if len(norms) > 1 else None
    n_layers = len(norms[0])
    layers = tuple(LayerFit(intercept=fits["intercept"][i], beta_t1=fits["beta"][i, 0], beta_t2=fits["beta"][i, 1],
                            p_t1=fits["p"][i, 0], p_t2=fits["p"][i, 1], r2=fits["r2"][i], se_t1=fits["se"][i, 0],
                            se_t2=fits["se"][i, 1], p_t1_bh=p_bh[i, 0], p_t2_bh=p_bh[i, 1], p_ljung_box=p_lb[i],
                            across=None if across is None else across[i])
                   for i in range(n_layers))
    counts = {f"{lag}_{kind}": int(significant(p, config.alpha).sum())
              for j, lag in enumerate(LAGS) for kind, p in (("raw", fits["p"][:, j]), ("bh", p_bh[:, j]))}
    for lag in LAGS:
        counts[f"{lag}_across"] = None if across is None else int(sum(getattr(a, lag).significant for a in across))
    return AutoregressionResult(
        n_tokens=int(lengths.sum()), n_targets=int(fits["resid"].shape[1]), passage_tokens=tuple(lengths.tolist()),
        source=source, alpha=config.alpha, replicates=len(norms), se=config.se,
        hac_lags=maxlags if config.se == "hac" else None, significant_layers=SignificantLayers(**counts),
        layers=layers, per_passage=PassageFits(**per), model=ModelFacts.of(model), data_notes=tuple(stim.notes),
        norms=Norms(log_norms=np.concatenate(norms, axis=1),
                    tokens=rec.tokens.sort_values(["sequence", "position"])["token"].to_numpy(dtype=str),
                    passage=np.repeat(np.arange(len(norms)), lengths)))


def tables(result: AutoregressionResult) -> dict[str, pd.DataFrame]:
    norms = result.norms.log_norms
    n_layers, n_tokens = norms.shape
    regression = pd.DataFrame({"layer": np.arange(n_layers), **{c: result.column(c) for c in COLUMNS}})
    if result.replicates > 1:
        for lag in LAGS:
            entries = [getattr(layer.across, lag) for layer in result.layers]
            for name in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected"):
                regression[f"across_{lag}_{name}"] = column(entries, name)
            regression[f"across_{lag}_significant"] = [e.significant for e in entries]
    per = result.per_passage
    passages = pd.DataFrame({"passage": np.repeat(np.arange(result.replicates), n_layers),
                             "layer": np.tile(np.arange(n_layers), result.replicates),
                             **{name: getattr(per, name).ravel() for name in ("beta_t1", "beta_t2", "p_t1", "p_t2",
                                                                              "r2")}})
    position = np.concatenate([np.arange(n) for n in result.passage_tokens])
    return {"regression": regression, "passages": passages, "log_norms": pd.DataFrame({
        "layer": np.repeat(np.arange(n_layers), n_tokens), "passage": np.tile(result.norms.passage, n_layers),
        "position": np.tile(position, n_layers), "token": np.tile(result.norms.tokens, n_layers),
        "log_norm": norms.ravel()})}


def profiles(result: AutoregressionResult) -> pd.DataFrame:
    """Per block: both lags' betas and R². With replicates, the passages' mean and its 95% t interval;
    with one passage, the fit's betas with their 95% t intervals (from its standard errors), and R²."""
    if result.replicates > 1:
        parts = []
        for lag in LAGS:
            entries = [getattr(layer.across, lag) for layer in result.layers]
            parts.append(("attn.out", f"beta_{lag}", column(entries, "mean"),
                          np.stack([column(entries, "ci_low"), column(entries, "ci_high")])))
        r2_ci = np.array([layer.across.r2_ci for layer in result.layers]).T
        parts.append(("attn.out", "r2", [layer.across.r2_mean for layer in result.layers], r2_ci))
        return profile_table(*parts)
    crit = t_dist.ppf(0.975, result.n_targets - 3)  # residual df: targets − intercept − two lags
    parts = [("attn.out", f"beta_{lag}", result.column(f"beta_{lag}"),
              result.column(f"beta_{lag}") + np.outer([-crit, crit], result.column(f"se_{lag}")))
             for lag in LAGS]
    return profile_table(*parts, ("attn.out", "r2", result.column("r2"), None))
