"""Faults (issue 24): a full disk and a kill at any moment of a recording, a run and a comparison, and
every damaged file of their directories.

Asserted every time: one clear line, exit status 2 for what the user's side caused (a full disk, a
damaged or hand-edited file), nothing finished lost, and a rerun that completes and equals an
uninterrupted one. The full disk is real: a small tmpfs (needs root, as CI and `make test` on the
project's machines have; skipped otherwise) whose size hypothesis draws, so the disk fills at any
point of the work. Bounded: a few examples each, a 2-layer random GPT-2 saved to disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import lamina
from lamina import LaminaError, Recording
from lamina.cli import main
from lamina.recording import store

EXAMPLES = int(os.environ.get("LAMINA_FAULT_EXAMPLES", "3"))
FAULTS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
RUN_SETTINGS = ["--set", "n_samples=20", "--set", "test_start=100"]  # position, fast on a tiny model


# ---- the world ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 2-layer random GPT-2 with the real tokenizer, saved like a Hugging Face checkpoint."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from conftest import _gpt2_files

    root = tmp_path_factory.mktemp("fault-model")
    vocab, merges = _gpt2_files()
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=256,
                               vocab_size=len(tokenizer))).eval().save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def record_args(model_dir, out) -> list[str]:
    return ["record", str(model_dir), "--source", "hellaswag", "--first", "6", "--n-texts", "40",
            "--sites", "hidden,mlp.post", "--out", str(out)]


@contextlib.contextmanager
def small_disk(path: Path, size: int):
    """A tmpfs of ``size`` bytes at ``path``; yields a function that grows it (the space freed)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a real full disk needs root to mount a small tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def grow(new_size: int = 256 << 20):
        subprocess.run(["mount", "-o", f"remount,size={new_size}", str(path)], check=True)

    try:
        yield grow
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_line_error(err: str, *needles: str) -> str:
    # transformers' own logging (a warning about the saved config) is not lamina's to say
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[transformers]")]
    assert len(lines) == 1 and lines[0].startswith("lamina: error:"), err
    assert "Traceback" not in err and "internal error" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def same_recording(a: Recording, b: Recording) -> None:
    assert a.layers == b.layers
    for site in a.sites:
        np.testing.assert_array_equal(a[site], b[site])
    cols = ["sequence", "position", "token_id", "next_id", "loss", "predicted_id"]
    assert a.tokens[cols].equals(b.tokens[cols])


