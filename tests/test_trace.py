"""The trace experiment (causal tracing): exact restoration, zero noise, the prompt set, settings."""

import numpy as np
import pytest

import lamina
from lamina import edits as E
from lamina.errors import LaminaError
from lamina.experiments import get
from lamina.experiments.trace.compute import (classes_of, load_facts, p_answer, subject_span, window_layers)
from lamina.stimuli import Stimuli


def test_the_prompt_set_is_checked_on_both_models():
    import json
    from importlib.resources import files

    doc = json.loads(files("lamina.data").joinpath("facts.json").read_text())
    assert set(doc["checked_on"]) == {"smollm2-135m", "gemma3-270m"}
    facts = load_facts()
    assert len(facts) >= 40
    for fact in facts:
        assert fact["subject"] in fact["prompt"] and fact["answer"].startswith(" ")
        assert set(fact["p"]) == set(doc["checked_on"])


def test_restoring_every_position_of_a_hidden_entry_gives_back_the_clean_run(tiny_gpt2):
    ids, start, stop = subject_span(tiny_gpt2, "The Eiffel Tower is located in the city of", "The Eiffel Tower")
    assert start == 0 and stop == len(tiny_gpt2.encode("The Eiffel Tower"))
    answer = tiny_gpt2.encode(" Paris")[0]
    clean_rec = lamina.record(tiny_gpt2, Stimuli([np.asarray(ids)], next_ids=[answer]), sites=["hidden"],
                              progress=False)
    clean = p_answer(tiny_gpt2, [ids], [answer], [])[0]
    rng = np.random.default_rng(0)
    noise = [E.add("hidden", 0, rng.normal(0, 1.0, tiny_gpt2.d_model), positions=j) for j in range(start, stop)]
    corrupted = p_answer(tiny_gpt2, [ids], [answer], noise)[0]
    assert abs(corrupted / clean - 1) > 1e-3  # the noise changes the answer's probability (tiny: a random model)
    for layer in range(tiny_gpt2.n_layers + 1):
        restored = p_answer(tiny_gpt2, [ids], [answer],
                            noise + [E.patch("hidden", layer, source=clean_rec, positions="all")])[0]
        assert restored == pytest.approx(clean, rel=1e-6), layer


def test_zero_noise_gives_a_zero_raw_effect_and_an_undefined_normalised_one(tiny_gpt2):
    run = lamina.run("trace", model=tiny_gpt2, seed=0, progress=False,
                     settings={"noise": 0, "answer": "argmax", "n_prompts": 2, "samples": 1})
    r = run.result
    assert r.normalised_prompts == 0 and np.isnan(r.sites["hidden"].mean).all()
    assert np.nanmax(np.abs(r.sites["hidden"].raw_mean)) < 1e-6
    assert r.sites["hidden"].peak_last.layer == -1
    report = get("trace").report(r, run.config)
    assert any("noise = 0" in note for note in report.notes)
    assert any("undefined" in k.value for k in report.key_numbers)


def test_positions_classes_and_windows():
    # subject tokens 2..4 of 9: first 2, middle 3, last 4, first subsequent 5, further 6-7, last 8 (relative to 2)
    got = [c.tolist() for c in classes_of(2, 5, 9)]
    assert got == [[0], [1], [2], [3], [4, 5], [6]]
    got = [c.tolist() for c in classes_of(0, 1, 3)]  # one-token subject: only the last subject class
    assert got == [[], [], [0], [1], [], [2]]
    assert window_layers("hidden", 3, 10, 31) == [3]
    assert window_layers("mlp.out", 0, 10, 30) == list(range(0, 10))
    assert window_layers("mlp.out", 15, 10, 30) == list(range(10, 20))
    assert window_layers("attn.out", 29, 10, 30) == list(range(24, 30))


@pytest.mark.parametrize("settings", [{"noise": -1}, {"noise": float("nan")}, {"samples": 0}, {"window": 0},
                                      {"sites": "resid"}, {"sites": "hidden,hidden"}, {"sites": ""},
                                      {"answer": "gold"}, {"n_prompts": 0}])
def test_bad_settings_are_one_line_errors(settings):
    with pytest.raises(LaminaError) as err:
        get("trace").config(settings)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("site, window", [("hidden", 1), ("mlp.out", 3), ("attn.out", 1)])
def test_batched_restorations_equal_one_run_per_layer_and_position(tiny_llama, site, window):
    """trace_prompt runs every (layer, position) of a site in one record call (patch with pairs=, empty positions
    elsewhere); each equals its own run, patched alone."""
    from lamina.experiments.trace.compute import trace_prompt

    model = tiny_llama
    ids, start, stop = subject_span(model, "The Eiffel Tower is located in the city of", "The Eiffel Tower")
    answer = model.encode(" Paris")[0]
    noise = np.random.default_rng(1).normal(0, 2.0, size=(1, stop - start, model.d_model))
    p_clean, p_corrupt, restored = trace_prompt(model, ids, start, stop, answer, noise, [site], window)
    clean = lamina.record(model, Stimuli([np.asarray(ids)], next_ids=[answer]), sites=[site], progress=False)
    assert p_clean == pytest.approx(p_answer(model, [ids], [answer], [])[0], rel=1e-5)
    corrupt = [E.add("hidden", 0, noise[0, j], positions=start + j) for j in range(stop - start)]
    assert p_corrupt[0] == pytest.approx(p_answer(model, [ids], [answer], corrupt)[0], rel=1e-5)
    entries = model.n_layers + (site == "hidden")
    assert restored[site].shape == (1, entries, len(ids) - start)
    for e in range(entries):
        for k in range(len(ids) - start):
            alone = p_answer(model, [ids], [answer], corrupt + [
                E.patch(site, window_layers(site, e, window, entries), source=clean, positions=start + k)])[0]
            assert restored[site][0, e, k] == pytest.approx(alone, rel=1e-4, abs=1e-7), (e, k)


