"""The typed result of ``position``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...stats import confusion_table
from ..across import AcrossLayers
from ..base import ModelFacts, profile_table
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field, dims

LEVEL = 95.0  # every interval


def span(config) -> int:
    """Rows one replicate covers (train and test ranges with the gap between them): the shift per replicate."""
    return max(config.train_start, config.test_start) + config.n_samples - min(config.train_start, config.test_start)


@dataclass(frozen=True, eq=False)
class OLSFit(Typed):
    """OLS of position on loss (statsmodels), standard errors cluster-robust by context."""

    const: float
    slope: float
    se_slope: float  # cluster-robust by context
    ci_low: float  # the slope's interval (t, G − 1 degrees of freedom)
    ci_high: float
    p_const: float  # cluster-robust
    p_slope: float  # cluster-robust, two-sided
    r2: float
    n_contexts: int  # clusters (G)
    se_slope_iid: float  # the seed's: every token independent
    p_const_iid: float
    p_slope_iid: float

    @classmethod
    def of(cls, fit: dict, iid: dict) -> OLSFit:
        """From :func:`lamina.stats.ols` of position on loss, cluster-robust (``fit``) and iid (``iid``)."""
        return cls(const=fit["params"]["const"], slope=fit["params"]["loss"], se_slope=fit["bse"]["loss"],
                   ci_low=fit["ci_low"]["loss"], ci_high=fit["ci_high"]["loss"], p_const=fit["pvalues"]["const"],
                   p_slope=fit["pvalues"]["loss"], r2=fit["r2"], n_contexts=fit["n_groups"],
                   se_slope_iid=iid["bse"]["loss"], p_const_iid=iid["pvalues"]["const"],
                   p_slope_iid=iid["pvalues"]["loss"])


@dataclass(frozen=True, eq=False)
class LogisticFit(Typed):
    """Multinomial logistic regression: one intercept and one slope on loss per position."""

    intercepts: FloatArray  # (k,)
    coefs: FloatArray  # (k,)


@dataclass(frozen=True, eq=False)
class TrainScores(Typed):
    """Decoding on the training contexts (in sample: descriptive, not a test)."""

    accuracy_by_position: FloatArray  # (k,) percent, NaN for a position without samples
    confusion: IntArray  # (k, k) counts, rows = true position
    accuracy: float  # percent


@dataclass(frozen=True, eq=False)
class HeldOutScores(Typed):
    """Decoding on the held-out contexts, the context as the unit of the interval and the test."""

    accuracy_by_position: FloatArray  # (k,) percent
    confusion: IntArray  # (k, k)
    accuracy: float  # percent
    ci_low: float  # percent, t interval over contexts
    ci_high: float
    p_above_chance: float  # one-sided t test of the contexts' accuracies against chance
    significant: bool  # p_above_chance <= alpha


@dataclass(frozen=True, eq=False)
class Subset(Typed):
    """One replicate: a disjoint pair of HellaSwag row ranges, its own OLS and decoder."""

    replicate: int
    train_start: int  # first HellaSwag row of its training contexts
    test_start: int
    n_train: int
    n_test: int
    slope: float
    slope_ci_low: float  # cluster-robust 95% interval
    slope_ci_high: float
    p_slope: float  # cluster-robust
    test_accuracy: float  # percent
    test_ci_low: float
    test_ci_high: float
    p_above_chance: float
    significant: bool
    agrees: bool  # its held-out decision (significant or not) is the pooled one

    @classmethod
    def of(cls, replicate: int, rows: tuple[int, int], n_train: int, n_test: int, fit: dict,
           pooled_significant: bool) -> Subset:
        """One replicate from its first train and test rows ``rows``, its sizes and its ``fit`` (see
        :meth:`PositionResult.of`)."""
        ols, held_out = fit["ols"], fit["held_out"]
        return cls(replicate=replicate, train_start=rows[0], test_start=rows[1], n_train=n_train, n_test=n_test,
                   slope=ols["params"]["loss"], slope_ci_low=ols["ci_low"]["loss"],
                   slope_ci_high=ols["ci_high"]["loss"], p_slope=ols["pvalues"]["loss"], test_accuracy=held_out.mean,
                   test_ci_low=held_out.ci_low, test_ci_high=held_out.ci_high, p_above_chance=held_out.p,
                   significant=fit["significant"], agrees=fit["significant"] == pooled_significant)


@dataclass(frozen=True, eq=False)
class AcrossMean(Typed):
    """One value per replicate, replicates as the unit: mean, t interval, one-sample t test."""

    mean: float
    ci_low: float
    ci_high: float
    t: float
    p: float
    significant: bool

    @classmethod
    def of(cls, test: AcrossLayers) -> AcrossMean:
        """A test that is its own family (its p is not corrected): :func:`lamina.experiments.across.across_layers`
        of one value per replicate (arrays of shape ``()``). t stays ±inf where the replicates do not vary."""
        return cls(mean=test.mean, ci_low=test.ci_low, ci_high=test.ci_high, t=test.t, p=test.p,
                   significant=test.significant)


@dataclass(frozen=True, eq=False)
class AcrossSubsets(Typed):
    n: int
    level: float  # percent
    test_accuracy: AcrossMean  # percent, one-sided against chance
    slope: AcrossMean  # two-sided against 0
    n_agree: int


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """The recorded tokens of both splits of every replicate (k = seqlen - 1 positions with a loss)."""

    # The two splits are different contexts: their axes are named apart (Run.to_xarray).
    train_losses: np.ndarray = dims("train_context", "position")  # float32, -log p(next token), nats
    test_losses: np.ndarray = dims("test_context", "position")  # float32
    train_tokens: np.ndarray = dims("train_context", "position")  # str, the token at each position
    test_tokens: np.ndarray = dims("test_context", "position")  # str
    train_text_index: np.ndarray = dims("train_context")  # int64, HellaSwag row of each context
    test_text_index: np.ndarray = dims("test_context")  # int64
    train_replicate: np.ndarray = dims("train_context")  # int64
    test_replicate: np.ndarray = dims("test_context")  # int64

    @classmethod
    def of(cls, blocks: dict) -> Tokens:
        """Every replicate's contexts in replicate order, from ``blocks`` ``{(replicate, split): (losses (n, k)
        float32, tokens (n, k) str, HellaSwag rows (n,))}`` (split ``"train"`` or ``"test"``)."""
        reps = sorted({r for r, _ in blocks})

        def joined(split: str, i: int) -> np.ndarray:
            return np.concatenate([blocks[r, split][i] for r in reps])

        def replicate(split: str) -> np.ndarray:
            return np.concatenate([np.full(len(blocks[r, split][0]), r) for r in reps])

        return cls(train_losses=joined("train", 0), test_losses=joined("test", 0), train_tokens=joined("train", 1),
                   test_tokens=joined("test", 1), train_text_index=joined("train", 2),
                   test_text_index=joined("test", 2), train_replicate=replicate("train"),
                   test_replicate=replicate("test"))


@dataclass(frozen=True, eq=False)
class PositionResult(Typed):
    n_train: int  # all replicates
    n_test: int
    seqlen: int
    n_replicates: int
    alpha: float
    loss_by_position: FloatArray  # (k,) mean training loss per position
    test_loss_by_position: FloatArray
    ols: OLSFit
    logistic: LogisticFit
    chance_percent: float
    train: TrainScores
    test: HeldOutScores
    replicates: tuple[Subset, ...]
    across: AcrossSubsets | None  # None with one replicate
    ols_t_slope: float = detail_field()  # t statistic of the slope (cluster-robust), for the report
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    tokens: Tokens = array_field()

    @classmethod
    def of(cls, config, pooled: dict, fits: list[dict], ranges, across: AcrossSubsets | None, tokens: Tokens, *,
           model: ModelFacts, notes) -> PositionResult:
        """The result from its parts.

        Args:
            config: the run's settings (``PositionConfig``).
            pooled: the fit of every replicate's contexts together; ``fits``: each replicate's own (``[pooled]``
                with one replicate). A fit is a dict: ``ols`` and ``iid`` (:func:`lamina.stats.ols` of position
                on loss, cluster-robust by context and iid), ``logistic`` (the decoder), ``train`` and ``test``
                (:func:`lamina.stats.classification`), ``held_out`` (the contexts' held-out accuracy against
                chance, :func:`lamina.stats.clusters.cluster_mean`) and ``significant`` (its decision).
            ranges: ``(train_start, test_start)`` of each replicate.
            across: the tests across replicates (None with one replicate).
            tokens: every replicate's recorded contexts; ``model``, ``notes``: the model's facts, the data notes.
        """
        train, test = tokens.train_losses.astype(float), tokens.test_losses.astype(float)
        fit, s_train, s_test, held_out = pooled["ols"], pooled["train"], pooled["test"], pooled["held_out"]
        subsets = tuple(Subset.of(r, ranges[r], int((tokens.train_replicate == r).sum()),
                                  int((tokens.test_replicate == r).sum()), f, pooled["significant"])
                        for r, f in enumerate(fits))
        return cls(
            n_train=len(train), n_test=len(test), seqlen=config.seqlen, n_replicates=config.replicates,
            alpha=config.alpha, loss_by_position=train.mean(axis=0), test_loss_by_position=test.mean(axis=0),
            ols=OLSFit.of(fit, pooled["iid"]),
            logistic=LogisticFit(intercepts=pooled["logistic"].intercept_, coefs=pooled["logistic"].coef_[:, 0]),
            chance_percent=100 / (config.seqlen - 1),
            train=TrainScores(accuracy_by_position=s_train["accuracy_by_class"], confusion=s_train["confusion"],
                              accuracy=s_train["accuracy"]),
            test=HeldOutScores(accuracy_by_position=s_test["accuracy_by_class"], confusion=s_test["confusion"],
                               accuracy=s_test["accuracy"], ci_low=held_out.ci_low, ci_high=held_out.ci_high,
                               p_above_chance=held_out.p, significant=pooled["significant"]),
            replicates=subsets, across=across, ols_t_slope=fit["tvalues"]["loss"], model=model,
            data_notes=tuple(notes), tokens=tokens)


def _loss_table(losses, texts, text_index, replicate, split) -> pd.DataFrame:
    n, k = losses.shape
    return pd.DataFrame({"replicate": np.repeat(replicate, k), "sequence": np.repeat(np.arange(n), k),
                         "position": np.tile(np.arange(k), n), "token": texts.ravel(), "loss": losses.ravel(),
                         "split": split, "text_index": np.repeat(text_index, k)})


def tables(result: PositionResult) -> dict[str, pd.DataFrame]:
    t, k = result.tokens, result.seqlen - 1
    return {
        "losses": pd.concat([_loss_table(t.train_losses, t.train_tokens, t.train_text_index, t.train_replicate,
                                         "train"),
                             _loss_table(t.test_losses, t.test_tokens, t.test_text_index, t.test_replicate, "test")],
                            ignore_index=True),
        "confusion_train": confusion_table(result.train.confusion, "position"),
        "confusion_test": confusion_table(result.test.confusion, "position"),
        "accuracy_by_position": pd.DataFrame({
            "position": np.arange(k), "train_percent": result.train.accuracy_by_position,
            "test_percent": result.test.accuracy_by_position, "mean_loss_train": result.loss_by_position,
            "mean_loss_test": result.test_loss_by_position}),
        "replicates": pd.DataFrame([vars(s) for s in result.replicates]),
    }


def profiles(result: PositionResult) -> pd.DataFrame:
    """No per-layer metrics: position reads only the model's output (an empty profile table)."""
    return profile_table()
