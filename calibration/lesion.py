"""Calibration of lesion's claim "ablating this site changes the loss at layers …" (family-wise across layers):
the windows' per-layer Δ loss, tested by ``lesion.result.layer_tests`` (sign-flip max-|t| over layers, or Holm),
the function the experiment itself calls."""

from __future__ import annotations

import numpy as np

from lamina.experiments.lesion.result import layer_tests

from .cells import Cell

WINDOWS, LAYERS = 8, 30


def _deltas(rng, *, rho, heavy, drift, effect):
    """``(windows, layers)`` Δ loss: each window's effects correlated across layers (AR(1) ρ), heavy-tailed
    (t with 3 df) when ``heavy``, a window-level offset shared by every layer plus a drift along the book
    when ``drift``, and ``effect`` added at 3 middle layers."""
    noise = np.empty((WINDOWS, LAYERS))
    draw = (lambda size: rng.standard_t(3, size) / np.sqrt(3)) if heavy else (lambda size: rng.normal(size=size))
    noise[:, 0] = draw(WINDOWS)
    for j in range(1, LAYERS):
        noise[:, j] = rho * noise[:, j - 1] + np.sqrt(1 - rho ** 2) * draw(WINDOWS)
    values = 0.05 * noise
    if drift:  # windows later in the book are harder for everyone: a shared offset, mean 0 over the book
        values += 0.05 * (np.linspace(-1, 1, WINDOWS)[:, None] + rng.normal(size=(WINDOWS, 1)))
    values[:, 14:17] += effect
    return values


def claims(n, rng, *, correction="max", rho=0.8, heavy=False, drift=False, effect=0.0):
    hits = 0
    for _ in range(n):
        test = layer_tests(_deltas(rng, rho=rho, heavy=heavy, drift=drift, effect=effect), correction, 0.05, rng)
        hits += bool(test.significant.any())
    return hits


CLAIM = "ablation changes the loss at some layer (family-wise across layers, windows as the unit)"
TEST = "experiments.lesion.result.layer_tests"
CELLS = [
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "8 windows, 30 layers correlated (AR(1) ρ 0.8)", "level",
         lambda n, rng: claims(n, rng), n=1000, fast_n=100),
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "heavy tails (t, 3 df) and a drift of the windows along the book",
         "level", lambda n, rng: claims(n, rng, heavy=True, drift=True), n=1000, fast_n=100),
    Cell(CLAIM, f"{TEST} (Holm)", "heavy tails and drift, layers independent", "level",
         lambda n, rng: claims(n, rng, correction="holm", rho=0.0, heavy=True, drift=True), n=1000, fast_n=100),
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "planted: +0.1 nats at 3 of 30 layers (2 window SDs)", "power",
         lambda n, rng: claims(n, rng, effect=0.1), n=500, fast_n=60, min_rate=0.6),
]