def leftovers(root: Path) -> list[str]:
    """Half-written files or directories anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith((".partial", ".tmp")) or ".partial-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def reference_recording(model_dir, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("ref") / "rec"
    assert main(record_args(model_dir, out)) == 0
    return Recording.load(out)


@pytest.fixture(scope="module")
def reference_run(model_dir, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["run", "position", "--model", str(model_dir), *RUN_SETTINGS, "--out", str(out)]) == 0
    return out


# ---- a full disk -------------------------------------------------------------------------------
@FAULTS
@given(fraction=st.floats(0.0, 1.0))
def test_full_disk_mid_recording(model_dir, reference_recording, tmp_path, capsys, fraction):
    need = sum((reference_recording.path / f).stat().st_size for f in os.listdir(reference_recording.path))
    disk = tmp_path / f"disk-{fraction:.6f}"
    with small_disk(disk, 4096 + int(fraction * need)) as grow:
        out = disk / "rec"
        code = main(record_args(model_dir, out))
        err = capsys.readouterr().err
        if code != 0:
            assert code == 2
            one_line_error(err, "No space left on device", "run the same command again")
            assert leftovers(disk) == []
            grow()
            assert main(record_args(model_dir, out)) == 0
        same_recording(Recording.load(out, verify=True), reference_recording)


def test_full_disk_keeps_finished_shards_and_rerecords_only_the_rest(tiny_gpt2, tmp_path):
    rng = np.random.default_rng(0)
    stimuli = lamina.Stimuli([rng.integers(0, 5000, 16) for _ in range(12)])
    full = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=tmp_path / "full", shard_size=3, progress=False)
    shard = (tmp_path / "full" / "shard-00000.safetensors").stat().st_size
    with small_disk(tmp_path / "disk", 2 * shard + 8192) as grow:
        out = tmp_path / "disk" / "rec"
        with pytest.raises(OSError, match="No space left"):
            lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, shard_size=3, progress=False)
        finished = json.loads((out / "manifest.json").read_text())["shards"]
        assert 1 <= len(finished) < 4 and leftovers(out) == []
        before = {e["file"]: (out / e["file"]).stat().st_mtime_ns for e in finished}
        grow()
        again = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, shard_size=3, progress=False)
        assert {f: (out / f).stat().st_mtime_ns for f in before} == before  # kept, not re-recorded
        again.verify()
        same_recording(again, full)


@FAULTS
@given(fraction=st.floats(0.0, 1.0))
def test_full_disk_mid_run(model_dir, reference_run, tmp_path, capsys, fraction):
    need = sum(p.stat().st_size for p in reference_run.rglob("*") if p.is_file())
    disk = tmp_path / f"disk-{fraction:.6f}"
    with small_disk(disk, 4096 + int(fraction * need)) as grow:
        out = disk / "run"
        args = ["run", "position", "--model", str(model_dir), *RUN_SETTINGS, "--out", str(out)]
        code = main(args)
        err = capsys.readouterr().err
        if code != 0:
            assert code == 2
            one_line_error(err, "No space left on device")
            assert not out.exists() and leftovers(disk) == []  # a run directory appears complete or not at all
            grow()
            assert main(args) == 0
        assert (out / "results.json").read_text() == (reference_run / "results.json").read_text()
        lamina.Run.load(out)


@FAULTS
@given(fraction=st.floats(0.0, 1.0))
def test_full_disk_mid_comparison(model_dir, reference_run, tmp_path, capsys, fraction):
    need = 2 * sum(p.stat().st_size for p in reference_run.rglob("*") if p.is_file()) + (1 << 20)
    disk = tmp_path / f"disk-{fraction:.6f}"
    with small_disk(disk, 4096 + int(fraction * need)) as grow:
        args = ["compare", "position", "--models", str(model_dir), "--controls", "random:1", *RUN_SETTINGS,
                "--out", str(disk / "cmp"), "--runs-dir", str(disk / "runs")]
        code = main(args)
        captured = capsys.readouterr()
        if code != 0:
            assert code == 2
            one_line_error(captured.err.splitlines()[-1] if captured.err else "", "No space left on device")
            finished = [p for p in (disk / "runs").glob("*") if (p / "report.html").is_file()] \
                if (disk / "runs").is_dir() else []
            assert not [p.name for p in (disk / "runs").glob(".*partial*")] if (disk / "runs").is_dir() else True
            grow()
            assert main(args) == 0
            out = capsys.readouterr().out
            assert out.count("reused") >= len(finished)  # nothing finished is run again
        comparison = lamina.Comparison.load(disk / "cmp")
        assert len(comparison.completed) == 2
        trained = comparison.completed[0].run.path
        assert (trained / "results.json").read_text() == (reference_run / "results.json").read_text()


# ---- a kill at any moment ----------------------------------------------------------------------
KILLED = textwrap.dedent("""
    import sys
    from lamina.cli import main
    sys.exit(main({args!r}))
