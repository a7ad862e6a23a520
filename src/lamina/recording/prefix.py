"""Clean-prefix reuse: an edited pass resumes from the clean pass of the same batch.

An edit of any site of layer l hooks a module inside block l, or block l's input (``hidden[l]``), so
it cannot change what blocks 0..l-1 compute: the residual stream entering block l is the clean one.
:class:`Prefix` keeps each block's output of a clean pass; an edited pass of the same batch whose
earliest edit is at block l then *replays* blocks 0..l-1 (each returns its kept output without
computing) and computes only block l onwards. Embeddings, masks and rotary set-up, the final norm and
the LM head run in every pass: they are the model's own code, left untouched.

:meth:`Prefix.first_block` finds l on the loaded modules rather than trusting the layer number: a
module shared with an earlier block, or a final norm that also runs before the blocks (NanoChat's
normalises the embeddings too), moves the start back.

:func:`sweep` is the loop this is for (a lesion sweep: many edits of the same stimuli): per batch one
clean pass with the outputs kept, then every edited pass with its prefix replayed. A sweep of one
edit at each of L blocks computes (L + 1) / 2 blocks per edited pass on average instead of L.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from .._progress import progress_bar
from ..errors import LaminaError
from ..models.sites import get_module
from .edits import Edit, Editor
from .positions import kept_positions

__all__ = ["Prefix", "sweep"]


def _cloned(output):
    """``output`` (a block's return value) with every tensor copied; None if its type is not a tensor,
    a tuple or a list (then nothing is kept and edited passes run in full)."""
    if isinstance(output, torch.Tensor):
        return output.clone()
    if isinstance(output, (tuple, list)):
        items = [_cloned(x) if isinstance(x, (torch.Tensor, tuple, list)) else x for x in output]
        return None if any(i is None and o is not None for i, o in zip(items, output)) else type(output)(items)
    return None


def _inputs_of(args, kwargs) -> dict:
    """The forward pass's inputs, to tell one batch from another (positional ones by index)."""
    return {**{i: a for i, a in enumerate(args)}, **kwargs}


def _same_inputs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _same(x, y) -> bool:
    """Equal tensors (shape and values), equal plain values; anything else (a cache object) is not."""
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)
    return x is y or (type(x) is type(y) and isinstance(x, (bool, int, float, str)) and x == y)


