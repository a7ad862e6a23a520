"""Seed 002: is the size of a token's attention update predicted by the two tokens before it? (compute)

Replicates are consecutive passages of the book: passage 0 is the one the experiment has always
used (from ``start``), each next one continues where the previous one ends. Every passage also goes
through the model with its tokens in a seeded random order (the token-order control); real and
shuffled passages are one recording. Per layer (the headline,
:func:`lamina.stats.autoregression.passage_autoregressions`): each passage's autoregression with
position terms (log t, 1/t), its betas bias-corrected by parametric bootstrap, the passages' betas
tested against 0 and against the shuffled passages' (paired), family-wise over layers; layers whose
log norms are constant to float32 precision are not tested. The seed's fit (no position terms, all
passages pooled) is kept for parity with the notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ... import data, stimuli
from ...data.local import read_text
from ...errors import LaminaError
from ...recording import record
from ...stats.autoregression import ljung_box, lagged_fits, newey_west_lags, passage_autoregressions
from ...stats.multiple import benjamini_hochberg, significant
from ...stats.norms import log_norms
from ...stimuli import Stimuli
from ...stimuli.base import encode
from ..across import Across, Interval
from ..base import Context, ModelFacts
from .config import AutoregressionConfig
from .result import (LAGS, AutoregressionResult, LayerAdjusted, LayerFit, Norms, PassageFits,
                     SignificantLayers)

SENTENCE_END = r"(?<=[.!?”])\s+"


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


def _stimuli(passages, model, rng: np.random.Generator) -> Stimuli:
    """All passages, then each passage's tokens in a random order (``rng``), as one set of stimuli (one
    recording): meta ``passage``, ``length``, ``shuffled``."""
    parts = [stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
             for text in passages]
    ids = [p.ids[0] for p in parts]
    shuffled = [seq[rng.permutation(len(seq))] for seq in ids]
    n = len(parts)
    meta = pd.DataFrame({"passage": np.tile(np.arange(n), 2), "length": [len(seq) for seq in ids] * 2,
                         "shuffled": np.repeat([False, True], n)})
    return Stimuli(ids + shuffled, meta, notes=[note for p in parts for note in p.notes])


def _across(summary: dict, i: int, alpha: float) -> Across:
    """One layer's entry of a test from :func:`passage_autoregressions` (NaN for an untested layer)."""
    p = summary["p_corrected"][i]
    return Across(mean=summary["mean"][i], ci_low=summary["ci_low"][i], ci_high=summary["ci_high"][i],
                  t=summary["t"][i], p=summary["p"][i], p_corrected=p, significant=bool(significant(p, alpha)))


def _interval(summary: dict, i: int) -> Interval:
    return Interval(mean=summary["mean"][i], ci_low=summary["ci_low"][i], ci_high=summary["ci_high"][i])


def _adjusted(norms, shuffled, config, rng) -> tuple[dict, tuple[LayerAdjusted, ...]]:
    """The headline: position-adjusted, bias-corrected autoregressions, tested across passages."""
    out = passage_autoregressions(norms, shuffled, lags=(1, 2), first=config.first_target, n_boot=config.n_boot,
                                  rng=rng)
    fits, bias = out["fits"], out["bias"]
    start = config.first_target - 2
    sd = np.concatenate([n[:, start:] for n in norms], axis=1).std(axis=1)
    p_lb = ljung_box(fits["resid"], fits["groups"], fitted=2)
    tested = ~out["constant"]
    mean_bias = bias["bias"].mean(axis=0)
    shuffled_beta = out["shuffled_beta"][:, :, 0]
    shuffled_ci = {"mean": np.where(tested, shuffled_beta.mean(axis=0), np.nan),
                   "ci_low": np.full(len(sd), np.nan), "ci_high": np.full(len(sd), np.nan)}
    if len(norms) > 1 and tested.any():
        from ...stats.replicates import t_interval

        _, shuffled_ci["ci_low"][tested], shuffled_ci["ci_high"][tested] = t_interval(shuffled_beta[:, tested])
    layers = tuple(LayerAdjusted(
        constant=bool(out["constant"][i]), log_norm_sd=sd[i],
        t1=_across(out["lags"][0], i, config.alpha), t2=_across(out["lags"][1], i, config.alpha),
        bias_t1=mean_bias[i, 0] if tested[i] else np.nan, bias_t2=mean_bias[i, 1] if tested[i] else np.nan,
        partial_r2=_interval(out["partial_r2"], i), partial_r2_adj=_interval(out["partial_r2_adj"], i),
        r2_position=fits["r2_position"][:, i].mean() if tested[i] else np.nan,
        shuffled_t1=_interval(shuffled_ci, i), order_t1=_across(out["order"][0], i, config.alpha),
        p_ljung_box=p_lb[i] if tested[i] else np.nan) for i in range(len(sd)))
    return out, layers


