"""Stage 7: one module per seed experiment; ``EXPERIMENTS`` maps names to them."""

from ..errors import LaminaError, closest
from .base import Context, Experiment, Result, parse_sets
from .position import EXPERIMENT as POSITION

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (POSITION,)}


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise LaminaError(f"unknown experiment {name!r}.{closest(name, EXPERIMENTS)} "
                          f"Experiments: {', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[name]


__all__ = ["EXPERIMENTS", "Context", "Experiment", "Result", "get", "parse_sets"]
