"""A short probe forward pass, and the tensor comparisons that the resolver and self-check share."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from . import tap

PROBE_SHAPE = (2, 6)  # two sequences of six tokens: enough to see every identity, cheap on any model


def input_device(hf) -> torch.device:
    """Where input ids go: the input embeddings' device (meta when offloaded to disk: then the CPU)."""
    device = hf.get_input_embeddings().weight.device
    return torch.device("cpu") if device.type == "meta" else device


def probe_ids(hf) -> torch.Tensor:
    """``(2, 6)`` token ids drawn with a fixed seed from the model's vocabulary."""
    vocab = int(hf.get_input_embeddings().weight.shape[0])
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, PROBE_SHAPE, generator=generator).to(input_device(hf))


def forward(hf, ids, *, logits: bool = True, **kwargs):
    """The model's forward pass on ``ids`` without a cache, as lamina records it (``logits=False``:
    skip the LM head where the model allows, which on a 262k vocabulary is most of the cost)."""
    if not logits:
        import inspect

        try:
            if "logits_to_keep" in inspect.signature(hf.forward).parameters:
                kwargs["logits_to_keep"] = 1
        except (TypeError, ValueError):
            pass
    with torch.inference_mode():
        return hf(input_ids=ids, use_cache=False, **kwargs)


@contextmanager
def capture(hf, points: dict, store: dict):
    """Hook ``points`` (key -> a :class:`~lamina.models.tap.Tap`, or ``(module, "input"|"output")`` for a
    bare point) through the one registrar, :func:`lamina.models.tap.hooks`; each probe forward of ``hf``
    puts a detached copy of the value in ``store[key]`` (a copy: some blocks update tensors in place
    after reading them), read and shaped ``(batch, seq, width)`` exactly as recording reads it."""
    keys = {}
    for key, point in points.items():
        keys[point if isinstance(point, tap.Tap) else tap.Tap.point(*point)] = key

    def on_read(t, tensor):
        store[keys[t]] = tensor

    with tap.hooks(hf, list(keys), on_read, copy=True):
        yield store


def mismatch(value: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(largest absolute difference, that difference relative to the reference's largest magnitude)."""
    value, reference = value.detach().float().cpu(), reference.detach().float().cpu()
    if value.shape != reference.shape:
        return float("inf"), float("inf")
    err = float((value - reference).abs().max()) if value.numel() else 0.0
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    return err, err / max(scale, 1e-12)


def same(value, reference, tol: float = 1e-5) -> bool:
    """Whether two captured tensors hold the same values (the resolver's dataflow test)."""
    if not isinstance(value, torch.Tensor) or not isinstance(reference, torch.Tensor):
        return False
    return mismatch(value, reference)[1] <= tol
