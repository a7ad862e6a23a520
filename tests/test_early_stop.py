"""Recordings without loss: no LM head, a forward pass that stops after the last recorded module,
only kept positions read; the activations equal those of the full pass bit for bit."""

import json

import numpy as np
import pytest
import torch

import lamina
from lamina import LaminaError, Recording, Stimuli
from lamina.models.tap import tap
from lamina.recording import store
from lamina.recording.capture import Capture
from lamina.recording.engine import _Chunk

ALL_SITES = ["hidden", "resid", "attn.raw", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.raw", "mlp.out"]
ID_COLUMNS = ["sequence", "position", "slot", "token_id", "token", "next_id"]
FAMILIES = ["tiny_gpt2", "tiny_llama", "tiny_neox", "tiny_gemma3"]  # Gemma-3: post-norms, derived adapter


def ragged(n=7, seed=0, lo=3, hi=15):
    """Sequences of different lengths: batches are padded."""
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, rng.integers(lo, hi)) for _ in range(n)], next_ids=rng.integers(0, 5000, n))


def fixed(n=6, length=9, seed=1):
    """Sequences of one length: each site and layer is copied as one block."""
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, length) for _ in range(n)])


def picks(stimuli):
    """Two positions per sequence, not consecutive, different from sequence to sequence."""
    return [[0, k - 1] if i % 2 else [k // 2, k - 1] for i, k in enumerate(stimuli.lengths)]


# (sites, layers, positions): one layer in the middle, the last hidden entry (final norm), every
# site at every layer, and selections the engine gathers rather than slices.
CASES = {
    "hidden-1-all": (["hidden"], 1, "all"),
    "hidden-1-last": (["hidden"], 1, "last"),
    "hidden-final-all": (["hidden"], -1, "all"),
    "all-sites": (ALL_SITES, None, "all"),
    "mixed-picks": (["attn.out", "mlp.post", "hidden"], {"attn.out": [0], "mlp.post": [1], "hidden": [0]}, picks),
    "mlp-index": (["mlp.pre", "mlp.out"], 0, 2),
}


def assert_identical(a: Recording, b: Recording):
    """Same layers, bit-identical activations and the same ids and positions."""
    assert a.layers == b.layers
    for site in a.sites:
        np.testing.assert_array_equal(a[site], b[site])
    assert a.tokens[ID_COLUMNS].equals(b.tokens[ID_COLUMNS])


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", FAMILIES)
def test_no_loss_equals_the_full_pass(name, case, request):
    model = request.getfixturevalue(name)
    sites, layers, positions = CASES[case]
    for stimuli in (ragged(), fixed()):
        pos = positions(stimuli) if callable(positions) else positions
        kwargs = dict(sites=sites, layers=layers, positions=pos, batch_size=4, progress=False)
        full = lamina.record(model, stimuli, **kwargs)
        fast = lamina.record(model, stimuli, loss=False, **kwargs)
        assert_identical(fast, full)
        assert list(fast.tokens.columns) == ID_COLUMNS
        assert fast.info["loss"] is False and full.info["loss"] is True


class Calls:
    """Counts completed forward passes of modules (a forward hook fires only when the module finished)."""

    def __init__(self, **modules):
        self.n = dict.fromkeys(modules, 0)
        self.handles = [m.register_forward_hook(lambda *_, key=k: self.n.__setitem__(key, self.n[key] + 1))
                        for k, m in modules.items()]

    def run(self, fn) -> dict:
        self.n = dict.fromkeys(self.n, 0)
        fn()
        return dict(self.n)

    def remove(self):
        for h in self.handles:
            h.remove()


@pytest.mark.parametrize("name", FAMILIES)
def test_no_loss_runs_no_lm_head_and_stops_after_the_last_recorded_module(name, request):
    model = request.getfixturevalue(name)
    n = model.n_layers
    blocks = {f"block{l}": tap(model.hf, model.adapter, "hidden", l, n).module for l in range(n)}
    calls = Calls(head=model.hf.get_output_embeddings(), norm=tap(model.hf, model.adapter, "hidden", n, n).module,
                  **blocks)
    stimuli = ragged(5)

    def record(**kwargs):
        return calls.run(lambda: lamina.record(model, stimuli, batch_size=2, progress=False, **kwargs))

    try:
        n_batches = 3
        # hidden at layer 1 is block 1's input: only block 0 runs.
        got = record(sites=["hidden"], layers=1, loss=False)
        assert got == {"head": 0, "norm": 0, "block0": n_batches, **{f"block{l}": 0 for l in range(1, n)}}
        # The stop comes after the module recorded last, inside block 0, whatever order the sites are listed in.
        got = record(sites=["mlp.out", "attn.out"], layers=0, loss=False)
        assert got["head"] == got["norm"] == got["block0"] == got["block1"] == 0
        # The final norm runs only for hidden's last entry; the LM head never does.
        got = record(sites=["hidden", "mlp.out"], layers={"hidden": [-1], "mlp.out": [0]}, loss=False)
        assert got["norm"] == n_batches and got["head"] == 0 and got[f"block{n - 1}"] == n_batches
        got = record(sites=ALL_SITES, loss=False)
        assert got["norm"] == n_batches and got["head"] == 0
        # With loss, everything runs (the counters can fail).
        got = record(sites=["hidden"], layers=1)
        assert got["head"] == got["norm"] == got[f"block{n - 1}"] == n_batches
    finally:
        calls.remove()


def test_bad_loss_arguments(tiny_gpt2):
    stimuli = ragged(2)
    with pytest.raises(LaminaError, match="loss must be True or False"):
        lamina.record(tiny_gpt2, stimuli, loss="no")
    with pytest.raises(LaminaError, match="'loss'.*loss=True"):
        lamina.record(tiny_gpt2, stimuli, sites=["loss"], loss=False)
    with pytest.raises(LaminaError, match="'predicted'"):
        lamina.record(tiny_gpt2, stimuli, sites=["hidden", "predicted"], loss=False)


def _nan_outside(model, keep_row):
    """A hook making the final norm's output NaN wherever ``keep_row(mask_row)`` is False."""
    masks = []
    pre = model.hf.register_forward_pre_hook(lambda _m, _a, kw: masks.append(kw.get("attention_mask")),
                                             with_kwargs=True)

    def poison(_module, _args, output):
        out = output.clone()
        for b in range(len(out)):
            mask = masks[-1][b].bool() if masks[-1] is not None else torch.ones(out.shape[1], dtype=torch.bool)
            out[b, ~keep_row(mask)] = float("nan")
        return out

    post = tap(model.hf, model.adapter, "hidden", model.n_layers, model.n_layers).module.register_forward_hook(poison)
    return pre, post


def _last_only(mask):
    keep = torch.zeros_like(mask)
    keep[int(mask.sum()) - 1] = True
    return keep


def test_positions_not_kept_are_never_read(tiny_gpt2):
    """NaN at positions that are not kept (padding, positions not asked for) goes unnoticed;
    at kept positions it is named, so the check does run."""
    stimuli = ragged(6)
    kwargs = dict(sites=["hidden"], layers=-1, batch_size=3, progress=False, loss=False)
    handles = _nan_outside(tiny_gpt2, lambda mask: mask)  # NaN in padding only
    try:
        rec = lamina.record(tiny_gpt2, stimuli, **kwargs)
        assert np.isfinite(rec.flat("hidden", -1)).all()
    finally:
        for h in handles:
            h.remove()
    handles = _nan_outside(tiny_gpt2, _last_only)  # NaN everywhere but the last real position
    try:
        rec = lamina.record(tiny_gpt2, stimuli, positions="last", **kwargs)
        assert np.isfinite(rec["hidden"]).all()
        with pytest.raises(LaminaError, match="non-finite values.*'hidden'"):
            lamina.record(tiny_gpt2, stimuli, positions=0, **kwargs)
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("storage", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["ragged", "fixed", "picks"])
def test_device_path_copies_what_the_cpu_path_copies(layout, storage, tiny_gpt2):
    """The path for tensors on an accelerator (one gather of the kept positions, converted there,
    one transfer) fills the buffer exactly like the CPU path; exercised here on CPU tensors."""
    stimuli = ragged() if layout == "ragged" else fixed()
    kept = [np.arange(k) for k in stimuli.lengths] if layout != "picks" else [np.array(p) for p in picks(stimuli)]
    n_slots = np.array([len(k) for k in kept])
    plan = {"hidden": [0]}
    batch = np.argsort(-stimuli.lengths, kind="stable")[:4]
    rows = [int(s) for s in batch]
    tensor = torch.randn(len(batch), int(stimuli.lengths.max()) + 1, tiny_gpt2.d_model)
    chunks = []
    for path in ("cpu", "device"):
        chunk = _Chunk(tiny_gpt2, plan, np.arange(len(stimuli)), n_slots, int(n_slots.max()), np.dtype(storage))
        capture = Capture(chunk.acts, plan, batch, rows, kept, offset=1)
        if path == "cpu":
            capture("hidden", 0, tensor)
        else:
            capture._from_device("hidden", 0, tensor, chunk.acts["hidden"][0])
        chunks.append(chunk.acts["hidden"][0][rows])
    valid = np.arange(n_slots.max())[None, :] < n_slots[rows][:, None]
    np.testing.assert_array_equal(chunks[0][valid], chunks[1][valid])


def test_no_loss_on_disk_resumes_and_is_not_taken_for_a_recording_with_loss(tiny_gpt2, tmp_path, monkeypatch):
    stimuli = ragged(10)
    out = tmp_path / "r"
    kwargs = dict(sites=["hidden", "mlp.post"], layers=1, out=out, shard_size=3, batch_size=2, progress=False)
    real = store.write_shard
    calls = []

    def flaky(directory, index, *args):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(directory, index, *args)

    monkeypatch.setattr(store, "write_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        lamina.record(tiny_gpt2, stimuli, loss=False, **kwargs)
    monkeypatch.setattr(store, "write_shard", lambda *a: calls.append(a[1]) or real(*a))
    calls.clear()
    resumed = lamina.record(tiny_gpt2, stimuli, loss=False, **kwargs)
    assert calls == [2, 3]  # only the missing shards
    with_loss = lamina.record(tiny_gpt2, stimuli, **{**kwargs, "out": tmp_path / "with-loss"})
    assert_identical(resumed, with_loss)
    loaded = Recording.load(out, verify=True)
    assert_identical(loaded, with_loss)
    assert list(loaded.tokens.columns) == ID_COLUMNS and loaded.info["loss"] is False
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["info"]["loss"] is False
    # The same call asking for loss is a different recording: never "resumed" from this one.
    with pytest.raises(LaminaError, match="holds a different recording"):
        lamina.record(tiny_gpt2, stimuli, **kwargs)
    with pytest.raises(LaminaError, match="holds a different recording"):
        lamina.record(tiny_gpt2, stimuli, loss=False, **{**kwargs, "out": tmp_path / "with-loss"})
    redone = lamina.record(tiny_gpt2, stimuli, overwrite=True, **kwargs)
    assert "loss" in redone.tokens and redone.info["loss"] is True


def test_streaming_summaries_of_a_recording_without_loss(tiny_gpt2, tmp_path):
    from lamina.stats.streaming import summarize_layer

    stimuli = ragged(9)
    labels = np.arange(9) % 3
    kwargs = dict(sites=["hidden"], layers=2, shard_size=4, batch_size=2, progress=False)
    fast = summarize_layer(lamina.record(tiny_gpt2, stimuli, loss=False, out=tmp_path / "a", **kwargs), "hidden", 2,
                           labels=labels)
    full = summarize_layer(lamina.record(tiny_gpt2, stimuli, out=tmp_path / "b", **kwargs), "hidden", 2, labels=labels)
    for key in ("log_norms", "mean", "participation_ratio", "within_mean", "across_mean", "centroids"):
        np.testing.assert_array_equal(fast[key], full[key])


@pytest.mark.slow
def test_smollm2_no_loss_equals_the_full_pass(smollm2):
    rng = np.random.default_rng(0)
    stimuli = Stimuli([rng.integers(100, 40000, n) for n in (40, 23, 31, 40, 12)])
    for sites, layers, positions in [(["hidden"], 6, "all"), (["hidden"], 6, "last"),
                                     (ALL_SITES, [0, 15, -1], "all"),
                                     (["attn.out", "hidden"], {"attn.out": [3], "hidden": [-1]}, picks(stimuli))]:
        kwargs = dict(sites=sites, layers=layers, positions=positions, batch_size=2, progress=False)
        assert_identical(lamina.record(smollm2, stimuli, loss=False, **kwargs), lamina.record(smollm2, stimuli, **kwargs))
