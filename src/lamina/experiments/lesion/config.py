"""The settings of ``lesion``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import settings as shared
from ..settings import setting
from . import labels
from .result import CORRECTIONS


ABLATIONS = ("mean", "zero", "resample")
SITES = ("attn.out", "mlp.out")


@dataclass
class LesionConfig:
    book: str = shared.book()
    window: int = shared.window(128)  # tokens per window
    # Disjoint windows of the book (stimuli.windows): the replicates, the unit of every interval and test.
    replicates: int = shared.replicates(8, minimum=2)
    # What replaces the site at the ablated layer: "mean" (its mean over the clean recording of the same
    # windows), "zero", or "resample" (each token's value at a random token of another window, clean run).
    ablation: str = setting("mean", choices=ABLATIONS)
    # each is ablated separately, one layer at a time
    sites: tuple[str, ...] = setting(SITES, min_items=1, choices=SITES, unique=True)
    # across layers: "max" (sign-flip max-|t|) or "holm"; both family-wise
    correction: str = setting("max", choices=CORRECTIONS)
    alpha: float = shared.alpha()
    # A lesion run directory of another model on the same windows (same tokenizer) whose clean
    # correct/incorrect labels split the tokens here: what ``lamina compare`` gives an untrained control,
    # which predicts (almost) nothing correctly itself. None: this model's own labels.
    labels_from: str | None = shared.labels_from(labels.check_run_dir)
