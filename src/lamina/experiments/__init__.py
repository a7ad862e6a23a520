"""Stage 7: one folder per seed experiment, each defining ``EXPERIMENT``; found automatically.

Adding an experiment is adding a folder here (see :mod:`lamina.experiments.base` for the files it
holds) whose ``__init__.py`` defines ``EXPERIMENT``; ``lamina experiments`` lists them in
seed-notebook order.
"""

import importlib
import pkgutil

from ..errors import LaminaError, closest
from .base import Context, Experiment, Figure, KeyNumber, ModelFacts, Report
from .settings import parse_sets


def _discover() -> dict[str, Experiment]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "EXPERIMENT", None), Experiment):
            found.append(module.EXPERIMENT)
    return {e.name: e for e in sorted(found, key=lambda e: (e.seed_notebook, e.name))}


EXPERIMENTS: dict[str, Experiment] = _discover()


def get(name: str) -> Experiment:
    """The :class:`Experiment` called ``name`` (``"attn-kl"``); an unknown name raises
    :class:`~lamina.LaminaError` naming the closest one and listing all."""
    if name not in EXPERIMENTS:
        raise LaminaError(f"unknown experiment {name!r}.{closest(name, EXPERIMENTS)} "
                          f"Experiments: {', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[name]


__all__ = ["EXPERIMENTS", "Context", "Experiment", "Figure", "KeyNumber", "ModelFacts", "Report", "get",
           "parse_sets"]
