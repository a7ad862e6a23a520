"""Stage 7: one folder per seed experiment, each defining ``EXPERIMENT``; found automatically.

Adding an experiment to lamina is adding a folder here (see :mod:`lamina.experiments.base` for the
files it holds) whose ``__init__.py`` defines ``EXPERIMENT``; ``lamina experiments`` lists them in
seed-notebook order. An experiment of your own lives in your own file, module or package, and is as
good as a built-in: :func:`resolve` finds it from ``path/to/file.py:NAME``, ``my.module:NAME``, the
object itself, or a name an installed distribution registers under the entry-point group
``lamina.experiments`` (see :mod:`lamina.experiments.sources`).
"""

import importlib
import pkgutil
from collections.abc import Mapping

from .base import Context, Experiment, Figure, KeyNumber, ModelFacts, Report
from .settings import parse_sets
from .sources import Found, catalog, code_sha256, for_run, locate, resolve, spec_of


def _discover() -> dict[str, Experiment]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "EXPERIMENT", None), Experiment):
            found.append(module.EXPERIMENT)
    return {e.name: e for e in sorted(found, key=lambda e: (e.seed_notebook, e.name))}


#: The built-in experiments, in seed-notebook order.
BUILTIN: dict[str, Experiment] = _discover()


class _Known(Mapping):
    """name -> Experiment: the built-ins in seed-notebook order, then the experiments that installed
    distributions register as entry points (those usable by name; :func:`catalog` also lists the others
    and why not). A live view: a distribution installed since is in it."""

    def _now(self) -> dict[str, Experiment]:
        return {e.name: e.experiment for e in catalog() if e.problem is None}

    def __getitem__(self, name):
        return self._now()[name]

    def __iter__(self):
        return iter(self._now())

    def __len__(self):
        return len(self._now())

    def keys(self):
        return self._now().keys()

    def items(self):
        return self._now().items()

    def values(self):
        return self._now().values()

    def __repr__(self):
        return f"EXPERIMENTS({', '.join(self._now())})"


EXPERIMENTS: Mapping[str, Experiment] = _Known()

#: The experiment a spec names (kept under its old name).
get = resolve

__all__ = ["BUILTIN", "EXPERIMENTS", "Context", "Experiment", "Figure", "Found", "KeyNumber", "ModelFacts", "Report",
           "catalog", "code_sha256", "for_run", "get", "locate", "parse_sets", "resolve", "spec_of"]