class Prefix:
    """Each block's output of one clean forward pass of ``model``, to resume edited passes of the same
    inputs from (:meth:`caching`, then :meth:`resumed`).

    The outputs are kept as HF returns them (a tensor or a tuple), copied when the block returns: the
    model may change a tensor in place after the block that made it (the copy costs one block output
    per block, n_layers × tokens × width in all, while the batch is swept). Where a block returns
    anything else, or is not called exactly once per pass, nothing is kept and :meth:`resumed` runs the
    full pass (correct, only slower).
    """

    def __init__(self, model):
        self.model = model
        self.blocks = list(get_module(model.hf, model.adapter.layers))
        self.final_norm = get_module(model.hf, model.adapter.final_norm)
        # module -> the first block that holds it (a block holds itself: hidden[l] hooks block l's input)
        self.owner = {id(m): i for i in reversed(range(len(self.blocks))) for m in self.blocks[i].modules()}
        self.outputs: list | None = None
        self.inputs: dict | None = None
        self.norm_start = 0  # blocks that had returned when the final norm first ran (kept pass)

    @property
    def usable(self) -> bool:
        return self.outputs is not None

    def first_block(self, editor: Editor) -> int:
        """The earliest block whose computation ``editor``'s edits can change: blocks before it compute
        what the clean pass computed. ``n_layers`` where no edit changes a block's input (an edit of
        the final norm's output that runs after every block, or no edit)."""
        return min((self._first(b.tap) for b in editor.bound), default=len(self.blocks))

    def _first(self, tap) -> int:
        modules = [tap.module] if tap.partner is None else [tap.module, tap.partner]
        blocks = [self.owner.get(id(m)) for m in modules]
        if None not in blocks:
            return min(blocks)
        # Outside every block: the final norm (hidden[n_layers]) starts where the kept pass first ran it.
        return self.norm_start if tap.module is self.final_norm and tap.partner is None else 0

    @contextmanager
    def caching(self):
        """Keep the block outputs (and the inputs) of the forward pass run inside the block; a second
        pass inside it replaces them."""
        self.outputs, self.inputs = None, None
        kept, calls, seen = [None] * len(self.blocks), [0] * len(self.blocks), {}

        def on_norm(_module, _args):
            seen.setdefault("norm", sum(calls))

        def on_call(_module, args, kwargs):
            seen.pop("norm", None)
            seen["inputs"] = {k: v.clone() if isinstance(v, torch.Tensor) else v
                              for k, v in _inputs_of(args, kwargs).items()}
            kept[:] = [None] * len(self.blocks)
            calls[:] = [0] * len(self.blocks)

        def keep(i):
            def hook(_module, _args, output):
                calls[i] += 1
                kept[i] = _cloned(output)
            return hook

        handles = [self.model.hf.register_forward_pre_hook(on_call, with_kwargs=True)]
        handles += [block.register_forward_hook(keep(i)) for i, block in enumerate(self.blocks)]
        handles.append(self.final_norm.register_forward_pre_hook(on_norm))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
        if "inputs" in seen and all(c == 1 for c in calls) and all(k is not None for k in kept):
            self.outputs, self.inputs, self.norm_start = kept, seen["inputs"], seen.get("norm", 0)

    @contextmanager
    def resumed(self, start: int):
        """Inside the block, forward passes replay blocks ``0 .. start-1`` from the kept outputs and
        compute from block ``start`` on. Refused (LaminaError) for a pass with other inputs than the
        kept one; with nothing kept (:attr:`usable` false) or ``start`` 0, passes run in full."""
        start = int(start)
        if not 0 <= start <= len(self.blocks):
            raise LaminaError(f"a prefix resumes at a block 0..{len(self.blocks)}, not {start}.")
        if not self.usable or start == 0:
            yield self
            return

        def check(_module, args, kwargs):
            if not _same_inputs(_inputs_of(args, kwargs), self.inputs):
                raise LaminaError("a clean prefix is replayed only for the inputs it was kept from; this forward "
                                  "pass has other inputs (another batch?).")

        def replay(i):
            # A copy every time: the model, or block `start`, may change its input in place.
            return lambda *_args, **_kwargs: _cloned(self.outputs[i])

        handle = self.model.hf.register_forward_pre_hook(check, with_kwargs=True)
        # An instance attribute shadows the class's forward; one set before (accelerate's device hooks
        # wrap forward that way) is put back after.
        saved = [block.__dict__.get("forward") for block in self.blocks[:start]]
        try:
            for i, block in enumerate(self.blocks[:start]):
                block.forward = replay(i)
            yield self
        finally:
            handle.remove()
            for block, before in zip(self.blocks[:start], saved):
                if before is None:
                    del block.forward
                else:
                    block.forward = before

    def clear(self) -> None:
        self.outputs, self.inputs, self.norm_start = None, None, 0


