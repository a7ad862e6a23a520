"""The typed result of ``position``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class OLSFit(Typed):
    """OLS of position on loss (statsmodels)."""

    const: float
    slope: float
    p_const: float
    p_slope: float
    r2: float


@dataclass(frozen=True, eq=False)
class LogisticFit(Typed):
    """Multinomial logistic regression: one intercept and one slope on loss per position."""

    intercepts: FloatArray  # (k,)
    coefs: FloatArray  # (k,)


@dataclass(frozen=True, eq=False)
class SplitScores(Typed):
    """Decoding on one split."""

    accuracy_by_position: FloatArray  # (k,) percent, NaN for a position without samples
    confusion: IntArray  # (k, k) counts, rows = true position
    accuracy: float  # percent
    p_above_chance: float  # one-sided binomial test of the overall accuracy


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """The recorded tokens of both splits (k = seqlen - 1 positions with a loss)."""

    train_losses: np.ndarray  # (n_train, k) float32, -log p(next token), nats
    test_losses: np.ndarray  # (n_test, k) float32
    train_tokens: np.ndarray  # (n_train, k) str, the token at each position
    test_tokens: np.ndarray  # (n_test, k) str
    train_text_index: np.ndarray  # (n_train,) int64, HellaSwag row of each context
    test_text_index: np.ndarray  # (n_test,) int64


@dataclass(frozen=True, eq=False)
class PositionResult(Typed):
    n_train: int
    n_test: int
    seqlen: int
    loss_by_position: FloatArray  # (k,) mean training loss per position
    test_loss_by_position: FloatArray
    ols: OLSFit
    logistic: LogisticFit
    chance_percent: float
    train: SplitScores
    test: SplitScores
    ols_t_slope: float = detail_field()  # t statistic of the slope, for the report
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    tokens: Tokens = array_field()
