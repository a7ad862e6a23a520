"""``lamina.record``: run stimuli through a model in batches and keep what was asked for."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
import weakref
from pathlib import Path

import numpy as np
import torch

from .._progress import progress_bar
from .._version import __version__
from ..errors import LaminaError, check_output_dir, one_line
from ..models.fingerprint import weights_sha256
from ..models.sites import SITES, TOKEN_SITES, check_layers, split_sites
from ..models.tap import site_hook, tap
from ..stimuli.base import filled
from . import pool, store
from .capture import Capture, forward
from .edits import Editor
from .memory import check_fits, site_bytes
from .positions import BOS_POSITION, describe, kept_positions
from .recording import Recording, TokenColumns

#: Storage dtypes. bfloat16 (float32's range in half the bytes) is held as its raw bits in uint16
#: buffers (NumPy has no bfloat16) and read back as float32.
STORE_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
_NAN_BITS = {np.dtype(np.uint16): 0x7FC0}  # bfloat16's quiet NaN


def _plan(model, sites, layers) -> dict[str, list[int]]:
    names = split_sites(sites)
    for name in names:  # a site this model does not define (or whose self-check failed) is refused by name
        site_hook(model.adapter, name)
    if isinstance(layers, dict):
        unknown = set(layers) - set(names)
        if unknown:
            raise LaminaError(f"layers given for sites that are not recorded: {sorted(unknown)}.")
        return {s: check_layers(s, layers.get(s), model.n_layers) for s in names}
    return {s: check_layers(s, layers, model.n_layers) for s in names}


def _shapes(model, plan, n_slots_max: int, n_keys: int) -> dict[str, tuple[int, ...]]:
    """Each site's axes after ``(layer, sequence)`` (see :meth:`Model.site_shape`); ``n_keys`` is the
    recording's longest sequence on the model's axis (BOS included), the key axis of ``attn.pattern``."""
    return {site: model.site_shape(site, n_slots_max, n_keys) for site in plan}


def _n_keys(stimuli, model) -> int:
    return int(stimuli.lengths.max()) + int(model.prepend_bos)


class _Chunk:
    """Buffers for a range of sequences (one shard, or the whole recording in memory)."""

    def __init__(self, model, plan, seqs: np.ndarray, n_slots: np.ndarray, n_slots_max: int, dtype,
                 n_keys: int | None = None, shard: bool = False):
        # n_keys: the key axis of attn.pattern (see _n_keys); shard: the buffers live until written to disk, so
        # any larger kept buffer serves them (a recording's last, smaller shard reuses the others' buffer).
        self.seqs, self.plan, self.n_slots = seqs, plan, n_slots
        # Every recorded slot is written by a hook, so only the padded slots need their NaN (np.full
        # wrote the whole buffer twice). The memory comes from the pool (recording/pool.py): a recycled
        # buffer, or torch's allocator in ordinary pages (NumPy advises transparent huge pages for large
        # arrays, and first touching those cost up to 3x more than the copy itself on the benchmark VM).
        dtype = np.dtype(dtype)
        try:
            shapes = _shapes(model, plan, n_slots_max, n_keys)
            self.acts = pool.arrays({site: (len(layers), len(seqs), *shapes[site]) for site, layers in plan.items()},
                                    dtype, slack=np.inf if shard else pool.SLACK)
        except (RuntimeError, MemoryError) as err:  # the plan fitted, yet the allocator said no
            raise LaminaError(f"could not allocate the recording's buffers ({one_line(err)}); record with "
                              "out=DIR, fewer layers, positions or sites, or a 16-bit dtype.") from None
        for i in np.flatnonzero(n_slots < n_slots_max):
            for site, array in self.acts.items():  # the slot axis: after the head axis for attn.pattern
                before = (slice(None),) * (SITES[site].slot_axis - 1)
                array[(slice(None), i, *before, slice(n_slots[i], None))] = _NAN_BITS.get(dtype, np.nan)
        self.tokens: dict[str, list[np.ndarray]] = {}

    def recording(self, stimuli, texts: dict[int, str], info: dict) -> Recording:
        """The in-memory Recording of this chunk's buffers (the chunk must hold every sequence of ``stimuli``);
        its token table is built when first read."""
        return Recording(layers=self.plan, tokens=TokenColumns(self.token_columns(), texts), meta=stimuli.meta,
                         n_slots=self.n_slots, info=info, arrays=self.acts)

    def token_columns(self) -> dict[str, np.ndarray]:
        """Token columns in (sequence, slot) order: batches run longest-first, rows must not."""
        cols = {k: np.concatenate(v) for k, v in self.tokens.items()}
        order = np.lexsort((cols["slot"], cols["sequence"]))
        return {k: v[order] for k, v in cols.items()}


def in_memory(model, stimuli, plan, n_slots: np.ndarray, dtype: str, batch_size: int, loss: bool) -> _Chunk:
    """The buffers of a recording of every sequence of ``stimuli`` held in memory, once its plan is known to fit
    (:func:`lamina.recording.memory.check_fits`: else a LaminaError with the numbers and the ways out).
    ``dtype``: a storage dtype's name (:data:`STORE_DTYPES`)."""
    n_keys, offset = _n_keys(stimuli, model), int(model.prepend_bos)
    np_dtype = STORE_DTYPES[dtype]
    check_fits(stored=site_bytes(plan, _shapes(model, plan, int(n_slots.max()), n_keys), len(stimuli), np_dtype),
               working=_forward_bytes(model, stimuli.lengths, offset, batch_size, loss),
               attention=_attention_bytes(model, plan, stimuli.lengths, offset, batch_size), dtype=dtype)
    return _Chunk(model, plan, np.arange(len(stimuli)), n_slots, int(n_slots.max()), np_dtype, n_keys)


