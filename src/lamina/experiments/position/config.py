"""The settings of ``position``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from .. import settings as shared
from ..settings import setting


@dataclass
class PositionConfig:
    # Tokens per context; losses exist for positions 0..seqlen-2.
    seqlen: int = setting(6, ge=3, why="two positions to tell apart")
    n_samples: int = setting(500, ge=2)  # contexts per split and replicate
    train_start: int = setting(0, ge=0)  # HellaSwag rows train_start.. (seed: 0-499)
    test_start: int = setting(1000, ge=0)  # held-out rows (seed: 1000-1499)
    # Disjoint pairs of row ranges: replicate r takes replicate 0's rows (the seed's) shifted by r times their
    # span (1500 rows by default), so the replicates share no context. Six fit HellaSwag validation's 10,042
    # rows and give the across-replicate t test 5 degrees of freedom (two gave it 1).
    replicates: int = shared.replicates(6, unit="row subsets")
    split: str = "validation"
    batch_size: int = shared.batch_size(100)
    alpha: float = shared.alpha()

    def check(self):
        # Cross-field only (each setting's own rule is declared above): the two row ranges must not overlap.
        lo, hi = sorted([(self.train_start, "train"), (self.test_start, "test")])
        if lo[0] + self.n_samples > hi[0]:
            raise LaminaError(f"the train rows (train_start={self.train_start}) and test rows (test_start="
                              f"{self.test_start}) overlap with n_samples={self.n_samples}; held-out rows must be "
                              "distinct.")