def test_patch_pairs_and_empty_positions_are_checked(tiny_llama):
    stim = Stimuli([np.arange(5, 10)] * 3)
    source = lamina.record(tiny_llama, Stimuli([np.arange(5, 10)]), sites=["hidden"], progress=False)
    with pytest.raises(LaminaError, match="source has 1 sequences, the stimuli 3"):
        lamina.record(tiny_llama, stim, edits=[E.patch("hidden", 1, source=source)], progress=False)
    with pytest.raises(LaminaError, match="pairs must give each of the 3"):
        lamina.record(tiny_llama, stim, edits=[E.patch("hidden", 1, source=source, pairs=[0, 1, 0])], progress=False)
    with pytest.raises(LaminaError, match="pairs must be one source sequence index"):
        E.patch("hidden", 1, source=source, pairs=[0.5, 0, 0])
    # pairs=[0]*3 patches the one source run into every copy: every copy is then that run
    rec = lamina.record(tiny_llama, stim, sites=["hidden"], progress=False,
                        edits=[E.patch("hidden", 1, source=source, pairs=[0, 0, 0], positions=[[0, 1], [], [4]])])
    np.testing.assert_array_equal(rec["hidden"][:, 1], source["hidden"][:, 0])  # no position edited: itself
    np.testing.assert_allclose(rec["hidden"][1, 0, :2], source["hidden"][1, 0, :2])


def test_prompt_effects_and_summary_over_prompts():
    """prompt_effects averages the noise samples and each class's positions, then normalises by clean − corrupted
    (NaN where that gap is not positive); summarise gives per (class, layer) the t interval and, at the chosen layers,
    the class's simultaneous band, which contains that layer's t interval."""
    from lamina.experiments.trace.compute import interval, prompt_effects, summarise
    from lamina.stats.replicates import t_interval

    groups = classes_of(0, 2, 4)  # subject tokens 0-1 of 4: first 0, last subject 1, first subsequent 2, last 3
    restored = np.array([[[0.3, 0.5, 0.1, 0.9]], [[0.5, 0.7, 0.3, 0.9]]])  # (samples 2, entries 1, positions 4)
    raw, effect = prompt_effects(0.9, np.array([0.1, 0.3]), restored, groups)
    np.testing.assert_allclose(raw[:, 0], [0.2, np.nan, 0.4, 0.0, np.nan, 0.7])
    np.testing.assert_allclose(effect[:, 0], raw[:, 0] / 0.7)
    assert np.isnan(prompt_effects(0.2, np.array([0.3, 0.3]), restored, groups)[1]).all()  # corrupted > clean
    rng = np.random.default_rng(0)
    effects = np.full((12, 6, 9), np.nan)
    effects[:, 2] = 0.3 + 0.1 * np.sin(np.arange(9)) + 0.2 * rng.normal(size=(12, 1)) + 0.05 * rng.normal(size=(12, 9))
    effects[:, 5] = np.clip(np.arange(9) - 5, 0, 1) + 0.05 * rng.normal(size=(12, 9))
    effects[3] = np.nan  # a prompt whose gap is not positive
    trace = summarise(effects, effects, 1, "hidden")
    finite = effects[np.isfinite(effects[:, 2, 0])]
    mean, low, high = t_interval(finite[:, 2])
    np.testing.assert_allclose(trace.mean[2], mean)
    np.testing.assert_allclose(trace.ci_low[2], low)
    assert trace.n[2] == 11 and trace.n[0] == 0 and np.isnan(trace.mean[0]).all()
    peak, first = trace.peak_last_subject, trace.peak_last
    assert peak.layer == int(np.argmax(mean)) and first.layer == 6
    for chosen in (peak, first):
        assert chosen.band_low < chosen.ci_low < chosen.mean < chosen.ci_high < chosen.band_high
    assert np.isnan(interval([0.5])[1])  # one prompt: no interval
    m, lo, hi = interval(np.exp(rng.normal(size=12)), skewed=True)
    assert hi - m > m - lo


def test_windowed_sites_get_the_note_on_their_known_excess(tiny_gpt2):
    settings = {"answer": "argmax", "n_prompts": 1, "samples": 1, "sites": "mlp.out", "window": 2}
    run = lamina.run("trace", model=tiny_gpt2, seed=0, progress=False, settings=settings)
    notes = get("trace").report(run.result, run.config).notes
    assert any(note.startswith("Windowed restoration (mlp.out, window 2)") for note in notes)
    run = lamina.run("trace", model=tiny_gpt2, seed=0, progress=False, settings={**settings, "window": 1})
    assert not any(note.startswith("Windowed") for note in get("trace").report(run.result, run.config).notes)
