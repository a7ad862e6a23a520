"""Calibration cells of ``attn-kl``: the claims its report makes, under their null and its nuisances.

Every simulation runs :func:`lamina.experiments.attn_kl.inference.analyse`, the experiment's whole
statistics stage (window starts left out, label shuffles within windows or lengths, per-window tests,
the t test of the windows' within-stratum differences with sign flips of whole windows, the pairing
test of JS, corrections across layers), on simulated log norms and labels of 8 windows; the band cell
adds :func:`lamina.stats.profiles.profile_difference`, the rule ``lamina compare`` uses. A claim is made when
it is made at **some** layer (family-wise, as the report counts layers).

Simulated data (:func:`simulate`): 8 windows of 128 tokens, 4 layers of log norms (normal; with
``occupancy``: layer 1 heavy-tailed (t, 1.5 df: few occupied bins), layer 2 skewed (log-normal), layer 3
rounded to 0.5 (ties); ``ar``: AR(1) along each window), labels independent of the log norms unless an
effect is planted. Nuisances: unequal group sizes (accuracy 10% to 60% by window), restarted contexts
(each window's first tokens: accuracy 39% − 30%·e^(−t/10), log norms lowered by up to 2.9 SD·e^(−t/10),
as measured on SmolLM2, where the first 4 tokens are 9% correct and up to 2.9 SD low), autocorrelated
log norms (AR(1), ρ = 0.8).
"""

from __future__ import annotations

import numpy as np

from lamina.experiments.attn_kl import inference
from lamina.experiments.attn_kl.result import DEFAULT_SKIP_FIRST
from lamina.stats.dimensionality import one_blas_thread
from lamina.stats.profiles import profile_difference

from calibration.cells import Cell

N_WINDOWS = 8
WINDOW = 128
N_LAYERS = 4
SHUFFLES = 49  # label shuffles per simulation (the bias correction's mean; the pooled tests' p >= 1/50)
PAIRINGS = 2000  # drawn pairings of the JS pairing test (the experiment enumerates all 8! = 40,320)
SKIP = DEFAULT_SKIP_FIRST
TAU = 10.0  # decay of the start-of-window transient, tokens


def simulate(rng, *, accuracy=0.35, unequal=False, restart=False, ar=0.0, occupancy=False, shift=None,
             spread=None, n_windows=N_WINDOWS, window=WINDOW, n_layers=N_LAYERS):
    """Log norms ``(n_layers, n)``, labels ``(n,)``, window ``(n,)``, position ``(n,)`` of ``n_windows`` windows.

    shift: ``(layer, size)``: correct tokens' log norms at that layer raised by ``size`` SD (a difference);
    spread: ``(layer, factor)``: correct tokens' log norms at that layer scaled by ``factor`` (a difference
    in shape, not in mean).
    """
    position = np.tile(np.arange(window), n_windows)
    window_of = np.repeat(np.arange(n_windows), window)
    if unequal:
        acc = np.repeat(np.linspace(0.1, 0.6, n_windows)[rng.permutation(n_windows)], window)
    else:
        acc = np.full(position.shape, accuracy)
    transient = np.exp(-position / TAU) if restart else np.zeros(position.shape)
    labels = rng.random(position.size) < np.clip(acc - 0.30 * transient, 0.01, 0.99)
    noise = rng.normal(size=(n_layers, n_windows, window))
    if ar:
        for t in range(1, window):
            noise[..., t] = ar * noise[..., t - 1] + np.sqrt(1 - ar ** 2) * noise[..., t]
    values = noise.reshape(n_layers, -1)
    if occupancy:
        values[1] = rng.standard_t(1.5, size=values.shape[1]) + (values[1] if ar else 0)
        values[2] = np.exp(values[2])
        values[3] = np.round(values[3] * 2) / 2
    if restart:
        depth = np.linspace(2.9, 0.8, n_layers)[:, None]
        values = values - depth * transient[None]
    if shift is not None:
        layer, size = shift
        values[layer] += size * labels
    if spread is not None:
        layer, factor = spread
        values[layer] = np.where(labels, factor * values[layer], values[layer])
    return values, labels, window_of, position


