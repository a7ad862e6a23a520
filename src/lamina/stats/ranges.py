"""Value ranges for axes and colour scales, robust to a few extreme values."""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError


def central_range(arrays, coverage: float = 99.0, *, symmetric: bool = False) -> tuple[float, float]:
    """(low, high) holding the central ``coverage`` percent of all values in ``arrays`` (any shapes,
    NaN ignored), padded by 5%, for axis limits that do not let a few extreme activations squeeze the
    bulk into one pixel. ``symmetric``: centred on 0."""
    if not 0 < coverage <= 100:
        raise LaminaError(f"coverage is a percentage in (0, 100], not {coverage}.")
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    tail = (100 - coverage) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    if symmetric:
        low, high = -max(abs(low), abs(high)), max(abs(low), abs(high))
    pad = 0.05 * (high - low or 1.0)
    return float(low - pad), float(high + pad)
