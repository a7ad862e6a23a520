"""The typed result of ``attn-autoregression``: results.json key for key, plus the log norms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class SignificantLayers(Typed):
    """Layers with p < alpha per lag, raw and after Benjamini–Hochberg."""

    t1_raw: int
    t1_bh: int
    t2_raw: int
    t2_bh: int


@dataclass(frozen=True, eq=False)
class LayerFit(Typed):
    """One layer's OLS of y[t] on y[t-1] and y[t-2]."""

    intercept: float
    beta_t1: float
    beta_t2: float
    p_t1: float
    p_t2: float
    r2: float
    se_t1: float
    se_t2: float
    p_t1_bh: float  # Benjamini–Hochberg across layers
    p_t2_bh: float


@dataclass(frozen=True, eq=False)
class Norms(Typed):
    log_norms: np.ndarray  # (n_layers, n_tokens) float64, log L2 norm of attn.out
    tokens: np.ndarray  # (n_tokens,) str


@dataclass(frozen=True, eq=False)
class AutoregressionResult(Typed):
    n_tokens: int
    n_targets: int
    source: str
    alpha: float
    significant_layers: SignificantLayers
    layers: tuple[LayerFit, ...]
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    norms: Norms = array_field()

    def column(self, name: str) -> np.ndarray:
        """One value per layer, shape ``(n_layers,)``: e.g. ``column("beta_t1")``."""
        return np.array([getattr(layer, name) for layer in self.layers])
