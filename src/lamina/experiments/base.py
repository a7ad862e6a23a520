"""What an experiment is, and how its config is built from defaults and ``--set`` overrides.

An experiment is a config dataclass (defaults = the seed notebook's parameters) plus a
``run(model, config, ctx)`` that composes stimuli, recording, statistics and figures and
returns a :class:`Result`. It writes nothing itself: ``lamina.runner`` writes run directories.
"""

from __future__ import annotations

import dataclasses
import time
import typing
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import LaminaError, closest


@dataclass
class Result:
    """What an experiment returns.

    Attributes:
        summary: the numbers, JSON-ready (written to results.json).
        tables: name -> tidy DataFrame (written to tables/<name>.csv).
        figures: name -> (matplotlib Figure, caption).
        key_numbers: (label, value text, test text) rows for the report's key-number table.
        notes: differences from the seed notebook, dropped items, caveats (shown in the report).
        method: the method paragraph when it depends on what the run found (e.g. a passage's
            length); None uses ``Experiment.method_text(config)``.
    """

    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, tuple] = field(default_factory=dict)
    key_numbers: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    method: str | None = None


class Context:
    """Per-run helpers handed to ``Experiment.run``: a seeded RNG and a stage timer."""

    def __init__(self, seed: int, progress: bool | None = None):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


class Experiment:
    """Base class: subclasses set the class attributes and implement :meth:`run`."""

    name: str = ""
    title: str = ""
    description: str = ""  # one line, for `lamina experiments`
    question: str = ""  # the report's opening
    method: str = ""  # the report's method paragraph (HTML-escaped when rendered)
    seed_notebook: str = ""
    Config: type = None

    def run(self, model, config, ctx: Context) -> Result:
        raise NotImplementedError

    def method_text(self, config) -> str:
        """The method paragraph with this run's settings filled in."""
        return self.method.format(**dataclasses.asdict(config))

    # ---- config ----------------------------------------------------------------------
    def config(self, overrides: dict | None = None):
        """The config with ``overrides`` (values or strings from ``--set``) applied and checked."""
        fields = {f.name: f for f in dataclasses.fields(self.Config)}
        hints = typing.get_type_hints(self.Config)
        values = {}
        for key, value in (overrides or {}).items():
            if key not in fields:
                raise LaminaError(f"unknown setting {key!r} for experiment {self.name!r}.{closest(key, fields)} "
                                  f"Valid settings: {', '.join(fields)}.")
            values[key] = coerce(key, value, hints[key])
        config = self.Config(**values)
        check = getattr(config, "check", None)
        if check:
            check()
        return config


def coerce(key: str, value, hint):
    """Turn ``value`` (often a string from the command line) into the field's type, or explain."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
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


def jsonable(value):
    """numpy scalars/arrays and NaN -> plain JSON (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
