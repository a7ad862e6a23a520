"""Corrections for testing every layer: Benjamini–Hochberg, Holm and the max-statistic permutation test."""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), same shape as ``pvalues``.

    NaN entries stay NaN and do not count as tests.
    """
    return _adjusted(pvalues, "fdr_bh")


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise), same shape as ``pvalues``.

    NaN entries stay NaN and do not count as tests.
    """
    return _adjusted(pvalues, "holm")


def _adjusted(pvalues, method: str) -> np.ndarray:
    """statsmodels' ``multipletests(method=...)`` of the finite entries; NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def permutation_pvalue(observed, null, *, axis: int = 0) -> np.ndarray:
    """One-sided permutation p-value ``(1 + #{null >= observed}) / (1 + n)``; never 0.

    Args:
        observed: shape ``(...)``, e.g. ``(n_layers,)``.
        null: shape ``(n_permutations, ...)`` along ``axis``.
    """
    null = np.moveaxis(np.asarray(null, dtype=float), axis, 0)
    observed = np.asarray(observed, dtype=float)
    return (1 + (null >= observed[None]).sum(axis=0)) / (1 + null.shape[0])


def max_statistic_pvalue(observed, null) -> np.ndarray:
    """Family-wise corrected p-values across tests (layers) by the max statistic.

    Each permutation's largest statistic across layers forms one null distribution;
    ``p_l = (1 + #{max_null >= observed_l}) / (1 + n)``. It controls the family-wise error, but is
    fair to every test only when their nulls share a scale: the same measure on different layers
    need not (a JS divergence's null shrinks with the bins a layer occupies), and a test with a
    small null then can never reach the maximum. :func:`standardised_max_pvalue` puts them on one
    scale first.

    Args:
        observed: shape ``(n_tests,)``; null: shape ``(n_permutations, n_tests)``.
    """
    null = np.asarray(null, dtype=float)
    max_null = np.nanmax(null, axis=1)  # (n_permutations,)
    observed = np.asarray(observed, dtype=float)
    return (1 + (max_null[:, None] >= observed[None, :]).sum(axis=0)) / (1 + len(max_null))


def significant(pvalues, alpha: float) -> np.ndarray:
    """The one decision rule of lamina: significant when ``p <= alpha`` (NaN: not significant).

    ``<=`` is the rule under which a permutation p-value ``(1 + #) / (1 + n)`` rejects a true null
    with probability at most ``alpha``, and the one statsmodels' ``multipletests`` applies.
    """
    p = np.asarray(pvalues, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(p), p <= alpha, False)


def standardised_max_pvalue(observed, null, *, centre=None, two_sided: bool = False, tie: float = 0.0) -> np.ndarray:
    """Family-wise corrected p-values across tests whose nulls differ in scale: the max statistic of
    each test's statistic standardised by its own null.

    The plain max statistic (:func:`max_statistic_pvalue`) lets the test with the widest null set
    the threshold for all: a test whose null is small (e.g. a layer whose histogram has few occupied
    bins) can then never reach it. Standardising first, ``z = (statistic − centre) / sd`` with the
    centre (default: the null's mean) and sd of each test's own null, puts every test on one scale
    (Westfall & Young's max-T). The map is monotone per test, so the corrected p is never below the
    test's own permutation p.

    Args:
        observed: shape ``(n_tests,)``.
        null: shape ``(n_permutations, n_tests)``; row k is permutation k at every test (shared
            permutations keep the dependence between tests).
        centre: shape ``(n_tests,)`` or None (the null's mean per test); e.g. the exact expectation
            of a statistic under the permutations.
        two_sided: compare ``|z|`` (a signed statistic such as a difference of means).
        tie: subtracted from ``|observed − centre|`` (or ``observed``) before standardising, so that
            permutations equal to the data up to summation order count as reaching it.

    Returns:
        Shape ``(n_tests,)``: ``(1 + #{k: max_l z_null[k, l] >= z_obs}) / (1 + n_permutations)``. A
        test whose null has no spread cannot be standardised: it never sets the maximum and its p is 1.
    """
    null = np.asarray(null, dtype=float)
    observed = np.asarray(observed, dtype=float)
    centre = null.mean(axis=0) if centre is None else np.asarray(centre, dtype=float)
    spread = null.std(axis=0)
    flat = ~(spread > 0)
    spread = np.where(flat, 1.0, spread)
    if two_sided:
        z_obs = (np.abs(observed - centre) - tie) / spread
        z_null = np.abs(null - centre) / spread
    else:
        z_obs = (observed - tie - centre) / spread
        z_null = (null - centre) / spread
    z_obs = np.where(flat, np.inf, z_obs)  # never reached by the max: p = 1 below
    z_null = np.where(flat[None], -np.inf, z_null)
    p = max_statistic_pvalue(z_obs, z_null)
    return np.where(flat, 1.0, p)
