"""The settings of ``attn-autoregression``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from ...stats.autoregression import SE_KINDS
from .. import settings as shared
from ..settings import setting
from .result import GATSBY_OPENING, LAGS


DEFAULT_PASSAGES = 8  # replicates for a book (cheap: 8 passages of ~100 tokens are one small recording)


@dataclass
class AutoregressionConfig:
    text: str | None = None  # a passage given directly (overrides book/text_file)
    text_file: str | None = None  # a UTF-8 text file holding the passage
    book: str = shared.book("gatsby")  # else: consecutive passages starting at `start` in it
    start: str = GATSBY_OPENING
    min_tokens: int = setting(90, ge=8)  # cut each book passage at the first sentence end after this many tokens
    # seed 002 regresses y[t] for t = 3..T-1; the lags need as many tokens before the first target
    first_target: int = setting(3, ge=len(LAGS), why=f"the lags reach {len(LAGS)} tokens back")
    alpha: float = shared.alpha()
    # Passages (replicates): None = 8 from a book, 1 for a given text (one passage by definition).
    replicates: int | None = shared.replicates(None, unit="passages")
    # standard errors: ols (the seed's) or hac (Newey-West within each passage)
    se: str = setting("ols", choices=SE_KINDS)
    hac_lags: int | None = setting(None, ge=1)  # HAC truncation lag; None: Newey-West's floor(4 (T/100)^(2/9))
    # bootstrap series per passage and layer for the bias of the position-adjusted betas
    n_boot: int = setting(50, ge=1)

    def check(self):
        # Cross-field only (each setting's own rule is declared above): a given text is one passage.
        given = self.text is not None or self.text_file is not None
        if self.replicates is None:
            self.replicates = 1 if given else DEFAULT_PASSAGES  # config.json then shows the number used
        if given and self.replicates > 1:
            raise LaminaError("a given text is one passage, so replicates must be 1; for several passages use a "
                              "book (book=NAME or a path to a text file, with start=OPENING WORDS).")
