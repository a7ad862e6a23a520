"""The contract every experiment follows: one folder, a few modules, one :class:`Experiment`.

``experiments/<name>/``:

* ``config.py``: ``Config``, the compute settings (defaults = the seed notebook's parameters), each
  setting's rule declared beside it (:func:`lamina.experiments.settings.setting`), and the optional
  ``control_settings``. No torch: loading a run, listing experiments, drawing figures and writing
  reports read the settings without importing the model's libraries.
* ``compute.py``: ``compute(model, config, ctx) -> Result``. Composes data, stimuli, recording and
  statistics; imports no matplotlib (an import-linter contract). With a config.py, compute.py is
  imported when a run first calls ``compute`` (:class:`Deferred`), never to define the experiment.
* ``result.py``: the ``Result`` type, a frozen :class:`~lamina.experiments.typed.Typed` dataclass
  whose plain fields are results.json, key for key, and beside it the functions of the result:
  ``tables(result) -> {name: DataFrame}`` and ``profiles(result) -> DataFrame`` (in compute.py
  instead, they are found there too), and the constants figures and report share with compute.
* ``figures.py``: ``Options`` (presentation options) and
  ``figures(result, config, options) -> {name: Figure}``.
* ``report.py``: ``report(result, config) -> Report`` (method text, key numbers, notes).
* ``__init__.py``: the texts and ``EXPERIMENT = Experiment.from_package(__name__)``, which finds the
  parts above by these names; found automatically.

:meth:`Experiment.from_package` reads, from the package's ``__init__.py`` (keyword arguments win):

* ``NAME`` (default: the folder's name with ``_`` as ``-``, ``attn_kl`` -> ``attn-kl``),
* ``TITLE`` and ``QUESTION`` (required: the report's heading and opening),
* ``DESCRIPTION`` (default: the first line of the package's docstring),
* ``SEED_NOTEBOOK`` (default ``"none"``: an experiment that reproduces no seed notebook),

and the parts: ``Config`` and the optional ``control_settings`` from ``config.py`` (a package
without one keeps them in ``compute.py``, which is then imported at once), ``compute`` from
``compute.py``, ``tables`` and ``profiles`` from ``result.py`` (else ``compute.py``), ``figures``
from ``figures.py``, ``report`` from ``report.py``; each of ``Config``, ``Options`` (figures.py) and
``Result`` (result.py) is the module's attribute of that name, else the one class defined there
whose name ends with it (``PositionConfig``). A missing part is one LaminaError naming the file
and what it should define. ``Experiment(...)`` with every part given stays the explicit form.

Nothing here writes files: :mod:`lamina.rundir` writes and reads run directories, so every figure
and the report can be redrawn from a run directory without the model.
"""

from __future__ import annotations

import importlib
import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from ..errors import LaminaError
from .settings import build
from .typed import Typed


class Figure(NamedTuple):
    """A drawn figure (``matplotlib.figure.Figure``) and its caption."""

    figure: object
    caption: str


class KeyNumber(NamedTuple):
    """One row of the report's key-number table."""

    label: str
    value: str
    test: str = ""


@dataclass(frozen=True)
class Report:
    """The report's text: the method paragraph, key numbers with their tests, notes (differences from
    the seed notebook, dropped items, caveats)."""

    method: str
    key_numbers: tuple[KeyNumber, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ModelFacts(Typed):
    """What the report says about the model (kept in details.json: no model is needed to redraw)."""

    name: str
    n_layers: int
    context_length: int
    prepend_bos: bool

    @classmethod
    def of(cls, model) -> ModelFacts:
        """The facts of a loaded :class:`~lamina.models.Model` (its name, layers, context length, BOS policy)."""
        return cls(name=model.name, n_layers=model.n_layers, context_length=model.context_length,
                   prepend_bos=bool(model.prepend_bos))


PROFILE_COLUMNS = ("site", "layer", "metric", "value", "ci_low", "ci_high")


def profile_table(*parts) -> pd.DataFrame:
    """A laminar-profile table from parts ``(site, metric, values, ci)``, one row per layer and metric.

    Columns :data:`PROFILE_COLUMNS`: the site whose entries the layers index (``hidden``: entries 0..n,
    a block site: blocks 0..n-1; see :mod:`lamina.models.depth`), the layer, the metric's name, its
    value, and the interval (NaN where the experiment gives none). Comparisons across models read
    this table; every value in it is a number of results.json.

    Args:
        parts: ``(site, metric, values (n_layers,), ci (2, n_layers) or None)`` tuples.
    """
    frames = []
    for site, metric, values, ci in parts:
        values = np.asarray(values, dtype=float)
        low, high = (np.full_like(values, np.nan),) * 2 if ci is None else np.asarray(ci, dtype=float)
        frames.append(pd.DataFrame({"site": site, "layer": np.arange(len(values)), "metric": metric,
                                    "value": values, "ci_low": low, "ci_high": high}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("value", "ci_low", "ci_high") else object)
                             for c in PROFILE_COLUMNS})
    return pd.concat(frames, ignore_index=True)


