"""The experiment contract, checked on every registered experiment (tiny GPT-2, small settings) by
:func:`lamina.testing.check_experiment` (the checks are listed in its module docstring); here, what is
particular to the seeds: their order, their package layout, a copied directory redrawn in a fresh
process with no model or cache, and presentation options restyling a run.
"""

import filecmp
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lamina
from lamina.cli import main
from lamina.experiments import EXPERIMENTS, Experiment, get
from lamina.experiments.base import Deferred
from lamina.testing import check_experiment

# Settings that make each experiment fast on a tiny model (the contract is about the shape, not the numbers).
FAST = {
    "position": {"n_samples": 20, "test_start": 100},
    "attn-kl": {"focus_layer": 1, "n_permutations": 50, "bins_sweep": "5,8"},
    "attn-autoregression": {},
    "mlp-stages": {"max_targets": 20, "n_boot": 100},
    "categories": {"n_permutations": 20, "context_length": 10, "max_contexts_per_word": 12},
    "lesion": {"window": 16, "replicates": 3},
    "trace": {"answer": "argmax", "n_prompts": 3, "samples": 2},
    "heads": {"window": 24, "replicates": 3, "skip_first": 2},
    "lens": {"window": 16, "replicates": 3, "lens": "tuned", "tuned_steps": 5, "tuned_windows": 4},
}
SEED_ORDER = ["position", "attn-kl", "attn-autoregression", "mlp-stages", "categories", "lesion", "trace", "heads",
              "lens"]


def test_every_experiment_is_registered_in_seed_order():
    assert list(EXPERIMENTS) == SEED_ORDER
    assert set(FAST) == set(EXPERIMENTS)  # a new experiment gets fast settings here, and so the contract


@pytest.mark.parametrize("name", SEED_ORDER)
def test_each_seed_is_a_package_of_the_conventional_files(name):
    exp = get(name)
    assert isinstance(exp, Experiment) and exp.name == name
    package = Path(importlib.import_module(exp.compute.__module__).__file__).parent
    files = {"__init__.py", "config.py", "compute.py", "result.py", "figures.py", "report.py"}
    assert files <= {p.name for p in package.iterdir()}
    assert exp.report.__module__.endswith(".report") and exp.figures.__module__.endswith(".figures")
    assert exp.Config.__module__.endswith(".config") and exp.Result.__module__.endswith(".result")
    # settings apart from compute: defining the experiment did not import compute.py (a run does)
    assert isinstance(exp.compute, Deferred) and exp.compute.resolve().__module__ == exp.compute.__module__


@pytest.mark.parametrize("name", SEED_ORDER)
def test_contract(name, tiny_gpt2, tmp_path, data_dir):
    """lamina.testing.check_experiment: definition, settings, run directory, Run.load, tables and profiles as
    numbers of the result, redraw from the directory alone, byte-identical rerun, lamina report's refusals."""
    run = check_experiment(name, tiny_gpt2, settings=FAST[name], tmp_dir=tmp_path)
    assert run.experiment is get(name) and run.path == tmp_path / "run"
    assert run.profiles.empty == (name == "position")  # position has no layers; every other has a profile


def _same_drawing(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in (a / "figures").iterdir())
    assert names == sorted(p.name for p in (b / "figures").iterdir())
    return [n for n in names + ["../report.html"] if not filecmp.cmp(a / "figures" / n, b / "figures" / n,
                                                                    shallow=False)]


def test_report_on_a_copied_directory_without_any_model(tmp_path, tiny_gpt2, data_dir):
    """A run directory copied elsewhere redraws in a fresh process with no model, no cache, no network."""
    run = lamina.run("attn-autoregression", model=tiny_gpt2, out=tmp_path / "run", progress=False)
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(run.path, moved)
    shutil.rmtree(moved / "figures")
    (moved / "report.html").unlink()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LAMINA_CACHE": str(tmp_path / "empty"),
           "PYTHONPATH": str(Path(lamina.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "lamina.cli", "report", str(moved)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _same_drawing(run.path, moved) == []
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_presentation_options_restyle_without_rerunning(tmp_path, tiny_gpt2, data_dir):
    run = lamina.run("attn-autoregression", model=tiny_gpt2, out=tmp_path / "run", progress=False)
    restyled = run.redraw(tmp_path / "restyled", histogram_bins=5, colormap="viridis")
    assert restyled.options.histogram_bins == 5 and restyled.result == run.result
    assert json.loads((restyled.path / "presentation.json").read_text())["colormap"] == "viridis"
    assert _same_drawing(run.path, restyled.path) == ["log_norms.png", "log_norms.svg", "../report.html"]
    # in place, from the directory's own files: back to the defaults gives the run's bytes again
    assert main(["report", str(restyled.path), "--set", "colormap=plasma", "--set", "histogram_bins=none"]) == 0
    assert _same_drawing(run.path, restyled.path) == []
    with pytest.raises(lamina.LaminaError, match="'colormap' must be a matplotlib colormap"):
        run.redraw(tmp_path / "bad", colormap="no-such-map")
    with pytest.raises(lamina.LaminaError, match="not a run directory"):
        lamina.Run.load(tmp_path)


def results_numbers(path) -> set:
    """Every number in a run directory's results.json, at any depth, rounded to 9 decimals (test_compare)."""
    found = set()

    def collect(value):
        if isinstance(value, dict):
            [collect(v) for v in value.values()]
        elif isinstance(value, list):
            [collect(v) for v in value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.add(round(float(value), 9))

    collect(json.loads((path / "results.json").read_text()))
    return found
