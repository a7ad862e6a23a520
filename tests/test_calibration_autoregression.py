"""The calibration cells of attn-autoregression (calibration/autoregression.py), each with its ``fast_n``
simulations: level cells at most ``cell.limit()`` (1.6 α unless the cell says otherwise), power cells at least.

Measured with ``n`` = 1000 simulations per cell: docs/results.md (attn-autoregression, Decisions)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: calibration/ is a folder there

from calibration.autoregression import CELLS  # noqa: E402


@pytest.mark.parametrize("index", range(len(CELLS)), ids=[f"{c.kind}-{i}" for i, c in enumerate(CELLS)])
def test_cell(index):
    cell = CELLS[index]
    rate = cell.run(cell.fast_n, np.random.default_rng(2500 + index)) / cell.fast_n
    if cell.kind == "level":
        assert rate <= cell.limit(), f"{cell.claim} under {cell.nuisance}: {rate:.3f} > {cell.limit()}"
    else:
        assert rate >= cell.limit(), f"{cell.claim} under {cell.nuisance}: power {rate:.3f} < {cell.limit()}"
