"""A hash of a model's weights for run manifests: what exactly produced these numbers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..cache import cache_dir
from .embedded import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
MAX_IN_MEMORY_PARAMS = 50_000_000


def weights_sha256(model) -> str | None:
    """sha256 identifying the weights; None when it would cost too much to know.

    Embedded: the GGUF file's hash. Local directory: the hash of its weight files (cached by
    path, size and mtime). Hub: the content hashes HF's cache stores its blobs under. A model
    built in memory: its parameters' bytes, for models under 50M parameters.
    """
    source = model.source
    if source.get("sha256"):
        return source["sha256"]
    if source.get("kind") in ("local", "gguf"):
        path = Path(source["path"])
        files = sorted(p for p in (path.iterdir() if path.is_dir() else [path]) if p.suffix in WEIGHT_SUFFIXES)
        return _combined([_cached_file_hash(p) for p in files]) if files else None
    if source.get("kind") == "hub":
        return _hub_hash(source["hub_id"])
    return _parameter_hash(model.hf)


def _combined(hashes: list[str]) -> str:
    return hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()


def _cached_file_hash(path: Path) -> str:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    memo = cache_dir("hashes") / f"{key}.json"
    if memo.exists():
        return json.loads(memo.read_text())["sha256"]
    digest = file_sha256(path)
    memo.write_text(json.dumps({"path": str(path), "sha256": digest}))
    return digest


def _hub_hash(repo_id: str) -> str | None:
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if repo.repo_id == repo_id:
                blobs = sorted(f.blob_path.name for rev in repo.revisions for f in rev.files
                               if f.file_name.endswith(WEIGHT_SUFFIXES))
                return _combined(blobs) if blobs else None
    except Exception:  # the cache layout is HF's business; a missing hash is not an error
        return None
    return None


def _parameter_hash(module) -> str | None:
    params = list(module.state_dict().values())
    if sum(p.numel() for p in params) > MAX_IN_MEMORY_PARAMS:
        return None
    digest = hashlib.sha256()
    for tensor in params:
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