def analyse(data, rng, **settings):
    values, labels, window_of, position = data
    options = dict(skip_first=SKIP, n_bins=30, n_permutations=SHUFFLES, n_pairings=PAIRINGS, rng=rng)
    return inference.analyse(values, labels, window_of, position, **{**options, **settings})


def _count(n, rng, claim, **nuisance) -> int:
    made = 0
    with one_blas_thread():  # small products on shared cores: one BLAS thread is several times faster
        for _ in range(n):
            made += bool(claim(analyse(simulate(rng, **nuisance), rng)))
    return made


def difference_across(**nuisance):
    """Claim: the mean log norm differs at some layer, across windows (t test, sign flips, max |t|)."""
    return lambda n, rng: _count(n, rng, lambda a: a.across.difference.significant.any(), **nuisance)


def js_across(**nuisance):
    """Claim: the distributions differ at some layer, across windows (pairing test, standardised max)."""
    return lambda n, rng: _count(n, rng, lambda a: a.across.js.significant.any(), **nuisance)


def difference_pooled(**nuisance):
    """Claim: the mean log norm differs at some layer, pooled (shuffles within windows, standardised max)."""
    return lambda n, rng: _count(n, rng, lambda a: a.difference_significant.any(), **nuisance)


def js_pooled(**nuisance):
    """Claim: the distributions differ at some layer, pooled (shuffles within windows, standardised max of JS)."""
    return lambda n, rng: _count(n, rng, lambda a: a.js_significant.any(), **nuisance)


def shift_at(layer: int, **nuisance):
    """Power: the planted layer is found (difference across windows, family-wise)."""
    return lambda n, rng: _count(n, rng, lambda a: a.across.difference.significant[layer], **nuisance)


def spread_at(layer: int, **nuisance):
    """Power: the planted layer is found (JS pairing test across windows, family-wise)."""
    return lambda n, rng: _count(n, rng, lambda a: a.across.js.significant[layer], **nuisance)


def _length_strata(rng, shift):
    """Two next-token-length strata with accuracy 70% and 15% and different mean log norms (+1 SD for the
    short tokens), correct tokens shifted by ``shift`` in both: what ``shuffle=length`` stratifies."""
    values, _, window_of, position = simulate(rng)
    short = rng.random(position.size) < 0.5
    labels = rng.random(position.size) < np.where(short, 0.7, 0.15)
    values = values + 1.0 * short + shift * labels
    lengths = np.where(short, 1.0, 6.0)
    return values, labels, window_of, position, lengths


def stratified_interval_misses(n, rng, shift=0.5, layer=0) -> int:
    """Claim (false here): the within-stratum difference differs from the planted shift (its 95% interval,
    across windows, excludes it). With shuffle=length the pooled excess over the shuffles' expectation
    would shrink the shift; the within-stratum estimate does not."""
    missed = 0
    with one_blas_thread():
        for _ in range(n):
            values, labels, window_of, position, lengths = _length_strata(rng, shift)
            a = analyse((values, labels, window_of, position), rng, shuffle="length", token_length=lengths)
            d = a.across.difference
            missed += not (d.ci_low[layer] <= shift <= d.ci_high[layer])
    return missed


def differ(value_a, low_a, high_a, value_b, low_b, high_b) -> bool:
    """``lamina compare``'s claim "the profiles differ at some depth" for two profiles on the same layers
    (:func:`lamina.stats.profiles.profile_difference`, family-wise over the layers)."""
    depth = (np.arange(len(value_a)) + 0.5) / len(value_a)
    return bool(profile_difference(depth, value_a, low_a, high_a, depth, value_b, low_b, high_b).excludes_zero.any())


def band_between_null_models(n, rng) -> int:
    """Claim (false here): model A's and model B's bias-corrected JS profiles differ at some layer (lamina
    compare's rule for differences of profiles, family-wise over layers). Neither model's labels depend on its log norms; A's log norms
    are normal (about 26 occupied bins of 30) with accuracy 35%, B's heavy-tailed, skewed and tied (few
    occupied bins) with accuracy varying 10–60% by window: their plug-in JS differ at every layer."""
    made = 0
    with one_blas_thread():
        for _ in range(n):
            a = analyse(simulate(rng), rng).across.js
            b = analyse(simulate(rng, occupancy=True, unequal=True), rng).across.js
            made += bool(differ(a.corrected_mean, a.corrected_ci_low, a.corrected_ci_high, b.corrected_mean,
                                b.corrected_ci_low, b.corrected_ci_high))
    return made


