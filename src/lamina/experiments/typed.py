"""Typed results: frozen dataclasses that know their JSON and array forms, and read back equal.

An experiment's result is a frozen dataclass deriving from :class:`Typed`. Its fields say where
they are kept in a run directory:

* plain fields: ``results.json``, in field order (nested dataclasses become objects, tuples lists);
* ``detail_field()``: ``details.json``, text the report needs that is not a number (model facts,
  notes from the data);
* ``array_field()``: ``arrays.npz``, the arrays behind figures and tables (a dataclass of NumPy
  arrays, or one array; keys ``field.subfield``; no pickle).

Values are converted to the declared types when a result is built (NumPy scalars to ``float`` /
``int``, sequences to tuples, arrays to their declared dtype), so a result computed in memory
and one read back from disk are equal under ``==``, which treats NaN as equal to NaN and compares
arrays element by element. JSON has no NaN: it is written as ``null`` and read back as NaN.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import types
import typing
import zipfile
from typing import Annotated

import numpy as np

from ..errors import LaminaError

#: Arrays kept in results.json, with the dtype they are read back as.
FloatArray = Annotated[np.ndarray, np.float64]
IntArray = Annotated[np.ndarray, np.int64]
BoolArray = Annotated[np.ndarray, np.bool_]

_STORE = "lamina_store"


def detail_field(**kwargs):
    """A result field kept in details.json (not a number of results.json)."""
    return dataclasses.field(metadata={_STORE: "details"}, **kwargs)


def array_field(**kwargs):
    """A result field kept in arrays.npz."""
    return dataclasses.field(metadata={_STORE: "arrays"}, **kwargs)


class Typed:
    """Base of result dataclasses: values converted to the declared types; NaN- and array-aware ``==``."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, convert(getattr(self, f.name), hints(type(self))[f.name]))

    def __eq__(self, other):
        return type(other) is type(self) and same(self, other)

    __hash__ = None


@functools.cache
def hints(cls) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def _optional(hint):
    """``X | None`` -> X; anything else -> None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def convert(value, hint):
    """``value`` as the type ``hint`` declares (used on construction and when reading JSON)."""
    inner = _optional(hint)
    if inner is not None:
        return None if value is None else convert(value, inner)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return np.asarray(_nan_for_none(value) if args[1] is np.float64 else value, dtype=args[1])
    if hint is np.ndarray:
        return np.asarray(value)
    if hint is float:
        return float("nan") if value is None else float(value)
    if hint in (int, bool, str):
        return hint(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0]) for v in value)
        return tuple(convert(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        return {str(k): convert(v, args[1]) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Typed):
        if isinstance(value, hint):
            return value
        return hint(**{f.name: convert(value[f.name], hints(hint)[f.name]) for f in dataclasses.fields(hint)})
    raise TypeError(f"unsupported result type {hint!r}")


def _nan_for_none(value):
    if isinstance(value, (list, tuple)):
        return [_nan_for_none(v) for v in value]
    return np.nan if value is None else value


def to_json(value):
    """A typed value as plain JSON data: objects in field order, NaN and inf as None."""
    if isinstance(value, Typed):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, float):
        return float(value) if np.isfinite(value) else None
    return value


def same(a, b) -> bool:
    """Equality for typed values: NaN equals NaN, arrays equal in shape, dtype and every element."""
    if isinstance(a, Typed):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ---- the three stores of a run directory ------------------------------------------------------
def _store(f) -> str:
    return f.metadata.get(_STORE, "results")


def summary(result: Typed) -> dict:
    """results.json's content: the plain fields of ``result``, JSON-ready."""
    return {f.name: to_json(getattr(result, f.name)) for f in dataclasses.fields(result) if _store(f) == "results"}


def details(result: Typed) -> dict:
    """details.json's content: the detail fields of ``result``."""
    return {f.name: to_json(getattr(result, f.name)) for f in dataclasses.fields(result) if _store(f) == "details"}


def dims(*names: str):
    """An array field of a result's array dataclass whose axes have names (``dims("site", "layer", "window")``):
    :meth:`lamina.Run.to_xarray` names them so. Without it an array's axes are ``<key>_dim0``, ... ."""
    return dataclasses.field(metadata={_DIMS: names})


_DIMS = "lamina_dims"


def array_dims(result: Typed) -> dict[str, tuple[str, ...] | None]:
    """Per key of :func:`arrays`, the axes' names declared with :func:`dims` (None where none are)."""
    names: dict = {}
    _walk_arrays(result, {}, names)
    return names


def arrays(result: Typed) -> dict[str, np.ndarray]:
    """arrays.npz's content: every array of the array fields, keyed ``field`` or ``field.subfield``."""
    out: dict = {}
    _walk_arrays(result, out, {})
    return out


def _walk_arrays(result: Typed, out: dict, names: dict) -> None:
    for f in dataclasses.fields(result):
        if _store(f) == "arrays":
            _flatten(getattr(result, f.name), f.name, out, names, f.metadata.get(_DIMS))


def _flatten(value, key, out, names, axes=None):
    if value is None:
        return
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{key}: object arrays need pickle; give the array a NumPy dtype")
        out[key], names[key] = value, axes
    elif isinstance(value, Typed):
        for f in dataclasses.fields(value):
            _flatten(getattr(value, f.name), f"{key}.{f.name}", out, names, f.metadata.get(_DIMS))
    else:
        raise TypeError(f"{key}: array fields hold arrays or dataclasses of arrays, not {type(value).__name__}")


def _unflatten(hint, key, stored):
    inner = _optional(hint)
    if inner is not None:
        present = key in stored or any(k.startswith(key + ".") for k in stored)
        return _unflatten(inner, key, stored) if present else None
    if hint is np.ndarray or typing.get_origin(hint) is Annotated:
        return stored[key]
    return hint(**{f.name: _unflatten(hints(hint)[f.name], f"{key}.{f.name}", stored)
                   for f in dataclasses.fields(hint)})


_FILES = {"results": "results.json", "details": "details.json", "arrays": "arrays.npz"}


def build(cls, results: dict, details_: dict, stored: dict[str, np.ndarray], *, where=None):
    """The result of type ``cls`` from the contents of results.json, details.json and arrays.npz.

    A missing field or a value of the wrong form is a LaminaError naming the file and the field
    (``where``: the run directory, for the message)."""
    values = {}
    place = f"{where}/" if where is not None else ""
    for f in dataclasses.fields(cls):
        hint, store = hints(cls)[f.name], _store(f)
        try:
            if store == "arrays":
                values[f.name] = _unflatten(hint, f.name, stored)
            else:
                values[f.name] = convert((results if store == "results" else details_)[f.name], hint)
        except KeyError as err:
            raise LaminaError(f"{place}{_FILES[store]} lacks {err.args[0]!r} for {cls.__name__}; it was written by "
                              "another version of the experiment or edited; run the experiment again.") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise LaminaError(f"{place}{_FILES[store]} is damaged: {f.name!r} does not have the form "
                              f"{cls.__name__} declares ({type(err).__name__}: {err}); run the experiment again."
                              ) from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise LaminaError(f"{place}results.json, details.json or arrays.npz is damaged ({type(err).__name__}: {err}); "
                          "run the experiment again.") from None


def dump_json(data: dict) -> str:
    """The JSON text lamina writes (indent 1, no NaN)."""
    return json.dumps(data, indent=1, allow_nan=False)


def save_arrays(path, arrays_: dict[str, np.ndarray]) -> None:
    """An ``.npz`` file (compressed) whose bytes depend only on the arrays: fixed entry times, sorted keys,
    so two identical runs write identical files."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays_):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays_[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def load_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}
