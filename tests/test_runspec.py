"""A run's specification is one typed value (:class:`lamina.experiments.spec.RunSpec`), built and checked
once at the edge (CLI or API) and passed down: nothing below parses the settings again."""

import json

import pytest

import lamina
import lamina.runner
from lamina.cli import main
from lamina.errors import LaminaError
from lamina.experiments import Experiment
from lamina.experiments.spec import RunSpec
from test_experiments import FAST


@pytest.fixture
def config_calls(monkeypatch):
    """How many times ``Experiment.config`` (the parse of the settings) is called."""
    calls = []
    real = Experiment.config

    def counted(self, overrides=None):
        calls.append(self.name)
        return real(self, overrides)

    monkeypatch.setattr(Experiment, "config", counted)
    return calls


def test_build_splits_sets_once_by_the_declared_fields():
    spec = RunSpec.build("position", "some-model", sets={"n_samples": "20", "density_bins": "7"}, seed=3)
    assert spec.name == "position" and spec.experiment.source == "lamina"
    assert spec.config.n_samples == 20 and spec.options.density_bins == 7
    assert spec.given == {"n_samples": "20"} and spec.seed == 3 and spec.model == "some-model"
    with pytest.raises(LaminaError, match="unknown setting 'n_sample'"):
        RunSpec.build("position", "m", sets={"n_sample": "20"})
    with pytest.raises(LaminaError, match="seed must be an integer"):
        RunSpec.build("position", "m", seed=-1)


def test_amended_applies_and_checks_settings_on_the_typed_config():
    spec = RunSpec.build("position", "m", settings={"n_samples": 20})
    assert spec.amended({"test_start": "100"}).config == spec.config.__class__(n_samples=20, test_start=100)
    with pytest.raises(LaminaError, match="n_samples"):
        spec.amended({"n_samples": "1"})


def test_run_parses_the_settings_once(tiny_gpt2, config_calls, data_dir):
    lamina.run("position", model=tiny_gpt2, progress=False, settings=FAST["position"])
    assert config_calls == ["position"]


def test_compare_builds_the_settings_once_for_every_member(tiny_gpt2, tmp_path, config_calls, data_dir):
    cmp = lamina.compare("position", [tiny_gpt2], controls="random:1", out=tmp_path / "c", progress=False,
                         settings=FAST["position"])
    assert [m.status for m in cmp.members] == ["new", "new"]
    assert config_calls == ["position"]  # once for the comparison; no member parses its settings again
    for m in cmp.members:
        stored = json.loads((m.path / "config.json").read_text())
        assert stored["n_samples"] == FAST["position"]["n_samples"]


def test_a_bad_set_is_refused_before_any_model_loads(monkeypatch, capsys, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(lamina.models, "load", refuse)  # the runner and compare look it up there when they run
    for command in (["run", "position", "--out", str(tmp_path / "r")],
                    ["compare", "position", "--models", "tiny", "--out", str(tmp_path / "c")]):
        assert main([*command, "--set", "n_samples=1"]) == 2
        err = capsys.readouterr().err
        assert "'n_samples' must be at least 2" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()
