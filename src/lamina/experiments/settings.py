"""Settings from defaults and ``--set key=value`` overrides, typed by the dataclass that declares them.

Two kinds per experiment: its compute settings (``Config``: they change the numbers, so they need a
new run) and its presentation options (``Options``: bins, ranges, colours of the figures, which
``lamina report`` can change on a finished run directory).
"""

from __future__ import annotations

import dataclasses
import types
import typing

from ..errors import LaminaError, closest


def build(cls, overrides: dict | None, *, experiment: str, kind: str = "setting", refuse=()):
    """An instance of the dataclass ``cls`` with ``overrides`` (values or strings) applied and checked.

    Args:
        kind: what the fields are called in messages ("setting" or "presentation option").
        refuse: names of the experiment's other kind of settings, refused with their own message.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            if key in refuse:
                raise LaminaError(
                    f"{key!r} is a compute setting of {experiment!r}: it changes the numbers, so it needs a new "
                    f"run (lamina run {experiment} --set {key}=...). lamina report changes presentation options "
                    f"only: {', '.join(fields) or 'none'}.")
            raise LaminaError(f"unknown {kind} {key!r} for experiment {experiment!r}.{closest(key, fields)} "
                              f"Valid {kind}s: {', '.join(fields) or 'none'}.")
        values[key] = coerce(key, value, hints[key])
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check:
        check()
    return instance


def describe(cls) -> str:
    """``name=default, ...`` for listings."""
    return ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))


def coerce(key: str, value, hint):
    """Turn ``value`` (often a string from the command line) into the field's type, or explain."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
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
        items = value.split(",") if isinstance(value, str) else list(value)
        item_type = args[0] if args else str
        return origin(coerce(key, item.strip() if isinstance(item, str) else item, item_type) for item in items)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    raise LaminaError(f"setting {key!r} needs {kinds.get(hint, hint)}, not {value!r}.")


def parse_sets(items) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (types are applied per experiment)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LaminaError(f"--set takes key=value, not {item!r}.")
        out[key.strip()] = value
    return out
