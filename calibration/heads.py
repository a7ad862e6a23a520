"""Calibration of heads' claim "correct and incorrect predictions differ in this head's output norm" (family-wise
over layer × head): the windows' per-head differences (correct − incorrect mean log norm), tested by
``heads.compute.head_tests`` (sign-flip max-|t| over every layer and head, or Holm), the function the experiment
itself calls."""

from __future__ import annotations

import numpy as np

from lamina.experiments.heads.compute import head_tests

from .cells import Cell

WINDOWS, LAYERS, HEADS = 8, 30, 9  # SmolLM2's layers and heads, the experiment's default windows


def _differences(rng, *, rho, shared, heavy, unequal, drift, effect):
    """``(layers, heads, windows)`` correct − incorrect differences under the null (or ``effect`` planted at three
    heads of layer 15): AR(1) ``rho`` across layers, a component ``shared`` by the heads of a layer (heads of one
    layer read the same stream), t-distributed (3 df) noise when ``heavy``, windows whose incorrect group is small
    (3 to 60 tokens: their differences are noisier) when ``unequal``, and a window offset common to every head when
    ``drift`` (later windows of a book differ for every head at once)."""
    draw = (lambda size: rng.standard_t(3, size) / np.sqrt(3)) if heavy else (lambda size: rng.normal(size=size))
    noise = np.empty((LAYERS, HEADS, WINDOWS))
    layer = draw((1, WINDOWS))
    for j in range(LAYERS):
        layer = rho * layer + np.sqrt(1 - rho ** 2) * draw((1, WINDOWS)) if j else layer
        noise[j] = np.sqrt(shared) * layer + np.sqrt(1 - shared) * draw((HEADS, WINDOWS))
    scale = np.sqrt(60 / rng.integers(3, 61, WINDOWS)) if unequal else np.ones(WINDOWS)
    values = 0.05 * noise * scale
    if drift:  # a per-window offset shared by every head: mean 0 over the book, so still no effect
        values += 0.05 * (np.linspace(-1, 1, WINDOWS) + rng.normal(size=WINDOWS)) * np.sign(rng.normal())
    values[15, :3] += effect
    return values


def claims(n, rng, *, correction="max", rho=0.8, shared=0.5, heavy=False, unequal=False, drift=False, effect=0.0):
    hits = 0
    for _ in range(n):
        diff = _differences(rng, rho=rho, shared=shared, heavy=heavy, unequal=unequal, drift=drift, effect=effect)
        hits += bool(head_tests(diff, correction, 0.05, rng).significant.any())
    return hits


CLAIM = "correct and incorrect predictions differ in some head's output norm (family-wise over layer × head)"
TEST = "experiments.heads.compute.head_tests"
CELLS = [
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "8 windows, 270 heads; AR(1) ρ 0.8 across layers, half the variance "
         "shared by a layer's heads", "level", lambda n, rng: claims(n, rng), n=1000, fast_n=60),
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "heavy tails (t, 3 df), unequal incorrect-group sizes (3–60 tokens "
         "per window) and a drift of the windows shared by every head", "level",
         lambda n, rng: claims(n, rng, heavy=True, unequal=True, drift=True), n=1000, fast_n=60),
    Cell(CLAIM, f"{TEST} (Holm)", "heavy tails, unequal sizes, heads independent", "level",
         lambda n, rng: claims(n, rng, correction="holm", rho=0.0, shared=0.0, heavy=True, unequal=True),
         n=1000, fast_n=30),
    Cell(CLAIM, f"{TEST} (sign-flip max-|t|)", "planted: +0.15 at 3 of 270 heads (3 window SDs)", "power",
         lambda n, rng: claims(n, rng, effect=0.15), n=500, fast_n=40, min_rate=0.5),
]
