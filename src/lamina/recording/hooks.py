"""Forward hooks that hand each site's tensor to a callback: a tiny ``Trace``."""

from __future__ import annotations

from contextlib import contextmanager

from ..models.sites import as_tokens, hooked_input, hooked_output, partner, resolve, transform


@contextmanager
def trace(model, plan: dict[str, list[int]], on_capture):
    """Hook every (site, layer) in ``plan``; call ``on_capture(site, slot, tensor)`` on each forward.

    Args:
        model: a lamina ``Model``.
        plan: site -> model layer indices to hook; ``slot`` is the index into that list.
        on_capture: called with the ``(batch, seq, width)`` tensor as the model computes it
            (no copy, no detach needed under ``inference_mode``).

    The hooks read unmodified HF modules and return nothing, so the forward pass is unchanged.
    Where a site is a transform of the hooked tensor (a residual scale such as Granite's, or one
    half of a fused gate/up projection; see ``models.sites.transform``), ``on_capture`` gets the
    transformed tensor.
    """
    handles, batch, stash = [], {}, {}

    def remember_batch(_module, args, kwargs):  # (batch, seq), to unflatten token-flattened tensors
        ids = kwargs.get("input_ids", args[0] if args else None)
        batch["shape"] = tuple(ids.shape[:2]) if ids is not None else None

    try:
        handles.append(model.hf.register_forward_pre_hook(remember_batch, with_kwargs=True))
        for site, layers in plan.items():
            for slot, layer in enumerate(layers):
                module, which = resolve(model.hf, model.adapter, site, layer, model.n_layers)
                fn = transform(model.hf, model.adapter, site, layer) or (lambda tensor, partner=None: tensor)
                other = partner(model.hf, model.adapter, site, layer)
                if other is not None:  # a site that is the sum of two modules' outputs: keep the first
                    def stash_hook(_module, _args, output, key=(site, slot)):
                        stash[key] = as_tokens(hooked_output(output), batch.get("shape"))
                    handles.append(other.register_forward_hook(stash_hook))
                if which == "input":
                    def pre_hook(_module, args, kwargs, site=site, slot=slot, fn=fn):
                        on_capture(site, slot, fn(as_tokens(hooked_input(args, kwargs), batch.get("shape"))))
                    handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
                else:
                    def post_hook(_module, _args, output, site=site, slot=slot, fn=fn):
                        on_capture(site, slot, fn(as_tokens(hooked_output(output), batch.get("shape")),
                                                  stash.pop((site, slot), None)))
                    handles.append(module.register_forward_hook(post_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()

