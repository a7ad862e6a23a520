"""Ray backend: a local cluster with 2 workers writes the same recording as one process."""

import json

import numpy as np
import pytest
import torch

import lamina
from lamina import Recording, Stimuli

ray = pytest.importorskip("ray", reason="Ray is an optional extra; make test installs it")
SITES = ["hidden", "attn.out", "mlp.post"]


@pytest.mark.slow
def test_two_ray_workers_equal_single_process(tiny_gpt2, tmp_path):
    rng = np.random.default_rng(0)
    stimuli = Stimuli([rng.integers(0, 5000, rng.integers(4, 14)) for _ in range(13)],
                      next_ids=rng.integers(0, 5000, 13))
    # Each worker computes with one torch thread; so does this reference, because CPU matrix
    # products may round differently with another thread count (about 1e-7 relative).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = lamina.record(tiny_gpt2, stimuli, sites=SITES, out=tmp_path / "local", shard_size=3,
                              progress=False)
    finally:
        torch.set_num_threads(threads)
    distributed = lamina.record(tiny_gpt2, stimuli, sites=SITES, out=tmp_path / "ray", shard_size=3,
                                backend="ray", workers=2, progress=False)
    assert not ray.is_initialized()  # the local cluster it started is shut down again
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["complete"] and [e["index"] for e in manifest["shards"]] == [0, 1, 2, 3, 4]
    for site in SITES:
        np.testing.assert_array_equal(distributed[site], local[site])  # same shards, same batches: identical
    cols = ["sequence", "position", "token_id", "next_id", "predicted_id", "loss"]
    assert distributed.tokens[cols].equals(local.tokens[cols])
    # The distributed recording is an ordinary one: it loads and resumes locally.
    assert Recording.load(tmp_path / "ray").n_sequences == 13
    again = lamina.record(tiny_gpt2, stimuli, sites=SITES, out=tmp_path / "ray", shard_size=3, progress=False)
    np.testing.assert_array_equal(again["hidden"], local["hidden"])


@pytest.mark.slow
def test_ray_workers_record_without_loss(tiny_gpt2, tmp_path):
    """Early stop on Ray workers: the same shards as one process, and the activations of a recording with loss."""
    rng = np.random.default_rng(1)
    stimuli = Stimuli([rng.integers(0, 5000, rng.integers(4, 14)) for _ in range(9)])
    kwargs = dict(sites=SITES, layers=1, shard_size=3, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers (see above)
    try:
        with_loss = lamina.record(tiny_gpt2, stimuli, out=tmp_path / "loss", **kwargs)
    finally:
        torch.set_num_threads(threads)
    distributed = lamina.record(tiny_gpt2, stimuli, out=tmp_path / "ray", backend="ray", workers=2, loss=False,
                                **kwargs)
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["info"]["loss"] is False
    for site in SITES:
        np.testing.assert_array_equal(distributed[site], with_loss[site])
    cols = ["sequence", "position", "slot", "token_id", "token", "next_id"]
    assert list(distributed.tokens.columns) == cols and distributed.tokens.equals(with_loss.tokens[cols])


def test_ray_backend_needs_a_directory(tiny_gpt2):
    with pytest.raises(lamina.LaminaError, match="out="):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, 3]]), backend="ray")
    with pytest.raises(lamina.LaminaError, match="backend"):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, 3]]), backend="dask")
