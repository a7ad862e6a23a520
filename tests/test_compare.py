"""lamina compare: one experiment across tiny random GPT-2 / Llama / NeoX models and their untrained controls.

The tidy table holds each member's own run numbers; a rerun reuses every run and loads no model;
adding a model runs only that model; a model that cannot run is named with its reason and leaves
the others' runs intact; the CLI's exit codes; the report in headless Chromium.
"""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

import lamina
from lamina.cli import main
from lamina.comparison.tables import TIDY_COLUMNS
from lamina.models.control import random_control
from lamina.models.identity import random_control_identity
from lamina.rundir import DATA_FILES
from test_experiments import FAST, results_numbers
from test_report import images_in_chromium

EXP = "attn-autoregression"  # the fastest experiment with per-layer intervals (the lags' t intervals)


@pytest.fixture(scope="module")
def three(tiny_gpt2, tiny_llama, tiny_neox, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("cmp") / "three"
    return lamina.compare(EXP, [tiny_gpt2, tiny_llama, tiny_neox], controls="random:2", control_seed=1, out=out,
                          progress=False, settings=FAST[EXP])


def test_tidy_table_numbers_are_each_runs_results(three):
    table = three.table
    assert tuple(table.columns) == TIDY_COLUMNS
    assert [m.status for m in three.members] == ["new"] * 9 and not three.failures
    assert [m.seed for m in three.members[:3]] == [None, 1, 2]  # two initialisations per model: seeds 1 and 2
    assert set(zip(table["model"], table["control"])) == {(m, c) for m in ("tiny-gpt2", "tiny-llama", "tiny-neox")
                                                         for c in (False, True)}
    saved = pd.read_csv(three.path / "profiles.csv")
    pd.testing.assert_frame_equal(saved, table, check_dtype=False)
    for member in three.members:
        run = lamina.Run.load(member.path)  # the member's ordinary run directory, read back
        rows = table[(table["model"] == member.model) & (table["control"] == member.control)
                     & (table["control_seed"] == (member.seed if member.control else -1))]
        own = run.profiles
        np.testing.assert_array_equal(rows["value"].to_numpy(), own["value"].to_numpy())
        np.testing.assert_array_equal(rows["ci_low"].to_numpy(), own["ci_low"].to_numpy())
        assert list(rows["layer"]) == list(own["layer"]) and list(rows["metric"]) == list(own["metric"])
        assert rows["value"].round(9).isin(results_numbers(member.path)).all()  # numbers of results.json itself
        n = run.manifest["model"]["n_layers"]
        assert (rows["n_layers"] == n).all() and (rows["family"] == run.manifest["model"]["family"]).all()
        np.testing.assert_allclose(rows["relative_depth"], (rows["layer"] + 0.5) / n)  # attn.out: mid-block
    key_numbers = pd.read_csv(three.path / "key_numbers.csv")
    assert set(key_numbers["label"]) == {m.label for m in three.members}


def test_bands_and_differences(three):
    """Bands over two initialisations are tested wherever the trained value and the controls' spread are
    finite (with or without the runs' own intervals); differences exist for metrics with intervals on both
    sides, for every pair of trained models, at the shallower model's depths."""
    table, bands = three.table, three.bands
    assert set(bands["model"]) == {"tiny-gpt2", "tiny-llama", "tiny-neox"}
    assert (bands["n_controls"] == 2).all()
    finite = bands["value"].notna() & bands["control_mean"].notna()
    assert (bands["tested"] <= finite).all() and bands["tested"].any()
    assert not (bands["outside"] & ~bands["tested"]).any()
    inside = bands["tested"] & ~bands["outside"].astype(bool)
    assert ((bands.loc[inside, "band_low"] <= bands.loc[inside, "value"])
            & (bands.loc[inside, "value"] <= bands.loc[inside, "band_high"])).all()
    statements = three.band_statements()
    for metric in statements:
        assert all(s.startswith(("largest departure", "not tested")) for s in statements[metric].values()), metric
    with_ci = set(table.loc[table["ci_low"].notna(), "metric"])
    diffs = three.differences
    pairs = set(zip(diffs["model_a"], diffs["model_b"]))
    assert pairs == {("tiny-gpt2", "tiny-llama"), ("tiny-gpt2", "tiny-neox"), ("tiny-llama", "tiny-neox")}
    assert set(diffs["metric"]) == with_ci
    site, metric = next((s, m) for s, m in zip(diffs["site"], diffs["metric"]) if s != "hidden")
    one = diffs[(diffs["metric"] == metric) & (diffs["site"] == site) & (diffs["model_b"] == "tiny-llama")]
    np.testing.assert_allclose(one["relative_depth"], [0.25, 0.75])  # the 2-layer Llama's own blocks
    assert (one["allowance"] >= 0).all()
    assert (one["ci_low"] <= one["difference"]).all() and (one["difference"] <= one["ci_high"]).all()


def test_comparison_directory_reads_back(three):
    again = lamina.Comparison.load(three.path)
    pd.testing.assert_frame_equal(again.table, three.table)
    assert [m.status for m in again.members] == [m.status for m in three.members]
    manifest = json.loads((three.path / "comparison.json").read_text())
    member = manifest["members"][1]
    assert member["control"] and member["label"] == "tiny-gpt2 (untrained, seed 1)" and member["identity"]
    assert {"profiles.csv", "key_numbers.csv", "bands.csv", "differences.csv", "report.html"} <= {
        p.name for p in three.path.iterdir()}


def test_control_is_the_architectures_own_init_under_its_seed(tiny_gpt2):
    """The tiny GPT-2 fixture is GPT2LMHeadModel(config) under torch.manual_seed(0): its control at seed 0 is
    the very same weights, at seed 1 different ones; tokenizer and BOS policy are the model's."""
    state = torch.random.get_rng_state()
    same, other = random_control(tiny_gpt2, seed=0), random_control(tiny_gpt2, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    for (name, a), b, c in zip(tiny_gpt2.hf.state_dict().items(), same.hf.state_dict().values(),
                               other.hf.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(tiny_gpt2.hf.transformer.h[0].attn.c_attn.weight, other.hf.transformer.h[0].attn.c_attn.weight)
    assert other.tokenizer is tiny_gpt2.tokenizer and other.prepend_bos == tiny_gpt2.prepend_bos
    assert other.name == "tiny-gpt2 (untrained, seed 1)" and other.source["init_seed"] == 1
    assert other.source["identity"] == random_control_identity(tiny_gpt2, 1) != random_control_identity(tiny_gpt2, 0)


def _save(model, path):
    model.hf.save_pretrained(path)
    model.tokenizer.save_pretrained(path)
    return str(path)


def _no_models(monkeypatch):
    """Make every way of getting a model fail loudly."""
    from transformers import AutoModelForCausalLM

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded or built")

    monkeypatch.setattr(lamina.models, "load", refuse)  # compare looks them up there when it runs
    monkeypatch.setattr(lamina.models, "random_control", refuse)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(AutoModelForCausalLM, "from_config", refuse)


def test_rerun_reuses_every_run_and_loads_no_model(tiny_gpt2, tiny_llama, tiny_neox, tmp_path, monkeypatch, data_dir):
    gpt2, llama = _save(tiny_gpt2, tmp_path / "gpt2"), _save(tiny_llama, tmp_path / "llama")
    out = tmp_path / "cmp"
    first = lamina.compare(EXP, f"{gpt2},{llama}", controls="random:2", out=out, progress=False,
                           settings=FAST[EXP])
    assert [m.status for m in first.members] == ["new"] * 6
    stamps = {m.label: (m.path / "results.json").stat().st_mtime_ns for m in first.members}
    with monkeypatch.context() as patched:
        _no_models(patched)
        again = lamina.compare(EXP, [gpt2, llama], controls="random:2", out=out, progress=False, settings=FAST[EXP])
    assert [m.status for m in again.members] == ["reused"] * 6
    assert {m.label: (m.path / "results.json").stat().st_mtime_ns for m in again.members} == stamps
    pd.testing.assert_frame_equal(again.table, first.table)
    # Adding a model costs that model only; another setting is another run (a new key).
    grown = lamina.compare(EXP, [gpt2, llama, tiny_neox], out=out, progress=False, settings=FAST[EXP])
    assert [m.status for m in grown.members] == ["reused", "reused", "new"]
    changed = lamina.compare(EXP, [gpt2], out=out, progress=False, settings={**FAST[EXP], "alpha": 0.01})
    assert changed.members[0].status == "new" and changed.members[0].path != first.members[0].path
    assert not (out / "bands.csv").exists()  # this comparison has no controls: the old file is gone
    rerun = lamina.compare(EXP, [gpt2], out=out, progress=False, settings=FAST[EXP], rerun=True)
    assert rerun.members[0].status == "new" and rerun.members[0].path == first.members[0].path


def test_a_failing_model_leaves_the_others_intact(tiny_gpt2, tiny_llama, tmp_path, data_dir):
    """focus_layer=2 names block 2: the 3-block GPT-2 has it, the 2-block Llama does not; a path that does not
    exist cannot load. Both are named with their reason; GPT-2's run (made earlier) is reused untouched."""
    settings = {**FAST["attn-kl"], "focus_layer": 2}
    out = tmp_path / "cmp"
    alone = lamina.compare("attn-kl", [tiny_gpt2], out=out, progress=False, settings=settings)
    before = {name: (alone.members[0].path / name).read_bytes() for name in DATA_FILES}
    mixed = lamina.compare("attn-kl", [tiny_gpt2, tiny_llama, str(tmp_path / "no-such-model")], out=out,
                           progress=False, settings=settings)
    status = {m.label: (m.status, m.reason) for m in mixed.members}
    assert status["tiny-gpt2"] == ("reused", None)
    assert status["tiny-llama"][0] == "failed" and "focus_layer=2 is not a layer of tiny-llama" in status["tiny-llama"][1]
    assert status[str(tmp_path / "no-such-model")][0] == "failed"
    assert "no model directory or file" in status[str(tmp_path / "no-such-model")][1]
    assert {name: (mixed.members[0].path / name).read_bytes() for name in DATA_FILES} == before
    assert set(mixed.table["model"]) == {"tiny-gpt2"}
    page = (out / "report.html").read_text()
    assert "Models that could not run" in page and "focus_layer=2 is not a layer of tiny-llama" in page
    manifest = json.loads((out / "comparison.json").read_text())
    assert [m["status"] for m in manifest["members"]] == ["reused", "failed", "failed"]
    with pytest.raises(lamina.LaminaError, match="no model could run attn-kl: focus_layer=2 is not a layer"):
        lamina.compare("attn-kl", [tiny_llama], out=tmp_path / "none", progress=False, settings=settings)
    assert (tmp_path / "none" / "report.html").is_file()  # written anyway, naming the failure


def test_position_compares_key_numbers_only(tiny_gpt2, tiny_neox, tmp_path, data_dir):
    done = lamina.compare("position", [tiny_gpt2, tiny_neox], out=tmp_path / "cmp", progress=False,
                          settings=FAST["position"])
    assert done.table.empty and list(done.table.columns) == list(TIDY_COLUMNS)
    assert not (tmp_path / "cmp" / "figures" / "profiles.png").exists()
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "Key numbers side by side" in page and "no per-layer metrics" in page


def test_cli(tiny_gpt2, tiny_llama, tmp_path, capsys, data_dir):
    gpt2, llama = _save(tiny_gpt2, tmp_path / "gpt2"), _save(tiny_llama, tmp_path / "llama")
    sets = [x for k, v in FAST[EXP].items() for x in ("--set", f"{k}={v}")]
    out = tmp_path / "cmp"
    assert main(["compare", EXP, "--models", f"{gpt2},{llama}", "--controls", "random", "--out", str(out), *sets]) == 0
    printed = capsys.readouterr().out
    # --controls random: five initialisations per model by default (2 models + 10 controls)
    assert f"report: {out / 'report.html'}" in printed and printed.count(" new ") == 12
    assert all(f"-untrained-s{seed}-" in printed for seed in range(5))
    assert main(["compare", EXP, "--models", f"{gpt2},{tmp_path / 'missing'}", "--out", str(out), *sets]) == 1
    captured = capsys.readouterr()
    assert "reused" in captured.out and "1 of 2 runs failed" in captured.err
    for argv, message in [
        (["compare", "no-such-experiment", "--models", gpt2], "unknown experiment"),
        (["compare", EXP, "--models", gpt2, "--set", "no_such_setting=1"], "unknown setting 'no_such_setting'"),
        (["compare", EXP, "--models", f"{gpt2},{gpt2}"], "named twice"),
        (["compare", EXP, "--models", gpt2, "--grid-points", "1"], "argument --grid-points: must be at least 2"),
    ]:
        assert main(argv + ["--out", str(tmp_path / "x")]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    for bad, message in (("trained", "unknown control 'trained'"), ("random:0", "K must be a whole number"),
                         ("random:x", "K must be a whole number")):
        assert main(["compare", EXP, "--models", gpt2, "--controls", bad]) == 2  # argparse: one line too
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "argument --controls" in err and message in err, err


def test_report_loads_in_chromium(three, tmp_path):
    page = (three.path / "report.html").read_text()
    links = re.findall(r"href='([^']+)'", page)
    assert links and all((three.path / link).is_file() for link in links)  # runs' pages and the CSVs
    total, loaded = images_in_chromium(three.path / "report.html", tmp_path)
    assert total == 2 == loaded  # profiles and differences


def test_report_escapes_model_names(tiny_gpt2, tmp_path, data_dir):
    import dataclasses

    evil = dataclasses.replace(tiny_gpt2, name="<img src=x onerror=alert(1)>")
    done = lamina.compare(EXP, [evil], out=tmp_path / "cmp", progress=False, settings=FAST[EXP])
    page = done.report.read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    view = done._repr_html_()  # the notebook view, same rule
    assert "<img src=x" not in view and "&lt;img src=x onerror=alert(1)&gt;" in view


def test_notebook_view(three):
    view = three._repr_html_()
    assert all(m.label in view for m in three.members)
    assert f"{len(three.completed)} of {len(three.members)} runs complete" in view
    assert view.count("data:image/png;base64,") == 2 - three.differences.empty  # profiles (and differences)
    for metric in three.band_statements():
        assert f"<b>{metric}</b>" in view


def test_model_lists_and_devices(tiny_gpt2, tmp_path, data_dir):
    from lamina.comparison.plan import parse_models

    assert parse_models("a, b@cuda:1,c@cpu") == [("a", None), ("b", "cuda:1"), ("c", "cpu")]
    assert parse_models(["org/model@v2"]) == [("org/model@v2", None)]  # not a device: part of the name
    with pytest.raises(lamina.LaminaError, match="not ''"):
        parse_models("a,,b")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the unavailable-device case needs a machine without one")
    path = _save(tiny_gpt2, tmp_path / "gpt2")
    done = lamina.compare(EXP, [f"{path}@cuda", tiny_gpt2], out=tmp_path / "cmp", progress=False,
                          settings=FAST[EXP])
    failed, ok = done.members
    assert failed.status == "failed" and "torch sees no CUDA GPU" in failed.reason and failed.device == "cuda"
    assert ok.status == "new"


def test_face_names_the_function_and_the_class():
    import lamina.comparison

    assert lamina.compare is lamina.comparison.compare and lamina.Comparison is lamina.comparison.Comparison


def test_attn_kl_controls_take_the_trained_models_labels(tiny_gpt2, tmp_path, data_dir):
    """An untrained control predicts (almost) nothing correctly: its attn-kl run groups tokens by its trained
    model's predictions (``labels_from``), on the same windows, and says so."""
    settings = {**FAST["attn-kl"], "replicates": 2, "window": 96}
    cmp = lamina.compare("attn-kl", [tiny_gpt2], controls="random:1", out=tmp_path / "c", progress=False,
                         settings=settings)
    trained, control = cmp.members
    assert [trained.status, control.status] == ["new", "new"]
    stored = json.loads((control.path / "config.json").read_text())
    assert stored["labels_from"] == str(trained.path.resolve())
    assert json.loads((trained.path / "config.json").read_text())["labels_from"] is None
    mine, theirs = (pd.read_csv(m.path / "tables" / "tokens.csv", keep_default_na=False) for m in (control, trained))
    pd.testing.assert_frame_equal(mine[["replicate", "position", "token", "correct", "predicted"]],
                                  theirs[["replicate", "position", "token", "correct", "predicted"]])
    assert any("labels_from" in note for note in control.run.result.data_notes)
    assert "labels_from" in control.run.key_numbers[0].value and "labels_from" not in trained.run.key_numbers[0].value
    # A rerun reuses both (the control's key holds the trained run's directory).
    again = lamina.compare("attn-kl", [tiny_gpt2], controls="random:1", out=tmp_path / "c", progress=False,
                           settings=settings)
    assert [m.status for m in again.members] == ["reused", "reused"]
    # Labels from a run over other windows are refused, naming the setting.
    with pytest.raises(lamina.LaminaError, match=r"labels_from=.*other windows \(window=96, here 64\)"):
        lamina.run("attn-kl", model=tiny_gpt2, out=tmp_path / "x", progress=False,
                   settings={**settings, "window": 64, "labels_from": str(trained.path)})
    assert not (tmp_path / "x").exists()
    with pytest.raises(lamina.LaminaError, match="is not an attn-kl run directory"):
        lamina.run("attn-kl", model=tiny_gpt2, out=tmp_path / "y", progress=False,
                   settings={**settings, "labels_from": str(tmp_path)})


def test_metrics_on_each_models_own_scale_are_not_differenced_between_models():
    """Experiment.own_scale (lens: nats bounded by each vocabulary's log V): no difference between two models is
    drawn for them, while a metric on a common scale still is; lens declares its own through OWN_SCALE."""
    from lamina.comparison import tables

    rows = []
    for model, n, shift in (("a", 4, 0.0), ("b", 6, 5.0)):
        for metric in ("entropy", "top1_agreement"):
            depth = np.arange(n + 1) / n
            value = depth + shift
            rows.append(pd.DataFrame({"model": model, "family": "x", "n_layers": n, "site": "hidden",
                                      "layer": np.arange(n + 1), "relative_depth": depth, "metric": metric,
                                      "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1,
                                      "control": False, "control_seed": -1}))
    table = pd.concat(rows, ignore_index=True)
    assert set(tables.differences(table)["metric"]) == {"entropy", "top1_agreement"}
    assert set(tables.differences(table, own_scale=("entropy",))["metric"]) == {"top1_agreement"}
    assert {"cross_entropy", "kl", "entropy", "tuned_entropy"} <= set(lamina.experiments.get("lens").own_scale)
    assert lamina.experiments.get("attn-kl").own_scale == ()
