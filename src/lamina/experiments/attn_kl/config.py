"""The settings of ``attn-kl``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from .. import settings as shared
from ..settings import setting
from . import labels
from .result import CORRECTION_NAMES, DEFAULT_SKIP_FIRST, SHUFFLES


@dataclass
class AttnKLConfig:
    book: str = shared.book()
    # Tokens per window; None: min(context - BOS, 1024, max(64, 2048 // replicates)), i.e. the seed's
    # whole context (capped at 1024) with one window, 8 windows of 256 tokens by default.
    window: int | None = shared.window(None, minimum=4, why="two groups of at least 2 tokens")
    # Disjoint windows of the book (stimuli.windows): window 0 is the middle one (the seed's), the others
    # spread over the rest. They are the unit of the tests across windows (replicates=1: the seed's design).
    replicates: int = shared.replicates(8)
    # The layer of the single-layer figures: an index, or a relative depth (models/depth.py). The seed's
    # layer 4 of gpt2-large's 36 is depth 0.125 (block 4 of 36, block 3 of SmolLM2's 30).
    focus_layer: int | float = shared.layer(0.125)
    bins: int = shared.bins(30, minimum=2)  # histogram bins (the seed's torch.linspace(min, max, 31): 31 edges)
    # bin counts swept, inclusive (the seed's nbins = 10..50 edges)
    bins_sweep: tuple[int, int] = setting((9, 49), ge=1, order="<=")
    n_permutations: int = shared.n_permutations()
    # labels are shuffled within "window"s, or within windows and next-token "length"s
    shuffle: str = setting("window", choices=SHUFFLES)
    # across layers: "max" (max-statistic, family-wise) or "bh" (Benjamini-Hochberg)
    correction: str = setting("max", choices=CORRECTION_NAMES)
    alpha: float = shared.alpha()
    # An attn-kl run directory whose correct/incorrect labels (the predictions of its model) are used
    # instead of this model's: same book, windows and tokenizer. lamina compare sets it for untrained
    # controls, which predict (almost) nothing correctly. None: this model's own predictions.
    labels_from: str | None = shared.labels_from(labels.check_run_dir)
    # Each window's first tokens (a new context: few correct, small norms) are left out of both groups; 0
    # keeps them (the seed's design). The other choice is run too, and the report says which layers hold.
    skip_first: int = shared.skip_first(DEFAULT_SKIP_FIRST, why="and at most window - 4")

    def check(self):
        # Cross-field only (each setting's own rule is declared above): the tokens a window keeps.
        if self.window is not None and self.window - self.skip_first < 2 * 2:
            raise LaminaError(f"window={self.window} with skip_first={self.skip_first} leaves "
                              f"{self.window - self.skip_first} tokens per window; two groups of at least 2 tokens "
                              "need 4 or more.")
