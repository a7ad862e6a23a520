"""A short probe forward pass, and the tensor comparisons that the resolver and self-check share."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from .sites import as_tokens, hooked_input, hooked_output

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
def capture(points: dict, store: dict):
    """Hook ``points`` (key -> (module, "input"|"output")); each probe forward puts a detached copy of
    the tensor in ``store[key]`` (a copy: some blocks update tensors in place after reading them),
    shaped ``(batch, seq, width)`` like a recorded site."""
    handles = []
    try:
        for key, (module, which) in points.items():
            if which == "input":
                def pre(_m, args, kwargs, key=key):
                    value = hooked_input(args, kwargs) if (args or kwargs) else None
                    if isinstance(value, torch.Tensor):
                        store[key] = as_tokens(value.detach().clone(), PROBE_SHAPE)
                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(_m, _args, output, key=key):
                    value = hooked_output(output)
                    if isinstance(value, torch.Tensor):
                        store[key] = as_tokens(value.detach().clone(), PROBE_SHAPE)
                handles.append(module.register_forward_hook(post))
        yield store
    finally:
        for handle in handles:
            handle.remove()


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
