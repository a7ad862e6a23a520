"""Calibration of ``@lamina.experiment``'s claim "this metric differs from its null at layers …" (family-wise across
layers): ``lamina.LayerProfiles.of(..., null=0)``, the function every decorated experiment's report reads, on
per-replicate values with the nuisances of laminar profiles."""

from __future__ import annotations

import numpy as np

from lamina.experiments.simple import LayerProfiles

from .cells import Cell

REPLICATES, LAYERS = 8, 31


class _Model:  # what LayerProfiles.of reads of a model (its facts for the report)
    name, n_layers, context_length, prepend_bos = "simulated", LAYERS - 1, 2048, False


def _values(rng, *, rho, heavy, drift, effect):
    """``(replicates, layers)``: AR(1) ``rho`` along depth, t (3 df) noise when ``heavy``, a replicate offset
    shared by every layer plus a drift along the text when ``drift``, ``effect`` planted at 3 middle layers."""
    draw = (lambda size: rng.standard_t(3, size) / np.sqrt(3)) if heavy else (lambda size: rng.normal(size=size))
    noise = np.empty((REPLICATES, LAYERS))
    noise[:, 0] = draw(REPLICATES)
    for j in range(1, LAYERS):
        noise[:, j] = rho * noise[:, j - 1] + np.sqrt(1 - rho ** 2) * draw(REPLICATES)
    if drift:
        noise += np.linspace(-1, 1, REPLICATES)[:, None] + rng.normal(size=(REPLICATES, 1))
    noise[:, 14:17] += effect
    return noise


def claims(n, rng, *, rho=0.9, heavy=False, drift=False, effect=0.0):
    model, hits = _Model(), 0
    for i in range(n):
        values = _values(rng, rho=rho, heavy=heavy, drift=drift, effect=effect)
        hits += bool(LayerProfiles.of(model, "hidden", {"m": values}, null=0.0, seed=i).significant.any())
    return hits


CLAIM = "a decorated experiment's metric differs from its null at some layer (family-wise across layers)"
TEST = "experiments.simple.LayerProfiles.of (sign-flip max-|t|)"
CELLS = [
    Cell(CLAIM, TEST, "8 replicates, 31 layers, AR(1) ρ 0.9 along depth", "level", lambda n, rng: claims(n, rng),
         n=1000, fast_n=60),
    Cell(CLAIM, TEST, "heavy tails (t, 3 df) and a drift of the replicates along the text", "level",
         lambda n, rng: claims(n, rng, heavy=True, drift=True), n=1000, fast_n=60),
    Cell(CLAIM, TEST, "planted: +2 SD at 3 of 31 layers", "power", lambda n, rng: claims(n, rng, effect=2.0),
         n=500, fast_n=40, min_rate=0.5),
]