class Context:
    """Per-run helpers handed to ``compute``: a seeded RNG and a stage timer."""

    def __init__(self, seed: int, progress: bool | None = None):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        """Time the ``with`` block and add its seconds to ``timings[name]`` (the manifest's stage timings)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


@dataclass(frozen=True)
class Experiment:
    """One experiment: its names and texts, its three types and its four functions.

    Attributes:
        name: the CLI name (``lamina run NAME``); title: the report's heading;
        description: one line for ``lamina experiments``; question: the report's opening;
        seed_notebook: which seed notebook it reproduces (also the listing order).
        Config: compute settings (dataclass with defaults and an optional ``check()``).
        Options: presentation options (dataclass with defaults and an optional ``check()``).
        Result: the typed result (:class:`~lamina.experiments.typed.Typed` dataclass).
        compute: ``(model, config, ctx) -> Result``.
        tables: ``(result) -> {name: DataFrame}`` (written as tables/<name>.csv).
        profiles: ``(result) -> DataFrame`` of per-layer metrics (:func:`profile_table`; empty for an
            experiment with no layers), what ``lamina compare`` lines up across models.
        figures: ``(result, config, options) -> {name: Figure}``.
        report: ``(result, config) -> Report``.
        own_scale: profile metrics on each model's own scale (a vocabulary's log V, a tokenization): ``lamina
            compare`` tests them against the model's own untrained controls (same architecture, same scale) but
            draws no difference between two models, whose values are not on one scale (lens: cross-entropy,
            KL and entropy in nats, bounded by log V). From ``OWN_SCALE`` in result.py with ``from_package``.
        control_settings: ``(trained_run_dir) -> {setting: value}`` or None: settings an untrained control's run
            takes from its trained model's run in ``lamina compare`` (attn-kl: the trained model's
            correct/incorrect labels, since an untrained model predicts nothing correctly).
    """

    name: str
    title: str
    description: str
    question: str
    seed_notebook: str
    Config: type
    Options: type
    Result: type
    compute: Callable
    tables: Callable
    profiles: Callable
    figures: Callable
    report: Callable
    control_settings: Callable | None = None
    own_scale: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the default would print every function and type of all 14 fields
        return f"Experiment({self.name!r}: {self.title})"

    def config(self, overrides: dict | None = None):
        """The compute config with ``overrides`` (values or strings from ``--set``) applied and checked."""
        return build(self.Config, overrides, experiment=self.name)

    def options(self, overrides: dict | None = None):
        """The presentation options with ``overrides`` applied; a compute setting is refused."""
        return build(self.Options, overrides, experiment=self.name, kind="presentation option",
                     refuse={f.name for f in fields(self.Config)})

    @classmethod
    def from_package(cls, package, **overrides) -> Experiment:
        """The experiment of the package ``package`` (a module or a dotted name), its parts found by the
        conventions of this module's docstring; ``overrides`` (any field, e.g. ``name="x"``,
        ``control_settings=f``) take precedence. figures.py is imported here, when the experiment is
        defined, never by compute.py."""
        module = importlib.import_module(package) if isinstance(package, str) else package
        if not inspect.ismodule(module):
            raise LaminaError(f"Experiment.from_package takes a package or its dotted name, not "
                              f"{type(package).__name__}.")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise LaminaError(f"Experiment.from_package: unknown field(s) {', '.join(sorted(unknown))}; fields: "
                              f"{', '.join(f.name for f in fields(cls))}.")
        where = module.__name__
        doc = (module.__doc__ or "").strip().splitlines()
        texts = {"name": getattr(module, "NAME", where.rpartition(".")[2].replace("_", "-")),
                 "title": getattr(module, "TITLE", None), "question": getattr(module, "QUESTION", None),
                 "description": getattr(module, "DESCRIPTION", doc[0].strip() if doc else None),
                 "seed_notebook": getattr(module, "SEED_NOTEBOOK", "none")}
        parts = {**texts, **overrides}
        for key, value in texts.items():
            if parts[key] is None:
                what = key.upper() if key != "description" else "DESCRIPTION (or a docstring)"
                raise LaminaError(f"{where}/__init__.py defines no {what}: set it there or pass {key}=... to "
                                  "Experiment.from_package.")
        # tables and profiles are functions of the result: found in result.py, else in compute.py
        result = _optional(f"{where}.result")
        for name in ("tables", "profiles"):
            if name not in parts and callable(getattr(result, name, None)):
                parts[name] = getattr(result, name)
        if "own_scale" not in parts:
            parts["own_scale"] = tuple(getattr(result, "OWN_SCALE", ()))
        config = _optional(f"{where}.config")
        if config is not None:  # the settings apart from compute: compute.py waits for the first run
            if "Config" not in parts:
                parts["Config"] = _part(config, "Config", "config")
            if "control_settings" not in parts:
                parts["control_settings"] = getattr(config, "control_settings", None)
            if "compute" not in parts and "tables" in parts and "profiles" in parts:
                parts["compute"] = Deferred(f"{where}.compute", "compute")
        wanted = {"compute": ("compute", "tables", "profiles", "Config"), "figures": ("figures", "Options"),
                  "report": ("report",), "result": ("Result",)}
        for file, names in wanted.items():
            if all(name in parts for name in names):  # given as overrides, or found above
                continue
            part = _optional(f"{where}.{file}")
            if part is None:
                raise LaminaError(f"{where} has no {file}.py; it should define {', '.join(names)} "
                                  f"(see lamina.experiments.base).")
            for name in names:
                if name not in parts:
                    parts[name] = _part(part, name, file)
            if file == "compute" and "control_settings" not in parts:
                parts["control_settings"] = getattr(part, "control_settings", None)
        return cls(**parts)


_SIGNATURES = {"compute": "compute(model, config, ctx) -> Result", "tables": "tables(result) -> {name: DataFrame}",
               "profiles": "profiles(result) -> DataFrame", "figures": "figures(result, config, options) -> {name: Figure}",
               "report": "report(result, config) -> Report"}


def _optional(module: str):
    """The module ``module``, or None when it does not exist (an error inside it still propagates)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        return None


