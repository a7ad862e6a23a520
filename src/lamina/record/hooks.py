"""Forward hooks that hand each site's tensor to a callback: a tiny ``Trace``."""

from __future__ import annotations

from contextlib import contextmanager

from ..models.sites import resolve


def _first_tensor(value):
    # Blocks return a tensor in transformers 5, a tuple in older versions and some families.
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def trace(model, plan: dict[str, list[int]], on_capture):
    """Hook every (site, layer) in ``plan``; call ``on_capture(site, slot, tensor)`` on each forward.

    Args:
        model: a lamina ``Model``.
        plan: site -> model layer indices to hook; ``slot`` is the index into that list.
        on_capture: called with the ``(batch, seq, width)`` tensor as the model computes it
            (no copy, no detach needed under ``inference_mode``).

    The hooks read unmodified HF modules and return nothing, so the forward pass is unchanged.
    """
    handles = []
    try:
        for site, layers in plan.items():
            for slot, layer in enumerate(layers):
                module, which = resolve(model.hf, model.adapter, site, layer, model.n_layers)
                if which == "input":
                    def pre_hook(_module, args, kwargs, site=site, slot=slot):
                        on_capture(site, slot, args[0] if args else kwargs["hidden_states"])
                    handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
                else:
                    def post_hook(_module, _args, output, site=site, slot=slot):
                        on_capture(site, slot, _first_tensor(output))
                    handles.append(module.register_forward_hook(post_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()

