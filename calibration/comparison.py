"""Calibration of `lamina compare`'s two claims, end to end through the comparison's own tables:
"leaves its controls' band" (comparison.tables.bands -> stats.profiles.control_band) and "the
profiles differ at depth x" (comparison.tables.differences -> stats.profiles.profile_difference).

Simulated profiles go into the same tidy table `lamina compare` builds from its runs, so the
simulation exercises the code paths of a real comparison (pivoting controls by seed, intervals to
standard errors, relative depths, Bonferroni counts), not a re-implementation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lamina.comparison.tables import bands, differences
from lamina.models.depth import relative_depth

from .cells import Cell

Z = 1.959963984540054


def _rows(model, n_layers, values, se, *, control=False, seed=-1, site="attn.out", metric="m"):
    layers = np.arange(n_layers)
    return pd.DataFrame({
        "model": model, "family": "sim", "n_layers": n_layers, "site": site, "layer": layers,
        "relative_depth": [relative_depth(site, int(layer), n_layers) for layer in layers], "metric": metric,
        "value": values, "ci_low": values - Z * se if se is not None else np.nan,
        "ci_high": values + Z * se if se is not None else np.nan, "control": control, "control_seed": seed})


def _ar1(rng, n, rho, size=()):
    """Shape ``(*size, n)``: a stationary AR(1) over layers with unit variance (neighbouring layers correlate)."""
    out = np.empty((*size, n))
    out[..., 0] = rng.normal(size=size)
    for i in range(1, n):
        out[..., i] = rho * out[..., i - 1] + np.sqrt(1 - rho ** 2) * rng.normal(size=size)
    return out


def band_claims(n, rng, *, k=3, n_layers=30, rho=0.8, own_se=0.3, unequal=False, shift=0.0, width=5,
                with_intervals=True):
    """How often the trained model is said to leave its controls' band at some layer.

    k + 1 initialisations of one architecture: the architecture's profile (a random walk over
    layers), each initialisation's deviation an AR(1) over layers (correlation ``rho`` between
    neighbours, SD 1), each run's own estimation error SD ``own_se`` (times 1..3 across layers with
    ``unequal``). The first initialisation is passed as "trained", with ``shift`` × its SD added at
    ``width`` layers in the middle (0: the null)."""
    hits = 0
    for _ in range(n):
        shared = np.cumsum(rng.normal(size=n_layers))
        se = own_se * (np.linspace(1, 3, n_layers) if unequal else np.ones(n_layers))
        init = _ar1(rng, n_layers, rho, (k + 1,)) + shared
        values = init + rng.normal(size=init.shape) * se
        mid = n_layers // 2
        values[0, mid - width // 2: mid - width // 2 + width] += shift * np.sqrt(1 + own_se ** 2)
        frames = [_rows("m", n_layers, values[0], se if with_intervals else None)]
        frames += [_rows("m", n_layers, values[i], se if with_intervals else None, control=True, seed=i)
                   for i in range(1, k + 1)]
        table = bands(pd.concat(frames, ignore_index=True))
        hits += bool(table["outside"].any())
    return hits


def difference_claims(n, rng, *, shape="peaked", n_a=30, n_b=18, se=0.05, bump=0.0):
    """How often two models are said to differ at some depth: the same profile ``shape`` sampled at
    ``n_a`` and ``n_b`` layers with independent errors of SD ``se``; ``bump`` × se added to model a over
    relative depths 0.55–0.75 (0: the null)."""
    def f(x):
        if shape == "linear":
            return 2 * x
        if shape == "peaked":
            return np.exp(-((x - 0.6) / 0.12) ** 2)
        return np.sin(6 * x)  # "wavy"

    hits = 0
    for _ in range(n):
        frames = []
        for name, count, extra in (("a", n_a, bump), ("b", n_b, 0.0)):
            depth = (np.arange(count) + 0.5) / count
            values = f(depth) + rng.normal(0, se, count) + extra * se * ((depth >= 0.55) & (depth <= 0.75))
            frames.append(_rows(name, count, values, np.full(count, se)))
        table = differences(pd.concat(frames, ignore_index=True))
        hits += bool(table["excludes_zero"].any())
    return hits


CLAIM_BAND = "leaves its controls' band (at any layer)"
CLAIM_DIFF = "the profiles differ (at any depth)"
BAND_TEST = "comparison.tables.bands → stats.profiles.control_band"
DIFF_TEST = "comparison.tables.differences → stats.profiles.profile_difference"

# Each simulation goes through the comparison's pandas tables (~20 ms): make test runs 100 of each.
FAST = 100

CELLS = [
    Cell(CLAIM_BAND, BAND_TEST, "untrained passed as trained; 3 initialisations, 30 layers, AR(1) ρ 0.8 over layers",
         "level", lambda n, rng: band_claims(n, rng), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "as above, 5 initialisations", "level", lambda n, rng: band_claims(n, rng, k=5), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "as above, 2 initialisations", "level", lambda n, rng: band_claims(n, rng, k=2), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "own errors unequal across layers (×1–3), 3 initialisations", "level",
         lambda n, rng: band_claims(n, rng, unequal=True, own_se=0.6), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "runs without intervals (spread of initialisations only), 3 initialisations",
         "level", lambda n, rng: band_claims(n, rng, with_intervals=False), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "18 layers, independent across layers (ρ 0), 3 initialisations", "level",
         lambda n, rng: band_claims(n, rng, n_layers=18, rho=0.0), fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "planted: +8 SD of an initialisation at 5 layers, 3 initialisations", "power",
         lambda n, rng: band_claims(n, rng, shift=8.0), min_rate=0.1, fast_n=FAST),
    Cell(CLAIM_BAND, BAND_TEST, "planted: +8 SD at 5 layers, 5 initialisations", "power",
         lambda n, rng: band_claims(n, rng, k=5, shift=8.0), min_rate=0.6, fast_n=FAST),
    Cell(CLAIM_DIFF, DIFF_TEST, "same peaked profile at 30 and 18 layers", "level",
         lambda n, rng: difference_claims(n, rng), fast_n=FAST),
    Cell(CLAIM_DIFF, DIFF_TEST, "same linear profile at 30 and 18 layers", "level",
         lambda n, rng: difference_claims(n, rng, shape="linear"), fast_n=FAST),
    Cell(CLAIM_DIFF, DIFF_TEST, "same wavy profile (sin 6x) at 30 and 18 layers", "level",
         lambda n, rng: difference_claims(n, rng, shape="wavy"), fast_n=FAST),
    Cell(CLAIM_DIFF, DIFF_TEST, "same peaked profile at 12 and 36 layers", "level",
         lambda n, rng: difference_claims(n, rng, n_a=12, n_b=36), fast_n=FAST),
    Cell(CLAIM_DIFF, DIFF_TEST, "planted: +6 SE over depths 0.55–0.75 (peaked, 30 vs 18 layers)", "power",
         lambda n, rng: difference_claims(n, rng, bump=6.0), min_rate=0.5, fast_n=FAST),
]
