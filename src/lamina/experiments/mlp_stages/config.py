"""The settings of ``mlp-stages``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from .. import settings as shared
from ..settings import setting
from .result import CI_LEVEL


@dataclass
class MlpStagesConfig:
    book: str | None = shared.book()  # text_file / wikipedia replace it
    text_file: str | None = None  # a UTF-8 text file
    wikipedia: str | None = None  # an English Wikipedia title (seed: Coffee_production_in_Vietnam)
    word: str = " Alice"  # target; must be one token (seed: ' coffee')
    leading_space: bool = True  # add a leading space to the word when it has none
    # tokens per short sequence, the target included (seed: nseq = 10)
    context: int = setting(10, ge=2, why="the word and what precedes it")
    # more kept occurrences are thinned evenly to this many
    max_targets: int = setting(400, ge=3, why="RSA needs 3 items; and at least 3 per replicate")
    # parts of the text, each with its own long sequence and short sequences
    replicates: int = shared.replicates(4, unit="parts of the text")
    # Block of the detailed figures: an index, or a relative depth (models/depth.py); 0.5 is the
    # seed's n_layers // 2.
    focus_layer: int | float = shared.layer(0.5)
    threshold: float = setting(95.0, gt=0, lt=100)  # percent variance for effective dimensionality
    # bootstrap resamples of items per RSA interval
    n_boot: int = setting(1000, ge=100, why=f"for a {CI_LEVEL:.0f}% percentile interval")
    batch_size: int = shared.batch_size(64)

    def check(self):
        # Cross-field only (each setting's own rule is declared above): one source of text, and enough
        # targets for every replicate.
        if self.text_file and self.wikipedia:
            raise LaminaError("give one text: text_file or wikipedia, not both.")
        if self.text_file or self.wikipedia:
            self.book = None  # the other source replaces the default book; config.json then says so
        elif not self.book:
            raise LaminaError("no text: set book (e.g. alice), text_file=PATH or wikipedia=TITLE.")
        if self.max_targets < 3 * self.replicates:
            raise LaminaError(f"max_targets must be at least 3 per replicate (RSA needs 3 items): at least "
                              f"{3 * self.replicates} for replicates={self.replicates}, not {self.max_targets}.")

    def source(self) -> str:
        if self.text_file:
            return f"file {self.text_file}"
        if self.wikipedia:
            return f"Wikipedia: {self.wikipedia}"
        return f"book {self.book}"
