"""The settings of ``lens``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import settings as shared
from ..settings import setting


LENSES = ("logit", "tuned")


@dataclass
class LensConfig:
    book: str = shared.book()
    window: int = shared.window(128)  # tokens per window
    # Disjoint windows of the book (stimuli.windows): the replicates, the unit of every interval.
    replicates: int = shared.replicates(8, minimum=2)
    # "logit": the logit lens; "tuned": also the tuned lens (Belrose et al. 2023), its translators fitted
    # first on other windows of the book (cached by weights and settings; the tuned_* settings).
    lens: str = setting("logit", choices=LENSES)
    vocab_chunk: int = setting(8192, ge=1)  # vocabulary ids per step of the streamed softmax (memory, not results)
    tuned_windows: int = setting(16, ge=1)  # training windows of `window` tokens, disjoint from the evaluated ones
    tuned_steps: int = setting(250, ge=1)  # Adam steps (the cost grows linearly: docs/results.md)
    tuned_batch: int = setting(32, ge=1)  # tokens per step, drawn from the training windows
    tuned_lr: float = setting(1e-3, gt=0, le=1, why="a learning rate")  # peak learning rate, decayed linearly to 0
