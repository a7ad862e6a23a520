"""The calibration suite's fast subset (issue 25): every cell of calibration/*.py with its ``fast_n``
simulations. A level cell (the claim is false by construction) fails above its limit (default 1.6 α:
a doubled false-positive rate is caught); a power cell fails below its stated minimum. `make
calibration` runs the same cells with more simulations and writes docs/calibration.md."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("calibration_script", ROOT / "scripts" / "calibration.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)
CELLS = script.cells()


def test_every_topic_has_cells_and_both_kinds():
    assert {"comparison"} <= {topic for topic, _ in CELLS}
    for topic in {t for t, _ in CELLS}:
        kinds = {c.kind for t, c in CELLS if t == topic}
        assert kinds == {"level", "power"}, f"{topic}: needs level and power cells, has {kinds}"


@pytest.mark.parametrize("index", range(len(CELLS)), ids=[f"{t}-{i}" for i, (t, _) in enumerate(CELLS)])
def test_cell(index):
    topic, cell = CELLS[index]
    hits, _ = script.run_cell(cell, cell.fast_n, 1000 + index)
    rate = hits / cell.fast_n
    if cell.kind == "level":
        assert rate <= cell.limit(), f"{topic}: {cell.claim} under {cell.nuisance}: {rate:.3f} > {cell.limit():.3f}"
    else:
        assert rate >= cell.limit(), f"{topic}: {cell.claim} with {cell.nuisance}: power {rate:.3f} < {cell.limit():.3f}"


def test_clopper_pearson_against_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    from calibration.cells import clopper_pearson

    for k, n in ((0, 50), (3, 200), (50, 50), (17, 1000)):
        np.testing.assert_allclose(clopper_pearson(k, n), proportion_confint(k, n, method="beta"), atol=1e-9)


if str(ROOT) not in sys.path:  # calibration/ is a folder of the repository, not of the package
    sys.path.insert(0, str(ROOT))
