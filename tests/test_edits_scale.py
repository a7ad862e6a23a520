"""Edits at scale (issue 26): an edited recording streamed to out=DIR by Ray workers, and one of a model
spread over devices by an accelerate device map (blocks offloaded to disk), equal the same edited
recording made in one process from a plain load."""

import json

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli, edits

SITES = ["hidden", "attn.out", "mlp.post", "mlp.out"]


def _stimuli(n, seed, lengths=None):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 12, n) if lengths is None else lengths
    return Stimuli([rng.integers(0, 5000, k) for k in lengths], next_ids=rng.integers(0, 5000, n))


def _edits(model, stimuli, tmp_path):
    """One edit of each kind, at several layers; the sources are an in-memory recording of paired
    stimuli (patch) and an on-disk one (mean, resample), which Ray workers receive by pickling."""
    paired = lamina.record(model, _stimuli(len(stimuli), 7, stimuli.lengths), sites=["hidden"], progress=False)
    other = lamina.record(model, _stimuli(5, 8), sites=["mlp.out", "attn.out"], out=tmp_path / "source",
                          progress=False)
    vector = np.random.default_rng(9).normal(size=model.width("hidden"))
    return [edits.zero("attn.out", 0, positions="last"), edits.patch("hidden", 1, source=paired),
            edits.mean("mlp.out", 1, reference=other), edits.resample("attn.out", 2, source=other, seed=3),
            edits.add("hidden", 2, vector, positions=[[0]] * len(stimuli)), edits.scale("mlp.post", 2, 0.5)]


def _same(a, b, atol=0.0):
    for site in a.sites:
        np.testing.assert_allclose(a[site], b[site], atol=atol, rtol=0, err_msg=site)
    np.testing.assert_allclose(a.tokens["loss"].to_numpy(), b.tokens["loss"].to_numpy(), atol=atol, rtol=0)


@pytest.mark.slow
def test_ray_workers_record_the_edited_run(tiny_gpt2, tmp_path):
    """Two Ray workers write the edited recording shard by shard: the same activations, loss and
    manifest (fingerprint, edits) as the same call in one process, and not the unedited recording."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra; make test installs it")
    stimuli = _stimuli(9, 0)
    changes = _edits(tiny_gpt2, stimuli, tmp_path)
    kwargs = dict(sites=SITES, shard_size=3, progress=False, edits=changes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: CPU matrix products may round differently with more threads
    try:
        local = lamina.record(tiny_gpt2, stimuli, out=tmp_path / "local", **kwargs)
        clean = lamina.record(tiny_gpt2, stimuli, sites=SITES, progress=False)
    finally:
        torch.set_num_threads(threads)
    distributed = lamina.record(tiny_gpt2, stimuli, out=tmp_path / "ray", backend="ray", workers=2, **kwargs)
    assert not ray.is_initialized()
    _same(distributed, local)
    assert not np.array_equal(distributed["hidden"], clean["hidden"], equal_nan=True)
    theirs, ours = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("ray", "local"))
    assert theirs["fingerprint"] == ours["fingerprint"] and theirs["info"]["edits"] == ours["info"]["edits"]
    assert [e["kind"] for e in theirs["info"]["edits"]] == ["zero", "patch", "mean", "resample", "add", "scale"]


@pytest.fixture(scope="module")
def saved_gpt2(tiny_gpt2, gpt2_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny-gpt2"
    tiny_gpt2.hf.save_pretrained(path)
    gpt2_tokenizer.save_pretrained(path)
    return path


DEVICE_MAP = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.drop": "cpu", "transformer.h.0": "cpu",
              "transformer.h.1": "disk", "transformer.h.2": "disk", "transformer.ln_f": "cpu", "lm_head": "cpu"}


def test_device_map_records_the_edited_run(saved_gpt2, tmp_path):
    """Edits at blocks that accelerate loads from disk give the plain load's edited recording, with
    loss; without loss the pass stops inside block 1 and still reads the edits made before that, and
    every offloaded module finishes (its weights go back to the meta device).

    (On a machine without accelerators a device map of CPUs only is not dispatched at all: accelerate
    hooks the modules only when the map spreads them, here to disk; tests/test_scale.py does the same.)"""
    model = lamina.load(str(saved_gpt2), device_map=DEVICE_MAP, offload_folder=str(tmp_path / "offload"))
    assert model.hf.hf_device_map["transformer.h.1"] == "disk"
    plain = lamina.load(str(saved_gpt2))
    stimuli = _stimuli(5, 1)
    changes = _edits(plain, stimuli, tmp_path)
    want = lamina.record(plain, stimuli, sites=SITES, batch_size=2, progress=False, edits=changes)
    got = lamina.record(model, stimuli, sites=SITES, batch_size=2, progress=False, edits=changes)
    _same(got, want, atol=1e-6)
    clean = lamina.record(plain, stimuli, sites=SITES, batch_size=2, progress=False)
    assert not np.allclose(want["hidden"][2:], clean["hidden"][2:], equal_nan=True)
    early = lamina.record(model, stimuli, sites=["mlp.post"], layers=1, batch_size=2, loss=False, progress=False,
                          edits=changes)
    np.testing.assert_allclose(early.layer("mlp.post", 1), want.layer("mlp.post", 1), atol=1e-6, rtol=0)
    assert all(p.device.type == "meta" for n, p in model.hf.named_parameters() if ".h.1." in n or ".h.2." in n)