def _seed_fits(norms, tested, config, maxlags) -> tuple[dict, dict]:
    """The seed's fit on the tested layers (NaN on the others): pooled (``intercept``, ``beta``, ``se``, ``p``,
    ``p_bh`` per lag, ``r2``, ``p_ljung_box``, each per layer) and each passage's own (``beta_t1``, ...)."""
    n_layers, n = len(tested), len(norms)
    fits = {key: np.full((n_layers, len(LAGS)), np.nan) for key in ("beta", "se", "p", "p_bh")}
    fits.update({key: np.full(n_layers, np.nan) for key in ("intercept", "r2", "p_ljung_box")})
    per = {f"{kind}_{lag}": np.full((n, n_layers), np.nan) for kind in ("beta", "p") for lag in LAGS}
    per["r2"] = np.full((n, n_layers), np.nan)
    if not tested.any():
        return fits, per
    kept = [series[tested] for series in norms]
    pooled = lagged_fits(kept, first=config.first_target, se=config.se, maxlags=maxlags)
    for key in ("beta", "se", "p", "intercept", "r2"):
        fits[key][tested] = pooled[key]
    fits["p_bh"][tested] = np.stack([benjamini_hochberg(pooled["p"][:, j]) for j in range(len(LAGS))], axis=1)
    fits["p_ljung_box"][tested] = ljung_box(pooled["resid"], pooled["groups"], fitted=len(LAGS))
    for i, series in enumerate(kept):
        own = lagged_fits([series], first=config.first_target, se=config.se, maxlags=maxlags)
        for j, lag in enumerate(LAGS):
            per[f"beta_{lag}"][i, tested], per[f"p_{lag}"][i, tested] = own["beta"][:, j], own["p"][:, j]
        per["r2"][i, tested] = own["r2"]
    return fits, per


def compute(model, config: AutoregressionConfig, ctx: Context) -> AutoregressionResult:
    with ctx.stage("data"):
        texts, source = passage_texts(config, model)
        stim = _stimuli(texts, model, ctx.rng)
    with ctx.stage("record"):
        rec = record(model, stim, sites=["attn.out"], batch_size=len(stim), progress=ctx.progress, loss=False)
    with ctx.stage("stats"):
        lengths = stim.lengths[:len(texts)]
        r = len(texts)
        norms = [log_norms(rec["attn.out"][:, i, :n], what="attention outputs") for i, n in enumerate(lengths)]
        shuffled = [log_norms(rec["attn.out"][:, r + i, :n], what="attention outputs")
                    for i, n in enumerate(lengths)]
        # the headline: beyond position, bias-corrected, passages as the unit, and the word-order control
        out, adjusted = _adjusted(norms, shuffled, config, ctx.rng)
        constant = out["constant"]
        # the seed's fit: no position terms, all passages pooled (one intercept per passage); not on constant layers
        targets = int(np.mean(lengths)) - config.first_target
        maxlags = config.hac_lags or newey_west_lags(targets)
        fits, per = _seed_fits(norms, ~constant, config, maxlags)
        for j, lag in enumerate(LAGS):
            per[f"adjusted_{lag}"] = out["beta"][:, :, j]
            per[f"bias_{lag}"] = out["bias"]["bias"][:, :, j]
        per["partial_r2"], per["partial_r2_adj"] = out["fits"]["partial_r2"], out["fits"]["partial_r2_adj"]
        per["shuffled_t1"] = out["shuffled_beta"][:, :, 0]
        per["shuffled_partial_r2"] = out["shuffled_fits"]["partial_r2"]
        per = {key: np.where(constant[None], np.nan, value) for key, value in per.items()}
    n_layers = len(norms[0])
    layers = tuple(LayerFit(intercept=fits["intercept"][i], beta_t1=fits["beta"][i, 0], beta_t2=fits["beta"][i, 1],
                            p_t1=fits["p"][i, 0], p_t2=fits["p"][i, 1], r2=fits["r2"][i], se_t1=fits["se"][i, 0],
                            se_t2=fits["se"][i, 1], p_t1_bh=fits["p_bh"][i, 0], p_t2_bh=fits["p_bh"][i, 1],
                            p_ljung_box=fits["p_ljung_box"][i])
                   for i in range(n_layers))
    counts = {f"{lag}_{kind}": int(significant(p, config.alpha).sum())
              for j, lag in enumerate(LAGS) for kind, p in (("raw", fits["p"][:, j]), ("bh", fits["p_bh"][:, j]))}
    counts.update({name: int(sum(getattr(layer, name).significant for layer in adjusted))
                   for name in ("t1", "t2", "order_t1")})
    tokens = rec.tokens.sort_values(["sequence", "position"])
    return AutoregressionResult(
        n_tokens=int(lengths.sum()), n_targets=int(sum(n - config.first_target for n in lengths)),
        passage_tokens=tuple(lengths.tolist()),
        source=source, alpha=config.alpha, replicates=r, se=config.se,
        hac_lags=maxlags if config.se == "hac" else None, n_boot=config.n_boot, correction=out["correction"],
        constant_layers=tuple(int(i) for i in np.flatnonzero(constant)),
        significant_layers=SignificantLayers(**counts), adjusted=adjusted,
        layers=layers, per_passage=PassageFits(**per), model=ModelFacts.of(model), data_notes=tuple(stim.notes),
        norms=Norms(log_norms=np.concatenate(norms, axis=1),
                    tokens=tokens.loc[tokens["sequence"] < r, "token"].to_numpy(dtype=str),
                    passage=np.repeat(np.arange(r), lengths),
                    shuffled_log_norms=np.concatenate(shuffled, axis=1),
                    shuffled_tokens=tokens.loc[tokens["sequence"] >= r, "token"].to_numpy(dtype=str)))