def _fingerprint(model, stimuli, plan, positions, dtype, shard_size, loss: bool, edits=None,
                 keep_bos: bool = False) -> str:
    # The weights identify the model (a name does not: two wraps of one model may be named differently).
    key = {"weights": weights_sha256(model) or model.name,
           "prepend_bos": model.prepend_bos, "bos_id": model.bos_id if model.prepend_bos else None,
           "stimuli": stimuli.fingerprint(), "plan": plan,
           "positions": describe(positions), "dtype": dtype, "shard_size": shard_size}
    if not loss:  # only then: recordings made before loss= existed keep their fingerprint and resume
        key["loss"] = False
    if edits:  # likewise: an unedited recording keeps its fingerprint
        key["edits"] = edits
    if keep_bos:
        key["keep_bos"] = True
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def record(model, stimuli, sites=("hidden",), *, layers=None, positions="all", dtype="float32",
           batch_size: int = 8, out=None, overwrite: bool = False, shard_size: int | None = None,
           progress: bool | None = None, backend: str = "local", workers: int | None = None,
           ray_address: str | None = None, loss: bool = True, edits=None, keep_bos: bool = False) -> Recording:
    """Record activations at ``sites`` and, unless ``loss=False``, per-token loss for every stimulus sequence.

    Args:
        model: a lamina ``Model`` (from :func:`lamina.load` or :func:`lamina.wrap`).
        stimuli: a :class:`lamina.Stimuli` (token ids, metadata, next ids).
        sites: canonical site names (see ``lamina sites MODEL``). ``loss``, ``correct`` and
            ``predicted`` may be listed; they are in the token table whenever ``loss`` is True.
            ``[]`` (or only those three) with ``loss=True``: a loss-only recording, the token table
            and no activations; ``[]`` with ``loss=False`` is an error (nothing to record).
        layers: None (all), an int, a list of ints, or a dict site -> selection.
            Negative indices count from the end (``hidden`` has n_layers + 1 entries).
        positions: ``"all"``, ``"last"``, an int, or one index (or list) per sequence.
        dtype: storage dtype: ``"float32"``, ``"bfloat16"`` (float32's range, 8 bits of mantissa;
            read back as float32) or ``"float16"`` (overflows above 65,504: Gemma-3's residual
            stream exceeds it). A 16-bit value that overflows is an error naming the site,
            layer, sequence and position; nothing non-finite is ever stored.
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
        loss: compute the token-level outputs (``loss``, ``correct``, ``predicted``) from the LM
            head. ``False``: the LM head never runs and each forward pass stops right after the
            last module it records (the final norm runs only for ``hidden``'s last entry), with
            the same activations bit for bit; the token table then holds ids and positions only
            (sequence, position, slot, token_id, token, next_id).
        edits: interventions applied during every forward pass (``lamina.edits.zero``, ``mean``,
            ``resample``, ``patch``, ``add``, ``scale``): the recording, loss included, is the
            edited run's. Each edit's ``positions`` are kept positions like ``positions``'s; only real
            (unpadded) tokens are edited, never a BOS lamina feeds. See docs/sites.md, "Editing a site".
        keep_bos: also record the BOS token lamina feeds in front of every sequence (attention sinks and
            massive activations live there): it becomes slot 0 of every site, and its token-table row has
            ``position`` −1 and ``bos`` True (its ``loss`` is that of the stimulus' first token). Only for
            models that get a BOS (``model.prepend_bos``); the forward pass is the same either way.

    Returns:
        A :class:`Recording` with arrays of shape ``(layer, sequence, slot, width)``; ``attn.heads``:
        ``(layer, sequence, slot, head, d_model)``; ``attn.pattern``: ``(layer, sequence, head, slot, key)``,
        queries at the kept positions and one key per model position of the longest sequence (BOS first
        when it is fed; keys a sequence does not have hold 0). See docs/sites.md.
    """
    if not hasattr(model, "adapter"):
        raise LaminaError("record() needs a lamina Model; get one with lamina.load(...) or lamina.wrap(hf, tok).")
    if not hasattr(stimuli, "ids"):
        raise LaminaError("record() needs a lamina Stimuli; build one with a lamina.stimuli builder.")
    if not isinstance(dtype, str) or dtype not in STORE_DTYPES:
        raise LaminaError(f"dtype must be one of {', '.join(STORE_DTYPES)}, not {dtype!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LaminaError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if backend not in ("local", "ray"):
        raise LaminaError(f"backend must be 'local' or 'ray', not {backend!r}.")
    if backend == "ray" and out is None:
        raise LaminaError("backend='ray' writes shards from several processes: give a directory with out=.")
    if not isinstance(loss, bool):
        raise LaminaError(f"loss must be True or False, not {loss!r}.")
    if not isinstance(overwrite, bool):
        raise LaminaError(f"overwrite must be True or False, not {overwrite!r}.")
    if shard_size is not None and (isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1):
        raise LaminaError(f"shard_size must be a positive integer (sequences per shard), not {shard_size!r}.")
    if out is not None:
        out = check_output_dir(out, "out")
    if _no_sites(sites):  # sites=[]: the loss alone, when there is a loss to record
        if not loss:
            raise LaminaError("nothing to record: sites=[] with loss=False asks for neither activations nor the "
                              "loss; name a site (e.g. sites=['hidden']) or record the loss alone with loss=True.")
        sites = ["loss"]
    split_sites(sites)  # names and form first: a clear error for anything that is not a list of sites
    asked = [s for s in ([sites] if isinstance(sites, str) else sites) if s in TOKEN_SITES]
    if asked and not loss:
        raise LaminaError(f"sites lists {', '.join(map(repr, asked))}, which come from the LM head; drop "
                          "them or record with loss=True.")
    plan = _plan(model, sites, layers)
    lengths = stimuli.lengths
    editor = Editor(model, edits, lengths) if edits is not None else None  # every edit checked up front
    if editor is not None and not editor.bound:
        editor = None
    edits = None if editor is None else editor.edits
    check_stimuli(model, stimuli)
    offset = int(model.prepend_bos)
    kept = kept_positions(positions, lengths)
    if not isinstance(keep_bos, bool):
        raise LaminaError(f"keep_bos must be True or False, not {keep_bos!r}.")
    if keep_bos:
        if not offset:
            raise LaminaError(f"keep_bos=True: {model.name} gets no BOS token in front of its sequences "
                              "(prepend_bos is False), so there is no BOS position to keep.")
        kept = [np.concatenate([[BOS_POSITION], k]) for k in kept]  # stimulus position -1: the model's 0
    n_slots = np.array([len(k) for k in kept])

    if out is None:
        chunk = in_memory(model, stimuli, plan, n_slots, dtype, batch_size, loss)
        texts: dict[int, str] = {}
        _run(model, stimuli, plan, kept, chunk, batch_size, progress, texts, loss, total=len(stimuli), editor=editor)
        return chunk.recording(stimuli, texts, _info(model, stimuli, plan, positions, dtype, loss, editor, keep_bos))

    return _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out,
                           overwrite, shard_size, progress, loss, backend, workers, ray_address, edits, editor,
                           keep_bos)


