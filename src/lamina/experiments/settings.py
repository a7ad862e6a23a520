"""Settings from defaults and ``--set key=value`` overrides, typed and ruled by the dataclass that declares them.

Two kinds per experiment: its compute settings (``Config``: they change the numbers, so they need a
new run) and its presentation options (``Options``: bins, ranges, colours of the figures, which
``lamina report`` can change on a finished run directory).

Each field's type is its annotation; what it accepts beyond the type (a range, choices, a list's
length or order) is declared beside it with :func:`setting`, e.g. ``bins: int = setting(30, ge=2)``.
:func:`build` enforces every declaration with one message form, :func:`describe` lists them, and the
settings several experiments share (:func:`replicates`, :func:`alpha`, ...) are declared once here.
A ``Config.check()`` keeps only the rules that tie two settings together.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import LaminaError, closest, one_line
from ..models.depth import check_layer_setting

RULE = "lamina.rule"  # the key of a field's declared Rule in its dataclass metadata


@dataclass(frozen=True)
class Rule:
    """What one setting accepts beyond its type, declared beside it with :func:`setting`.

    ``ge``/``gt``/``le``/``lt`` (closed and open bounds) and ``choices`` apply to a number or text, and to
    every item of a list setting; ``items``, ``min_items``, ``unique`` and ``order`` to a list. ``None``
    passes every rule of an optional setting (its type says whether it may be None).

    Attributes:
        choices: the accepted values (:func:`setting` takes a dict's keys).
        order: ``"<"``: a list's items strictly increasing (low,high); ``"<="``: never decreasing.
        check: ``value -> bool``: False refuses the value with ``means`` as the rule; a check may also raise
            its own LaminaError (a run directory that is not one says which file is missing).
        means: what ``check`` accepts, in words ("a matplotlib colormap").
        why: the reason for the rule, shown after it ("windows are the unit of the t intervals").
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    items: int | None = None
    min_items: int | None = None
    unique: bool = False
    order: str | None = None
    check: Callable | None = None
    means: str = ""
    why: str = ""

    def text(self) -> str:
        """The rule in words: "at least 2", "one of max, holm", "2 items, in increasing order"."""
        parts = []
        if self.items is not None:
            parts.append(f"{self.items} items")
        if self.min_items is not None:
            parts.append(f"at least {self.min_items} item{'s' if self.min_items != 1 else ''}")
        scope = "each " if parts or self.unique or self.order else ""
        if self._bounded():
            parts.append(scope + self._range())
        if self.choices is not None:
            parts.append(scope + "one of " + self._choices())
        if self.unique:
            parts.append("none twice")
        if self.order:
            parts.append("in increasing order" if self.order == "<" else "in non-decreasing order")
        if self.means:
            parts.append(self.means)
        return ", ".join(parts) + (f" ({self.why})" if self.why and parts else "")

    def violation(self, value) -> str | None:
        """What ``value`` breaks ("must be at least 2"), or None when it keeps the rule."""
        if value is None:
            return None
        if isinstance(value, (tuple, list)):
            return self._list_violation(value)
        return self._item_violation(value, "must be ")

    def _list_violation(self, value) -> str | None:
        if self.items is not None and len(value) != self.items:
            return f"must have {self.items} items"
        if self.min_items is not None and len(value) < self.min_items:
            return f"must have at least {self.min_items} item{'s' if self.min_items != 1 else ''}"
        for item in value:
            broken = self._item_violation(item, "must have every item ")
            if broken:
                return broken
        if self.unique and len(set(value)) != len(value):
            return "must not list an item twice"
        steps = list(zip(value, value[1:]))
        if self.order == "<" and not all(a < b for a, b in steps):
            return "must be in increasing order"
        if self.order == "<=" and not all(a <= b for a, b in steps):
            return "must be in non-decreasing order"
        return None

    def _item_violation(self, value, must: str) -> str | None:
        if self._bounded():
            try:
                inside = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                          and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
            except TypeError:
                inside = False
            if not inside:
                return must + self._range()
        if self.choices is not None and value not in self.choices:
            return must + "one of " + self._choices()
        if self.check is not None and self.check(value) is False:
            return must + self.means
        return None

    def _bounded(self) -> bool:
        return any(b is not None for b in (self.ge, self.gt, self.le, self.lt))

    def _range(self) -> str:
        low = f"at least {self.ge}" if self.ge is not None else f"more than {self.gt}" if self.gt is not None else ""
        high = f"at most {self.le}" if self.le is not None else f"less than {self.lt}" if self.lt is not None else ""
        if self.ge is not None and self.le is not None:
            return f"from {self.ge} to {self.le}"
        if self.gt is not None and self.lt is not None:
            return f"between {self.gt} and {self.lt} (exclusive)"
        return " and ".join(part for part in (low, high) if part)

    def _choices(self) -> str:
        return ", ".join(str(choice) for choice in self.choices)


def setting(default, *, ge=None, gt=None, le=None, lt=None, choices=None, items=None, min_items=None,
            unique=False, order=None, check=None, means="", why=""):
    """A dataclass field with its default and its declared :class:`Rule` (see there for the arguments)."""
    if check is not None and not means:
        raise TypeError("a setting's check needs `means`: what it accepts, in words")
    choices = tuple(choices) if choices is not None else None  # a dict's keys
    rule = Rule(ge=ge, gt=gt, le=le, lt=lt, choices=choices, items=items, min_items=min_items, unique=unique,
                order=order, check=check, means=means, why=why)
    return dataclasses.field(default=default, metadata={RULE: rule})


def rule_of(field: dataclasses.Field) -> Rule | None:
    """The rule declared for a dataclass field, or None (its type is its only rule)."""
    return field.metadata.get(RULE)


# ---- settings several experiments share: one declaration, the same rule everywhere -------------------
def book(default: str | None = "alice", *, why: str = ""):
    """The book the windows or passages come from. Not checked here but when the run reads it
    (lamina.data.book's message), so a finished run directory loads on a machine without the file."""
    return setting(default, means="a name in lamina.data.BOOKS, a Gutenberg id or a text file path", why=why)


def replicates(default, *, minimum: int = 1, unit: str = "windows"):
    """Replicates: disjoint parts of the data (``unit``), the unit of the tests across them."""
    why = f"the {unit} are the unit of the t intervals" if minimum >= 2 else unit
    return setting(default, ge=minimum, why=why)


def alpha(default: float = 0.05):
    """The significance level of every test."""
    return setting(default, gt=0, lt=1)


def n_permutations(default: int = 1000):
    """Label shuffles per permutation test (1000 gives p-values down to 0.001)."""
    return setting(default, ge=1)


def window(default, *, minimum: int = 2, why: str = ""):
    """Tokens per window of a book."""
    return setting(default, ge=minimum, why=why)


def skip_first(default: int, *, why: str = ""):
    """Tokens at each window's start left out of the correct/incorrect groups (``why``: the bound that
    ``window`` sets, checked by the Config's ``check``)."""
    return setting(default, ge=0, why=why)


def batch_size(default: int):
    """Sequences per forward pass (memory, not results)."""
    return setting(default, ge=1)


def bins(default, *, minimum: int = 1):
    """Histogram bins (an optional one: None picks them by rule)."""
    return setting(default, ge=minimum)


def _names_a_layer(value) -> bool:
    try:
        check_layer_setting(value)
    except LaminaError:
        return False
    return True


def layer(default):
    """A layer of the single-layer figures: an index, or a relative depth (models/depth.py) that fits every model."""
    return setting(default, check=_names_a_layer,
                   means="a layer index (an integer) or a relative depth from 0.0 to 1.0")


def labels_from(check_run_dir: Callable):
    """Another run directory whose correct/incorrect labels are used (lamina compare's untrained controls)."""
    return setting(None, check=check_run_dir, means="a run directory of this experiment")


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
    enforce(instance, experiment=experiment, kind=kind)
    check = getattr(instance, "check", None)  # the rules that tie settings together
    if check:
        check()
    return instance


def enforce(instance, *, experiment: str, kind: str = "setting") -> None:
    """A LaminaError for the first field of ``instance`` that breaks its declared :class:`Rule`, e.g.
    ``lens: setting 'replicates' must be at least 2 (the windows are the unit of the t intervals), not 1.``"""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        rule = rule_of(field)
        value = getattr(instance, field.name)
        broken = rule.violation(value) if rule else None
        if broken:
            why = f" ({rule.why})" if rule.why else ""
            raise LaminaError(f"{experiment}: {kind} {field.name!r} {broken}{why}, not "
                              f"{one_line(_shown(value, hints[field.name]))}.")


def describe(cls) -> str:
    """One line per field, ``name=default  type, rule``, read from the declarations; list settings are
    shown as they are written on the command line."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    shown = [f"{f.name}={_shown(f.default, hints[f.name])}" for f in fields]
    width = max((len(text) for text in shown), default=0)
    lines = []
    for field, text in zip(fields, shown):
        rule = rule_of(field)
        words = _type_words(hints[field.name]) + (f"; {rule.text()}" if rule and rule.text() else "")
        lines.append(f"  {text:<{width}}  {words}")
    return "\n".join(lines)


def _type_words(hint) -> str:
    """A type in words: ``int | None`` -> "integer or none", ``tuple[int, int]`` -> "list of 2 integers"."""
    names = {int: "integer", float: "number", bool: "true/false", str: "text", type(None): "none"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in args)
    if origin in (tuple, list):
        if args and Ellipsis not in args:
            return f"list of {len(args)} {_type_words(args[0])}s"
        return f"list of {_type_words(args[0]) if args else 'text'}s".replace("texts", "text")
    return names.get(hint, getattr(hint, "__name__", str(hint)))


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
