"""Forward hooks that hand each site's tensor to a callback: a tiny ``Trace``."""

from __future__ import annotations

from contextlib import contextmanager

from ..models import tap as _tap


@contextmanager
def trace(model, plan: dict[str, list[int]], on_capture):
    """Hook every (site, layer) in ``plan``; call ``on_capture(site, slot, tensor)`` on each forward.

    Args:
        model: a lamina ``Model``.
        plan: site -> model layer indices to hook; ``slot`` is the index into that list.
        on_capture: called with the ``(batch, seq, width)`` tensor as the model computes it
            (no copy, no detach needed under ``inference_mode``).

    Each (site, layer) is a :class:`~lamina.models.tap.Tap`, hooked by the one registrar
    (:func:`lamina.models.tap.hooks`) that the load-time self-check also reads through. The hooks
    read unmodified HF modules and return nothing, so the forward pass is unchanged. Where a site
    is a transform of the hooked tensor (a residual scale such as Granite's, or one half of a fused
    gate/up projection; see :meth:`Tap.read <lamina.models.tap.Tap.read>`), ``on_capture`` gets
    the transformed tensor.
    """
    found = _tap.taps(model, plan=plan)
    slots = {found[(site, layer)]: (site, slot) for site, layers in plan.items() for slot, layer in enumerate(layers)}

    def on_read(tap, tensor):
        site, slot = slots[tap]
        on_capture(site, slot, tensor)

    with _tap.hooks(model.hf, list(slots), on_read):
        yield