def _no_sites(sites) -> bool:
    """Whether ``sites`` is an empty list or tuple (a loss-only recording when ``loss=True``)."""
    return isinstance(sites, (list, tuple)) and len(sites) == 0


def check_stimuli(model, stimuli) -> None:
    """One-line errors for stimuli the model cannot run: too long for its context, or token ids
    outside its vocabulary."""
    offset, lengths = int(model.prepend_bos), stimuli.lengths
    if lengths.max() + offset > model.context_length:
        raise LaminaError(f"the longest sequence has {lengths.max()} tokens (+{offset} BOS), more than "
                          f"{model.name}'s context length of {model.context_length}.")
    if (stimuli.next_ids >= model.vocab_size).any() or any((s >= model.vocab_size).any() or (s < 0).any()
                                                         for s in stimuli.ids):
        raise LaminaError(f"the stimuli hold token ids outside {model.name}'s vocabulary (0..{model.vocab_size - 1});"
                          " were they built with another tokenizer?")


def _forward_bytes(model, lengths, offset: int, batch_size: int, loss: bool) -> int:
    """Host memory of one forward pass's largest temporary: a batch of float32 logits (the LM head
    runs only with ``loss``; on an accelerator they live in its memory, not the host's)."""
    if not loss or model.device.type != "cpu":
        return 0
    return min(batch_size, len(lengths)) * (int(lengths.max()) + offset) * model.vocab_size * 4


