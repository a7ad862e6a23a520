"""Recycled recording buffers: the memory of a recording nobody holds any more serves the next one.

A fresh buffer costs more than the copy into it: the kernel maps and zeroes each page on first touch
(0.10 s for 632 MB on the benchmark VM, twice the 0.05 s the copy itself takes). A process that records
again and again (a loop over stimuli, a sweep, shards streamed to disk one after another) paid that on
every call, while the model's own temporaries come back from the allocator's free lists already
touched. The pool keeps the buffer of a recording whose arrays are all gone and lends it to the next
recording of about the same size.

What it never does is lend memory that anything can still read: a buffer comes back only when the last
NumPy array or torch tensor viewing it has been garbage collected (every view keeps its :class:`_Lease`
alive; a weak-reference callback on the lease returns the block). A lent buffer holds whatever the
previous recording left in it, as ``torch.empty``'s would: the recording writes every slot it keeps
and NaN into the rest.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

from ..errors import LaminaError
from . import memory

#: A block lent for a request of n bytes is at most this much larger (the rest lies unused meanwhile).
SLACK = 1.25


class _Lease:
    """The object every array of one lent block keeps alive (their ``base``): its death returns the block."""

    def __init__(self, block: torch.Tensor, nbytes: int):
        self.block = block
        self.__array_interface__ = {"data": (block.data_ptr(), False), "shape": (nbytes,), "typestr": "|u1",
                                    "version": 3}


class BufferPool:
    """Buffers of recordings that ended, kept for the next recording of about their size.

    Attributes:
        limit: the most bytes kept while no recording uses them (default: 2 GiB, or an eighth of the
            machine's memory where that is less). ``0`` turns recycling off: every buffer then goes
            back to the system as soon as its recording is gone.
    """

    def __init__(self, limit: int | None = None):
        self._idle: list[torch.Tensor] = []
        self._lock = threading.Lock()
        self.limit = _default_limit() if limit is None else limit
        self.fresh = 0  # blocks taken from the system so far (the others were recycled)

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise LaminaError(f"the pool's limit is a number of bytes (an int ≥ 0; 0 turns recycling off), "
                              f"not {value!r}.")
        self._limit = int(value)
        with self._lock:  # a lower limit gives back what it no longer allows at once
            self._trim()

    @property
    def idle_bytes(self) -> int:
        """Bytes kept for reuse now (memory this process holds that no recording uses)."""
        with self._lock:
            return self._kept()

    def take(self, nbytes: int, slack: float = SLACK) -> np.ndarray:
        """A writable ``uint8`` array of ``nbytes`` whose contents are undefined: the smallest kept block of at
        least that size and at most ``slack`` times it, else fresh memory. Kept blocks of other sizes stay kept
        (a loop that alternates sizes recycles each), unless the fresh block would leave the system less
        free memory than they hold: then they go back first, so the pool never holds memory a recording
        needs (the plan counted them as available, :func:`lamina.recording.memory.available_bytes`).

        Raises whatever ``torch.empty`` raises when the memory cannot be had (RuntimeError).
        """
        nbytes = max(int(nbytes), 1)
        with self._lock:
            fits = [b for b in self._idle if nbytes <= b.numel() <= slack * nbytes]
            block = min(fits, key=lambda b: b.numel()) if fits else None
            if block is not None:
                self._idle = [b for b in self._idle if b is not block]
            elif self._idle and memory.free_bytes() - nbytes < self._kept():
                self._idle.clear()
        if block is None:
            block = torch.empty(nbytes, dtype=torch.uint8)
            self.fresh += 1
        lease = _Lease(block, nbytes)
        array = np.asarray(lease)
        finalizer = weakref.finalize(lease, self._give_back, block)
        finalizer.atexit = False
        return array

    def release(self) -> int:
        """Give every kept block back to the system; the bytes released."""
        with self._lock:
            freed = self._kept()
            self._idle.clear()
        return freed

    def _give_back(self, block: torch.Tensor) -> None:
        # Never waits: a finalizer may run inside take() on this very thread (a garbage collection), where
        # waiting would deadlock; a block that finds the lock taken goes back to the system instead.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._idle.append(block)
            self._trim()
        finally:
            self._lock.release()

    def _kept(self) -> int:  # the caller holds the lock
        return sum(block.numel() for block in self._idle)

    def _trim(self) -> None:
        """The newest blocks stay kept: the oldest go back to the system past the limit (the caller holds the lock)."""
        while self._idle and self._kept() > self._limit:
            self._idle.pop(0)


def _default_limit() -> int:
    try:
        import psutil

        total = int(psutil.virtual_memory().total)
    except Exception:  # no psutil or no /proc: the fixed cap alone  # noqa: BLE001
        total = 16 << 30
    return min(2 << 30, total // 8)


#: The process's pool: every in-memory recording and every shard on its way to disk takes its buffer here.
POOL = BufferPool()


def arrays(shapes: dict[str, tuple[int, ...]], dtype, slack: float = SLACK) -> dict[str, np.ndarray]:
    """One buffer from :data:`POOL` (see :meth:`BufferPool.take` for ``slack``) cut into an array per name, each
    ``shapes[name]`` of ``dtype`` (contents undefined), every array starting on a 64-byte boundary."""
    if not shapes:  # a chunk that keeps no site (its token columns only)
        return {}
    dtype = np.dtype(dtype)
    sizes = {name: int(np.prod(shape, dtype=np.int64)) * dtype.itemsize for name, shape in shapes.items()}
    starts, total = {}, 0
    for name, size in sizes.items():
        starts[name] = total
        total += -(-size // 64) * 64
    buffer = POOL.take(total, slack)
    return {name: buffer[starts[name]:starts[name] + sizes[name]].view(dtype).reshape(shapes[name])
            for name in shapes}
