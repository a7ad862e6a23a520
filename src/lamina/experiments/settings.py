"""Settings from defaults and ``--set key=value`` overrides, typed by the dataclass that declares them.

Two kinds per experiment: its compute settings (``Config``: they change the numbers, so they need a
new run) and its presentation options (``Options``: bins, ranges, colours of the figures, which
``lamina report`` can change on a finished run directory).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers
import os
import types
import typing

import numpy as np

from ..errors import LaminaError, closest, one_line


def build(cls, overrides: dict | None, *, experiment: str, kind: str = "setting", refuse=()):
    """An instance of the dataclass ``cls`` with ``overrides`` (values or strings) applied and checked.

    Args:
        kind: what the fields are called in messages ("setting" or "presentation option").
        refuse: names of the experiment's other kind of settings, refused with their own message.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    if overrides is not None and not isinstance(overrides, dict):
        raise LaminaError(f"{kind}s are given as a dict {{name: value}}, not {type(overrides).__name__}.")
    for key, value in (overrides or {}).items():
        if not isinstance(key, str):
            raise LaminaError(f"{kind} names are strings, not {one_line(repr(key))}. Valid {kind}s: "
                              f"{', '.join(fields) or 'none'}.")
        if key not in fields:
            if key in refuse:
                raise LaminaError(
                    f"{key!r} is a compute setting of {experiment!r}: it changes the numbers, so it needs a new "
                    f"run (lamina run {experiment} --set {key}=...). lamina report changes presentation options "
                    f"only: {', '.join(fields) or 'none'}.")
            raise LaminaError(f"unknown {kind} {one_line(repr(key))} for experiment {experiment!r}.{closest(key, fields)} "
                              f"Valid {kind}s: {', '.join(fields) or 'none'}.")
        values[key] = coerce(key, value, hints[key])
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check:
        check()
    return instance


def describe(cls) -> str:
    """``name=default, ...`` for listings; list settings are shown as they are written on the command line."""
    hints = typing.get_type_hints(cls)
    return ", ".join(f"{f.name}={_shown(f.default, hints[f.name])}" for f in dataclasses.fields(cls))


LIST_FORMS = ("List settings take comma-separated items (--set context_words=years,garage,lawn) or a "
              "Python tuple/list (--set \"context_words=('years','garage')\"); none clears an optional one.")


def _list_hint(key: str) -> str:
    return f"Write a list as --set {key}=a,b or --set \"{key}=('a', 'b')\"."


def _shown(default, hint) -> str:
    if _is_list(hint) and isinstance(default, (tuple, list)):
        return ",".join(str(item) for item in default)
    return repr(default)


def _is_list(hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(hint))
    return origin in (tuple, list)


INT_LIMIT = 2 ** 63  # every count and index must fit NumPy's int64


def coerce(key: str, value, hint):
    """Turn ``value`` (often a string from the command line) into the field's type, or explain.

    Refused for every setting: an empty value (``--set text=`` never means "the default"), NaN or
    infinity, text that is not valid UTF-8, an integer outside int64, and a value of another kind
    (a list for a number, ``True`` for a count). ``none``/``null`` clear an optional setting.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise LaminaError(f"setting {key!r} is not valid UTF-8 text: {one_line(repr(value))}.") from None
        if not value.strip():
            raise LaminaError(f"setting {key!r} is empty; give a value, or leave the setting out to keep its "
                              "default.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for candidate in inner:
            try:
                return coerce(key, value, candidate)
            except LaminaError as err:
                errors.append(str(err))
        raise LaminaError(errors[-1])
    if origin in (tuple, list):
        items = _items(key, value)
        item_type = args[0] if args else str
        if origin is tuple and args and Ellipsis not in args and len(items) != len(args):
            raise LaminaError(f"setting {key!r} takes {len(args)} items, not {len(items)}: "
                              f"{one_line(repr(value))}. {_list_hint(key)}")
        return origin(coerce(key, item.strip() if isinstance(item, str) else item, item_type) for item in items)
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.strip().lower() in ("1", "true", "yes", "on"):
                    return True
                if value.strip().lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
                return bool(value)
            raise ValueError
        if hint is int:
            if isinstance(value, (bool, np.bool_)):
                raise ValueError
            if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
                if not math.isfinite(value) or not float(value).is_integer():
                    raise ValueError
            elif not isinstance(value, (str, numbers.Integral)):
                raise ValueError
            number = int(value)
            if not -INT_LIMIT < number < INT_LIMIT:
                raise LaminaError(f"setting {key!r} is too large: {number} does not fit a 64-bit integer.")
            return number
        if hint is float:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, numbers.Real)):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise LaminaError(f"setting {key!r} needs a finite number, not {one_line(value)}.")
            return number
        if hint is str:
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, numbers.Integral)):
                raise ValueError
            text = str(value)
            if "\x00" in text:
                raise LaminaError(f"setting {key!r} holds a NUL character: {one_line(repr(text))}.")
            return text
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, LaminaError):
            raise
    else:
        return value
    shown = one_line(repr(value))
    raise LaminaError(f"setting {key!r} needs {kinds.get(hint, hint)}, not {shown}.")


def _items(key: str, value) -> list:
    """The items of a list setting: ``a,b``, ``('a', 'b')``/``['a', 'b']`` (Python literals), or a sequence."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("(", "[")):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                raise LaminaError(f"setting {key!r} is not a Python tuple or list: {one_line(repr(value))}. "
                                  f"{_list_hint(key)}") from None
            if not isinstance(parsed, (tuple, list)):
                parsed = [parsed]
            return list(parsed)
        items = text.split(",")
        if not all(item.strip() for item in items):
            raise LaminaError(f"setting {key!r} has an empty item: {one_line(repr(value))}. {_list_hint(key)}")
        return items
    if isinstance(value, (tuple, list, np.ndarray)):
        return list(value)
    raise LaminaError(f"setting {key!r} takes a list, not {one_line(repr(value))}. {_list_hint(key)}")


def parse_sets(items) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (types are applied per experiment)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LaminaError(f"--set takes key=value, not {one_line(repr(item))}.")
        if key.strip() in out:
            raise LaminaError(f"--set {one_line(key.strip())} is given twice; give each setting once.")
        out[key.strip()] = value
    return out
