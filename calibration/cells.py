"""The calibration suite's unit: one claim, one nuisance, a simulation that counts rejections.

Every test a report or a doc relies on is run here under its null and under each nuisance real data
have (autocorrelation, trends over position, drift across a text, restarted contexts, unequal sizes
and histogram occupancy, interpolation between depths), and under planted effects for power.
``make calibration`` (scripts/calibration.py) runs every cell with ``n`` simulations and writes
docs/calibration.md; tests/test_calibration.py runs each with ``fast_n`` and checks ``tolerance``.

A topic module (``calibration/<topic>.py``) defines ``CELLS: list[Cell]``. Each ``run(n, rng)``
returns the number of simulations (of ``n``) in which the claim was made (a rejection, a layer
outside a band, "the profiles differ"), using lamina's own public functions end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Cell:
    claim: str  # the sentence a report or doc makes, e.g. "leaves its controls' band (family-wise)"
    test: str  # the lamina function(s) that decide it
    nuisance: str  # "none", "AR(1) ρ=0.5", "log-position trend", "planted shift 0.5 SD", ...
    kind: str  # "level" (the claim is false: rate should be <= alpha) or "power" (planted: rate is power)
    run: Callable[[int, np.random.Generator], int]
    alpha: float = 0.05
    n: int = 1000  # simulations in `make calibration`
    fast_n: int = 200  # simulations in `make test`
    # make test: a level cell fails above `max_rate` (default: catches a doubled false-positive rate);
    # a power cell fails below `min_rate`.
    max_rate: float | None = None
    min_rate: float | None = None

    def limit(self) -> float:
        if self.kind == "level":
            return self.max_rate if self.max_rate is not None else 1.6 * self.alpha
        return self.min_rate if self.min_rate is not None else 0.0


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate ``k / n``."""
    from scipy.stats import beta

    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high