class Deferred:
    """A function of a module imported on its first call: an experiment's ``compute`` from a package
    with a config.py, so that defining, listing, loading and redrawing an experiment never import
    compute.py (and with it torch and the model libraries); a run imports it when it computes.

    Calls, ``inspect.signature`` and ``__module__`` behave as the function's; :meth:`resolve` returns it.
    """

    def __init__(self, module: str, name: str):
        self.__module__ = module
        self.__qualname__ = self.__name__ = name
        self._function = None

    def resolve(self) -> Callable:
        """The function itself (its module imported now if it was not yet)."""
        if self._function is None:
            found = getattr(importlib.import_module(self.__module__), self.__name__, None)
            if not callable(found):
                raise LaminaError(f"{self.__module__} defines no function {_SIGNATURES.get(self.__name__, self.__name__)}.")
            self._function = found
        return self._function

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self):
        return inspect.signature(self.resolve())

    @property
    def __wrapped__(self):  # inspect.unwrap and inspect.getsource reach the function through this
        return self.resolve()

    def __repr__(self) -> str:
        return f"<deferred {self.__module__}.{self.__name__}>"


def _part(module, name: str, file: str):
    """``module.name``; for ``Config``/``Options``/``Result`` else the one class defined in ``module`` whose
    name ends with ``name``."""
    found = getattr(module, name, None)
    if name in _SIGNATURES:
        if not callable(found):
            raise LaminaError(f"{module.__name__} ({file}.py) defines no function {_SIGNATURES[name]}.")
        return found
    if isinstance(found, type):
        return found
    classes = [v for k, v in vars(module).items() if isinstance(v, type) and k.endswith(name)
               and v.__module__ == module.__name__ and (name != "Result" or issubclass(v, Typed))]
    if len(classes) != 1:
        kind = "Typed dataclass" if name == "Result" else "dataclass"
        which = f"{len(classes)} ({', '.join(c.__name__ for c in classes)})" if classes else "none"
        raise LaminaError(f"{module.__name__} ({file}.py) should define one {kind} named {name} or *{name}; "
                          f"found {which}.")
    return classes[0]
