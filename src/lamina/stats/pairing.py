"""Replicates as the unit for a statistic of labels and values: pair each replicate's values with
another replicate's labels.

Within one window of text both the values (attention-output norms) and the labels (correct or not)
are autocorrelated, and shuffling labels token by token breaks that: the shuffled statistic is
smaller than what two independent but autocorrelated series give, so the test rejects too often.
Pairing replicate r's values with replicate q's labels keeps both series whole: under H0 (labels
independent of values, replicates exchangeable) every pairing of the R label series with the R value
series is as likely as the observed one (the "shift predictor" or trial-shuffling control of
neurophysiology). The test permutes which replicate's labels go with which replicate's values; all
R! pairings when there are few, so the smallest p is 1/R! (R = 4: 0.042).

* :func:`js_pairs`: the Jensen–Shannon divergence for every (values, labels) pair of replicates,
  every layer;
* :func:`pairing_test`: the permutation test of the matched pairs against the other pairings, per
  test and family-wise across tests (standardised max statistic).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import LaminaError
from .divergence import check_groups, js_divergence
from .multiple import permutation_pvalue, standardised_max_pvalue
from .permutation import binned

_TIE = 1e-12


@dataclass(frozen=True)
class PairingTest:
    """Per test (shape ``(n_tests,)`` each).

    Attributes:
        observed: mean over replicates of the matched statistic ``stat[r, r]``.
        mismatched: mean over the R·(R − 1) mismatched pairs ``stat[r, q]``, r ≠ q (the baseline).
        p: one-sided, ``#{pairings with a mean ≥ observed} / n_pairings`` (the observed pairing counted).
        p_max: family-wise across tests, by the max of each test's statistic standardised by the
            pairings' mean and sd.
        n_pairings: pairings compared (all R! when ``exact``).
    """

    observed: np.ndarray
    mismatched: np.ndarray
    p: np.ndarray
    p_max: np.ndarray
    n_pairings: int
    exact: bool


def js_pairs(values, labels, n_bins: int) -> np.ndarray:
    """JS divergence between the True and False groups of replicate r's values under replicate q's labels.

    Args:
        values: shape ``(R, n_layers, n)``: each replicate's values (e.g. log norms) at every layer;
            each replicate's layer is binned on its own edges (its min to max), as for one window.
        labels: shape ``(R, n)`` bool; each row needs 2 or more tokens in each group.
        n_bins: histogram bins per layer.

    Returns:
        Shape ``(R, R, n_layers)``: entry ``[r, q]`` splits replicate r's values by replicate q's labels,
        so the diagonal holds each replicate's own divergence.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    if values.ndim != 3 or labels.shape != (values.shape[0], values.shape[2]):
        raise LaminaError(f"values (R, n_layers, n) and labels (R, n) do not match: {values.shape}, {labels.shape}.")
    for q, row in enumerate(labels):
        check_groups(row, (f"True (replicate {q})", f"False (replicate {q})"))
    labels = labels.astype(np.float64)
    n_true = labels.sum(axis=1)  # (R,)
    n_false = labels.shape[1] - n_true
    out = np.empty((values.shape[0], values.shape[0], values.shape[1]))
    for r, rows in enumerate(values):
        _, bins = binned(rows, n_bins)  # (n_layers, n)
        one_hot = np.zeros(bins.shape + (n_bins,))
        np.put_along_axis(one_hot, bins[..., None], 1.0, axis=-1)  # (n_layers, n, n_bins)
        true_counts = np.einsum("ltb,qt->qlb", one_hot, labels)  # (R, n_layers, n_bins)
        false_counts = one_hot.sum(axis=1)[None] - true_counts
        out[r] = js_divergence(true_counts / n_true[:, None, None], false_counts / n_false[:, None, None])
    return out


@functools.cache
def _all_pairings(r: int) -> np.ndarray:
    """Every permutation of ``range(r)``, shape ``(r!, r)``, the identity first (read-only)."""
    out = np.array(list(itertools.permutations(range(r))), dtype=np.intp)
    out.setflags(write=False)
    return out


def _pairings(r: int, n_permutations: int, rng) -> tuple[np.ndarray, bool]:
    """Shape ``(n, R)``, the identity first: all R! permutations when that is at most ``n_permutations``."""
    if math.factorial(r) <= n_permutations:
        return _all_pairings(r), True
    if rng is None:
        raise LaminaError(f"{r} replicates have {r}! pairings, more than n_permutations={n_permutations}: give rng "
                          "to draw them.")
    drawn = rng.permuted(np.tile(np.arange(r), (n_permutations - 1, 1)), axis=1)
    return np.vstack([np.arange(r), drawn]), False


def pairing_test(stat, *, n_permutations: int = 10_000, rng: np.random.Generator | None = None) -> PairingTest:
    """One-sided test that matched pairs of replicates give a larger statistic than other pairings.

    Args:
        stat: shape ``(R, R, n_tests)``: ``stat[r, q]`` = the statistic of replicate r's values under
            replicate q's labels (e.g. :func:`js_pairs`), R >= 2.
        n_permutations: at most this many pairings: all R! when that is not more, else the observed
            one and ``n_permutations − 1`` drawn from ``rng`` (the same pairings for every test).

    Returns:
        :class:`PairingTest`.
    """
    stat = np.asarray(stat, dtype=np.float64)
    if stat.ndim == 2:
        stat = stat[..., None]
    if stat.ndim != 3 or stat.shape[0] != stat.shape[1]:
        raise LaminaError(f"stat must have shape (R, R, n_tests), not {stat.shape}.")
    r = stat.shape[0]
    if r < 2:
        raise LaminaError(f"pairing replicates needs at least 2 replicates, not {r}.")
    if not np.isfinite(stat).all():
        raise LaminaError("the paired statistics contain NaN or inf.")
    perms, exact = _pairings(r, n_permutations, rng)
    means = stat[np.arange(r)[None], perms].mean(axis=1)  # (n_pairings, n_tests); row 0 = observed
    observed, others = means[0], means[1:]
    off = ~np.eye(r, dtype=bool)
    return PairingTest(observed=observed, mismatched=stat[off].mean(axis=0),
                       p=permutation_pvalue(observed - _TIE, others),
                       p_max=standardised_max_pvalue(observed, others, tie=_TIE),
                       n_pairings=len(perms), exact=exact)