def _attention_bytes(model, plan, lengths, offset: int, batch_size: int) -> int:
    """Host memory of the attention sites' temporaries at one layer (on the CPU): eager's scores, mask and
    probabilities, ``(batch, head, query, key)`` each, and the batch's positions split by head."""
    if model.device.type != "cpu" or not {"attn.pattern", "attn.heads"} & set(plan):
        return 0
    batch, length = min(batch_size, len(lengths)), int(lengths.max()) + offset
    item = torch.finfo(model.dtype).bits // 8
    probabilities = 3 * batch * model.n_heads * length * length * item if "attn.pattern" in plan else 0
    heads = batch * length * model.n_heads * model.d_model * item if "attn.heads" in plan else 0
    return probabilities + heads


def _info(model, stimuli, plan, positions, dtype, loss, editor=None, keep_bos: bool = False) -> dict:
    info = {"lamina": __version__, "model": model.name, "family": model.adapter.family, "source": model.source,
            "n_layers": model.n_layers, "prepend_bos": model.prepend_bos,
            "bos_id": model.bos_id if model.prepend_bos else None, "n_sequences": len(stimuli),
            "stimuli_fingerprint": stimuli.fingerprint(), "notes": list(stimuli.notes),
            "positions": describe(positions), "dtype": dtype, "loss": loss, "device": str(model.device),
            "torch": torch.__version__}
    if editor is not None:
        info["edits"] = editor.describe()
    if keep_bos:
        info["keep_bos"] = True
    return info


