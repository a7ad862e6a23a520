"""The recording engine: batching, positions, streaming to disk, resume, damage, bad values."""

import json

import numpy as np
import pytest
import torch

import lamina
from lamina import LaminaError, Recording, Stimuli
from lamina.recording import store

SITES = ["hidden", "attn.out", "mlp.pre"]


def ragged(n=7, seed=0, lo=3, hi=15):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, rng.integers(lo, hi)) for _ in range(n)],
                   next_ids=rng.integers(0, 5000, n))


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_llama"])
def test_batched_equals_unbatched(name, request):
    model = request.getfixturevalue(name)
    stimuli = ragged()
    batched = lamina.record(model, stimuli, sites=SITES, batch_size=4, progress=False)
    for i in range(len(stimuli)):
        single = lamina.record(model, stimuli.subset([i]), sites=SITES, batch_size=1, progress=False)
        k = len(stimuli.ids[i])
        for site in SITES:
            np.testing.assert_allclose(batched[site][:, i, :k], single[site][:, 0, :k], atol=2e-5, rtol=1e-4)
            assert np.isnan(batched[site][:, i, k:]).all()  # padding never leaks in
        rows = batched.tokens[batched.tokens.sequence == i]
        np.testing.assert_allclose(rows.loss.to_numpy(), single.tokens.loss.to_numpy(), atol=2e-5)
    assert batched.tokens.sequence.is_monotonic_increasing
    assert len(batched.tokens) == stimuli.lengths.sum()
    # The last position's next token comes from next_ids.
    last = batched.tokens.groupby("sequence").tail(1)
    np.testing.assert_array_equal(last.next_id.to_numpy(), stimuli.next_ids)


def test_flat_rows_align_with_token_table(tiny_gpt2):
    stimuli = ragged()
    rec = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    flat = rec.flat("hidden", 2)
    assert flat.shape == (len(rec.tokens), tiny_gpt2.d_model) and np.isfinite(flat).all()
    row = rec.tokens.iloc[10]
    np.testing.assert_array_equal(flat[10], rec.layer("hidden", 2)[row.sequence, row.slot])


def test_positions(tiny_gpt2):
    stimuli = ragged()
    full = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    last = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], positions="last", progress=False)
    assert last["hidden"].shape[2] == 1
    for i, k in enumerate(stimuli.lengths):
        np.testing.assert_allclose(last["hidden"][:, i, 0], full["hidden"][:, i, k - 1], atol=2e-5)
    picks = [1] * len(stimuli)
    one = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], positions=picks, progress=False)
    np.testing.assert_allclose(one["hidden"][:, :, 0], full["hidden"][:, :, 1], atol=2e-5)
    assert (one.tokens.position == 1).all()
    lists = [[0, 2]] * len(stimuli)
    two = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], positions=lists, progress=False)
    np.testing.assert_allclose(two["hidden"][:, :, 1], full["hidden"][:, :, 2], atol=2e-5)
    with pytest.raises(LaminaError, match="out of range"):
        lamina.record(tiny_gpt2, stimuli, positions=[50] * len(stimuli), progress=False)
    with pytest.raises(LaminaError, match="one per sequence"):
        lamina.record(tiny_gpt2, stimuli, positions=[0, 1], progress=False)
    with pytest.raises(LaminaError, match="positions must be"):
        lamina.record(tiny_gpt2, stimuli, positions="first", progress=False)


def test_layers_selection_and_errors(tiny_gpt2):
    stimuli = ragged(3)
    rec = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "attn.out"], layers={"hidden": [-1, 0]},
                        progress=False)
    assert rec.layers == {"hidden": [3, 0], "attn.out": [0, 1, 2]}
    full = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    np.testing.assert_array_equal(rec.layer("hidden", 3), full.layer("hidden", 3))
    with pytest.raises(LaminaError, match="was not recorded"):
        rec.layer("hidden", 1)
    with pytest.raises(LaminaError, match="Did you mean 'attn.out'"):
        lamina.record(tiny_gpt2, stimuli, sites=["attn_out"])
    with pytest.raises(LaminaError, match="out of range"):
        lamina.record(tiny_gpt2, stimuli, sites=["attn.out"], layers=3)
    with pytest.raises(LaminaError, match="context length"):
        lamina.record(tiny_gpt2, Stimuli([np.zeros(300, dtype=int)]))
    with pytest.raises(LaminaError, match="vocabulary"):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, 60000]]))
    with pytest.raises(LaminaError, match="dtype"):
        lamina.record(tiny_gpt2, stimuli, dtype="int8")
    # Token-level names are accepted and need no hooks.
    only_tokens = lamina.record(tiny_gpt2, stimuli, sites=["loss", "correct"], progress=False)
    assert only_tokens.sites == [] and len(only_tokens.tokens) == stimuli.lengths.sum()


def test_float16_storage(tiny_gpt2):
    stimuli = ragged(3)
    half = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], dtype="float16", progress=False)
    full = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    assert half["hidden"].dtype == np.float16
    np.testing.assert_allclose(half["hidden"].astype(np.float32), full["hidden"], atol=1e-2, rtol=1e-2)


def test_non_finite_activation_is_named(gpt2_tokenizer):
    from conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(gpt2_tokenizer, seed=3)
    model = lamina.wrap(hf, gpt2_tokenizer)  # weights broken after loading: the load-time self-check passed
    with torch.no_grad():
        hf.transformer.h[1].mlp.c_fc.weight[0, 0] = float("nan")
    with pytest.raises(LaminaError, match=r"site 'mlp.pre', layer 1"):
        lamina.record(model, ragged(2), sites=["mlp.pre"], progress=False)


