"""Replicates in a result: the across-replicate tests of one statistic, and how replicates agree.

An experiment with ``replicates = R`` computes its statistics on each of R text samples (windows
of a book, passages, parts of a book) and on all of them pooled. :func:`across_layers` is the one
typed form of :func:`lamina.stats.replicates.across_replicates`: for every test of a family (every
layer, layer × head, ...) the replicates' mean, its t interval, the one-sample t test against the
null value and the p-value corrected across the family, and the decision by the one rule
(:func:`lamina.stats.multiple.significant`, p <= alpha), as arrays (:class:`AcrossLayers`).
:class:`Across` is the same for one test (one layer, one pair, ...), for results that keep an
entry per test (:func:`across_tests`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats.multiple import significant
from ..stats.replicates import across_replicates
from .typed import BoolArray, FloatArray, Typed

NEEDS_TWO = "needs at least 2 replicates (replicates=1: the pooled sample is the only one)"


@dataclass(frozen=True, eq=False)
class AcrossLayers(Typed):
    """A family of tests across replicates (replicates as the unit), each field shaped like the tests
    (``(n_layers,)``, ``(n_layers, n_heads)``, ...)."""

    mean: FloatArray  # mean over replicates
    ci_low: FloatArray  # Student t interval of the mean (level: the result's)
    ci_high: FloatArray
    t: FloatArray  # one-sample t against the null value; ±inf where the replicates do not vary (results.json: null)
    p: FloatArray  # uncorrected
    p_corrected: FloatArray  # corrected across the family (the result says which correction)
    significant: BoolArray  # p_corrected <= alpha


def across_layers(values, *, alpha: float, null: float = 0.0, alternative: str = "two-sided",
                  correction: str = "bh", level: float = 95.0, n_flips: int = 10_000, rng=None) -> AcrossLayers:
    """The tests of every layer (or any family of tests) across replicates.

    Args:
        values: shape ``(R, ...)``: one value per replicate and test; the tests (all trailing axes
            together) are one family for the correction.
        alpha: level of the decisions.
        null, alternative, correction, level, n_flips, rng: as :func:`lamina.stats.replicates.across_replicates`.

    Returns:
        :class:`AcrossLayers` whose arrays have shape ``values.shape[1:]``.
    """
    values = np.asarray(values, dtype=np.float64)
    shape = values.shape[1:]
    summary = across_replicates(values.reshape(len(values), -1), null=null, alternative=alternative, level=level,
                                correction=correction, n_flips=n_flips, rng=rng)
    return AcrossLayers(**{name: getattr(summary, name).reshape(shape) for name in (
        "mean", "ci_low", "ci_high", "t", "p", "p_corrected")},
        significant=significant(summary.p_corrected, alpha).reshape(shape))


@dataclass(frozen=True, eq=False)
class Across(Typed):
    """One test across replicates (replicates as the unit)."""

    mean: float  # mean over replicates
    ci_low: float  # Student t interval of the mean (level: the result's ci_level or 95%)
    ci_high: float
    t: float  # one-sample t against the null value (NaN when the replicates do not vary: JSON has no inf)
    p: float  # uncorrected
    p_corrected: float  # corrected across the family (the result says which correction)
    significant: bool  # p_corrected <= alpha


def across_tests(values, *, alpha: float, null: float = 0.0, alternative: str = "two-sided",
                 correction: str = "bh", level: float = 95.0, rng=None) -> np.ndarray:
    """:class:`Across` entries for every test, same shape as ``values.shape[1:]``.

    Args:
        values: shape ``(R, ...)``: one value per replicate and test; the tests (all trailing axes
            together) are one family for the correction.
        alpha, null, alternative, correction, level, rng: as :func:`across_layers`.

    Returns:
        An object array of :class:`Across` of shape ``values.shape[1:]``.
    """
    tests = across_layers(np.asarray(values, dtype=np.float64), alpha=alpha, null=null, alternative=alternative,
                          correction=correction, level=level, rng=rng)
    out = np.empty(tests.mean.shape, dtype=object)
    for i in np.ndindex(out.shape):
        t = tests.t[i] if np.isfinite(tests.t[i]) else np.nan
        out[i] = Across(mean=tests.mean[i], ci_low=tests.ci_low[i], ci_high=tests.ci_high[i], t=t, p=tests.p[i],
                        p_corrected=tests.p_corrected[i], significant=tests.significant[i])
    return out


def column(entries, name: str) -> np.ndarray:
    """One field of an array of :class:`Across` entries, as a float array of the same shape."""
    entries = np.asarray(entries, dtype=object)
    return np.vectorize(lambda e: getattr(e, name), otypes=[float])(entries)


def sign_agreement(per_replicate, pooled, cells) -> tuple[float, int, int, bool]:
    """How far the replicates agree with the pooled result on the direction of an effect.

    A replicate agrees in a cell when its estimate has the pooled estimate's sign.

    Args:
        per_replicate: shape ``(R, ...)``, each replicate's estimate per cell.
        pooled: shape ``(...)``, the pooled estimate per cell.
        cells: shape ``(...)`` bool, the cells that count: where the pooled test is significant. When
            none is, every cell counts.

    Returns:
        ``(share, n_all, n_cells, significant_only)``: the share of (replicate, cell) estimates with the
        pooled sign, the number of replicates with the pooled sign in every counted cell, the number of
        counted cells, and whether they are the significant ones.
    """
    per_replicate, pooled = np.asarray(per_replicate, float), np.asarray(pooled, float)
    cells = np.asarray(cells, bool)
    significant_only = bool(cells.any())
    if not significant_only:
        cells = np.ones_like(cells)
    same = np.sign(per_replicate[:, cells]) == np.sign(pooled[cells])[None]
    return float(same.mean()), int(same.all(axis=1).sum()), int(cells.sum()), significant_only


def agreement_sentence(agreement: tuple[float, int, int, bool], n_replicates: int, what: str, unit: str) -> str:
    """One sentence on how many replicates agree with the pooled result (:func:`sign_agreement`)."""
    share, n_all, n_cells, significant_only = agreement
    where = (f"at all {n_cells} {what} where the pooled test is significant" if significant_only else
             f"at all {n_cells} {what} (none is significant in the pooled result)")
    return (f"{n_all} of {n_replicates} {unit}s agree with the pooled result, their estimate having the pooled "
            f"sign {where}; {100 * share:.1f}% of all {unit} × cell estimates have it.")


@dataclass(frozen=True, eq=False)
class Interval(Typed):
    """The replicates' mean of one statistic and its Student t interval (a band, no test)."""

    mean: float
    ci_low: float
    ci_high: float


def intervals(values, level: float = 95.0) -> np.ndarray:
    """:class:`Interval` entries (object array of shape ``values.shape[1:]``) from ``values`` ``(R, ...)``."""
    from ..stats.replicates import t_interval

    values = np.asarray(values, dtype=np.float64)
    mean, low, high = t_interval(values.reshape(len(values), -1), level)
    out = np.empty(len(mean), dtype=object)
    for i in range(len(out)):
        out[i] = Interval(mean=mean[i], ci_low=low[i], ci_high=high[i])
    return out.reshape(values.shape[1:])