def record_shard(model, k: int, *, stimuli, plan, kept, n_slots, dtype, batch_size, out, shard_size, loss=True,
                 bar=None, edits=None, editor=None) -> dict:
    """Record shard ``k`` (sequences ``k*shard_size ..``) and write it; returns its manifest entry.

    The unit of work of both backends: the local loop calls it in turn, Ray workers in parallel.
    """
    n = len(stimuli)
    seqs = np.arange(k * shard_size, min(n, (k + 1) * shard_size))
    chunk = _Chunk(model, plan, seqs, n_slots[seqs], int(n_slots.max()), STORE_DTYPES[dtype], _n_keys(stimuli, model),
                   shard=True)
    texts: dict[int, str] = {}
    if edits and editor is None:  # a Ray worker binds the edits to its own copy of the model
        editor = Editor(model, edits, stimuli.lengths)
    _run(model, stimuli, plan, kept, chunk, batch_size, False, texts, loss, bar=bar, editor=editor)
    entry = store.write_shard(Path(out), k, chunk.acts, chunk.token_columns(), texts)
    entry.update(start=int(seqs[0]), stop=int(seqs[-1]) + 1)
    return entry


def _record_to_disk(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out: Path,
                    overwrite, shard_size, progress, loss, backend="local", workers=None, ray_address=None,
                    edits=None, editor=None, keep_bos=False) -> Recording:
    with store.writer_lock(out):
        return _record_locked(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out,
                              overwrite, shard_size, progress, loss, backend, workers, ray_address, edits, editor,
                              keep_bos)