""")


def _kill_after(args: list[str], delay: float, cwd: Path) -> int:
    child = subprocess.Popen([sys.executable, "-c", KILLED.format(args=args)], cwd=cwd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
    return child.wait(timeout=60)


@FAULTS
@given(delay=st.floats(0.5, 12.0))
def test_sigkill_at_any_moment_of_a_recording(model_dir, reference_recording, tmp_path, delay):
    out = tmp_path / f"rec-{delay:.4f}"
    _kill_after(record_args(model_dir, out), delay, tmp_path)
    assert main(record_args(model_dir, out)) == 0  # resumes, or finds it complete
    same_recording(Recording.load(out, verify=True), reference_recording)
    assert leftovers(out) == []


@FAULTS
@given(delay=st.floats(0.5, 15.0))
def test_sigkill_at_any_moment_of_a_run(model_dir, reference_run, tmp_path, delay):
    out = tmp_path / f"run-{delay:.4f}"
    args = ["run", "position", "--model", str(model_dir), *RUN_SETTINGS, "--out", str(out)]
    _kill_after(args, delay, tmp_path)
    if out.exists():  # finished before the kill: complete, or nothing at all
        lamina.Run.load(out)
    assert main([*args, "--force"]) == 0
    assert (out / "results.json").read_text() == (reference_run / "results.json").read_text()
    assert leftovers(tmp_path) == []  # the killed writer's temporary directory was cleared


@FAULTS
@given(delay=st.floats(0.5, 20.0))
def test_sigkill_at_any_moment_of_a_comparison(model_dir, reference_run, tmp_path, capsys, delay):
    root = tmp_path / f"c-{delay:.4f}"
    args = ["compare", "position", "--models", str(model_dir), "--controls", "random:1", *RUN_SETTINGS,
            "--out", str(root / "cmp"), "--runs-dir", str(root / "runs")]
    root.mkdir()
    _kill_after(args, delay, root)
    finished = [p for p in (root / "runs").iterdir() if not p.name.startswith(".")] \
        if (root / "runs").is_dir() else []
    assert main(args) == 0
    assert capsys.readouterr().out.count("reused") == len(finished)  # every finished run reused, none lost
    comparison = lamina.Comparison.load(root / "cmp")
    assert len(comparison.completed) == 2 and leftovers(root) == []
    trained = comparison.completed[0].run.path
    assert (trained / "results.json").read_text() == (reference_run / "results.json").read_text()


# ---- damaged files -----------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot what lamina wrote\n")


def _edit_number(path: Path) -> None:
    data = json.loads(path.read_text())
    key = next(k for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    data[key] = data[key] + 1
    path.write_text(json.dumps(data))


def _wrong_form(path: Path) -> None:
    data = json.loads(path.read_text())
    key = next(iter(data))
    data[key] = {"not": ["the", "declared", "form"]}
    path.write_text(json.dumps(data))


DAMAGE = {"truncated": _truncate, "garbage": _garbage, "deleted": Path.unlink}
RUN_FILES = ["config.json", "presentation.json", "results.json", "details.json", "arrays.npz", "manifest.json"]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", RUN_FILES)
def test_damaged_run_directory_is_named(reference_run, tmp_path, capsys, name, damage):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    DAMAGE[damage](run / name)
    assert main(["report", str(run)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert name in line or (damage == "deleted" and name == "manifest.json" and "not a run directory" in line)
    with pytest.raises(LaminaError):
        lamina.Run.load(run)


@pytest.mark.parametrize("name,edit", [("results.json", _edit_number), ("config.json", _edit_number),
                                       ("details.json", _wrong_form)])
def test_hand_edited_run_file_is_named(reference_run, tmp_path, capsys, name, edit):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    edit(run / name)
    assert main(["report", str(run)]) == 2
    one_line_error(capsys.readouterr().err, name, "changed or damaged")


def test_wrong_form_without_checksums_names_the_file_and_field(reference_run, tmp_path):
    """A directory written before checksums (or whose manifest lost them): the form is still checked."""
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["sha256"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    _wrong_form(run / "results.json")
    with pytest.raises(LaminaError, match=r"results\.json is damaged: '\w+' does not have the form"):
        lamina.Run.load(run)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "deleted"])
@pytest.mark.parametrize("name", ["manifest.json", "meta.json", "shard-00000.safetensors"])
def test_damaged_recording_is_named(reference_recording, tmp_path, name, damage):
    rec = tmp_path / "rec"
    shutil.copytree(reference_recording.path, rec)
    DAMAGE[damage](rec / name)
    with pytest.raises(LaminaError) as err:
        Recording.load(rec, verify=True)
    assert name in str(err.value) or (name == "manifest.json" and "not a lamina recording" in str(err.value))


@pytest.fixture(scope="module")
def comparison_dir(model_dir, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("cmp")
    assert main(["compare", "position", "--models", str(model_dir), "--controls", "random:1", *RUN_SETTINGS,
                 "--out", str(out / "cmp"), "--runs-dir", str(out / "runs")]) == 0
    return out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing key"])
def test_damaged_comparison_is_named(comparison_dir, tmp_path, damage):
    root = tmp_path / "c"
    shutil.copytree(comparison_dir, root, symlinks=True)
    file = root / "cmp" / "comparison.json"
    if damage == "missing key":
        data = json.loads(file.read_text())
        del data["members"][0]["status"]
        file.write_text(json.dumps(data))
    else:
        DAMAGE[damage](file)
    with pytest.raises(LaminaError, match="comparison.json is damaged"):
        lamina.Comparison.load(root / "cmp")


def test_damaged_member_run_is_named_and_run_again(comparison_dir, model_dir, tmp_path, capsys):
    root = tmp_path / "c"
    shutil.copytree(comparison_dir, root, symlinks=True)
    member = next(p for p in (root / "runs").iterdir() if "untrained" not in p.name)
    _truncate(member / "arrays.npz")
    with pytest.raises(LaminaError, match="arrays.npz"):
        lamina.Comparison.load(root / "cmp")
    args = ["compare", "position", "--models", str(model_dir), "--controls", "random:1", *RUN_SETTINGS,
            "--out", str(root / "cmp"), "--runs-dir", str(root / "runs")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("reused") == 1 and out.count(" new ") == 1  # only the damaged run ran again
    assert len(lamina.Comparison.load(root / "cmp").completed) == 2


# ---- two writers -------------------------------------------------------------------------------
def test_second_writer_is_refused_while_the_first_holds_the_lock(tiny_gpt2, tmp_path):
    stimuli = lamina.Stimuli([np.arange(8) + 100])
    out = tmp_path / "rec"
    with store.writer_lock(out):  # what a first writer takes before anything else
        with pytest.raises(LaminaError, match=rf"another process \(pid {os.getpid()}\) is recording into"):
            lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, progress=False)
    assert not out.exists() or not any(out.iterdir())
    rec = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, progress=False)  # released: it goes
    assert rec.n_sequences == 1


def test_two_writers_at_once_leave_one_whole_recording(model_dir, tmp_path, data_dir):
    out = tmp_path / "rec"
    children = [subprocess.Popen([sys.executable, "-c", KILLED.format(args=record_args(model_dir, out))],
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    results = [(c.wait(timeout=300), c.stderr.read()) for c in children]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # the second either found it complete or was refused
    for code, err in results:
        if code == 2:
            one_line_error(err, "another process")
    Recording.load(out, verify=True)


# ---- recordings planned before they run --------------------------------------------------------
def test_a_recording_that_cannot_fit_is_refused_before_the_first_forward_pass(smollm2, monkeypatch):
    """The issue's case: SmolLM2, 100 sequences x 512 tokens, all six sites, in memory (about 32 GB)."""
    from lamina.recording import engine, memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 24 << 30)  # this machine's size, whatever runs it
    calls = []
    monkeypatch.setattr(engine, "_run", lambda *a, **k: calls.append(1))
    stimuli = lamina.Stimuli([np.full(512, 100 + i) for i in range(100)])
    sites = ["hidden", "attn.out", "attn.raw", "mlp.pre", "mlp.post", "mlp.out"]
    with pytest.raises(LaminaError) as err:
        lamina.record(smollm2, stimuli, sites=sites, progress=False)
    message = str(err.value)
    assert "needs about 3" in message and "GiB of memory" in message and "24.0 GiB is available" in message
    for way in ("out=DIR", "fewer layers", "positions", "float16"):
        assert way in message
    assert calls == []  # refused before any forward pass


