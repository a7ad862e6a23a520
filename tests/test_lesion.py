"""lesion (issue 26): the experiment's ablations equal an independent loop over lamina.record(edits=)."""

import numpy as np
import pytest

import lamina
from lamina import edits, stimuli
from lamina.errors import LaminaError
from lamina.experiments import get
from lamina.experiments.lesion import compute as lesion
from lamina.experiments.lesion.result import layer_tests

SETTINGS = {"window": 16, "replicates": 3}


def _independent(model, ablation_edit, settings=SETTINGS):
    """Δ mean loss per (site, layer, window), written directly on lamina.record."""
    cfg = get("lesion").config(settings)
    stim = stimuli.windows(lamina.data.book(cfg.book), model, cfg.window, cfg.replicates,
                           max_length=model.context_length - int(model.prepend_bos))
    clean = lamina.record(model, stim, sites=["loss"])
    known = clean.tokens["next_id"].to_numpy() >= 0
    win = clean.tokens["sequence"].to_numpy()[known]
    base = clean.tokens["loss"].to_numpy(dtype=float)[known]
    out = np.zeros((len(cfg.sites), model.n_layers, cfg.replicates))
    for s, site in enumerate(cfg.sites):
        for layer in range(model.n_layers):
            rec = lamina.record(model, stim, sites=["loss"], edits=[ablation_edit(site, layer)])
            diff = rec.tokens["loss"].to_numpy(dtype=float)[known] - base
            out[s, layer] = [diff[win == w].mean() for w in range(cfg.replicates)]
    return out


def test_zero_ablation_equals_an_independent_loop(tiny_gpt2, data_dir):
    run = lamina.run("lesion", model=tiny_gpt2, progress=False, settings={**SETTINGS, "ablation": "zero"})
    expected = _independent(tiny_gpt2, lambda site, layer: edits.zero(site, layers=layer))
    np.testing.assert_allclose(run.result.windows.delta_loss, expected, rtol=0, atol=1e-6)
    assert np.abs(expected).max() > 1e-4  # the lesions do change the loss
    for s, site in enumerate(run.result.sites):
        np.testing.assert_allclose(site.delta_loss.mean, expected[s].mean(axis=1), atol=1e-6)


def test_identity_edit_gives_zero_deltas(tiny_gpt2, data_dir, monkeypatch):
    monkeypatch.setattr(lesion, "ablation_edit", lambda ablation, site, layer, clean, seed: edits.scale(site, layer, 1.0))
    r = lamina.run("lesion", model=tiny_gpt2, progress=False, settings=SETTINGS).result
    w = r.windows
    assert np.all(w.delta_loss == 0) and np.all(w.delta_accuracy == 0)
    for site in r.sites:
        assert np.all(site.delta_loss.mean == 0) and not site.delta_loss.significant.any()
        assert np.all(site.delta_loss.p == 1) and np.all(site.delta_loss.p_corrected == 1)


def test_split_and_tests_on_known_values():
    # per-window means over token masks; NaN for a window without tokens of that kind
    values, window = np.array([1.0, 3.0, 5.0, 7.0]), np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(lesion.window_means(values, window, 3), [2.0, 6.0, np.nan])
    np.testing.assert_array_equal(lesion.window_means(values, window, 2, [True, False, False, False]), [1.0, np.nan])
    rng = np.random.default_rng(0)
    shifted = rng.normal(size=(8, 4)) * 0.01 + np.array([0.0, 0.0, 1.0, 0.0])
    for correction in ("max", "holm"):
        a = layer_tests(shifted, correction, 0.05, rng)
        assert a.significant.tolist() == [False, False, True, False]
        assert a.ci_low[2] < 1 < a.ci_high[2] and np.all(a.p_corrected >= a.p - 1e-12)


def test_mean_and_resample_run_and_profile(tiny_gpt2, data_dir):
    for ablation in ("mean", "resample"):
        run = lamina.run("lesion", model=tiny_gpt2, progress=False, settings={**SETTINGS, "ablation": ablation})
        prof = run.experiment.profiles(run.result)
        assert set(prof.site) == {"attn.out", "mlp.out"}
        assert {"delta_loss_attn_out", "delta_accuracy_mlp_out"} <= set(prof.metric)
        assert len(prof[prof.metric == "delta_loss_attn_out"]) == tiny_gpt2.n_layers
    mean = lamina.run("lesion", model=tiny_gpt2, progress=False, settings={**SETTINGS, "ablation": "mean"})
    expected = _independent(tiny_gpt2, lambda site, layer: edits.mean(site, layers=layer, reference=_reference(
        tiny_gpt2, site)), settings=SETTINGS)
    np.testing.assert_allclose(mean.result.windows.delta_loss, expected, atol=1e-6)


