"""Calibration of trace's claims (causal tracing, issue 26): the 95% intervals over prompts of the normalised
indirect effect per (position class, layer), the peak layer at the last subject token with its interval, the first
layer whose mean effect at the last token passes half with its interval, and the intervals of p(answer) clean and
corrupted. Each simulation draws prompts' p(answer) — clean, corrupted per noise sample, restored per sample and
layer at the last subject token and the last token — and runs them through ``trace.compute.prompt_effects`` (noise
samples averaged, restored − corrupted over clean − corrupted, NaN where that gap is not positive) and
``trace.compute.summarise`` (means, intervals, peaks), the functions ``trace``'s compute calls; p(answer) through
``trace.compute.interval``. A level cell counts the simulations whose interval misses the population mean, itself
estimated once per scenario from 100,000 simulated prompts run through the same functions.

The scenarios copy what the two real runs show (runs/trace-default on SmolLM2-135M, runs/trace-gemma3-270m,
12 prompts, 2 noise samples each): per prompt, the effect at the last subject token rises over the first few layers
to a plateau that fades until a hand-off layer (SmolLM2: 24 of 31 entries), where it drops to 0 and the last token's
effect jumps to about 1 (0.7–1.4 across prompts, exactly 1 at the final entry); adjacent layers correlate 0.9–1.0
across prompts; about one prompt in five is barely restored at the last subject token (≤ 0.15); corrupted
p(answer) is clean p × a factor whose log has SD ≈ 1 across prompts (0.002–0.13). SmolLM2-like: clean p 0.1–1
(a third below 0.4), and where clean p is low restoring one token may beat the clean run (SmolLM2's pyramids prompt:
clean p 0.19, effect 4.2): right-skewed effects with a heavy tail (about 3% of prompts above 2; skewness 3.7); 5% of
prompts cross at the last token a layer late. One cell adds 5% of prompts whose corruption raises p(answer) (corrupted
≥ clean: the normalised effect is NaN and the prompt drops out; not seen in the two runs).
Gemma-like: clean p 0.55–0.95, no overshoot (effects bounded, skewed left at the plateau), 15% of prompts cross a
layer late (Gemma: 2 of 12 at 0.2 at the crossing layer)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from lamina.experiments.trace.compute import classes_of, interval, prompt_effects, summarise
from lamina.experiments.trace.result import CLASSES

from .cells import Cell

LAYERS, HANDOFF = 31, 24  # SmolLM2-135M: hidden entries 0..30; the last subject token hands over at entry 24
GROUPS = classes_of(0, 1, 2)  # a one-token subject then the last token: positions = (last subject, last)
SUBJECT, LAST = CLASSES.index("last subject"), CLASSES.index("last")
PLANT = 12  # the planted bump's centre layer (power)


@dataclass(frozen=True)
class Scenario:
    clean: tuple[float, float, float]  # clean p = low + (1 - low) · Beta(a, b): (a, b, low)
    overshoot: float  # share of prompts whose restoration at the last subject token beats the clean run
    linked: float  # extra share of overshoot among prompts with clean p < 0.4
    delayed: float  # share of prompts whose last-token effect jumps a layer after the hand-off
    undefined: float  # share of prompts whose corruption raises p(answer) (gap ≤ 0: NaN)
    jitter: float = 0.08  # per-layer multiplicative noise of a prompt's restoration curve, AR(1) along layers
    rho: float = 0.9
    bump: float = 0.0  # planted: restoration added at layers PLANT-1..PLANT+1 (share of the clean − corrupted gap)
    samples: int = 2


SMOLLM2 = Scenario(clean=(1.2, 0.8, 0.1), overshoot=0.03, linked=0.35, delayed=0.05, undefined=0.0)
GEMMA = Scenario(clean=(12.0, 4.0, 0.0), overshoot=0.0, linked=0.0, delayed=0.15, undefined=0.0)


def _ar1(rng, shape, rho):
    z = rng.normal(size=shape)
    out = np.empty(shape)
    out[..., 0] = z[..., 0]
    for j in range(1, shape[-1]):
        out[..., j] = rho * out[..., j - 1] + np.sqrt(1 - rho ** 2) * z[..., j]
    return out


def _prompts(rng, n, s: Scenario):
    """``n`` prompts: clean p ``(n,)``, corrupted p ``(n, samples)``, restored p ``(n, samples, LAYERS, 2)`` at the
    last subject token and the last token."""
    layers = np.arange(LAYERS)
    a, b, low = s.clean
    clean = low + (1 - low) * rng.beta(a, b, n)
    factor = np.exp(rng.normal(np.log(0.02), 0.8, n)[:, None] + 0.5 * rng.normal(size=(n, s.samples)))
    factor = np.where(rng.random(n)[:, None] < s.undefined, rng.uniform(1.0, 1.3, (n, s.samples)),
                      np.minimum(factor, 0.9))
    corrupted = np.minimum(clean[:, None] * factor, 1.0)
    k = corrupted[:, :, None]
    # last subject token: a rise at a prompt's own onset, a plateau fading to d at the hand-off, then nothing
    height = np.where(rng.random(n) < 0.2, rng.uniform(0, 0.15, n), rng.uniform(0.45, 1.0, n))
    onset, fade = rng.integers(1, 6, n)[:, None], rng.uniform(0.2, 0.9, n)[:, None]
    curve = height[:, None] / (1 + np.exp(-(layers - onset) / 0.6)) \
        * np.clip(1 - (1 - fade) * (layers - onset) / (HANDOFF - 1 - onset), fade, 1) \
        * np.exp(s.jitter * _ar1(rng, (n, LAYERS), s.rho)) * (layers < HANDOFF)
    curve = curve + s.bump * (np.abs(layers - PLANT) <= 1)
    over = rng.random(n) < s.overshoot + s.linked * (clean < 0.4)
    target = np.where(over, clean + rng.uniform(0.3, 0.9, n) * (1 - clean),
                      np.minimum(1.0, clean * rng.uniform(0.9, 1.05, n)))
    gain = np.exp(0.15 * rng.normal(size=(n, s.samples, 1)))
    subject = k + curve[:, None] * gain * (target[:, None, None] - k)
    # last token: a small leak before the hand-off, then about the clean p (0.7–1.4 of the gap); final entry = clean
    late = np.where(rng.random(n) < s.delayed, HANDOFF + 1, HANDOFF)[:, None]
    leak = (rng.uniform(0, 0.4, n) * (rng.random(n) < 0.5))[:, None] * ((layers + 1) / HANDOFF) ** 8
    step = np.where(layers >= late, np.exp(0.15 * _ar1(rng, (n, LAYERS), 0.8)), leak)
    step = np.where((layers == late - 1) & (late > HANDOFF), rng.uniform(0.1, 0.3, (n, 1)), step)
    last = k + step[:, None] * np.exp(0.05 * rng.normal(size=(n, s.samples, 1))) * (clean[:, None, None] - k)
    restored = np.stack([subject, last], axis=-1)
    restored = np.clip(restored + 0.01 * clean[:, None, None, None] * rng.normal(size=restored.shape), 0, 1)
    restored[:, :, -1, 1] = clean[:, None]  # restoring the final entry at the last token is the clean run
    return clean, corrupted, restored


def _trace(rng, n, s: Scenario):
    clean, corrupted, restored = _prompts(rng, n, s)
    raw, effects = prompt_effects(clean, corrupted, restored, GROUPS)
    return summarise(effects, raw, 1, "hidden", rng), clean, corrupted


@lru_cache(maxsize=None)
def _truth(s: Scenario, n: int = 100_000, chunk: int = 20_000):
    """Population means: the effect per (class, layer) over prompts where it is defined, clean and corrupted p."""
    rng = np.random.default_rng(20261226)
    total, count, clean, corrupted = 0.0, 0, 0.0, 0.0
    for _ in range(n // chunk):
        c, k, r = _prompts(rng, chunk, s)
        _, effects = prompt_effects(c, k, r, GROUPS)
        total = total + np.nan_to_num(effects).sum(axis=0)
        count = count + np.isfinite(effects).sum(axis=0)
        clean, corrupted = clean + c.sum(), corrupted + k.mean(axis=1).sum()
    with np.errstate(invalid="ignore"):
        return total / count, clean / n, corrupted / n


def _misses(low, high, mean) -> bool:
    return bool(np.isfinite(low) and not low <= mean <= high)


def effect_misses(n, rng, *, s=SMOLLM2, prompts=12, where="peak"):
    """The 95% interval of the effect at one (class, layer) misses its population mean: ``where="peak"`` the last
    subject token at the population's peak layer (a fixed layer), ``"any"`` a (row, layer) of the figure's two rows
    drawn at random per simulation (the pointwise level along the bands)."""
    truth = _truth(s)[0]
    hits = 0
    for _ in range(n):
        trace = _trace(rng, prompts, s)[0]
        if where == "peak":
            c, layer = SUBJECT, int(np.nanargmax(truth[SUBJECT]))
        else:
            c, layer = (SUBJECT, LAST)[rng.integers(2)], int(rng.integers(LAYERS))
        hits += _misses(trace.ci_low[c, layer], trace.ci_high[c, layer], truth[c, layer])
    return hits


def _bounds(peak, bound):
    return (peak.ci_low, peak.ci_high) if bound == "t" else (peak.band_low, peak.band_high)


def _chosen_misses(n, rng, s, prompts, bound, which: str, row: int) -> int:
    """How often the reported layer ``which`` (a :class:`Peak` of the result) has an interval (``bound``: its t
    interval, ``"t"``, or the class's band there, ``"band"``) that misses that layer's mean in class ``row``."""
    truth = _truth(s)[0]
    hits = 0
    for _ in range(n):
        chosen = getattr(_trace(rng, prompts, s)[0], which)
        hits += chosen.layer >= 0 and _misses(*_bounds(chosen, bound), truth[row, chosen.layer])
    return hits


def peak_misses(n, rng, *, s=SMOLLM2, prompts=12, bound="band"):
    """The reported peak at the last subject token (the layer of the largest mean): its t interval (``bound="t"``)
    or the class's simultaneous band at that layer (``"band"``) misses that layer's population mean. The layer is
    chosen by its own estimate: the winner's curse."""
    return _chosen_misses(n, rng, s, prompts, bound, "peak_last_subject", SUBJECT)


def first_misses(n, rng, *, s=GEMMA, prompts=12, bound="band"):
    """The first layer whose mean effect at the last token passes 0.5: its t interval or the band there misses that
    layer's mean."""
    return _chosen_misses(n, rng, s, prompts, bound, "peak_last", LAST)


def p_misses(n, rng, *, s=SMOLLM2, prompts=12, which="corrupted", skewed=True):
    """The interval of mean p(answer) (clean, or corrupted: mean over noise samples per prompt) misses its mean:
    Hall's skewness-corrected t interval, as the report gives it (``skewed=False``: the plain t interval)."""
    truth = _truth(s)[1 if which == "clean" else 2]
    hits = 0
    for _ in range(n):
        clean, corrupted = _prompts(rng, prompts, s)[:2]
        _, low, high = interval(clean if which == "clean" else corrupted.mean(axis=1), skewed=skewed)
        hits += _misses(low, high, truth)
    return hits


def peak_found(n, rng, *, s=SMOLLM2, prompts=12, at=None):
    """The reported peak at the last subject token lies within one layer of ``at`` (default: the population's peak
    layer)."""
    at = int(np.nanargmax(_truth(s)[0][SUBJECT])) if at is None else at
    return sum(abs(_trace(rng, prompts, s)[0].peak_last_subject.layer - at) <= 1 for _ in range(n))


def first_found(n, rng, *, s=GEMMA, prompts=12):
    """The reported first layer past 0.5 at the last token lies within one layer of the population's."""
    at = int(np.flatnonzero(_truth(s)[0][LAST] > 0.5)[0])
    return sum(abs(_trace(rng, prompts, s)[0].peak_last.layer - at) <= 1 for _ in range(n))


LOOSE = replace(SMOLLM2, jitter=0.3, rho=0.5)
PLANTED, SMALL = replace(SMOLLM2, bump=0.15), replace(SMOLLM2, bump=0.05)
UNDEFINED = replace(SMOLLM2, undefined=0.05)
SMOL = ("SmolLM2-like: heavy right tail (restoring beats the clean run where clean p is low; ~3% of prompts "
        "above 2), layers correlated ~0.9")
GEM = "Gemma-like: bounded effects skewed left, 15% of prompts cross a layer late"

EFFECT = "the 95% t interval of the mean effect at a (class, layer) misses the population mean"
EFFECT_TEST = "trace.compute.prompt_effects → summarise (Student t over prompts, per class and layer; tables, figure B)"
PEAK = "the peak at the last subject token (the layer of the largest mean): the t interval there misses its mean"
PEAK_T = "trace.compute.summarise → SiteTrace.peak_last_subject.ci_* (t interval at the chosen layer)"
PEAK_BAND = "the peak at the last subject token: the simultaneous band misses the chosen layer's mean"
PEAK_BAND_TEST = "trace.compute.summarise → SiteTrace.peak_last_subject.band_* (simultaneous_t_band over the layers)"
FIRST = "the first layer restoring more than half at the last token: the t interval there misses its mean"
FIRST_T = "trace.compute.summarise → SiteTrace.peak_last.ci_* (t interval at the chosen layer)"
FIRST_BAND = "the first layer restoring more than half at the last token: the simultaneous band misses its mean"
FIRST_BAND_TEST = "trace.compute.summarise → SiteTrace.peak_last.band_* (simultaneous_t_band over the layers)"
P = "the 95% interval of mean p(answer) misses the population mean"
P_TEST = "trace.compute.interval(skewed=True) (Hall's skewness-corrected t; the report's p(answer) rows)"
WHERE = "the reported layer lies within ±1 layer of the true one"
WHERE_TEST = "trace.compute.summarise → SiteTrace.peak_last_subject / peak_last (.layer)"
KNOWN = "KNOWN EXCESS, stated in the report's notes"
LOOSE_TEXT = "SmolLM2-like, layers less correlated (per-layer noise 30%, AR(1) ρ 0.5)"

CELLS = [
    # t intervals with heavy-tailed effects miss 0.05–0.09 (docs/calibration.md; the report's notes say so). make test
    # fails these above 0.14 (0.16 with fast_n 100): a true 0.09 exceeds that with probability about 1%.
    Cell(EFFECT, EFFECT_TEST, f"{SMOL}; 12 prompts, 2 noise samples; the population's peak layer", "level",
         lambda n, rng: effect_misses(n, rng), n=1000, fast_n=200, max_rate=0.14),
    Cell(EFFECT, EFFECT_TEST, f"{SMOL}; 40 prompts; the population's peak layer", "level",
         lambda n, rng: effect_misses(n, rng, prompts=40), n=1000, fast_n=100, max_rate=0.16),
    Cell(EFFECT, EFFECT_TEST, f"{SMOL}; 12 prompts; a random layer of the last subject or last token row", "level",
         lambda n, rng: effect_misses(n, rng, where="any"), n=1000, fast_n=200, max_rate=0.14),
    Cell(EFFECT, EFFECT_TEST, f"{SMOL}; 5% of prompts NaN (corrupted ≥ clean); 12 prompts; the population's peak "
         "layer", "level", lambda n, rng: effect_misses(n, rng, s=UNDEFINED), n=1000, fast_n=200, max_rate=0.14),
    Cell(EFFECT, EFFECT_TEST, f"{GEM}; 12 prompts; the population's peak layer", "level",
         lambda n, rng: effect_misses(n, rng, s=GEMMA), n=1000, fast_n=200),
    # The layer chosen by its mean (winner's curse) on top of the tails: the report gives the band beside it.
    Cell(PEAK, PEAK_T, f"{SMOL}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, bound="t"),
         n=1000, fast_n=200, max_rate=0.16),
    Cell(PEAK, PEAK_T, f"{GEM}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, s=GEMMA, bound="t"),
         n=1000, fast_n=200, max_rate=0.14),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{SMOL}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng),
         n=1000, fast_n=200),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{SMOL}; 40 prompts", "level",
         lambda n, rng: peak_misses(n, rng, prompts=40), n=1000, fast_n=100),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{GEM}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, s=GEMMA),
         n=1000, fast_n=200),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{LOOSE_TEXT}; 12 prompts", "level",
         lambda n, rng: peak_misses(n, rng, s=LOOSE), n=1000, fast_n=200),
    # 12 prompts lack any of a 15% minority that crosses a layer late 0.85^12 = 14% of the time: no interval over the
    # prompts at hand sees it. Measured 0.11–0.12; fails above 0.18.
    Cell(FIRST, FIRST_T, f"{GEM}; 12 prompts: {KNOWN}", "level", lambda n, rng: first_misses(n, rng, bound="t"),
         n=1000, fast_n=200, max_rate=0.18),
    Cell(FIRST, FIRST_T, f"{GEM}; 40 prompts", "level", lambda n, rng: first_misses(n, rng, prompts=40, bound="t"),
         n=1000, fast_n=100, max_rate=0.14),
    Cell(FIRST_BAND, FIRST_BAND_TEST, f"{GEM}; 12 prompts", "level", lambda n, rng: first_misses(n, rng),
         n=1000, fast_n=200),
    Cell(FIRST_BAND, FIRST_BAND_TEST, f"{GEM}; 40 prompts", "level",
         lambda n, rng: first_misses(n, rng, prompts=40), n=1000, fast_n=100),
    Cell(FIRST_BAND, FIRST_BAND_TEST, f"{SMOL}; 12 prompts", "level",
         lambda n, rng: first_misses(n, rng, s=SMOLLM2), n=1000, fast_n=200),
    Cell(P, P_TEST, "clean p(answer), SmolLM2-like (0.1–1, a third below 0.4); 12 prompts", "level",
         lambda n, rng: p_misses(n, rng, which="clean"), n=10_000, fast_n=1000),
    # Hall's interval on corrupted p (log SD about 1 across prompts, as both runs): about 0.09 with 12 prompts where
    # the plain t interval missed 0.13–0.15, 0.07 with 40 (t: 0.09–0.10). Fails above 0.13 (0.10 with 40 prompts).
    Cell(P, P_TEST, f"corrupted p(answer), log-SD ≈ 1 across prompts (as both runs); SmolLM2-like, 12 prompts: "
         f"{KNOWN}", "level", lambda n, rng: p_misses(n, rng), n=10_000, fast_n=1000, max_rate=0.13),
    Cell(P, P_TEST, f"corrupted p(answer), Gemma-like, 12 prompts: {KNOWN}", "level",
         lambda n, rng: p_misses(n, rng, s=GEMMA), n=10_000, fast_n=1000, max_rate=0.13),
    Cell(P, P_TEST, "corrupted p(answer), SmolLM2-like, 40 prompts", "level",
         lambda n, rng: p_misses(n, rng, prompts=40), n=10_000, fast_n=1000, max_rate=0.10),
    Cell(P, P_TEST, "corrupted p(answer), Gemma-like, 40 prompts", "level",
         lambda n, rng: p_misses(n, rng, s=GEMMA, prompts=40), n=10_000, fast_n=1000, max_rate=0.10),
    Cell(WHERE, WHERE_TEST, "peak at the last subject token; planted: +0.15 of the gap restored at layers 11–13 "
         "on top of the SmolLM2-like plateau; 12 prompts", "power",
         lambda n, rng: peak_found(n, rng, s=PLANTED, at=PLANT), n=500, fast_n=100, min_rate=0.7),
    Cell(WHERE, WHERE_TEST, "peak at the last subject token; planted: +0.05 of the gap at layers 11–13, as high "
         "as the plateau's own peak 4 layers earlier (0.63 both); 12 prompts", "power",
         lambda n, rng: peak_found(n, rng, s=SMALL, at=PLANT), n=500, fast_n=100, min_rate=0.2),
    Cell(WHERE, WHERE_TEST, "peak at the last subject token; no plant: the SmolLM2-like plateau's own peak; "
         "12 prompts", "power", lambda n, rng: peak_found(n, rng), n=500, fast_n=100, min_rate=0.7),
    Cell(WHERE, WHERE_TEST, f"first layer past half at the last token; {GEM}; 12 prompts", "power",
         lambda n, rng: first_found(n, rng), n=500, fast_n=100, min_rate=0.9),
]
