"""Stage 10: one experiment across several models (``lamina compare``).

``compare(experiment, models, controls="random")`` runs (or reuses) each model's ordinary run
directory and its untrained control's, then lines the per-layer profiles up on relative depth:
a tidy table, key numbers side by side, where each trained model leaves its controls' band, the
differences of profiles with intervals, and a self-contained report.html. See docs/compare.md.
"""

from .core import Comparison, compare
from .plan import Member

__all__ = ["Comparison", "Member", "compare"]