def test_resample_equals_an_independent_loop(tiny_llama, data_dir):
    """Resample draws depend on the seed, layer and window only: the sweep draws what record draws (a
    BOS-prepending family, so the replayed prefix includes the BOS position)."""
    settings = {**SETTINGS, "ablation": "resample"}
    run = lamina.run("lesion", model=tiny_llama, progress=False, seed=3, settings=settings)
    expected = _independent(tiny_llama, lambda site, layer: edits.resample(
        site, layers=layer, source=_reference(tiny_llama, site), seed=3))
    np.testing.assert_allclose(run.result.windows.delta_loss, expected, rtol=0, atol=1e-6)


def test_smollm2_sweep_equals_an_independent_loop(smollm2, data_dir):
    """The default (mean) ablation on the embedded model: the sweep, which reuses the clean prefix, gives
    the Δ loss of full edited passes (issue 26: to 1e-5)."""
    run = lamina.run("lesion", model=smollm2, progress=False, settings=SETTINGS)
    references = {site: _reference(smollm2, site) for site in ("attn.out", "mlp.out")}
    expected = _independent(smollm2, lambda site, layer: edits.mean(site, layers=layer, reference=references[site]))
    np.testing.assert_allclose(run.result.windows.delta_loss, expected, rtol=0, atol=1e-5)
    assert np.abs(expected).max() > 0.1


def _reference(model, site):
    cfg = get("lesion").config(SETTINGS)
    stim = stimuli.windows(lamina.data.book(cfg.book), model, cfg.window, cfg.replicates,
                           max_length=model.context_length - int(model.prepend_bos))
    return lamina.record(model, stim, sites=[site])


@pytest.mark.parametrize("settings, message", [
    ({"ablation": "knockout"}, "'ablation' must be one of mean, zero, resample"),
    ({"sites": "hidden"}, "'sites' must have every item one of attn.out, mlp.out"),
    ({"sites": "attn.out,attn.out"}, "'sites' must not list an item twice"),
    ({"replicates": 1}, "at least 2"),
    ({"window": 1}, "at least 2"),
    ({"correction": "bh"}, "'correction' must be one of max, holm"),
    ({"alpha": 1.5}, "'alpha' must be between 0 and 1"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(LaminaError, match=message) as err:
        get("lesion").config(settings)
    assert "\n" not in str(err.value)


def test_window_longer_than_the_context_is_refused(tiny_gpt2, data_dir):
    with pytest.raises(LaminaError, match="does not fit") as err:
        lamina.run("lesion", model=tiny_gpt2, progress=False, settings={"window": 1000, "replicates": 2})
    assert "\n" not in str(err.value)


def test_controls_take_the_trained_models_labels(tiny_gpt2, tmp_path, data_dir):
    """In lamina compare an untrained control's lesion run splits tokens by its trained model's clean
    predictions (``labels_from``), token for token, and says so; other windows are refused."""
    import json

    import pandas as pd

    settings = {**SETTINGS, "sites": "attn.out"}
    cmp = lamina.compare("lesion", [tiny_gpt2], controls="random:1", out=tmp_path / "c", progress=False,
                         settings=settings)
    trained, control = cmp.members
    assert [trained.status, control.status] == ["new", "new"]
    assert json.loads((control.path / "config.json").read_text())["labels_from"] == str(trained.path.resolve())
    assert json.loads((trained.path / "config.json").read_text())["labels_from"] is None
    mine, theirs = (pd.read_csv(m.path / "tables" / "tokens.csv") for m in (control, trained))
    assert (mine["split_correct"] == theirs["correct"]).all()
    assert (theirs["split_correct"] == theirs["correct"]).all()
    assert control.run.result.labels_from == str(trained.path.resolve())
    assert any("labels_from" in note for note in control.run.result.data_notes)
    assert any("labels_from" in note for note in control.run.notes)
    with pytest.raises(LaminaError, match=r"labels_from=.*other windows \(window=16, here 12\)"):
        lamina.run("lesion", model=tiny_gpt2, out=tmp_path / "x", progress=False,
                   settings={**settings, "window": 12, "labels_from": str(trained.path)})
    with pytest.raises(LaminaError, match="is not a lesion run directory"):
        lamina.run("lesion", model=tiny_gpt2, out=tmp_path / "y", progress=False,
                   settings={**settings, "labels_from": str(tmp_path)})
