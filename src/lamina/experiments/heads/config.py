"""The settings of ``heads``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from .. import labelled
from .. import settings as shared
from ..settings import setting
from .result import CORRECTIONS


def _check_labels_run(path: str) -> None:
    """A LaminaError unless ``path`` holds a heads run's config and token table (``labels_from``)."""
    labelled.check_run_dir(path, "a heads")


@dataclass
class HeadsConfig:
    book: str = shared.book()
    window: int = shared.window(128, minimum=4)  # tokens per window (the BOS, where fed, comes on top)
    # Disjoint windows of the book (stimuli.windows): the replicates, the unit of every interval and test.
    replicates: int = shared.replicates(8, minimum=2)
    # over layer × head: "max" (sign-flip max-|t|) or "holm"; both family-wise
    correction: str = setting("max", choices=CORRECTIONS)
    alpha: float = shared.alpha()
    # Each window's first tokens (a new context: few correct predictions, small norms; attn-kl's
    # "Window starts") are left out of the correct/incorrect split; the attention scores use every query.
    skip_first: int = shared.skip_first(16, why="and at most window - 2")
    # A heads run of another model (same book, window, replicates) whose correct/incorrect labels split the
    # tokens: lamina compare gives an untrained control its trained model's (it predicts almost nothing itself).
    labels_from: str | None = shared.labels_from(_check_labels_run)

    def check(self):
        # Cross-field only (each setting's own rule is declared above): two tokens of a window stay in the split.
        if not self.skip_first < self.window - 1:
            raise LaminaError(f"heads: setting 'skip_first' must be at most window - 2 ({self.window - 2}), "
                              f"not {self.skip_first}.")


control_settings = labelled.control_settings  # lamina compare: an untrained control takes its trained model's labels
