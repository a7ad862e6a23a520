"""A recording as labelled arrays: :meth:`Recording.to_xarray` (xarray is an optional dependency).

Each site is a ``DataArray`` whose dims name its axes, with the model layer, the token table and the
stimuli metadata as coordinates, so ``da.sel(layer=29)`` is model layer 29 and
``da.where(da.correct == 1)`` picks the correctly predicted tokens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import LaminaError
from ..models.sites import SITES

#: Dims of one site after ``(layer, sequence)``: the site's axes, its width named by what it is.
_WIDTH = {"d_model": "d_model", "d_mlp": "d_mlp", "keys": "key"}


def xarray_module():
    try:
        import xarray
    except ImportError:
        raise LaminaError("to_xarray needs xarray, which is not installed; pip install 'lamina[xarray]' "
                          "(or pip install xarray).") from None
    return xarray


def site_dims(site: str) -> tuple[str, ...]:
    """``("layer", "sequence", "slot", "d_model")`` for ``hidden``; ``mlp.pre``: ``d_mlp``;
    ``attn.heads``: ``(..., "slot", "head", "d_model")``; ``attn.pattern``: ``(..., "head", "slot", "key")``."""
    spec = SITES[site]
    return ("layer", "sequence") + tuple(_WIDTH[spec.width] if a == "width" else a for a in spec.axes)


def token_coords(rec) -> dict[str, tuple]:
    """Every token-table column but ``sequence`` and ``slot`` as a ``(sequence, slot)`` coordinate.

    Slots that hold no position (a shorter sequence's padding) are -1 (integers), NaN (floats and text); ``correct`` is float 1, 0 or NaN (unknown or padding), like :meth:`Recording.token_array`.
    Also ``valid``: True where a slot holds a real position.
    """
    valid = rec.valid
    rows = (rec.tokens["sequence"].to_numpy(), rec.tokens["slot"].to_numpy())
    coords = {"valid": (("sequence", "slot"), valid)}
    for name in rec.tokens.columns:
        if name in ("sequence", "slot"):
            continue
        values = rec.token_array(name)
        kind = values.dtype.kind
        fill = {"f": np.nan, "O": np.nan, "b": False}.get(kind, -1)
        grid = np.full(valid.shape, fill, dtype=values.dtype)
        grid[rows] = values
        coords[name] = (("sequence", "slot"), grid)
    return coords


def meta_coords(rec, taken) -> dict[str, tuple]:
    """The stimuli metadata as ``(sequence,)`` coordinates; a name the token table has too gets ``meta_``."""
    coords = {}
    for name in rec.meta.columns:
        label = f"meta_{name}" if name in taken or name in ("layer", "sequence", "slot") else str(name)
        values = rec.meta[name]
        coords[label] = ("sequence", values.to_numpy(dtype=object) if values.dtype == object or
                         isinstance(values.dtype, pd.StringDtype) else values.to_numpy(copy=True))
    return coords


def _attrs(rec, site: str | None) -> dict:
    """Scalar settings of the recording (netCDF-safe: str, int, float, bool)."""
    info = {k: rec.info.get(k) for k in ("model", "family", "n_layers", "dtype", "positions", "loss", "prepend_bos",
                                         "lamina")}
    attrs = {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))}
    if site is not None:
        attrs["site"] = site
    return attrs


def site_array(rec, site: str, layer=None, coords=None):
    """One site as an ``xarray.DataArray`` (see :meth:`Recording.to_xarray`)."""
    xr = xarray_module()
    rec._check(site)
    if site not in SITES:
        raise LaminaError(f"{site!r} is not a site lamina knows the axes of; use rec[{site!r}].")
    if layer is None:
        layers = list(rec.layers[site])
    else:
        layers = list(layer) if isinstance(layer, (list, tuple, range, np.ndarray)) else [layer]
        layers = [rec.layers[site][rec._slot(site, l)] for l in layers]  # checked, negatives resolved
    values = rec.sel(site, layers)
    dims = site_dims(site)
    coords = dict(coords if coords is not None else _coords(rec))
    coords.update(layer=("layer", np.asarray(layers, dtype=np.int64)),
                  sequence=("sequence", np.arange(values.shape[1])))
    for axis, name in enumerate(dims[2:], start=2):
        if name in ("slot", "head", "key"):
            coords[name] = (name, np.arange(values.shape[axis]))
    return xr.DataArray(values, dims=dims, coords=coords, name=site, attrs=_attrs(rec, site))


def _coords(rec) -> dict:
    tokens = token_coords(rec)
    return tokens | meta_coords(rec, set(tokens))


def dataset(rec, layer=None):
    """Every site as one ``xarray.Dataset``: the layer dim is the union of the sites' model layers (a
    site lacking one of them holds NaN there); a recording without sites (the loss alone) has the token
    table as its coordinates and no data variables."""
    xr = xarray_module()
    coords = _coords(rec)
    arrays = [site_array(rec, s, layer, coords) for s in rec.sites]
    if not arrays:
        valid = rec.valid
        coords.update(sequence=("sequence", np.arange(valid.shape[0])), slot=("slot", np.arange(valid.shape[1])))
        return xr.Dataset(coords=coords, attrs=_attrs(rec, None))
    out = xr.merge(arrays, join="outer", compat="no_conflicts", combine_attrs="drop")
    out.attrs = _attrs(rec, None)
    return out
