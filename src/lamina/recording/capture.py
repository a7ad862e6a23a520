"""What happens inside a recording's forward pass: hooks copy the kept positions, and the pass
stops once everything asked for is captured."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import LaminaError
from .hooks import trace

#: Storage dtypes by the NumPy dtype of their buffer. NumPy has no bfloat16: its buffers hold the
#: raw 16 bits as uint16 (see :func:`as_torch`, :func:`bf16_to_float32`).
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "uint16": torch.bfloat16}
#: The largest finite value of each 16-bit storage dtype (float32's is never reached by activations).
FINITE_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}


def as_torch(array: np.ndarray) -> torch.Tensor:
    """A storage buffer (or part of one) as a torch tensor sharing its memory, bfloat16 for uint16."""
    if array.dtype == np.uint16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values held as their raw uint16 bits -> float32 (exact: bfloat16 is float32's top half)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def storage_name(array: np.ndarray) -> str:
    return "bfloat16" if array.dtype == np.uint16 else array.dtype.name


class Capture:
    """The hook callback of one batch: copies each captured tensor's kept positions into the buffers.

    Only kept positions are read: the others (padding, BOS, positions not asked for) are never
    copied, converted to the storage dtype, moved off their device or checked for NaN.
    """

    def __init__(self, acts: dict[str, np.ndarray], plan, batch, rows, kept, offset: int, expand=None):
        """
        Args:
            acts: site -> buffer of shape ``(layer, sequence, slot, width)`` (``attn.heads``: ``(layer,
                sequence, slot, head, width)``; ``attn.pattern``: ``(layer, sequence, head, slot, key)``).
            plan: site -> model layers (``slot`` indexes this list).
            batch: the stimulus sequence of each batch row; ``rows``: its row in the buffers.
            kept: per stimulus sequence, the kept positions (stimulus indices, shape ``(k,)``).
            offset: 1 when a BOS token is fed in front of every sequence, else 0.
            expand: site -> one function per planned layer, applied to the kept positions after they
                are selected (``attn.heads``: the split of the output projection's input by head).
        """
        self.acts, self.plan, self.batch, self.rows = acts, plan, batch, rows
        self.offset, self.expand = offset, expand or {}
        self.pos = [kept[s] + offset for s in batch]  # kept positions on the model's sequence axis
        self.counts = [len(p) for p in self.pos]
        self.spans = [span(p) for p in self.pos]
        # Per row, what selects its kept positions on the CPU: a slice (a view) or an index tensor.
        self.selectors = [s if s is not None else torch.as_tensor(p) for s, p in zip(self.spans, self.pos)]
        # Sequences that keep equally many positions (fixed lengths, "last", one index each) into
        # consecutive rows of the buffer are copied as one block per site and layer.
        self.block = len(set(self.counts)) == 1 and list(rows) == list(range(rows[0], rows[0] + len(rows)))
        self.shared = self.spans[0] if self.block and all(s == self.spans[0] for s in self.spans) else None
        self._index: dict = {}

    def __call__(self, site: str, slot: int, tensor: torch.Tensor) -> None:
        # Copied once, straight into the buffer, never kept as a view: the model may reuse its tensor.
        target = self.acts[site][slot]
        if site == "attn.pattern":
            return self._pattern(site, slot, tensor, target)
        expand = self.expand[site][slot] if site in self.expand else None
        if tensor.device.type != "cpu":
            return self._from_device(site, slot, tensor, target, expand)
        if self.block:
            dst = target[self.rows[0]:self.rows[0] + len(self.rows), :self.counts[0]]
            src = tensor[:, self.shared] if self.shared is not None else tensor[self._indices("block", tensor.device)]
            # One copy per site and layer: torch's copy is multi-threaded, and the fresh buffer's
            # pages are first touched here, on every core.
            as_torch(dst).copy_(src if expand is None else expand(src))
            return self._check(site, slot, dst, 0, tensor.dtype)
        for b, row in enumerate(self.rows):
            dst = target[row, :self.counts[b]]
            src = tensor[b, self.selectors[b]]
            copy_rows(dst, src if expand is None else expand(src))
            self._check(site, slot, dst[None], b, tensor.dtype)

    def _pattern(self, site, slot, tensor, target) -> None:
        """``attn.pattern``, ``(batch, head, query, key)``: each row's kept queries, every key of the batch,
        into ``(head, slot, key)``. The buffer's key axis is as long as the recording's longest sequence:
        keys past this batch's width get probability 0, as the padded keys inside it have from the mask."""
        width = tensor.shape[-1]
        for b, row in enumerate(self.rows):
            selector = self.selectors[b]
            if isinstance(selector, torch.Tensor):
                selector = selector.to(tensor.device)
            dst = target[row, :, :self.counts[b]]
            dst[..., width:] = 0
            as_torch(dst[..., :width]).copy_(tensor[b][:, selector])  # converts the dtype, moves to the host
            self._check(site, slot, np.moveaxis(dst, 0, 1)[None], b, tensor.dtype)

    def _from_device(self, site, slot, tensor, target, expand=None) -> None:
        # One transfer per site and layer, of the kept positions only, already in the storage dtype.
        host = tensor[self._indices("flat", tensor.device)]
        host = (host if expand is None else expand(host)).to(TORCH_DTYPES[target.dtype.name]).cpu()
        host = host.view(torch.int16).numpy().view(np.uint16) if target.dtype == np.uint16 else host.numpy()
        if self.block:
            dst = target[self.rows[0]:self.rows[0] + len(self.rows), :self.counts[0]]
            np.copyto(dst, host.reshape(dst.shape))
            return self._check(site, slot, dst, 0, tensor.dtype)
        start = 0
        for b, (row, k) in enumerate(zip(self.rows, self.counts)):
            np.copyto(target[row, :k], host[start:start + k])
            self._check(site, slot, target[row, :k][None], b, tensor.dtype)
            start += k

    def _indices(self, kind: str, device: torch.device):
        """Advanced-indexing tuples selecting the kept positions, on the tensor's device (layers
        may sit on several devices): ``block`` gives (batch, k, width), ``flat`` (kept, width)."""
        key = (kind, device)
        if key not in self._index:
            if kind == "block":
                rows, cols = np.arange(len(self.pos))[:, None], np.stack(self.pos)
            else:
                rows, cols = np.repeat(np.arange(len(self.pos)), self.counts), np.concatenate(self.pos)
            self._index[key] = (torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device))
        return self._index[key]

    def _check(self, site, slot, values: np.ndarray, first_row: int, source_dtype) -> None:
        # Any NaN or inf makes the sum non-finite; a non-finite sum of finite values (overflow) is
        # told apart by the exact test. torch's sum reads the copy once, on every core, in cache.
        stored = as_torch(values)
        if torch.isfinite(stored.sum(dtype=torch.float32)):
            return
        finite = torch.isfinite(stored).numpy()
        if finite.all():
            return
        bad = int(np.flatnonzero(~finite.reshape(len(finite), -1).all(axis=1))[0])
        slot_index = int(np.flatnonzero(~finite[bad].reshape(finite.shape[1], -1).all(axis=1))[0])
        position = int(self.pos[first_row + bad][slot_index]) - self.offset
        where = (f"site {site!r}, layer {self.plan[site][slot]}, sequence {self.batch[first_row + bad]}, "
                 f"position {position}")
        storage = storage_name(values)
        if storage in FINITE_MAX and TORCH_DTYPES[values.dtype.name] != source_dtype and \
                not torch.isnan(stored[bad, slot_index]).any():
            raise LaminaError(f"an activation at {where} exceeds {storage} storage's range (largest finite "
                              f"{FINITE_MAX[storage]:,.0f}); the model's own values are {source_dtype} and were "
                              "finite. Record with dtype='bfloat16' (float32's range in half the bytes) or 'float32'.")
        raise LaminaError(
            f"non-finite values (NaN or inf) in the model's own {source_dtype} activations at {where}; "
            + ("with float16 this is usually overflow: load the model in float32 or bfloat16."
               if source_dtype == torch.float16 else "the model computes them: check its weights and inputs."))