# make test: 150 simulations per cell (about 2–3 s each on 2 shared cores). A level cell fails above 10%: a
# true rate of 5% exceeds that with probability 0.7%, a rate of 15% stays under it with probability 7%
# (a doubled rate, 10%, is caught about half the time; `make calibration` runs n = 1000).
FAST = 150
FAST_MAX = 0.10
LEVEL = {"fast_n": FAST, "max_rate": FAST_MAX}

TEST_DIFF = "inference.analyse: t test of windows' within-stratum differences, sign flips max |t|"
TEST_JS = "inference.analyse: pairing test of windows' JS, standardised max"
TEST_POOLED_DIFF = "inference.analyse: label shuffles within windows, difference, standardised max"
TEST_POOLED_JS = "inference.analyse: label shuffles within windows, JS, standardised max"

CELLS: list[Cell] = [
    # the difference of mean log norms, across windows (the report's main test)
    Cell("the mean log norm differs at some layer, across windows", TEST_DIFF, "none", "level",
         difference_across(), **LEVEL),
    Cell("the mean log norm differs at some layer, across windows", TEST_DIFF,
         "unequal group sizes (accuracy 10–60% by window)", "level", difference_across(unequal=True), **LEVEL),
    Cell("the mean log norm differs at some layer, across windows", TEST_DIFF,
         f"restarted contexts (low-accuracy, low-norm window starts; skip_first={SKIP})", "level",
         difference_across(restart=True), **LEVEL),
    Cell("the mean log norm differs at some layer, across windows", TEST_DIFF, "AR(1) log norms ρ=0.8", "level",
         difference_across(ar=0.8), **LEVEL),
    # JS, across windows
    Cell("the distributions differ at some layer, across windows", TEST_JS, "none", "level", js_across(), **LEVEL),
    Cell("the distributions differ at some layer, across windows", TEST_JS,
         "unequal occupancy (heavy tails, skew, ties) and group sizes", "level",
         js_across(occupancy=True, unequal=True), **LEVEL),
    Cell("the distributions differ at some layer, across windows", TEST_JS,
         f"restarted contexts (skip_first={SKIP})", "level", js_across(restart=True), **LEVEL),
    Cell("the distributions differ at some layer, across windows", TEST_JS, "AR(1) log norms ρ=0.8", "level",
         js_across(ar=0.8), **LEVEL),
    # the pooled tests (shuffles within windows: exact for labels that are not autocorrelated)
    Cell("the mean log norm differs at some layer, pooled", TEST_POOLED_DIFF,
         "unequal group sizes, AR(1) log norms ρ=0.8", "level", difference_pooled(unequal=True, ar=0.8), **LEVEL),
    Cell("the distributions differ at some layer, pooled", TEST_POOLED_JS,
         "unequal occupancy and group sizes", "level", js_pooled(occupancy=True, unequal=True), **LEVEL),
    # estimands and bands
    Cell("the within-stratum difference differs from the planted shift (95% interval excludes 0.5)",
         "inference.analyse(shuffle='length'): t interval of windows' within-stratum differences",
         "planted shift 0.5 SD; accuracy 70% vs 15% by next-token length", "level", stratified_interval_misses,
         **LEVEL),
    Cell("model A's bias-corrected JS leaves model B's band at some layer",
         "inference.analyse + stats.profiles.profile_difference (lamina compare's rule)",
         "two null models: occupancy ~26 vs few bins, equal vs unequal group sizes", "level",
         band_between_null_models, fast_n=FAST // 2, max_rate=FAST_MAX),
    # power
    Cell("the mean log norm differs at the planted layer, across windows", TEST_DIFF,
         "planted shift 0.3 SD at layer 2; restarted contexts", "power", shift_at(2, shift=(2, 0.3), restart=True),
         min_rate=0.6, fast_n=FAST),
    Cell("the distributions differ at the planted layer, across windows", TEST_JS,
         "planted spread ×0.5 (same mean) at layer 1", "power", spread_at(1, spread=(1, 0.5)), min_rate=0.6,
         fast_n=FAST),
]
