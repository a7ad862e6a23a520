"""``lamina.record``: run stimuli through a model in batches and keep what was asked for."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..errors import LaminaError
from ..models.fingerprint import weights_sha256
from ..models.sites import check_layers, split_sites
from . import store
from .hooks import trace
from .positions import describe, kept_positions
from .recording import Recording, token_table

STORE_DTYPES = {"float32": np.float32, "float16": np.float16}


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

    def __init__(self, model, plan, seqs: np.ndarray, n_slots_max: int, dtype):
        self.seqs = seqs
        self.acts = {site: np.full((len(layers), len(seqs), n_slots_max, model.width(site)), np.nan, dtype=dtype)
                     for site, layers in plan.items()}
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
           progress: bool | None = None) -> Recording:
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
        chunk = _Chunk(model, plan, np.arange(n), int(n_slots.max()), np_dtype)
        texts: dict[int, str] = {}
        _run(model, stimuli, plan, kept, chunk, batch_size, progress, texts, total=n)
        info = _info(model, stimuli, plan, positions, dtype)
        return Recording(layers=plan, tokens=token_table(chunk.token_columns(), texts), meta=stimuli.meta,
                         n_slots=n_slots, info=info, arrays=chunk.acts)

    return _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, Path(out),
                           overwrite, shard_size, progress)


def _info(model, stimuli, plan, positions, dtype) -> dict:
    return {"lamina": __version__, "model": model.name, "family": model.adapter.family, "source": model.source,
            "n_layers": model.n_layers, "prepend_bos": model.prepend_bos,
            "bos_id": model.bos_id if model.prepend_bos else None, "n_sequences": len(stimuli),
            "stimuli_fingerprint": stimuli.fingerprint(), "notes": list(stimuli.notes),
            "positions": describe(positions), "dtype": dtype, "device": str(model.device),
            "torch": torch.__version__}


def _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out: Path,
                    overwrite, shard_size, progress) -> Recording:
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
    for k in todo:
        seqs = np.arange(k * shard_size, min(n, (k + 1) * shard_size))
        chunk = _Chunk(model, plan, seqs, int(n_slots.max()), STORE_DTYPES[dtype])
        texts: dict[int, str] = {}
        _run(model, stimuli, plan, kept, chunk, batch_size, False, texts, bar=bar)
        entry = store.write_shard(out, k, chunk.acts, chunk.token_columns(), texts)
        entry.update(start=int(seqs[0]), stop=int(seqs[-1]) + 1)
        manifest["shards"] = sorted(manifest["shards"] + [entry], key=lambda e: e["index"])
        store.write_json(out / "manifest.json", manifest)
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
    k_max = max(len(kept[s]) for s in batch)
    gather = np.zeros((len(batch), k_max), dtype=np.int64)
    for b, s in enumerate(batch):
        gather[b, :len(kept[s])] = kept[s] + offset
        gather[b, len(kept[s]):] = kept[s][0] + offset
    # Index tensors on each device that tensors arrive from (layers may sit on several devices).
    index_cache = {}

    def indices(on: torch.device):
        if on not in index_cache:
            index_cache[on] = (torch.arange(len(batch), device=on)[:, None], torch.as_tensor(gather, device=on))
        return index_cache[on]

    all_kept = all(len(kept[s]) == lengths[b] for b, s in enumerate(batch))
    targets = {key: torch.from_numpy(chunk.acts[key[0]][key[1]])
               for key in ((site, slot) for site, layers in plan.items() for slot in range(len(layers)))}
    counts = [len(kept[s]) for s in batch]

    def on_capture(site, slot, tensor):
        # Keep only the recorded positions and copy them once, straight into the buffer
        # (never a view: the model may reuse its own tensor).
        part = tensor[:, offset:] if all_kept else tensor[indices(tensor.device)]
        target = targets[(site, slot)]
        for b, k in enumerate(counts):
            target[rows[b], :k].copy_(part[b, :k])

    input_ids = torch.as_tensor(ids, device=device)
    mask = None
    if (lengths + offset < width).any():
        mask = torch.as_tensor(np.arange(width)[None, :] < (lengths + offset)[:, None], device=device).long()
    with trace(model, plan, on_capture):
        logits = model.hf(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    for (site, slot), target in targets.items():
        for b, s in enumerate(batch):
            if not np.isfinite(chunk.acts[site][slot][rows[b], :counts[b]]).all():
                raise LaminaError(
                    f"non-finite values (NaN or inf) at site {site!r}, layer {plan[site][slot]}, sequence {s}; "
                    "with float16 this is usually overflow: load the model in float32 or bfloat16.")

    # Token-level outputs at kept positions: next token, its loss, whether argmax got it.
    kept_logits = logits[indices(logits.device)].float()
    logprobs = torch.log_softmax(kept_logits, dim=-1)
    predicted = kept_logits.argmax(-1).cpu().numpy()
    nxt = np.full((len(batch), k_max), -1, dtype=np.int64)
    for b, s in enumerate(batch):
        pos = kept[s]
        inside = pos + 1 < lengths[b]
        nxt[b, :len(pos)][inside] = stimuli.ids[s][pos[inside] + 1]
        nxt[b, :len(pos)][~inside] = stimuli.next_ids[s]
    nxt_t = torch.as_tensor(np.maximum(nxt, 0), device=logits.device)
    loss = (-logprobs.gather(-1, nxt_t[..., None])[..., 0]).cpu().numpy()
    del logits, kept_logits, logprobs
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
