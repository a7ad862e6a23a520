"""Memory planning: a recording's bytes are known before its first forward pass, so one that cannot
fit is refused with the numbers and the ways out, instead of meeting the OOM killer minutes later.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from ..errors import LaminaError

#: Share of the available memory a recording may plan to take: the rest is for the model, the
#: forward pass's own temporaries and whatever else the process holds.
HEADROOM = 0.9


def available_bytes() -> int:
    """Memory a recording can still take: :func:`free_bytes` plus the recording buffers kept for reuse
    (recording/pool.py), which a recording that cannot use them gives back first."""
    # No pool imported yet, nothing kept: this module stays importable without torch.
    pool = sys.modules.get(__package__ + ".pool")
    return free_bytes() + (pool.POOL.idle_bytes if pool is not None else 0)


def free_bytes() -> int:
    """Memory the system can still give this process: its available memory, or less where a cgroup
    (a container or ``systemd-run -p MemoryMax``) limits it."""
    import psutil

    free = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (("memory.max", "memory.current"),  # cgroup v2
                                   ("memory.limit_in_bytes", "memory.usage_in_bytes")):  # v1
        limit = _cgroup_value(limit_file)
        usage = _cgroup_value(usage_file)
        if limit is not None and usage is not None and limit < (1 << 60):
            free = min(free, max(limit - usage, 0))
    return free


def _cgroup_value(name: str) -> int | None:
    """A number from this process's cgroup directory (None where there is none, or 'max')."""
    for directory in _cgroup_dirs():
        try:
            text = (directory / name).read_text().strip()
        except OSError:
            continue
        return int(text) if text.isdigit() else None
    return None


@functools.lru_cache(maxsize=1)
def _cgroup_dirs() -> tuple[Path, ...]:
    """Where this process's memory cgroup may be, in the order to try (read once: every recording plans)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ()
    dirs = []
    for entry in lines:
        parts = entry.split(":", 2)
        if len(parts) != 3 or (parts[1] and "memory" not in parts[1].split(",")):
            continue
        dirs += [Path(root + parts[2]) for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory")]
    return tuple(dirs)


def site_bytes(plan: dict[str, list[int]], shapes: dict[str, tuple[int, ...]], n_sequences: int,
               dtype) -> dict[str, int]:
    """Bytes each site's buffer takes: ``(layer, sequence, *shapes[site])`` elements of ``dtype``, where a
    site's shape is ``(slot, width)``, ``(slot, head, width)`` for ``attn.heads`` or ``(head, slot, key)``
    for ``attn.pattern`` (which grows with the square of the length)."""
    item = np.dtype(dtype).itemsize
    return {site: len(layers) * n_sequences * int(np.prod(shapes[site])) * item for site, layers in plan.items()}


def gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def check_fits(*, stored: dict[str, int], working: int, what: str = "this recording",
               available: int | None = None, dtype: str = "float32", streaming: bool = False,
               attention: int = 0) -> None:
    """Refuse (LaminaError) when ``stored`` (bytes per site kept in memory) plus ``working`` (the
    forward pass's largest temporary, e.g. a batch of logits) plus ``attention`` (the attention sites'
    temporaries of one layer: the batch's probabilities, its kept positions split by head) exceeds
    :data:`HEADROOM` of the available memory; the message gives both numbers, the largest parts and the
    ways out (``streaming``: the recording already goes to disk, one shard at a time)."""
    available = available_bytes() if available is None else available
    need = sum(stored.values()) + working + attention
    if need <= HEADROOM * available:
        return
    temporaries = [("the forward pass's logits", working), ("one layer's attention temporaries", attention)]
    parts = sorted([*stored.items(), *[(name, n) for name, n in temporaries if n]], key=lambda kv: -kv[1])
    largest = ", ".join(f"{name} {gib(n)}" for name, n in parts[:3])
    ways = [] if streaming else ["out=DIR (--out) to stream shards to disk and read them lazily"]
    if working + attention > sum(stored.values()):
        ways.append("a smaller batch_size (--batch-size), or loss=False (--no-loss) when the loss is not needed")
    ways += ["fewer layers (layers=) or positions (positions='last' or a list)", "fewer sites"]
    if dtype == "float32":
        ways.append("dtype='bfloat16' or 'float16' storage (half the bytes)")
    raise LaminaError(f"{what} needs about {gib(need)} of memory ({largest}) but {gib(available)} is available; "
                      f"use {'; or '.join(ways)}.")
