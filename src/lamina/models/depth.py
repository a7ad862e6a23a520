"""Relative depth: one number for the same place in models of different depths.

A model with ``n`` blocks has ``n + 1`` residual-stream boundaries (the ``hidden`` entries: 0 is the
embedding output, ``n`` the final norm's output) and ``n`` blocks between them. Relative depth puts
both on one axis from 0 to 1:

* ``hidden`` entry ``e`` sits at ``e / n`` (0 = embeddings, 1 = the last block's output);
* a block site (``attn.out``, ``mlp.*``) of block ``l`` sits at ``(l + 0.5) / n``, halfway between the
  boundaries it reads from and writes to.

Settings that name a layer take either an absolute index (an ``int``; negative counts from the end)
or a relative depth (a ``float`` from 0.0 to 1.0), so one setting means the same place in every model.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import LaminaError


def _on_boundary(site: str) -> bool:
    """``hidden`` and ``resid`` entries sit on the boundaries between blocks; every other site inside a block."""
    return site in ("hidden", "resid")


def relative_depth(site: str, layer, n_layers: int):
    """Relative depth of entry ``layer`` (int or array) of ``site`` in a model with ``n_layers`` blocks."""
    layer = np.asarray(layer, dtype=float)
    depth = layer / n_layers if _on_boundary(site) else (layer + 0.5) / n_layers
    return float(depth) if depth.ndim == 0 else depth


def layer_at(value, site: str, n_layers: int, *, setting: str = "layer", model: str = "this model") -> int:
    """The entry of ``site`` that ``value`` names: an absolute index (int) or a relative depth (float).

    A relative depth ``d`` picks the entry whose depth is nearest to ``d`` (halfway: the deeper one):
    ``round(d * n)`` for ``hidden``, ``floor(d * n)`` for block sites (clipped to the last block).
    For example 0.5 on a 12-block model is hidden entry 6 and block 6, the seeds' ``n // 2``.

    Args:
        value: an int (``-entries <= value < entries``) or a float in ``[0, 1]``.
        site: ``"hidden"`` (``n_layers + 1`` entries) or a block site (``n_layers`` entries).
        setting, model: the setting's and the model's names, for error messages.

    Returns:
        The entry index, ``0 <= index < entries``.
    """
    entries = n_layers + 1 if _on_boundary(site) else n_layers
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LaminaError(f"{setting} must be a layer index (an integer) or a relative depth (0.0 to 1.0), "
                          f"not {value!r}.")
    if isinstance(value, (int, np.integer)):
        if not -entries <= value < entries:
            raise LaminaError(f"{setting}={value} is not a layer of {model}: {site} has entries 0..{entries - 1} "
                              f"(or -{entries}..-1); a relative depth such as {setting}=0.5 fits every model.")
        return int(value) % entries
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise LaminaError(f"{setting}={value} is neither a layer index (an integer) nor a relative depth "
                          "(a number from 0.0 to 1.0).")
    if _on_boundary(site):
        return int(math.floor(value * n_layers + 0.5))
    return min(int(math.floor(value * n_layers)), n_layers - 1)


def check_layer_setting(value, *, setting: str = "layer") -> None:
    """Refuse, before any model is loaded, a value that names no layer in any model.

    Integers are checked against the model later (:func:`layer_at`); anything else must be a depth.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return
    layer_at(value, "hidden", 1, setting=setting)
