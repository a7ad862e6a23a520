"""Two groups of tokens (e.g. correctly vs incorrectly predicted): shuffles within strata, the
difference of their means for many labellings at once, its two-sided permutation p and interval.

Shuffling labels within strata (a window of text, a next-token length, both) keeps each stratum's
group sizes, so a difference that only reflects how the groups are spread over strata (more correct
predictions in a window whose norms are larger; correct tokens being shorter) is part of the null.
The difference of means then has a known expectation under the shuffles (:func:`expected_difference`),
zero when there is one stratum; tests and intervals are taken around it.
"""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError
from .permutation import permuted_labels


def strata_codes(*keys) -> np.ndarray:
    """One int code per token for the combination of ``keys`` (each shape ``(n,)``), 0..n_strata-1."""
    if not keys:
        raise LaminaError("strata need at least one key.")
    stacked = np.stack([np.unique(np.asarray(k), return_inverse=True)[1].reshape(-1) for k in keys], axis=1)
    return np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def permuted_within(labels, n_permutations: int, rng: np.random.Generator, strata=None) -> np.ndarray:
    """Shape ``(n_permutations, n)``: each row shuffles ``labels`` (n,) within each stratum.

    Args:
        labels: shape ``(n,)``.
        strata: shape ``(n,)`` (any comparable values), or None for one stratum. With one stratum
            the rows are exactly :func:`lamina.stats.permutation.permuted_labels`' (the same draws
            from ``rng``), so results without strata are unchanged.
    """
    labels = np.asarray(labels)
    if strata is None or len(np.unique(strata)) == 1:
        return permuted_labels(labels, n_permutations, rng)
    strata = np.asarray(strata).reshape(-1)
    if len(strata) != len(labels):
        raise LaminaError(f"{len(strata)} strata for {len(labels)} labels; give one stratum per label.")
    if n_permutations < 1:
        raise LaminaError(f"n_permutations must be at least 1, not {n_permutations}.")
    # Sorting each row by stratum + a uniform key in [0, 1) lists every stratum's tokens in a random order;
    # writing them back to the stratum's slots (in stable stratum order) shuffles within strata.
    codes = strata_codes(strata)
    slots = np.argsort(codes, kind="stable")
    order = np.argsort(codes + rng.random((n_permutations, len(labels))), axis=-1)
    out = np.empty((n_permutations, len(labels)), dtype=labels.dtype)
    out[:, slots] = labels[order]
    return out


def mean_differences(values, label_sets) -> np.ndarray:
    """Mean of the True group minus mean of the False group, for many labellings at every layer.

    Args:
        values: shape ``(n_layers, n)``.
        label_sets: shape ``(n_sets, n)`` bool (or one labelling ``(n,)``); group sizes may differ
            between rows; each group needs at least one member.

    Returns:
        Shape ``(n_sets, n_layers)``.
    """
    values = np.asarray(values, dtype=np.float64)
    sets = np.atleast_2d(np.asarray(label_sets, dtype=bool))
    if values.ndim != 2 or values.shape[1] != sets.shape[1]:
        raise LaminaError(f"values must have shape (n_layers, {sets.shape[1]}), not {values.shape}.")
    n_true = sets.sum(axis=1)
    n_false = sets.shape[1] - n_true
    if (n_true < 1).any() or (n_false < 1).any():
        raise LaminaError("each labelling needs at least one member in each group.")
    # Centring first keeps the sums small, so the difference loses little to cancellation.
    centred = values - values.mean(axis=1, keepdims=True)
    sums = sets.astype(np.float64) @ centred.T  # (n_sets, n_layers)
    total = centred.sum(axis=1)
    return sums / n_true[:, None] - (total[None] - sums) / n_false[:, None]


def expected_difference(values, labels, strata=None) -> np.ndarray:
    """Expectation of :func:`mean_differences` over uniform shuffles of ``labels`` within ``strata``.

    Within stratum s the True group's expected sum is ``n_true,s · mean_s``, so the expectation is
    ``Σ_s n_true,s·mean_s / n_true − Σ_s n_false,s·mean_s / n_false``: 0 with one stratum, otherwise
    the difference the groups' composition over strata alone produces.

    Args:
        values: shape ``(n_layers, n)``; labels: ``(n,)`` bool; strata: ``(n,)`` or None.

    Returns:
        Shape ``(n_layers,)``.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if strata is None:
        return np.zeros(values.shape[0])
    codes = strata_codes(strata)
    k = codes.max() + 1
    size = np.bincount(codes, minlength=k)
    n_true_s = np.bincount(codes, weights=labels.astype(float), minlength=k)
    means = np.stack([np.bincount(codes, weights=row, minlength=k) for row in values]) / size  # (L, k)
    n_true = labels.sum()
    return means @ n_true_s / n_true - means @ (size - n_true_s) / (len(labels) - n_true)


def two_sided_pvalue(observed, null, centre, *, tie: float = 1e-12) -> np.ndarray:
    """``(1 + #{|null − centre| ≥ |observed − centre|}) / (1 + n)`` per test; never 0.

    Args:
        observed: shape ``(n_tests,)``; null: ``(n_permutations, n_tests)``; centre: ``(n_tests,)``
            (e.g. :func:`expected_difference`).
        tie: margin for permutations equal to the data up to rounding.
    """
    observed, null, centre = (np.asarray(a, dtype=float) for a in (observed, null, centre))
    return (1 + (np.abs(null - centre) >= np.abs(observed - centre) - tie).sum(axis=0)) / (1 + len(null))


def shift_interval(observed, null, centre, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """Interval for the difference beyond ``centre``, by inverting the permutation test for a shift.

    If the True group's values were shifted by δ, ``observed − centre − δ`` would be one draw of the
    shuffles' distribution (centred); the δ the test would not reject at ``1 − level`` lie between
    ``observed − q_high`` and ``observed − q_low``, where q are that distribution's percentiles
    (an equal-tailed approximation: the shuffles of the shifted data are taken to spread as those of
    the observed data). The interval carries the permutation test's assumption of exchangeable tokens.

    Args:
        observed: shape ``(n_tests,)``; null: ``(n_permutations, n_tests)``; centre: ``(n_tests,)``.

    Returns:
        ``(low, high)``, each of shape ``(n_tests,)``, around ``observed − centre``.
    """
    if not 0 < level < 100:
        raise LaminaError(f"a confidence level is a percentage between 0 and 100, not {level}.")
    observed, null, centre = (np.asarray(a, dtype=float) for a in (observed, null, centre))
    tail = (100 - level) / 2
    q_low, q_high = np.percentile(null - centre, [tail, 100 - tail], axis=0)
    excess = observed - centre
    return excess - q_high, excess - q_low
