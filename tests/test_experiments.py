"""The experiment contract, checked on every registered experiment (tiny GPT-2, small settings).

Every experiment: its defaults are valid; the same seed gives the same results.json; its run
directory holds everything; `lamina report` redraws the same report.html and figure files from it
without the model; Run.load gives back an equal typed result; a bad setting is a clear LaminaError.
"""

import dataclasses
import filecmp
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
from lamina.experiments.typed import Typed, dump_json, summary
from lamina.rundir import DATA_FILES

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
def test_definition_and_defaults(name):
    exp = get(name)
    assert isinstance(exp, Experiment) and exp.name == name and exp.title and exp.question and exp.description
    config, options = exp.config(), exp.options()  # every field has a valid default
    assert dataclasses.is_dataclass(config) and dataclasses.is_dataclass(options)
    assert issubclass(exp.Result, Typed) and exp.Result.__dataclass_params__.frozen
    assert not {f.name for f in dataclasses.fields(exp.Config)} & {f.name for f in dataclasses.fields(exp.Options)}
    package = Path(sys.modules[exp.compute.__module__].__file__).parent
    assert {"__init__.py", "compute.py", "result.py", "figures.py", "report.py"} <= {p.name for p in package.iterdir()}
    assert exp.report.__module__.endswith(".report") and exp.figures.__module__.endswith(".figures")


@pytest.fixture(scope="module", params=SEED_ORDER)
def finished(request, tiny_gpt2, tmp_path_factory, data_dir):
    name = request.param
    out = tmp_path_factory.mktemp(name) / "run"
    return lamina.run(name, model=tiny_gpt2, out=out, seed=0, progress=False, settings=FAST[name])


def test_same_seed_same_results(finished, tiny_gpt2):
    again = lamina.run(finished.experiment.name, model=tiny_gpt2, seed=0, progress=False,
                       settings=FAST[finished.experiment.name])
    assert dump_json(summary(again.result)) == (finished.path / "results.json").read_text()
    assert again.result == finished.result  # arrays and details too


def test_run_directory_is_complete(finished):
    path, exp = finished.path, finished.experiment
    for name in DATA_FILES + ("report.html",):
        assert (path / name).is_file(), name
    assert {p.stem for p in (path / "tables").iterdir()} == set(exp.tables(finished.result))
    stems = set(exp.figures(finished.result, finished.config, finished.options))
    assert {p.name for p in (path / "figures").iterdir()} == {f"{s}.{ext}" for s in stems for ext in ("png", "svg")}
    assert exp.config(json.loads((path / "config.json").read_text())) == finished.config
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["experiment"] == exp.name and {"load", "record", "stats", "figures", "write"} <= set(
        manifest["timings"])
    assert not list(path.parent.glob(".*partial*"))


def test_run_load_gives_the_same_result_and_tables(finished):
    loaded = lamina.Run.load(finished.path)
    assert loaded.experiment is finished.experiment
    assert loaded.result == finished.result and loaded.config == finished.config
    assert loaded.summary == json.loads((finished.path / "results.json").read_text())
    for name, table in loaded.tables.items():  # the CSVs are views of the result
        assert table.to_csv(index=False) == (finished.path / "tables" / f"{name}.csv").read_text(), name
    assert loaded.text == finished.text


def _same_drawing(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in (a / "figures").iterdir())
    assert names == sorted(p.name for p in (b / "figures").iterdir())
    return [n for n in names + ["../report.html"] if not filecmp.cmp(a / "figures" / n, b / "figures" / n,
                                                                    shallow=False)]


def test_lamina_report_redraws_the_same_files(finished, tmp_path, capsys):
    copy = tmp_path / "copy"
    assert main(["report", str(finished.path), "--out", str(copy)]) == 0
    assert str(copy / "report.html") in capsys.readouterr().out
    assert _same_drawing(finished.path, copy) == []
    assert main(["report", str(finished.path), "--out", str(copy)]) == 2  # exists: --force needed
    assert "already exists" in capsys.readouterr().err


def test_bad_settings_are_clear_errors(finished, tiny_gpt2, capsys):
    name, exp = finished.experiment.name, finished.experiment
    with pytest.raises(lamina.LaminaError, match=f"unknown setting 'no_such_setting' for experiment '{name}'"):
        lamina.run(name, model=tiny_gpt2, no_such_setting=1)
    with pytest.raises(lamina.LaminaError, match="unknown presentation option 'no_such_option'"):
        exp.options({"no_such_option": 1})
    setting = dataclasses.fields(exp.Config)[0].name
    assert main(["report", str(finished.path), "--set", f"{setting}=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{setting}' is a compute setting of '{name}'" in err and "new run" in err


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
    """Every number in a run directory's results.json, at any depth, rounded to 9 decimals."""
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


def test_profiles_are_numbers_of_the_result(finished):
    """The profile table (what lamina compare lines up) is tidy, one row per layer and metric, and holds
    values of the result itself."""
    from lamina.experiments.base import PROFILE_COLUMNS

    table = finished.profiles
    assert tuple(table.columns) == PROFILE_COLUMNS
    if finished.experiment.name == "position":
        assert table.empty
        return
    assert not table.duplicated(["metric", "layer"]).any()
    n_layers = finished.result.model.n_layers
    for (site, metric), rows in table.groupby(["site", "metric"]):
        assert list(rows["layer"]) == list(range(n_layers + 1 if site in ("hidden", "resid") else n_layers)), metric
        assert rows["value"].notna().any(), metric
        bounded = rows.dropna(subset=["ci_low", "ci_high"])
        assert (bounded["ci_low"] <= bounded["ci_high"]).all(), metric
    numbers = results_numbers(finished.path)
    derived = table["metric"].str.startswith(("rsa_diff",))  # one − many: a difference of two stored numbers
    values = table.loc[~derived, "value"].dropna()
    assert values.round(9).isin(numbers).all()
