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

from ..errors import LaminaError, check_level
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
    check_level(level)
    observed, null, centre = (np.asarray(a, dtype=float) for a in (observed, null, centre))
    tail = (100 - level) / 2
    q_low, q_high = np.percentile(null - centre, [tail, 100 - tail], axis=0)
    excess = observed - centre
    return excess - q_high, excess - q_low


def stratum_weights(labels, strata=None) -> np.ndarray:
    """Weight of each stratum in the within-stratum difference: ``n_true,s · n_false,s / n_s``.

    A stratum with one group only (nothing to compare within it) weighs 0. These are the weights of a
    least-squares fit of the values on the label and one intercept per stratum (fixed effects), and the
    inverse of the variance of a stratum's difference of means under equal spreads.

    Args:
        labels: shape ``(n,)`` bool; strata: ``(n,)`` or None (one stratum).

    Returns:
        Shape ``(n_strata,)``, strata in :func:`strata_codes` order.
    """
    labels = np.asarray(labels, dtype=bool)
    codes = np.zeros(len(labels), dtype=np.int64) if strata is None else strata_codes(strata)
    k = int(codes.max()) + 1
    size = np.bincount(codes, minlength=k).astype(float)
    n_true = np.bincount(codes, weights=labels.astype(float), minlength=k)
    return n_true * (size - n_true) / size


def stratified_scale(labels, strata=None) -> float:
    """What the pooled difference beyond its shuffle expectation is of the within-stratum difference.

    With strata s, ``difference − expected_difference = Σ_s w_s·δ_s · (1/n_true + 1/n_false)``, where
    ``δ_s`` is stratum s's own difference of means and ``w_s`` its :func:`stratum_weights`. The factor
    ``c = Σ_s w_s · (1/n_true + 1/n_false)`` is 1 with one stratum and below 1 when the groups' shares
    differ between strata (accuracy differing by window or next-token length): then the pooled excess
    shrinks a shift common to every stratum by c, and ``(difference − expected) / c`` estimates it.
    Shuffles within strata keep every ``n_true,s``, so c is the same for every shuffle: dividing by it
    changes no p-value.

    Args:
        labels: shape ``(n,)`` bool; strata: ``(n,)`` or None.

    Returns:
        c in ``[0, 1]``; 0 when no stratum holds both groups.
    """
    labels = np.asarray(labels, dtype=bool)
    n_true = int(labels.sum())
    n_false = len(labels) - n_true
    if min(n_true, n_false) < 1:
        raise LaminaError(f"both groups need members (True: {n_true}, False: {n_false}).")
    return float(stratum_weights(labels, strata).sum() * (1 / n_true + 1 / n_false))


def within_strata_difference(values, labels, strata=None) -> np.ndarray:
    """The within-stratum difference of means ``Σ_s w_s·δ_s / Σ_s w_s``, computed stratum by stratum.

    ``δ_s`` is the True group's mean minus the False group's in stratum s, ``w_s`` the
    :func:`stratum_weights` (strata with one group only left out). It equals
    ``(mean_differences − expected_difference) / stratified_scale`` (the form the experiments use,
    because it carries the shuffles' null and interval along); this direct form is its definition.

    Args:
        values: shape ``(n_layers, n)``; labels: ``(n,)`` bool; strata: ``(n,)`` or None.

    Returns:
        Shape ``(n_layers,)``; NaN when no stratum holds both groups.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    labels = np.asarray(labels, dtype=bool)
    codes = np.zeros(len(labels), dtype=np.int64) if strata is None else strata_codes(strata)
    k = int(codes.max()) + 1
    w = stratum_weights(labels, codes)
    n_true = np.bincount(codes, weights=labels.astype(float), minlength=k)
    n_false = np.bincount(codes, minlength=k) - n_true
    sum_true = np.stack([np.bincount(codes, weights=row * labels, minlength=k) for row in values])
    sum_false = np.stack([np.bincount(codes, weights=row * ~labels, minlength=k) for row in values])
    both = w > 0
    if not both.any():
        return np.full(values.shape[0], np.nan)
    delta = sum_true[:, both] / n_true[both] - sum_false[:, both] / n_false[both]  # (L, strata with both)
    return delta @ w[both] / w[both].sum()
