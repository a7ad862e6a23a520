"""The recording buffer pool (lamina/recording/pool.py): memory comes back only when nothing can read it,
and a recording on a recycled buffer is the recording on a fresh one."""

import gc

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli
from lamina.recording import memory, pool
from lamina.recording.pool import BufferPool


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def test_a_block_returns_only_when_its_last_view_is_gone():
    p = BufferPool(limit=1 << 20)
    buf = p.take(4096)
    floats = buf[64:128].view(np.float32)  # a NumPy view of part of it
    tensor = torch.from_numpy(buf[:256])  # a torch tensor over it
    del buf
    gc.collect()
    assert p.idle_bytes == 0
    del floats
    gc.collect()
    assert p.idle_bytes == 0, "a torch tensor still reads the block"
    del tensor
    assert p.idle_bytes == 4096  # by reference counting alone, no collection needed


def test_a_kept_block_serves_a_request_of_about_its_size(monkeypatch):
    p = BufferPool(limit=1 << 20)
    first = p.take(10_000)
    address = _address(first)
    del first
    again = p.take(9_000)  # within SLACK: the same memory
    assert _address(again) == address and again.nbytes == 9_000 and p.idle_bytes == 0
    del again
    assert p.idle_bytes == 10_000
    small = p.take(1_000)  # far smaller: fresh memory; the kept block stays kept while memory is plentiful
    assert _address(small) != address and p.idle_bytes == 10_000
    del small
    assert p.idle_bytes == 11_000
    monkeypatch.setattr(memory, "free_bytes", lambda: 20_000)  # now a fresh block would leave less than is kept
    larger = p.take(12_000)
    assert p.idle_bytes == 0 and larger.nbytes == 12_000 and p.fresh == 3
    del larger
    assert p.release() == 12_000 and p.idle_bytes == 0


def test_the_limit_bounds_what_is_kept_and_zero_turns_recycling_off():
    p = BufferPool(limit=5_000)
    a, b = p.take(3_000), p.take(3_000)
    address = _address(b)
    del a, b
    assert p.idle_bytes == 3_000  # both would pass the limit: the older went back to the system
    assert _address(p.take(3_000)) == address
    assert p.release() == 3_000 and p.idle_bytes == 0  # the one just taken came back as its array died
    off = BufferPool(limit=0)
    c = off.take(100)
    del c
    assert off.idle_bytes == 0


def test_kept_buffers_count_as_available_memory(monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda: 5 << 30)  # the system's figure moves with everything else
    kept = BufferPool(limit=1 << 30)
    monkeypatch.setattr(pool, "POOL", kept)
    assert memory.available_bytes() == 5 << 30
    block = kept.take(64 << 20)
    del block
    assert memory.available_bytes() == (5 << 30) + (64 << 20)


def test_a_recording_on_a_recycled_buffer_equals_one_on_fresh_memory(tiny_llama, monkeypatch):
    """Padded slots must hold NaN again although the recycled buffer held another recording's numbers."""
    fresh = BufferPool(limit=0)
    monkeypatch.setattr(pool, "POOL", fresh)
    rng = np.random.default_rng(0)
    ragged = Stimuli([rng.integers(10, 200, n) for n in (9, 4, 7, 2)])  # padded slots
    full = Stimuli([rng.integers(10, 200, 9) for _ in range(4)])  # the same buffer size, no padding
    sites = ["hidden", "attn.out", "mlp.pre"]
    want = lamina.record(tiny_llama, ragged, sites=sites, batch_size=2)
    want = {s: want[s].copy() for s in sites}

    recycling = BufferPool(limit=1 << 30)
    monkeypatch.setattr(pool, "POOL", recycling)
    other = lamina.record(tiny_llama, full, sites=sites, batch_size=2)
    address = _address(other["hidden"])
    del other
    assert recycling.idle_bytes > 0
    got = lamina.record(tiny_llama, ragged, sites=sites, batch_size=2)
    assert _address(got["hidden"]) == address, "the buffer was not recycled: this test tests nothing"
    for site in sites:
        np.testing.assert_array_equal(got[site], want[site])  # NaN where NaN, bit for bit elsewhere
        assert np.isnan(got[site][:, 3, 2:]).all()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_recycled_16_bit_buffers(tiny_gpt2, dtype, monkeypatch):
    monkeypatch.setattr(pool, "POOL", BufferPool(limit=1 << 30))
    rng = np.random.default_rng(1)
    stim = Stimuli([rng.integers(10, 200, n) for n in (6, 3)])
    first = lamina.record(tiny_gpt2, stim, sites=["hidden"], dtype=dtype)
    want = first["hidden"].copy()
    del first
    again = lamina.record(tiny_gpt2, stim, sites=["hidden"], dtype=dtype)
    np.testing.assert_array_equal(again["hidden"], want)


def test_a_streamed_recording_writes_its_shards_through_one_buffer(tiny_gpt2, tmp_path, monkeypatch):
    recycling = BufferPool(limit=1 << 30)
    monkeypatch.setattr(pool, "POOL", recycling)
    rng = np.random.default_rng(2)
    stim = Stimuli([rng.integers(10, 200, 12) for _ in range(10)])
    on_disk = lamina.record(tiny_gpt2, stim, sites=["hidden", "mlp.out"], out=tmp_path / "rec", shard_size=3)
    assert recycling.fresh == 1  # shards of 3, 3, 3 and 1 sequences, one buffer (the last uses part of it)
    in_memory = lamina.record(tiny_gpt2, stim, sites=["hidden", "mlp.out"])
    for site in ("hidden", "mlp.out"):
        np.testing.assert_array_equal(np.asarray(on_disk[site]), in_memory[site])


def test_an_allocator_that_refuses_is_one_lamina_error(tiny_gpt2, monkeypatch):
    refusing = BufferPool(limit=0)

    def no_memory(nbytes, slack=None):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(refusing, "take", no_memory)
    monkeypatch.setattr(pool, "POOL", refusing)
    with pytest.raises(lamina.LaminaError, match="could not allocate the recording's buffers"):
        lamina.record(tiny_gpt2, Stimuli([np.arange(10, 20)]), sites=["hidden"])


def test_a_lower_limit_gives_back_at_once_and_a_bad_one_is_refused():
    p = BufferPool(limit=1 << 20)
    block = p.take(5_000)
    del block
    assert p.idle_bytes == 5_000
    p.limit = 4_000
    assert p.idle_bytes == 0
    for bad in (-1, 1.5, "1GB", True, None):
        with pytest.raises(lamina.LaminaError, match="the pool's limit is a number of bytes"):
            p.limit = bad