def _same(a: Recording, b: Recording):
    """Equal recordings; floats to 1e-5 because shards batch sequences differently (other padding)."""
    assert a.layers == b.layers
    for site in a.sites:
        np.testing.assert_allclose(a[site], b[site], atol=1e-5, rtol=1e-4)
    cols = ["sequence", "position", "slot", "token_id", "token", "next_id", "predicted_id", "predicted"]
    assert a.tokens[cols].equals(b.tokens[cols])
    np.testing.assert_allclose(a.tokens.loss.to_numpy(), b.tokens.loss.to_numpy(), atol=1e-5)


def test_disk_recording_equals_memory(tiny_gpt2, tmp_path):
    stimuli = ragged(9)
    stimuli.meta["group"] = ["a", "b", "c"] * 3
    stimuli.meta["score"] = np.linspace(0, 1, 9)
    mem = lamina.record(tiny_gpt2, stimuli, sites=SITES, batch_size=2, progress=False)
    disk = lamina.record(tiny_gpt2, stimuli, sites=SITES, batch_size=2, out=tmp_path / "r", shard_size=4,
                         progress=False)
    assert disk.path == tmp_path / "r" and len(disk._shards) == 3
    _same(mem, disk)
    again = Recording.load(tmp_path / "r", verify=True)
    _same(mem, again)
    np.testing.assert_array_equal(again.layer("mlp.pre", 1), disk.layer("mlp.pre", 1))
    parts = list(again.iter_shards("hidden", 0))
    assert [p[0] for p in parts] == [0, 4, 8]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), disk.layer("hidden", 0))
    assert again.meta.equals(mem.meta)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["complete"] and all(len(e["sha256"]) == 64 for e in manifest["shards"])
    assert not list((tmp_path / "r").glob("*.partial")) and not list((tmp_path / "r").glob("*.tmp"))
    # Only safetensors and JSON: nothing that unpickles.
    assert {p.suffix for p in (tmp_path / "r").iterdir()} == {".safetensors", ".json"}


def test_interrupted_recording_resumes(tiny_gpt2, tmp_path, monkeypatch):
    stimuli = ragged(10)
    out = tmp_path / "r"
    real = store.write_shard
    calls = []

    def flaky(directory, index, *args):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if Ctrl-C arrived while the third shard was written
        return real(directory, index, *args)

    monkeypatch.setattr(store, "write_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        lamina.record(tiny_gpt2, stimuli, sites=SITES, out=out, shard_size=3, progress=False)
    with pytest.raises(LaminaError, match="incomplete"):
        Recording.load(out)
    monkeypatch.setattr(store, "write_shard", lambda *a: calls.append(a[1]) or real(*a))
    calls.clear()
    resumed = lamina.record(tiny_gpt2, stimuli, sites=SITES, out=out, shard_size=3, progress=False)
    assert calls == [2, 3]  # only the missing shards were recorded again
    _same(resumed, lamina.record(tiny_gpt2, stimuli, sites=SITES, progress=False))


def test_damaged_shard_is_named_and_rerecorded(tiny_gpt2, tmp_path):
    stimuli = ragged(6)
    out = tmp_path / "r"
    lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, shard_size=2, progress=False)
    shard = out / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(LaminaError, match="shard-00001.safetensors is corrupted"):
        Recording.load(out, verify=True)
    shard.write_bytes(bytes(data[:-100]))
    with pytest.raises(LaminaError, match="shard-00001.safetensors is truncated"):
        Recording.load(out)
    fixed = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], out=out, shard_size=2, progress=False)
    fixed.verify()
    _same(fixed, lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False))


def test_other_recording_in_directory(tiny_gpt2, tmp_path):
    out = tmp_path / "r"
    lamina.record(tiny_gpt2, ragged(3), sites=["hidden"], out=out, progress=False)
    with pytest.raises(LaminaError, match="holds a different recording"):
        lamina.record(tiny_gpt2, ragged(3, seed=1), sites=["hidden"], out=out, progress=False)
    rec = lamina.record(tiny_gpt2, ragged(3, seed=1), sites=["hidden"], out=out, overwrite=True, progress=False)
    assert rec.n_sequences == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(LaminaError, match="not a lamina recording"):
        lamina.record(tiny_gpt2, ragged(3), out=tmp_path / "other", progress=False)


def test_bos_is_fed_but_not_recorded(tiny_llama):
    stimuli = ragged(2)
    rec = lamina.record(tiny_llama, stimuli, sites=["hidden"], progress=False)
    ids = torch.as_tensor(np.concatenate([[tiny_llama.bos_id], stimuli.ids[0]]))[None]
    with torch.inference_mode():
        ref = tiny_llama.hf(ids, output_hidden_states=True).hidden_states
    k = len(stimuli.ids[0])
    np.testing.assert_allclose(rec["hidden"][:, 0, :k], np.stack([h[0, 1:].numpy() for h in ref]), atol=1e-5)
    assert (rec.tokens[rec.tokens.sequence == 0].token_id.to_numpy() == stimuli.ids[0]).all()


@pytest.mark.slow
def test_smollm2_loss_on_alice_window(smollm2):
    """Mean next-token loss of SmolLM2 on 512 tokens from the middle of Alice: far below ln(vocab)."""
    stimuli = lamina.stimuli.window(lamina.data.book("alice"), smollm2, 512)
    rec = lamina.record(smollm2, stimuli, sites=["attn.out"], layers=[0, -1], progress=False)
    loss = rec.tokens.loss.to_numpy()
    assert np.isfinite(loss).all() and len(loss) == 512  # the window's next token is known
    assert 1.5 < loss.mean() < 0.5 * np.log(smollm2.vocab_size)
    assert 0.2 < rec.tokens.correct.mean() < 0.8
