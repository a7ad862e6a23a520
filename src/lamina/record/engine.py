"""``lamina.record``: run stimuli through a model in batches and keep what was asked for."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._version import __version__
from ..errors import LaminaError
from ..models.fingerprint import weights_sha256
from ..models.sites import check_layers, split_sites
from . import store
from .hooks import trace
from .positions import describe, kept_positions
from .recording import Recording, token_table

STORE_DTYPES = {"float32": np.float32, "float16": np.float16}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def _plan(model, sites, layers) -> dict[str, list[int]]:
    names = split_sites(sites)
    if isinstance(layers, dict):
        unknown = set(layers) - set(names)
        if unknown:
            raise LaminaError(f"layers given for sites that are not recorded: {sorted(unknown)}.")
        return {s: check_layers(s, layers.get(s), model.n_layers) for s in names}
    return {s: check_layers(s, layers, model.n_layers) for s in names}


class _Chunk:
    """Buffers for a range of sequences (one shard, or the whole recording in memory)."""

    def __init__(self, model, plan, seqs: np.ndarray, n_slots: np.ndarray, n_slots_max: int, dtype):
        self.seqs = seqs
        # Every recorded slot is written by a hook, so only the padded slots need their NaN (np.full
        # wrote the whole buffer twice). The memory comes from torch's allocator, in ordinary pages:
        # NumPy advises transparent huge pages for large arrays, and first touching those cost up to
        # 3x more than the copy itself on the benchmark VM (docs/benchmarks.md).
        torch_dtype = TORCH_DTYPES[np.dtype(dtype).name]
        self.acts = {site: torch.empty((len(layers), len(seqs), n_slots_max, model.width(site)),
                                       dtype=torch_dtype).numpy()
                     for site, layers in plan.items()}
        for i in np.flatnonzero(n_slots < n_slots_max):
            for array in self.acts.values():
                array[:, i, n_slots[i]:] = np.nan
        self.tokens: dict[str, list[np.ndarray]] = {}

    def token_columns(self) -> dict[str, np.ndarray]:
        """Token columns in (sequence, slot) order: batches run longest-first, rows must not."""
        cols = {k: np.concatenate(v) for k, v in self.tokens.items()}
        order = np.lexsort((cols["slot"], cols["sequence"]))
        return {k: v[order] for k, v in cols.items()}


def _fingerprint(model, stimuli, plan, positions, dtype, shard_size) -> str:
    # The weights identify the model (a name does not: two wraps of one model may be named differently).
    key = json.dumps({"weights": weights_sha256(model) or model.name,
                      "prepend_bos": model.prepend_bos, "bos_id": model.bos_id if model.prepend_bos else None,
                      "stimuli": stimuli.fingerprint(), "plan": plan,
                      "positions": describe(positions), "dtype": dtype, "shard_size": shard_size},
                     sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def record(model, stimuli, sites=("hidden",), *, layers=None, positions="all", dtype="float32",
           batch_size: int = 8, out=None, overwrite: bool = False, shard_size: int | None = None,
           progress: bool | None = None, backend: str = "local", workers: int | None = None,
           ray_address: str | None = None) -> Recording:
    """Record activations at ``sites`` and per-token loss for every stimulus sequence.

    Args:
        model: a lamina ``Model`` (from :func:`lamina.load` or :func:`lamina.wrap`).
        stimuli: a :class:`lamina.Stimuli` (token ids, metadata, next ids).
        sites: canonical site names (see ``lamina sites MODEL``). ``loss``, ``correct`` and
            ``predicted`` may be listed; they are always in the token table.
        layers: None (all), an int, a list of ints, or a dict site -> selection.
            Negative indices count from the end (``hidden`` has n_layers + 1 entries).
        positions: ``"all"``, ``"last"``, an int, or one index (or list) per sequence.
        dtype: storage dtype, ``"float32"`` or ``"float16"``.
        batch_size: sequences per forward pass (padding is masked and never recorded).
        out: a directory to stream shards to; the result then reads them lazily. An
            interrupted call resumes: re-running it re-records only missing shards.
        overwrite: replace a directory that holds a different recording.
        shard_size: sequences per shard on disk (default: about 256 MB per shard).
        progress: show a progress bar (None: only when stderr is a terminal).
        backend: ``"local"`` (this process) or ``"ray"``: shards are recorded by Ray workers that
            each load the model once (one GPU each when there are GPUs) into the same ``out``
            directory; needs ``out`` and ``pip install 'lamina[ray]'``. See docs/scale.md.
        workers: Ray workers (default: one per GPU, else 2).
        ray_address: a running Ray cluster (``"auto"``, ``"ray://head:10001"``); None starts a local one.

    Returns:
        A :class:`Recording` with arrays of shape ``(layer, sequence, slot, width)``.
    """
    if not hasattr(model, "adapter"):
        raise LaminaError("record() needs a lamina Model; get one with lamina.load(...) or lamina.wrap(hf, tok).")
    if not hasattr(stimuli, "ids"):
        raise LaminaError("record() needs a lamina Stimuli; build one with a lamina.stimuli builder.")
    if dtype not in STORE_DTYPES:
        raise LaminaError(f"dtype must be one of {', '.join(STORE_DTYPES)}, not {dtype!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise LaminaError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if backend not in ("local", "ray"):
        raise LaminaError(f"backend must be 'local' or 'ray', not {backend!r}.")
    if backend == "ray" and out is None:
        raise LaminaError("backend='ray' writes shards from several processes: give a directory with out=.")
    plan = _plan(model, sites, layers)
    lengths = stimuli.lengths
    offset = int(model.prepend_bos)
    if lengths.max() + offset > model.context_length:
        raise LaminaError(f"the longest sequence has {lengths.max()} tokens (+{offset} BOS), more than "
                          f"{model.name}'s context length of {model.context_length}.")
    if (stimuli.next_ids >= model.vocab_size).any() or any((s >= model.vocab_size).any() or (s < 0).any()
                                                         for s in stimuli.ids):
        raise LaminaError(f"the stimuli hold token ids outside {model.name}'s vocabulary (0..{model.vocab_size - 1});"
                          " were they built with another tokenizer?")
    kept = kept_positions(positions, lengths)
    n_slots = np.array([len(k) for k in kept])
    np_dtype = STORE_DTYPES[dtype]
    n = len(stimuli)

    if out is None:
        chunk = _Chunk(model, plan, np.arange(n), n_slots, int(n_slots.max()), np_dtype)
        texts: dict[int, str] = {}
        _run(model, stimuli, plan, kept, chunk, batch_size, progress, texts, total=n)
        info = _info(model, stimuli, plan, positions, dtype)
        return Recording(layers=plan, tokens=token_table(chunk.token_columns(), texts), meta=stimuli.meta,
                         n_slots=n_slots, info=info, arrays=chunk.acts)

    return _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, Path(out),
                           overwrite, shard_size, progress, backend, workers, ray_address)


def _info(model, stimuli, plan, positions, dtype) -> dict:
    return {"lamina": __version__, "model": model.name, "family": model.adapter.family, "source": model.source,
            "n_layers": model.n_layers, "prepend_bos": model.prepend_bos,
            "bos_id": model.bos_id if model.prepend_bos else None, "n_sequences": len(stimuli),
            "stimuli_fingerprint": stimuli.fingerprint(), "notes": list(stimuli.notes),
            "positions": describe(positions), "dtype": dtype, "device": str(model.device),
            "torch": torch.__version__}


def record_shard(model, k: int, *, stimuli, plan, kept, n_slots, dtype, batch_size, out, shard_size,
                 bar=None) -> dict:
    """Record shard ``k`` (sequences ``k*shard_size ..``) and write it; returns its manifest entry.

    The unit of work of both backends: the local loop calls it in turn, Ray workers in parallel.
    """
    n = len(stimuli)
    seqs = np.arange(k * shard_size, min(n, (k + 1) * shard_size))
    chunk = _Chunk(model, plan, seqs, n_slots[seqs], int(n_slots.max()), STORE_DTYPES[dtype])
    texts: dict[int, str] = {}
    _run(model, stimuli, plan, kept, chunk, batch_size, False, texts, bar=bar)
    entry = store.write_shard(Path(out), k, chunk.acts, chunk.token_columns(), texts)
    entry.update(start=int(seqs[0]), stop=int(seqs[-1]) + 1)
    return entry


def _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out: Path,
                    overwrite, shard_size, progress, backend="local", workers=None, ray_address=None) -> Recording:
    n = len(stimuli)
    if shard_size is None:
        bytes_per_seq = sum(len(l) * model.width(s) for s, l in plan.items()) * int(n_slots.max()) * 4
        shard_size = max(batch_size, min(n, (256 << 20) // max(bytes_per_seq, 1) // batch_size * batch_size))
    fingerprint = _fingerprint(model, stimuli, plan, positions, dtype, shard_size)
    manifest = store.read_manifest(out) if out.exists() else None
    if out.exists() and manifest is None and any(out.iterdir()):
        if not overwrite:
            raise LaminaError(f"{out} exists and is not a lamina recording; choose another directory or pass overwrite=True.")
        shutil.rmtree(out)
    if manifest is not None and manifest["fingerprint"] != fingerprint:
        if not overwrite:
            raise LaminaError(f"{out} holds a different recording (other model, stimuli or settings); "
                              "choose another directory or pass overwrite=True.")
        shutil.rmtree(out)
        manifest = None
    out.mkdir(parents=True, exist_ok=True)
    n_shards = -(-n // shard_size)
    if manifest is None:
        manifest = {"format": store.FORMAT, "version": store.VERSION, "fingerprint": fingerprint,
                    "complete": False, "n_shards": n_shards, "shard_size": shard_size,
                    "n_slots": n_slots.tolist(),
                    "sites": {s: {"layers": l, "width": model.width(s)} for s, l in plan.items()},
                    "info": _info(model, stimuli, plan, positions, dtype), "shards": []}
        store.write_json(out / "meta.json", store.meta_to_json(stimuli.meta))
    done = {}
    for entry in manifest["shards"]:
        try:
            store.check_shard(out, entry, full=True)
            done[entry["index"]] = entry
        except LaminaError:
            pass  # damaged or missing: record it again
    manifest["shards"] = sorted(done.values(), key=lambda e: e["index"])
    store.write_json(out / "manifest.json", manifest)
    todo = [k for k in range(n_shards) if k not in done]
    bar = tqdm(total=n, initial=n - sum(min(shard_size, n - k * shard_size) for k in todo),
               desc="recording", unit="seq", disable=_disable(progress))
    started = time.perf_counter()
    job = dict(stimuli=stimuli, plan=plan, kept=kept, n_slots=n_slots, dtype=dtype, batch_size=batch_size,
               out=str(out), shard_size=shard_size)

    def finished(entry):  # the only writer of the manifest, whichever backend recorded the shard
        manifest["shards"] = sorted(manifest["shards"] + [entry], key=lambda e: e["index"])
        store.write_json(out / "manifest.json", manifest)
        if backend == "ray":
            bar.update(entry["stop"] - entry["start"])

    if backend == "ray" and todo:
        from .distributed import run_shards

        run_shards(model, todo, record_shard, workers=workers, address=ray_address, on_done=finished, job=job)
    else:
        for k in todo:
            finished(record_shard(model, k, bar=bar, **job))
    bar.close()
    manifest["complete"] = True
    manifest["info"]["seconds"] = round(time.perf_counter() - started, 3)
    store.write_json(out / "manifest.json", manifest)
    return Recording.load(out)


def _disable(progress) -> bool | None:
    return None if progress is None else not progress


def _vocab_texts(model, ids: np.ndarray, texts: dict[int, str]) -> None:
    for i in np.unique(ids):
        if int(i) >= 0 and int(i) not in texts:
            texts[int(i)] = model.tokenizer.decode([int(i)])


def _run(model, stimuli, plan, kept, chunk: _Chunk, batch_size, progress, texts, total=None, bar=None):
    """Fill ``chunk`` with activations and token columns for its sequences."""
    seqs = chunk.seqs
    lengths = stimuli.lengths
    # Longest first within the chunk: batches hold similar lengths, so little padding.
    order = seqs[np.argsort(-lengths[seqs], kind="stable")]
    local = {int(s): i for i, s in enumerate(seqs)}
    offset = int(model.prepend_bos)
    device = model.device
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=total, desc="recording", unit="seq", disable=_disable(progress))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            _run_batch(model, stimuli, plan, kept, chunk, batch, [local[int(s)] for s in batch], offset, device, texts)
            bar.update(len(batch))
    if own_bar:
        bar.close()


_TAKES_LOGITS_TO_KEEP: dict[type, bool] = {}


def _takes_logits_to_keep(hf) -> bool:
    """Whether ``hf.forward`` can skip the LM head at positions nobody reads (transformers >= 4.50)."""
    cls = type(hf)
    if cls not in _TAKES_LOGITS_TO_KEEP:
        try:
            _TAKES_LOGITS_TO_KEEP[cls] = "logits_to_keep" in inspect.signature(hf.forward).parameters
        except (TypeError, ValueError):
            _TAKES_LOGITS_TO_KEEP[cls] = False
    return _TAKES_LOGITS_TO_KEEP[cls]


# Padded batches copy row by row: with numpy on the CPU, one plain memcpy per row with no OpenMP
# fork/join per slice (torch's copy_ of many small slices cost as much as 40% of a forward pass).
_NUMPY_DTYPES = (torch.float32, torch.float16)


def _run_batch(model, stimuli, plan, kept, chunk, batch, rows, offset, device, texts):
    lengths = stimuli.lengths[batch]
    width = int(lengths.max()) + offset
    ids = np.zeros((len(batch), width), dtype=np.int64)
    if offset:
        ids[:, 0] = model.bos_id
    for b, s in enumerate(batch):
        ids[b, offset:offset + lengths[b]] = stimuli.ids[s]
    # Gather index: for each sequence its kept positions (shifted past BOS), padded by
    # repeating the first one; padded slots are dropped when copying out.
    counts = [len(kept[s]) for s in batch]
    k_max = max(counts)
    gather = np.zeros((len(batch), k_max), dtype=np.int64)
    for b, s in enumerate(batch):
        gather[b, :counts[b]] = kept[s] + offset
        gather[b, counts[b]:] = kept[s][0] + offset
    all_kept = all(counts[b] == lengths[b] for b in range(len(batch)))
    # Fixed-length stimuli fill consecutive rows of the buffer with no padded slot: one copy per site.
    block = all(k == k_max for k in counts) and all(rows[b] == rows[0] + b for b in range(len(rows)))
    # Index tensors on each device that tensors arrive from (layers may sit on several devices).
    index_cache = {}

    def indices(on: torch.device, which=gather):
        key = (on, id(which))
        if key not in index_cache:
            index_cache[key] = (torch.arange(len(batch), device=on)[:, None], torch.as_tensor(which, device=on))
        return index_cache[key]

    def check(site, slot, values, first_row):
        # Any NaN or inf makes the sum non-finite; a non-finite sum of finite values (overflow) is
        # told apart by the exact test. torch's sum reads the buffer once, on every core.
        if torch.isfinite(torch.from_numpy(values).sum(dtype=torch.float32)):
            return
        if not np.isfinite(values).all():
            bad = next(b for b in range(len(values)) if not np.isfinite(values[b]).all())
            raise LaminaError(
                f"non-finite values (NaN or inf) at site {site!r}, layer {plan[site][slot]}, "
                f"sequence {batch[first_row + bad]}; "
                "with float16 this is usually overflow: load the model in float32 or bfloat16.")

    def on_capture(site, slot, tensor):
        # Keep only the recorded positions and copy them once, straight into the buffer
        # (never a view: the model may reuse its own tensor).
        target = chunk.acts[site][slot]
        part = tensor[:, offset:offset + k_max] if all_kept else tensor[indices(tensor.device)]
        if tensor.device.type != "cpu":  # one transfer per site and layer; the storage dtype is applied there
            part = part.to(dtype=torch.float32 if target.dtype == np.float32 else torch.float16).cpu()
        if block:
            # One copy per site and layer (torch's copy is multi-threaded: the fresh buffer's
            # pages are first touched here, on every core).
            dst = target[rows[0]:rows[0] + len(rows), :k_max]
            torch.from_numpy(dst).copy_(part)
            check(site, slot, dst, 0)
            return
        if part.dtype in _NUMPY_DTYPES:
            part = part.detach().numpy()
        for b, k in enumerate(counts):
            if isinstance(part, np.ndarray):
                np.copyto(target[rows[b], :k], part[b, :k])
            else:
                torch.from_numpy(target[rows[b], :k]).copy_(part[b, :k])
            check(site, slot, target[rows[b], :k][None], b)

    input_ids = torch.as_tensor(ids, device=device)
    mask = None
    if (lengths + offset < width).any():
        mask = torch.as_tensor(np.arange(width)[None, :] < (lengths + offset)[:, None], device=device).long()
    forward = {"input_ids": input_ids, "attention_mask": mask, "use_cache": False}
    logit_pos = gather  # where each kept position sits on the logits' sequence axis
    if not all_kept and _takes_logits_to_keep(model.hf):
        # The LM head (vocab x d_model per token) runs only where a loss is recorded.
        keep = np.unique(gather)
        forward["logits_to_keep"] = torch.as_tensor(keep)  # CPU indices index a tensor on any device
        logit_pos = np.searchsorted(keep, gather)
    with trace(model, plan, on_capture):
        logits = model.hf(**forward).logits

    # Token-level outputs at kept positions: next token, its loss, whether argmax got it.
    nxt = np.full((len(batch), k_max), -1, dtype=np.int64)
    for b, s in enumerate(batch):
        pos = kept[s]
        inside = pos + 1 < lengths[b]
        nxt[b, :len(pos)][inside] = stimuli.ids[s][pos[inside] + 1]
        nxt[b, :len(pos)][~inside] = stimuli.next_ids[s]
    nxt_t = torch.as_tensor(np.maximum(nxt, 0), device=logits.device)
    pos_t = None if all_kept else indices(logits.device, logit_pos)[1]
    loss = np.empty((len(batch), k_max), dtype=np.float32)
    predicted = np.empty((len(batch), k_max), dtype=np.int64)
    for b in range(len(batch)):
        # One sequence at a time, in float32 (no (batch, positions, vocab) log-softmax array).
        row = (logits[b, offset:offset + k_max] if all_kept else logits[b, pos_t[b]]).float()
        loss[b] = (-torch.log_softmax(row, dim=-1).gather(-1, nxt_t[b, :, None])[:, 0]).cpu().numpy()
        predicted[b] = row.argmax(-1).cpu().numpy()
    del logits, row
    cols = chunk.tokens
    for b, s in enumerate(batch):
        k = len(kept[s])
        pos = kept[s]
        known = nxt[b, :k] >= 0
        entries = {
            "sequence": np.full(k, s, dtype=np.int64), "position": pos, "slot": np.arange(k, dtype=np.int64),
            "token_id": stimuli.ids[s][pos], "next_id": nxt[b, :k],
            "loss": np.where(known, loss[b, :k], np.nan).astype(np.float32),
            "correct": (predicted[b, :k] == nxt[b, :k]) & known, "predicted_id": predicted[b, :k],
        }
        for key, value in entries.items():
            cols.setdefault(key, []).append(value)
        _vocab_texts(model, np.concatenate([entries["token_id"], entries["predicted_id"]]), texts)
