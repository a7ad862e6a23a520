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

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open
from safetensors.numpy import save_file

from ..errors import LaminaError

FORMAT = "lamina-recording"
VERSION = 1


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_manifest(directory: Path) -> dict | None:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LaminaError(f"{path} is not valid JSON ({err}); the recording is damaged.") from None
    if manifest.get("format") != FORMAT:
        raise LaminaError(f"{path} is not a lamina recording manifest.")
    return manifest


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
    save_file(tensors, str(tmp), metadata={"texts": json.dumps({str(k): v for k, v in texts.items()})})
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


def read_tokens(directory: Path, entry: dict) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    with safe_open(str(Path(directory) / entry["file"]), framework="numpy") as fh:
        cols = {key[4:]: fh.get_tensor(key) for key in fh.keys() if key.startswith("tok/")}
        texts = {int(k): v for k, v in json.loads(fh.metadata()["texts"]).items()}
    return cols, texts


def read_activations(directory: Path, entry: dict, site: str, slot: int | None = None) -> np.ndarray:
    """One shard's ``act/<site>``: all layers, or only ``slot`` (memory-mapped slice read)."""
    with safe_open(str(Path(directory) / entry["file"]), framework="numpy") as fh:
        key = f"act/{site}"
        return fh.get_tensor(key) if slot is None else fh.get_slice(key)[slot]
