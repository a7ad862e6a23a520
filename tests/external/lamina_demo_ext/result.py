"""The typed result of ``demo-norms``: results.json key for key, plus each window's profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina.experiments import ModelFacts
from lamina.experiments.across import Across
from lamina.experiments.typed import Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class NormsResult(Typed):
    window: int  # tokens per window
    replicates: int  # windows
    alpha: float
    starts: tuple[int, ...]  # each window's first token in the text
    entries: tuple[Across, ...]  # per hidden entry: mean log norm over windows, t interval, test against 0
    model: ModelFacts = detail_field()
    per_window: np.ndarray = array_field()  # (replicates, entries) float64: each window's mean log norm

    def column(self, field: str) -> np.ndarray:
        """One value per entry, e.g. ``column("ci_low")``."""
        return np.array([getattr(entry, field) for entry in self.entries], dtype=float)