def sweep(model, stimuli, edit_sets, *, batch_size: int = 8, progress: bool | None = None,
          reference_sites=None, reference_layers=None) -> list[dict]:
    """The clean run and one edited run per entry of ``edit_sets`` (each a list of :mod:`lamina.edits`),
    token outputs only, every position: what ``lamina.record(model, stimuli, sites=["loss"],
    batch_size=batch_size, edits=edit_set)`` gives, computed batch by batch with the clean prefix reused.

    ``reference_sites`` (and ``reference_layers``, as :func:`lamina.record`'s ``layers``): sites to
    record in the clean passes, for edits that draw on the clean run (a mean or resample ablation's
    reference). ``edit_sets`` is then a function of that clean :class:`Recording` (float32, every
    position, with the loss) that returns the edit sets: the reference costs no pass of its own. The
    clean passes of every batch run first; the last batch's blocks are still kept when its edited
    passes start, the other batches' clean passes run again (their blocks are not all kept at once).

    Returns one dict of token columns per run, the clean run first: ``sequence``, ``position``, ``slot``,
    ``token_id``, ``next_id``, ``loss`` (NaN where ``next_id`` is -1), ``correct``, ``predicted_id``, in
    (sequence, position) order, as in a recording's token table. Memory beyond ``record``'s: one
    batch's block outputs (n_layers × batch tokens × width), and the reference when one is recorded.
    """
    from .engine import _Chunk, _info, _n_keys, _plan, _run_batch, check_stimuli, in_memory  # record's batch pass

    if not hasattr(model, "adapter"):
        raise LaminaError("sweep() needs a lamina Model; get one with lamina.load(...) or lamina.wrap(hf, tok).")
    if not hasattr(stimuli, "ids"):
        raise LaminaError("sweep() needs a lamina Stimuli; build one with a lamina.stimuli builder.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LaminaError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if (reference_sites is None) == callable(edit_sets):
        raise LaminaError("sweep(): edit_sets is a function of the clean recording exactly when reference_sites "
                          "names what to record for it; give both or neither.")
    check_stimuli(model, stimuli)
    plan = {} if reference_sites is None else _plan(model, reference_sites, reference_layers)
    lengths = stimuli.lengths
    kept = kept_positions("all", lengths)
    n_slots = np.array([len(k) for k in kept])
    seqs = np.arange(len(stimuli))
    order = seqs[np.argsort(-lengths, kind="stable")]  # longest first, as record batches
    offset, texts, prefix = int(model.prepend_bos), {}, Prefix(model)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def chunk():  # a run's token columns (it keeps no site)
        return _Chunk(model, {}, seqs, n_slots, int(n_slots.max()), np.float32, _n_keys(stimuli, model))

    def editors_of(sets):
        sets = [[s] if isinstance(s, Edit) else s for s in sets]
        return [Editor(model, s, lengths) for s in sets]  # every edit checked before any edited pass

    clean = in_memory(model, stimuli, plan, n_slots, "float32", batch_size, True)  # the reference, planned as record's
    n_passes = len(batches) * 2 - 1 if plan else len(batches)
    editors = None if plan else editors_of(edit_sets)
    bar = progress_bar(total=n_passes + len(batches) * (len(editors) if editors is not None else 0),
                       desc="sweep", unit="pass", progress=progress)

    def run(into, batch, plan_=None):
        _run_batch(model, stimuli, plan_ or {}, kept, into, batch, list(batch), offset, model.device, texts, True)
        bar.update(1)

    with torch.inference_mode():
        if plan:  # the reference first: every batch's clean pass records it; the last one stays kept
            for batch in batches:
                with prefix.caching():
                    run(clean, batch, plan)
            reference = clean.recording(stimuli, dict(texts), _info(model, stimuli, plan, "all", "float32", True))
            editors = editors_of(edit_sets(reference))
            done = bar.n  # reset, not total +=: a notebook bar's widget takes its length from reset
            bar.reset(total=bar.total + len(batches) * len(editors))
            bar.update(done)
            batches = batches[::-1]
        edited = [chunk() for _ in editors]
        for j, batch in enumerate(batches):
            if not (plan and j == 0):  # with a reference, the last batch's blocks are still kept
                with prefix.caching():
                    run(chunk() if plan else clean, batch)
            for editor, into in zip(editors, edited):
                with editor.applied(batch, offset), prefix.resumed(prefix.first_block(editor)):
                    run(into, batch)
                editor.release()  # one editor's source values in memory at a time, not every editor's
            prefix.clear()
    bar.close()
    return [c.token_columns() for c in (clean, *edited)]