def test_memory_plan_counts_what_the_buffers_take(tiny_gpt2, monkeypatch):
    from lamina.recording import memory

    seen = {}
    real = memory.check_fits

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr("lamina.recording.engine.check_fits", spy)
    stimuli = lamina.Stimuli([np.arange(10) + 100, np.arange(7) + 100])
    rec = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "mlp.post"], progress=False)
    assert seen["stored"] == {site: rec[site].nbytes for site in rec.sites}  # the plan is what was allocated
    assert seen["working"] == 2 * 10 * tiny_gpt2.vocab_size * 4  # a batch of float32 logits
    half = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], dtype="bfloat16", loss=False, progress=False)
    assert seen["stored"] == {"hidden": half["hidden"].nbytes // 2} and seen["working"] == 0


def test_cli_refuses_a_recording_that_cannot_fit(model_dir, monkeypatch, capsys, tmp_path, data_dir):
    from lamina.recording import memory

    # A batch of 8 x 6 positions of float32 logits over GPT-2's vocabulary is 9.6 MB; a shard 0.3 MB.
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 << 20)
    args = record_args(model_dir, tmp_path / "rec")
    assert main(args) == 2
    line = one_line_error(capsys.readouterr().err, "4 MiB is available", "--batch-size", "the forward pass's logits")
    assert "--out" not in line  # it already streams to disk
    assert not (tmp_path / "rec").exists()
    assert main([*args, "--batch-size", "1"]) == 0


def test_experiments_plan_their_internal_recordings(tiny_gpt2, monkeypatch, tmp_path, data_dir):
    from lamina.recording import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 16)
    with pytest.raises(LaminaError, match="needs about .* is available"):
        lamina.run("position", model=tiny_gpt2, out=tmp_path / "run", progress=False,
                   settings={"n_samples": 20, "test_start": 100})
    assert not (tmp_path / "run").exists()


def test_available_memory_is_read_from_the_system():
    from lamina.recording.memory import available_bytes

    import psutil

    assert 0 < available_bytes() <= psutil.virtual_memory().total
