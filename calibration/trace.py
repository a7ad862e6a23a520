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
layer late (Gemma: 2 of 12 at 0.2 at the crossing layer).

Windowed attn.out / mlp.out restoration (:class:`Windowed`) copies two more runs, ``sites=attn.out,mlp.out`` with
window 10 on SmolLM2 (30 blocks) and window 6 on Gemma-3-270M (18 blocks), 12 prompts, 2 noise samples, every prompt's
effect defined: a prompt's single-block contributions are summed over each entry's window (the windows of
``trace.compute.window_layers``, so the clipped ends repeat one window and adjacent entries share all but one block).
SmolLM2, mlp.out at the last subject token: 0.74 at entries 0–5 (blocks 0–9), 0.23 at 6, ~0 from 16; across prompts
SD 1.03, skewness 2.4, the pyramids prompt at 3.8, a third of prompts ≤ 0.2; at the last token at most 0.13 (entry
23). attn.out: ~0.01 at the last subject token; at the last token 0.1 at entries 17–18, 0.95 at 19 (the first window
holding block 23), 0.8–1.0 to 28, 0.14 at 29; SD 0.25–0.38 at 19–25, skewness 2.9 (the pyramids prompt at 4.3).
Gemma, window 6: mlp.out 0.43 at entries 0–3 (SD 0.31, skewness −0.1, bounded), ~0 from 9; attn.out at the last
token 0.02 to entry 9, 0.79 at 10 (SD 0.32), 0.92 at 11–13, 0.12 at 16 (block 12 carries it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from lamina.experiments.trace.compute import classes_of, interval, prompt_effects, summarise, window_layers
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

BLOCKS = 30  # SmolLM2-135M's attn.out / mlp.out entries (blocks 0..29)


@dataclass(frozen=True)
class Windowed:
    """Restoring ``site`` (attn.out or mlp.out) over ``window`` layers: a prompt's restoration is a sum of single-layer
    contributions over the window of each entry (``trace.compute.window_layers``, clipped at the ends: entries 0..5
    of window 10 restore the same layers 0..9, so they have the same effect). A row's contributions: a share
    (uniform in ``lo``..``hi``) at one ``key`` layer (-1: none) and the rest a Gaussian over layers (centre, its SD
    across prompts, width), with 30% per-layer multiplicative noise (AR(1) ρ 0.5) and an additive 0.005 of the gap per
    layer and noise sample; each prompt's windowed curve is scaled to its height (a share ``weak`` uniform in 0..0.2,
    else uniform in ``low``..``high``) of target − corrupted, target as in :class:`Scenario` (clean p, or above it
    for an overshooting prompt: the same target in both rows)."""

    site: str
    subject: tuple[int, float, float, float, float, float]  # (key, lo, hi, centre, centre SD, width)
    last: tuple[int, float, float, float, float, float]
    subject_height: tuple[float, float, float]  # (weak, low, high)
    last_height: tuple[float, float, float]
    window: int = 10
    blocks: int = BLOCKS
    clean: tuple[float, float, float] = SMOLLM2.clean
    overshoot: float = SMOLLM2.overshoot
    linked: float = SMOLLM2.linked
    samples: int = 2


def _ar1(rng, shape, rho):
    z = rng.normal(size=shape)
    out = np.empty(shape)
    out[..., 0] = z[..., 0]
    for j in range(1, shape[-1]):
        out[..., j] = rho * out[..., j - 1] + np.sqrt(1 - rho ** 2) * z[..., j]
    return out


def _prompts(rng, n, s):
    """``n`` prompts: clean p ``(n,)``, corrupted p ``(n, samples)``, restored p ``(n, samples, LAYERS, 2)`` at the
    last subject token and the last token."""
    if isinstance(s, Windowed):
        return _windowed(rng, n, s)
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


def _window_matrix(site, window, layers=BLOCKS):
    w = np.zeros((layers, layers))
    for e in range(layers):
        w[e, window_layers(site, e, window, layers)] = 1
    return w


def _windowed(rng, n, s: Windowed):
    """``n`` prompts of a :class:`Windowed` scenario, shaped as :func:`_prompts`'s (``s.blocks`` entries)."""
    layers = np.arange(s.blocks)
    a, b, low = s.clean
    clean = low + (1 - low) * rng.beta(a, b, n)
    factor = np.exp(rng.normal(np.log(0.02), 0.8, n)[:, None] + 0.5 * rng.normal(size=(n, s.samples)))
    corrupted = np.minimum(clean[:, None] * np.minimum(factor, 0.9), 1.0)
    k = corrupted[:, :, None]
    over = rng.random(n) < s.overshoot + s.linked * (clean < 0.4)
    target = np.where(over, clean + rng.uniform(0.3, 0.9, n) * (1 - clean),
                      np.minimum(1.0, clean * rng.uniform(0.9, 1.05, n)))
    w = _window_matrix(s.site, s.window, s.blocks)
    rows = []
    for (key, lo, hi, centre, centre_sd, width), (weak, h_low, h_high) in ((s.subject, s.subject_height),
                                                                             (s.last, s.last_height)):
        share = rng.uniform(lo, hi, (n, 1)) if key >= 0 else np.zeros((n, 1))
        mid = centre + centre_sd * rng.normal(size=(n, 1))
        spread = np.exp(-0.5 * ((layers - mid) / width) ** 2)
        u = share * (layers == key) + (1 - share) * spread / spread.sum(axis=1, keepdims=True)
        u = u * np.exp(0.3 * _ar1(rng, (n, s.blocks), 0.5))
        shape = u @ w.T
        height = np.where(rng.random(n) < weak, rng.uniform(0, 0.2, n), rng.uniform(h_low, h_high, n))
        u = u * (height / shape.max(axis=1))[:, None]
        gain = np.exp(0.15 * rng.normal(size=(n, s.samples, 1)))
        effect = (u[:, None] * gain + 0.005 * rng.normal(size=(n, s.samples, s.blocks))) @ w.T
        rows.append(np.clip(k + effect * (target[:, None, None] - k), 0, 1))
    return clean, corrupted, np.stack(rows, axis=-1)


def _trace(rng, n, s):
    clean, corrupted, restored = _prompts(rng, n, s)
    raw, effects = prompt_effects(clean, corrupted, restored, GROUPS)
    site, window = (s.site, s.window) if isinstance(s, Windowed) else ("hidden", 1)
    return summarise(effects, raw, window, site, rng), clean, corrupted


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


def effect_misses(n, rng, *, s=SMOLLM2, prompts=12, where="peak", row=SUBJECT):
    """The 95% interval of the effect at one (class, layer) misses its population mean: ``where="peak"`` class
    ``row`` (default the last subject token) at the population's peak layer (a fixed layer), ``"any"`` a (row, layer)
    of the figure's two rows drawn at random per simulation (the pointwise level along the bands)."""
    truth = _truth(s)[0]
    hits = 0
    for _ in range(n):
        trace = _trace(rng, prompts, s)[0]
        if where == "peak":
            c, layer = row, int(np.nanargmax(truth[row]))
        else:
            c, layer = (SUBJECT, LAST)[rng.integers(2)], int(rng.integers(truth.shape[1]))
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
# Windowed restoration, window 10 over SmolLM2's 30 blocks (runs of sites=attn.out,mlp.out window=10). mlp.out: at the
# last subject token most of the effect sits in block 0 for most prompts (entries 0..5, which all restore blocks 0..9:
# 0.74 mean, then 0.23 at entry 6 and about 0 from 16), a few prompts' in blocks 5..15; at the last token a small late
# bump (0.13 at entry 23) that never passes half. attn.out: about 0 at the last subject token (0.01); at the last token
# block 23 carries it: about 0.1 at entries 17..18, then 0.95 from entry 19 (the first window holding block 23) to 28.
MLP = Windowed("mlp.out", subject=(0, 0.3, 1.0, 5.0, 2.0, 2.5), last=(-1, 0.0, 0.0, 22.0, 2.0, 3.0),
               subject_height=(0.3, 0.4, 1.0), last_height=(0.7, 0.1, 0.45))
ATTN = Windowed("attn.out", subject=(-1, 0.0, 0.0, 19.0, 3.0, 4.0), last=(23, 0.6, 1.0, 21.0, 2.0, 4.0),
                subject_height=(0.0, 0.0, 0.02), last_height=(0.0, 0.45, 1.1))
MLP_PLANT = replace(MLP, subject=(-1, 0.0, 0.0, PLANT, 1.0, 2.0))  # the paper's shape: MLP blocks ~12, none at 0
# Gemma-3-270M, window 6 of 18 blocks: attn.out at the last token ~0.02 to entry 9, 0.79 at 10 (the first window
# holding block 12), 0.92 at 11–13, 0.12 at 16; bounded (per-prompt peaks 0.79–1.33, skew 0.7), no overshoot.
GEMMA_ATTN = Windowed("attn.out", subject=(-1, 0.0, 0.0, 8.0, 3.0, 3.0), last=(12, 0.5, 1.0, 12.5, 1.0, 1.5),
                      subject_height=(0.0, 0.0, 0.06), last_height=(0.0, 0.7, 1.15), window=6, blocks=18,
                      clean=GEMMA.clean, overshoot=0.0, linked=0.0)
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
MLP_TEXT = ("mlp.out, window 10 of 30 blocks (SmolLM2-like): at the last subject token block 0 carries most of "
            "the effect (entries 0–5 restore the same blocks 0–9: 0.6, then 0.2 at entry 6, ~0 from 16), heavy right "
            "tail (~3% of prompts above 2); at the last token a small late bump (0.16) that never passes half")
GEMMA_ATTN_TEXT = ("attn.out, window 6 of 18 blocks (Gemma-like): at the last token ≤ 0.07 to entry 9, 0.8–0.9 from "
                   "entry 10 (the first window holding block 12) to 15; bounded effects, no overshoot")
ATTN_TEXT = ("attn.out, window 10 of 30 blocks (SmolLM2-like): ~0.01 at the last subject token; at the last token "
             "block 23 carries it: ~0.1 at entries 17–18, 0.87 from entry 19 (the first window holding block 23) to "
             "28, heavy right tail (~5% of prompts above 2)")

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
    # Windowed attn.out / mlp.out restoration (window 10; Gemma-like: 6): sums over overlapping windows, so adjacent
    # entries share 9 of 10 blocks and the ends repeat one window (mlp.out's entries 0–5 are one value).
    # Most prompts' windowed effects lie close together (one block carries them) while the few overshooting prompts
    # carry much of the mean, so a t interval that lacks one misses: measured 0.08 (mlp.out) and 0.20 (attn.out, last
    # token; 0.19 at the first layer past half, 0.08 for the band there). Fail above 0.14, and 0.27 for the 0.2 cells
    # (with fast_n 200 a true 0.2 exceeds 0.27 about 1% of the time).
    Cell(EFFECT, EFFECT_TEST, f"{MLP_TEXT}; 12 prompts; the last subject token at the population's peak layer (0): "
         f"{KNOWN}", "level", lambda n, rng: effect_misses(n, rng, s=MLP), n=1000, fast_n=200, max_rate=0.14),
    Cell(EFFECT, EFFECT_TEST, f"{ATTN_TEXT}; 12 prompts; the last token at the population's peak layer (22): "
         f"{KNOWN}", "level", lambda n, rng: effect_misses(n, rng, s=ATTN, row=LAST), n=1000, fast_n=200,
         max_rate=0.27),
    Cell(PEAK, PEAK_T, f"{MLP_TEXT}; 12 prompts: {KNOWN}", "level",
         lambda n, rng: peak_misses(n, rng, s=MLP, bound="t"), n=1000, fast_n=200, max_rate=0.14),
    Cell(PEAK, PEAK_T, f"{ATTN_TEXT}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, s=ATTN, bound="t"),
         n=1000, fast_n=200, max_rate=0.14),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{MLP_TEXT}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, s=MLP),
         n=1000, fast_n=200),
    Cell(PEAK_BAND, PEAK_BAND_TEST, f"{ATTN_TEXT}; 12 prompts", "level", lambda n, rng: peak_misses(n, rng, s=ATTN),
         n=1000, fast_n=200),
    # mlp.out's windowed last-token curve never passes half (0.16 at most): no first-past-half cell for it.
    Cell(FIRST_BAND, FIRST_BAND_TEST, f"{ATTN_TEXT}; 12 prompts: {KNOWN}", "level",
         lambda n, rng: first_misses(n, rng, s=ATTN), n=1000, fast_n=200, max_rate=0.14),
    Cell(FIRST, FIRST_T, f"{ATTN_TEXT}; 12 prompts: {KNOWN}", "level",
         lambda n, rng: first_misses(n, rng, s=ATTN, bound="t"), n=1000, fast_n=200, max_rate=0.27),
    Cell(EFFECT, EFFECT_TEST, f"{GEMMA_ATTN_TEXT}; 12 prompts; the last token at the population's peak layer",
         "level", lambda n, rng: effect_misses(n, rng, s=GEMMA_ATTN, row=LAST), n=1000, fast_n=200),
    Cell(FIRST, FIRST_T, f"{GEMMA_ATTN_TEXT}; 12 prompts", "level",
         lambda n, rng: first_misses(n, rng, s=GEMMA_ATTN, bound="t"), n=1000, fast_n=200),
    Cell(FIRST_BAND, FIRST_BAND_TEST, f"{GEMMA_ATTN_TEXT}; 12 prompts", "level",
         lambda n, rng: first_misses(n, rng, s=GEMMA_ATTN), n=1000, fast_n=200),
    Cell(WHERE, WHERE_TEST, f"peak at the last subject token; mlp.out, window 10; planted: the blocks' contributions "
         f"centred on block {PLANT} (the paper's early-middle MLP peak; SD 1 across prompts, width 2) instead of block "
         f"0, heights and tails as above; 12 prompts", "power",
         lambda n, rng: peak_found(n, rng, s=MLP_PLANT, at=PLANT), n=500, fast_n=100, min_rate=0.7),
]
