"""``@lamina.experiment`` and ``lamina.LayerProfiles``: an experiment in one function, with every seed's machinery."""

from dataclasses import dataclass

import numpy as np
import pytest

import lamina
from lamina.errors import LaminaError
from lamina.experiments.settings import setting
from lamina.testing import check_experiment


@dataclass
class NormSettings:
    windows: int = setting(4, ge=2)  # windows of Alice: the replicates
    window: int = setting(16, ge=2)


@lamina.experiment(title="Hidden-state norms", question="How large is the residual stream at each depth?",
                   Config=NormSettings)
def hidden_norms(model, config, ctx):
    """Mean L2 norm of hidden per entry, windows of Alice as the replicates."""
    stim = lamina.stimuli.windows(lamina.data.book("alice"), model, config.window, config.windows)
    rec = lamina.record(model, stim, "hidden", loss=False, progress=False)
    seq = rec.tokens["sequence"].to_numpy()
    per = np.stack([[np.linalg.norm(rec.flat("hidden", e)[seq == w], axis=-1).mean() for e in rec.layers["hidden"]]
                    for w in range(len(stim))])  # (windows, entries)
    return lamina.LayerProfiles.of(model, "hidden", {"norm": per, "growth": per - per[:, :1]}, null=0.0)


def test_a_decorated_function_is_an_experiment_that_passes_the_contract(tiny_gpt2, tmp_path, data_dir):
    assert hidden_norms.name == "hidden-norms"
    assert hidden_norms.description == "Mean L2 norm of hidden per entry, windows of Alice as the replicates."
    run = check_experiment(hidden_norms, tiny_gpt2, tmp_dir=tmp_path)
    result = run.result
    assert result.metrics == ("norm", "growth") and result.mean.shape == (2, tiny_gpt2.n_layers + 1)
    assert result.n_replicates == (4, 4) and result.replicates.shape == (2, 4, tiny_gpt2.n_layers + 1)
    assert np.isnan(result.p_corrected[1, 0]) or result.p_corrected[1, 0] == 1.0  # growth is 0 at entry 0
    assert "sign-flip max-|t|" in result.test
    assert list(run.tables["profiles"].columns[:3]) == ["metric", "layer", "mean"]
    assert set(run.profiles["metric"]) == {"norm", "growth"}


def test_settings_are_declared_and_checked(tiny_gpt2):
    with pytest.raises(LaminaError, match="windows"):
        lamina.run(hidden_norms, tiny_gpt2, windows=1)


def test_layer_profiles_from_values_intervals_and_own_p_values(tiny_gpt2):
    rng = np.random.default_rng(0)
    reps = rng.normal(size=(8, 5)) + np.array([0, 0, 0, 3, 0])  # a planted effect at layer 3
    profiles = lamina.LayerProfiles.of(
        tiny_gpt2, "attn.out", {"planted": reps, "given": (np.arange(5.0), np.arange(5.0) - 1, np.arange(5.0) + 1),
                                "plain": np.ones(5)},
        null=0.0, p={"plain": np.array([0.5, 0.01, 0.5, 0.5, 0.5])}, test="my permutation test")
    assert profiles.significant[0].tolist() == [False, False, False, True, False]
    assert profiles.significant[2].tolist() == [False, True, False, False, False]
    assert not profiles.significant[1].any() and np.isnan(profiles.p_corrected[1]).all()
    assert profiles.n_replicates == (8, 0, 0) and "my permutation test" in profiles.test
    np.testing.assert_allclose(profiles.mean[0], reps.mean(0))


@pytest.mark.parametrize("metrics, says", [
    ({}, "non-empty dict"),
    ({"a": np.ones((1, 4))}, "replicates >= 2"),
    ({"a": np.ones(4), "b": np.ones(5)}, "same number of layers"),
    ({"a": (np.ones(4), np.ones(4))}, "(mean, low, high)"),
    ({"a": np.array([[1.0, np.nan], [1.0, 2.0]])}, "NaN or infinite"),
])
def test_bad_profiles_are_one_line_errors(tiny_gpt2, metrics, says):
    with pytest.raises(LaminaError) as err:
        lamina.LayerProfiles.of(tiny_gpt2, "hidden", metrics)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_function_that_returns_something_else_is_named(tiny_gpt2):
    @lamina.experiment(title="t", question="q")
    def wrong(model, config, ctx):
        return {"norm": [1, 2, 3]}

    with pytest.raises(LaminaError, match="should return lamina.LayerProfiles"):
        lamina.run(wrong, tiny_gpt2)
    with pytest.raises(LaminaError, match="decorates a function"):
        lamina.experiment(42, title="t", question="q")


def test_a_fault_in_the_experiments_own_code_is_named_as_its_not_lamina(tiny_gpt2, tmp_path, capsys, data_dir):
    """The CLI's one line for an unexpected exception names the experiment's file and line, not 'a bug in lamina'."""
    from lamina.cli import main

    source = tmp_path / "faulty.py"
    source.write_text("import lamina\n\n\n@lamina.experiment(title='t', question='q')\n"
                      "def faulty(model, config, ctx):\n    return 1 / 0\n")
    path = tmp_path / "model"
    tiny_gpt2.hf.save_pretrained(path)
    tiny_gpt2.tokenizer.save_pretrained(path)
    capsys.readouterr()  # (transformers' own progress bar while saving)
    assert main(["run", f"{source}:faulty", "--model", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error in your experiment's code" in err and "faulty.py, line 6" in err, err
    assert "ZeroDivisionError" in err and "bug in lamina" not in err
