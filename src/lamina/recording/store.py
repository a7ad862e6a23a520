"""The on-disk recording: safetensors shards plus a JSON manifest, written atomically.

Layout of a recording directory::

    manifest.json             what was recorded, and one entry per finished shard (with sha256)
    meta.json                 the stimuli metadata table (records)
    shard-00000.safetensors   act/<site>: (layer, sequence, slot, width); tok/<column>: (rows,)

A shard is written to a temporary name and renamed, then listed in the manifest
(itself replaced atomically), so an interrupted recording never leaves a
half-written shard that looks finished. No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open
from safetensors.numpy import save_file

from ..errors import LaminaError, one_line

FORMAT = "lamina-recording"
VERSION = 1


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1))
    except OSError:
        tmp.unlink(missing_ok=True)  # a half-written copy is never renamed into place
        raise
    os.replace(tmp, path)


@contextlib.contextmanager
def writer_lock(directory: Path):
    """Hold the advisory lock of the recording ``directory`` for the ``with`` block, or refuse.

    Taken before anything is read or written, so two processes never interleave shards in one
    directory, even when both record the same thing (same fingerprint). The lock file sits beside
    the directory (``.<name>.lock``), which ``overwrite`` may delete and re-create; it is never
    removed (removing it would let a third process lock a new file while the second holds the old).
    The kernel releases the lock when its holder exits, however it exits.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory.with_name(f".{directory.name}.lock")
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise LaminaError(f"another process (pid {holder}) is recording into {directory}; wait for it to "
                              "finish (the same call then finds the recording complete or resumes it), or choose "
                              "another directory.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def read_manifest(directory: Path) -> dict | None:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        return None
    again = "record again into it with overwrite=True (--overwrite), or into another directory"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise LaminaError(f"{path} is damaged (not valid JSON: {one_line(err)}); {again}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LaminaError(f"{path} is not a lamina recording manifest; {again}.")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    shards_ok = isinstance(manifest.get("shards"), list) and all(
        isinstance(e, dict) and all(k in e for k in _SHARD_KEYS) for e in manifest["shards"])
    if missing or not shards_ok:
        what = f"lacks {', '.join(missing)}" if missing else "has a shard entry without file, sha256 or bytes"
        raise LaminaError(f"{path} is damaged: it {what}; {again}.")
    return manifest


_MANIFEST_KEYS = ("fingerprint", "complete", "n_shards", "shard_size", "n_slots", "sites", "info", "shards")
_SHARD_KEYS = ("index", "file", "sha256", "bytes", "start", "stop")


def read_meta(directory: Path) -> pd.DataFrame:
    """The stimuli table of the recording ``directory`` (meta.json), a LaminaError naming it if damaged."""
    path = Path(directory) / "meta.json"
    try:
        return meta_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise LaminaError(f"{path} is damaged or missing ({type(err).__name__}: {one_line(err)}); record again "
                          "with overwrite=True (--overwrite).") from None


def meta_to_json(meta: pd.DataFrame) -> dict:
    """The stimuli table as JSON (row count kept, so a table with no columns survives)."""
    return {"n_rows": len(meta), "table": json.loads(meta.to_json(orient="split", index=False))}


def meta_from_json(data: dict) -> pd.DataFrame:
    table = data["table"]
    return pd.DataFrame(table["data"], columns=table["columns"], index=range(data["n_rows"]))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def write_shard(directory: Path, index: int, activations: dict[str, np.ndarray],
                tokens: dict[str, np.ndarray], texts: dict[int, str]) -> dict:
    """Write one shard; returns its manifest entry (file, sha256, bytes)."""
    tensors = {f"act/{site}": np.ascontiguousarray(a) for site, a in activations.items()}
    tensors.update({f"tok/{col}": np.ascontiguousarray(v) for col, v in tokens.items()})
    path = Path(directory) / shard_name(index)
    tmp = path.with_name(path.name + ".partial")
    try:
        save_file(tensors, str(tmp), metadata={"texts": json.dumps({str(k): v for k, v in texts.items()})})
    except Exception as err:  # safetensors reports I/O faults as its own error: give them their errno back
        tmp.unlink(missing_ok=True)
        code = re.search(r"os error (\d+)", str(err))
        if code:
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(tmp)) from None
        raise
    os.replace(tmp, path)
    return {"index": index, "file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}


def check_shard(directory: Path, entry: dict, full: bool = True) -> None:
    """Raise a LaminaError naming the shard if it is missing, truncated or corrupted."""
    path = Path(directory) / entry["file"]
    if not path.exists():
        raise LaminaError(f"shard {path} is listed in the manifest but missing.")
    if path.stat().st_size != entry["bytes"]:
        raise LaminaError(f"shard {path} is truncated or changed: {path.stat().st_size} bytes, "
                          f"the manifest says {entry['bytes']}.")
    if full and sha256(path) != entry["sha256"]:
        raise LaminaError(f"shard {path} is corrupted: its sha256 does not match the manifest.")


@contextlib.contextmanager
def _shard(directory: Path, entry: dict):
    """The shard of ``entry`` opened with safetensors; an unreadable one is a LaminaError naming it."""
    path = Path(directory) / entry["file"]
    try:
        with safe_open(str(path), framework="numpy") as fh:
            yield fh
    except LaminaError:
        raise
    except Exception as err:  # safetensors' own error type, KeyError, JSON: all mean a damaged file
        raise LaminaError(f"shard {path} is damaged ({type(err).__name__}: {one_line(err)}); run the same record "
                          "call again to re-record it.") from None


def read_tokens(directory: Path, entry: dict) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    with _shard(directory, entry) as fh:
        cols = {key[4:]: fh.get_tensor(key) for key in fh.keys() if key.startswith("tok/")}
        texts = {int(k): v for k, v in json.loads(fh.metadata()["texts"]).items()}
    return cols, texts


def read_activations(directory: Path, entry: dict, site: str, slot: int | None = None) -> np.ndarray:
    """One shard's ``act/<site>``: all layers, or only ``slot`` (memory-mapped slice read)."""
    with _shard(directory, entry) as fh:
        key = f"act/{site}"
        return fh.get_tensor(key) if slot is None else fh.get_slice(key)[slot]
