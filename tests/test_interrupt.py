"""Nothing lost, nothing half-written: a killed recording resumes; a failed run leaves no directory."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import Recording, Stimuli

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import numpy as np, lamina
    from conftest import make_tiny_gpt2
    from lamina.recording import store
    from transformers import GPT2Tokenizer
    tok = GPT2Tokenizer(vocab={vocab!r}, merges={merges!r})
    model = lamina.wrap(make_tiny_gpt2(tok), tok)
    rng = np.random.default_rng(0)
    stimuli = lamina.Stimuli([rng.integers(0, 5000, 12) for _ in range(12)])
    real = store.write_shard
    def slow(directory, index, *args):
        if index >= 1:
            time.sleep(60)  # killed here: shard 0 is written and listed, shard 1 is not
        return real(directory, index, *args)
    store.write_shard = slow
    lamina.record(model, stimuli, sites=["hidden", "mlp.post"], out={out!r}, shard_size=3, progress=False)
""")


def test_killed_recording_resumes(tiny_gpt2, tmp_path):
    from conftest import _gpt2_files

    vocab, merges = _gpt2_files()
    out = tmp_path / "rec"
    script = CHILD.format(tests=str(Path(__file__).parent), vocab=vocab, merges=merges, out=str(out))
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            manifest = out / "manifest.json"
            if manifest.exists() and json.loads(manifest.read_text())["shards"]:
                break
            assert child.poll() is None, "the child ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no shard was written in time")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and [e["index"] for e in manifest["shards"]] == [0]
    done_before = {e["index"] for e in manifest["shards"]}
    with pytest.raises(lamina.LaminaError, match="incomplete"):
        Recording.load(out)
    rng = np.random.default_rng(0)
    stimuli = Stimuli([rng.integers(0, 5000, 12) for _ in range(12)])
    resumed = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "mlp.post"], out=out, shard_size=3,
                            progress=False)
    assert json.loads((out / "manifest.json").read_text())["complete"]
    assert not list(out.glob("*.partial"))
    fresh = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "mlp.post"], progress=False)
    for site in ["hidden", "mlp.post"]:
        np.testing.assert_allclose(resumed[site], fresh[site], atol=1e-5)
    # The shards finished before the kill were kept, not recorded again.
    for entry in json.loads((out / "manifest.json").read_text())["shards"]:
        if entry["index"] in done_before:
            assert entry["sha256"] == next(e for e in manifest["shards"] if e["index"] == entry["index"])["sha256"]


def test_failed_run_leaves_no_directory(tiny_gpt2, tmp_path, monkeypatch, data_dir):
    import lamina.rundir

    calls = []

    def failing_save(fig, stem):
        calls.append(stem)
        if len(calls) == 2:
            raise OSError("disk full")
        return []

    monkeypatch.setattr(lamina.rundir, "save", failing_save)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="disk full"):
        lamina.run("position", model=tiny_gpt2, out=out, n_samples=20, test_start=100, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())
