"""Corrections for testing every layer: Benjamini–Hochberg and the max-statistic permutation test."""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), same shape as ``pvalues``.

    NaN entries stay NaN and do not count as tests.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
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
    ``p_l = (1 + #{max_null >= observed_l}) / (1 + n)``. Valid when the statistics share a
    scale (e.g. one divergence measure per layer).

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