def _record_locked(model, stimuli, plan, kept, n_slots, positions, dtype, batch_size, out: Path,
                   overwrite, shard_size, progress, loss, backend, workers, ray_address, edits=None,
                   editor=None, keep_bos=False) -> Recording:
    n = len(stimuli)
    shapes = _shapes(model, plan, int(n_slots.max()), _n_keys(stimuli, model))
    if shard_size is None:
        bytes_per_seq = sum(site_bytes(plan, shapes, 1, STORE_DTYPES[dtype]).values())
        shard_size = max(batch_size, min(n, (256 << 20) // max(bytes_per_seq, 1) // batch_size * batch_size))
    # One shard's buffers are in memory at a time (Ray: one per worker, each in its own process).
    offset = int(model.prepend_bos)
    check_fits(stored=site_bytes(plan, shapes, min(n, shard_size), STORE_DTYPES[dtype]),
               working=_forward_bytes(model, stimuli.lengths, offset, batch_size, loss),
               attention=_attention_bytes(model, plan, stimuli.lengths, offset, batch_size),
               what=f"one shard of {min(n, shard_size)} sequences", dtype=dtype, streaming=True)
    fingerprint = _fingerprint(model, stimuli, plan, positions, dtype, shard_size, loss,
                               editor.describe() if editor is not None else None, keep_bos)
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
                    "sites": {s: _manifest_site(s, l, shapes[s]) for s, l in plan.items()},
                    "info": _info(model, stimuli, plan, positions, dtype, loss, editor, keep_bos), "shards": []}
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
    bar = progress_bar(total=n, initial=n - sum(min(shard_size, n - k * shard_size) for k in todo),
                       desc="recording", unit="seq", progress=progress)
    started = time.perf_counter()
    job = dict(stimuli=stimuli, plan=plan, kept=kept, n_slots=n_slots, dtype=dtype, batch_size=batch_size,
               out=str(out), shard_size=shard_size, loss=loss, edits=edits)

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
            finished(record_shard(model, k, bar=bar, editor=editor, **job))
    bar.close()
    manifest["complete"] = True
    manifest["info"]["seconds"] = round(time.perf_counter() - started, 3)
    store.write_json(out / "manifest.json", manifest)
    return Recording.load(out)


def _manifest_site(site: str, layers: list[int], shape: tuple[int, ...]) -> dict:
    """A site's manifest entry: its layers and width (the last axis), and its per-sequence axes where they
    are not ``(slot, width)`` (the attention sites), so a recording written before them reads unchanged."""
    entry = {"layers": layers, "width": int(shape[-1])}
    if SITES[site].axes != ("slot", "width"):
        entry["shape"] = [int(n) for n in shape]
    return entry


#: Each tokenizer's decoded tokens, id -> text, kept across recordings (decoding a batch's 1,000 ids one
#: by one cost 7 ms, 3% of an 8 x 128-token pass through six of SmolLM2's blocks).
_DECODED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _vocab_texts(model, ids: np.ndarray, texts: dict[int, str]) -> None:
    tokenizer = model.tokenizer
    try:
        decoded = _DECODED.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that takes no weak reference: decoded afresh for each recording
        decoded = {}
    new = [i for i in np.unique(ids).tolist() if i >= 0 and i not in texts]
    missing = [i for i in new if i not in decoded]
    if missing:
        batch = getattr(tokenizer, "batch_decode", None)
        decoded.update(zip(missing, batch([[i] for i in missing]) if batch is not None
                           else [tokenizer.decode([i]) for i in missing]))
    texts.update((i, decoded[i]) for i in new)


def _run(model, stimuli, plan, kept, chunk: _Chunk, batch_size, progress, texts, loss, total=None, bar=None,
         editor=None):
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
        bar = progress_bar(total=total, desc="recording", unit="seq", progress=progress)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if editor is None:
                _run_batch(model, stimuli, plan, kept, chunk, batch, [local[int(s)] for s in batch], offset, device,
                           texts, loss)
            else:  # the edits' hooks run before the recording's on every module they share
                with editor.applied(batch, offset):
                    _run_batch(model, stimuli, plan, kept, chunk, batch, [local[int(s)] for s in batch], offset,
                               device, texts, loss)
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


def _inputs(model, stimuli, batch, offset: int, device) -> dict:
    """The forward pass's keyword arguments: ids (BOS first when the model's policy says so), padded."""
    lengths = stimuli.lengths[batch]
    width = int(lengths.max()) + offset
    ids = np.zeros((len(batch), width), dtype=np.int64)
    if offset:
        ids[:, 0] = model.bos_id
    for b, s in enumerate(batch):
        ids[b, offset:offset + lengths[b]] = stimuli.ids[s]
    mask = None
    if (lengths + offset < width).any():
        mask = torch.as_tensor(np.arange(width)[None, :] < (lengths + offset)[:, None], device=device).long()
    return {"input_ids": torch.as_tensor(ids, device=device), "attention_mask": mask, "use_cache": False}


def _next_ids(stimuli, batch, kept, k_max: int) -> np.ndarray:
    """Shape ``(batch, k_max)``: the token after each kept position (-1: unknown or padded slot)."""
    nxt = np.full((len(batch), k_max), -1, dtype=np.int64)
    for b, s in enumerate(batch):
        pos = kept[s]
        inside = pos + 1 < stimuli.lengths[s]
        nxt[b, :len(pos)][inside] = stimuli.ids[s][pos[inside] + 1]
        nxt[b, :len(pos)][~inside] = stimuli.next_ids[s]
    return nxt


def _token_outputs(logits, positions, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per kept position: −log p(next token) and the argmax token, both ``(batch, k_max)``.

    ``positions``: where the kept positions sit on the logits' sequence axis, one slice for every
    row or a ``(batch, k_max)`` index tensor.
    """
    nxt_t = torch.as_tensor(np.maximum(nxt, 0), device=logits.device)
    loss = np.empty(nxt.shape, dtype=np.float32)
    predicted = np.empty(nxt.shape, dtype=np.int64)
    for b in range(len(nxt)):
        # One sequence at a time, in float32 (no (batch, positions, vocab) log-softmax array).
        row = (logits[b, positions] if isinstance(positions, slice) else logits[b, positions[b]]).float()
        loss[b] = (-torch.log_softmax(row, dim=-1).gather(-1, nxt_t[b, :, None])[:, 0]).cpu().numpy()
        # NumPy's argmax is SIMD-vectorised; on the CPU it reads a row of SmolLM2's logits 5x faster
        # than torch's. Both return the first index of the maximum.
        predicted[b] = row.numpy().argmax(-1) if row.device.type == "cpu" else row.argmax(-1).cpu().numpy()
    return loss, predicted


def _head_splits(model, plan) -> dict:
    """``{"attn.heads": [split of each planned layer]}``: applied by the capture to the kept positions only."""
    if "attn.heads" not in plan:
        return {}
    return {"attn.heads": [tap(model.hf, model.adapter, "attn.heads", layer, model.n_layers).split_heads
                           for layer in plan["attn.heads"]]}


def _run_batch(model, stimuli, plan, kept, chunk, batch, rows, offset, device, texts, loss: bool):
    """One forward pass: the hooks fill the buffer rows ``rows`` for the sequences ``batch``; then
    the batch's token rows, with the loss columns when ``loss`` (else the pass stopped early)."""
    inputs = _inputs(model, stimuli, batch, offset, device)
    capture = Capture(chunk.acts, plan, batch, rows, kept, offset, expand=_head_splits(model, plan))
    k_max = max(capture.counts)
    nxt = _next_ids(stimuli, batch, kept, k_max)
    if not loss:
        forward(model, inputs, plan, capture, stop=True)
        _append_tokens(model, stimuli, batch, kept, chunk, texts, nxt)
        return
    all_kept = all(len(kept[s]) == stimuli.lengths[s] for s in batch)
    # Where each kept position sits on the logits' sequence axis, padded by repeating the first.
    logit_pos = np.stack([np.concatenate([p, np.full(k_max - len(p), p[0])]) for p in capture.pos])
    if not all_kept and _takes_logits_to_keep(model.hf):
        # The LM head (vocab x d_model per token) runs only where a loss is recorded.
        keep = np.unique(logit_pos)
        inputs["logits_to_keep"] = torch.as_tensor(keep)  # CPU indices index a tensor on any device
        logit_pos = np.searchsorted(keep, logit_pos)
    logits = forward(model, inputs, plan, capture, stop=False)
    positions = slice(offset, offset + k_max) if all_kept else torch.as_tensor(logit_pos, device=logits.device)
    outputs = _token_outputs(logits, positions, nxt)
    del logits
    _append_tokens(model, stimuli, batch, kept, chunk, texts, nxt, outputs)


def _append_tokens(model, stimuli, batch, kept, chunk, texts, nxt, outputs=None) -> None:
    """Add the batch's token-table rows: ids and positions, and the loss columns when computed."""
    cols = chunk.tokens
    for b, s in enumerate(batch):
        pos = kept[s]
        k = len(pos)
        bos = pos == BOS_POSITION
        entries = {"sequence": np.full(k, s, dtype=np.int64), "position": pos, "slot": np.arange(k, dtype=np.int64),
                   "token_id": np.where(bos, model.bos_id, stimuli.ids[s][pos]), "next_id": nxt[b, :k]}
        if bos.any():  # keep_bos: every sequence has it, so the column is in every row or none
            entries["bos"] = bos
        for name, values in stimuli.token_columns.items():  # the stimuli's own per-token design
            entries[name] = filled(values[s][np.maximum(pos, 0)], bos)
        if outputs is not None:
            loss, predicted = outputs
            known = nxt[b, :k] >= 0
            entries.update(loss=np.where(known, loss[b, :k], np.nan).astype(np.float32),
                           correct=(predicted[b, :k] == nxt[b, :k]) & known, predicted_id=predicted[b, :k])
        for key, value in entries.items():
            cols.setdefault(key, []).append(value)
        ids = entries["token_id"] if outputs is None else np.concatenate([entries["token_id"], entries["predicted_id"]])
        _vocab_texts(model, ids, texts)