def span(positions: np.ndarray) -> slice | None:
    """``positions`` as a slice when they are consecutive (then read as a view, with no gather)."""
    first, last = int(positions[0]), int(positions[-1])
    return slice(first, last + 1) if last - first + 1 == len(positions) and (np.diff(positions) == 1).all() else None


def copy_rows(dst: np.ndarray, src: torch.Tensor) -> None:
    # Padded batches copy row by row: with numpy on the CPU, one plain memcpy per row with no OpenMP
    # fork/join per slice (torch's copy_ of many small slices cost as much as 40% of a forward pass).
    if src.dtype in (torch.float32, torch.float16) and dst.dtype != np.uint16:
        with np.errstate(over="ignore"):  # float16 storage overflow: named by Capture._check, not warned
            np.copyto(dst, src.numpy())
    else:
        as_torch(dst).copy_(src)


class PlanComplete(BaseException):
    """Raised by the hook that makes a forward pass's last planned capture: nothing after it is read.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` in model or accelerate
    code can swallow it and carry on computing what nobody reads.
    """


def forward(model, inputs: dict, plan, capture, stop: bool):
    """Run the model with ``capture`` hooked at every planned (site, layer); its logits, or None.

    With ``stop`` the pass ends in the hook that makes the last planned capture, whatever order
    the model calls its modules in: later blocks, the final norm (unless ``hidden``'s last entry is
    planned) and the LM head never run. The HF code is not modified.
    """
    pending = {(site, slot) for site, layers in plan.items() for slot in range(len(layers))}

    def on_capture(site, slot, tensor):
        capture(site, slot, tensor)
        pending.discard((site, slot))
        if stop and not pending:
            raise PlanComplete

    logits = None
    try:
        with trace(model, plan, on_capture):
            logits = model.hf(**inputs).logits
    except PlanComplete:
        pass
    if pending:  # its buffer slice would hold whatever the allocator left there
        site, slot = min(pending)
        raise LaminaError(f"{model.name}'s forward pass never ran the module of site {site!r} at layer "
                          f"{plan[site][slot]}; the {model.adapter.family} adapter does not fit this model.")
    return logits
