"""Loading a run or a comparison, drawing its figures and writing its report never import torch or
transformers: in a fresh process where importing either fails, ``lamina experiments -v``, ``lamina
report`` and ``Run.load`` / ``Comparison.load`` with their figures and notebook views work.
(:func:`lamina.testing.check_experiment` redraws every built-in experiment the same way.)"""

import os
import subprocess
import sys
from pathlib import Path

import lamina
from lamina.testing import _NO_TORCH

SRC = str(Path(lamina.__file__).parents[1])


def _without_torch(code: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", f"{_NO_TORCH}\n{code}", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_blocker_blocks():
    done = _without_torch("import torch")
    assert done.returncode != 0 and "imported torch" in done.stderr


def test_listing_experiments_needs_no_torch():
    done = _without_torch("from lamina.cli import main; sys.exit(main(['experiments', '-v']))")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("position", "attn-kl", "lesion", "trace", "lens", "heads"):
        assert name in done.stdout


def test_a_run_and_a_comparison_load_and_redraw_without_torch(tiny_gpt2, tmp_path, data_dir):
    comparison = lamina.compare("position", [tiny_gpt2], controls="random:1", runs_dir=tmp_path / "runs",
                                out=tmp_path / "cmp", seqlen=4, n_samples=20, replicates=2, test_start=100)
    run_dir = next(iter(comparison.runs.values())).path
    code = """
import lamina
from lamina.cli import main
run = lamina.Run.load(sys.argv[1])
assert run.figures() and '<img' in run._repr_html_()
cmp = lamina.Comparison.load(sys.argv[2])
assert 'lamina-nb' in cmp._repr_html_() and cmp.runs
assert main(['report', sys.argv[1], '--out', sys.argv[3]]) == 0
assert 'torch' not in sys.modules and 'transformers' not in sys.modules
"""
    done = _without_torch(code, run_dir, tmp_path / "cmp", tmp_path / "redrawn")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "redrawn" / "report.html").read_bytes() == (run_dir / "report.html").read_bytes()
