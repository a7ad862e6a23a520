"""Category selectivity of similarity matrices: within- vs across-category pairs (seed 004).

Everything works on cosine-similarity matrices ``S`` of shape ``(n, n)``, or a stack of them
``(n_layers, n, n)``, and one integer label per item (category, or which word a context ends in).

Pairs are unordered and counted once: the upper triangle ``i < j``. A pair is *within* when both
items share a label and *across* otherwise. For seed 004's labels 1, 2, 3 this is exactly the
notebook's product coding ``np.triu(labels[:, None] * labels[None, :], 1)``: products 1, 4, 9 are
the within pairs and 2, 3, 6 the across pairs (tests/seed_code.py checks it). With four or more labels
the products collide (1·4 = 2·2), which is why lamina builds the masks explicitly.

The t statistic treats the pair similarities as independent samples. They are not (every word
takes part in n−1 pairs), so t is descriptive; :func:`lamina.stats.permutation.selectivity_permutation_test`
shuffles the labels across items instead, which keeps that dependence in the null distribution.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ttest_ind

from ..errors import LaminaError

def label_codes(labels) -> np.ndarray:
    """Labels of any hashable kind -> int codes ``0..k-1`` in order of first appearance, shape ``(n,)``."""
    labels = list(labels)
    order = {}
    for label in labels:
        order.setdefault(label, len(order))
    return np.array([order[label] for label in labels], dtype=np.int64)


def pair_masks(labels) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(within, across)``, each ``(n, n)``, True only above the diagonal (i < j).

    ``within``: both items have the same label; ``across``: different labels. Together they
    cover the upper triangle exactly once.
    """
    codes = label_codes(labels)
    same = codes[:, None] == codes[None, :]
    upper = np.triu(np.ones(same.shape, dtype=bool), 1)
    return same & upper, ~same & upper


def between_mask(labels, group_a, group_b) -> np.ndarray:
    """Upper-triangle mask ``(n, n)`` of pairs with one item labelled in ``group_a`` and the other in
    ``group_b`` (two disjoint sets of labels), whichever comes first."""
    labels = np.asarray(labels)
    in_a, in_b = np.isin(labels, list(group_a)), np.isin(labels, list(group_b))
    if (in_a & in_b).any():
        raise LaminaError("between_mask needs two disjoint groups of labels.")
    pairs = (in_a[:, None] & in_b[None, :]) | (in_b[:, None] & in_a[None, :])
    return pairs & np.triu(np.ones(pairs.shape, dtype=bool), 1)


def stack_matrices(S) -> np.ndarray:
    S = np.asarray(S, dtype=np.float64)
    if S.ndim == 2:
        S = S[None]
    if S.ndim != 3 or S.shape[1] != S.shape[2]:
        raise LaminaError(f"similarity matrices must have shape (n, n) or (n_layers, n, n), not {S.shape}.")
    return S


def check_pairs(within: np.ndarray, across: np.ndarray) -> None:
    if not within.any():
        raise LaminaError("no within-label pairs: every label has one item. Give at least one label two items.")
    if not across.any():
        raise LaminaError("no across-label pairs: all items have one label. Give at least two labels.")


def t_statistics(within, across) -> tuple[np.ndarray, np.ndarray]:
    """(Welch t, Student t) of within vs across along the last axis (NaN with fewer than 2 of either).

    Student's t (pooled variance) is what seed 004's ``ttest_ind(within, across)`` computes;
    Welch's t does not assume equal variances.
    """
    within, across = np.asarray(within, float), np.asarray(across, float)
    if within.shape[-1] < 2 or across.shape[-1] < 2:
        nan = np.full(within.shape[:-1], np.nan)
        return nan, nan.copy()
    # Identical similarities in one group (e.g. one token's embedding in every context) have zero
    # variance; scipy then warns about precision loss, but t stays well defined from the other group.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        welch = ttest_ind(within, across, axis=-1, equal_var=False).statistic
        student = ttest_ind(within, across, axis=-1, equal_var=True).statistic
    return np.asarray(welch, float), np.asarray(student, float)


def selectivity(S, labels) -> dict[str, np.ndarray]:
    """Within vs across similarity for each layer.

    Args:
        S: ``(n, n)`` or ``(n_layers, n, n)`` similarity matrices.
        labels: ``(n,)`` one label per item.

    Returns:
        ``within_mean``, ``across_mean``, ``delta`` (within − across), ``t`` (Welch),
        ``t_student`` (seed 004's), each shape ``(n_layers,)``; ``n_within``, ``n_across`` (ints).
    """
    S = stack_matrices(S)
    within_mask, across_mask = pair_masks(labels)
    if within_mask.shape != S.shape[1:]:
        raise LaminaError(f"{len(within_mask)} labels for {S.shape[1]} items; give one label per item.")
    check_pairs(within_mask, across_mask)
    within, across = S[:, within_mask], S[:, across_mask]  # (n_layers, n_within), (n_layers, n_across)
    t, t_student = t_statistics(within, across)
    return {"within_mean": within.mean(axis=1), "across_mean": across.mean(axis=1),
            "delta": within.mean(axis=1) - across.mean(axis=1), "t": t, "t_student": t_student,
            "n_within": int(within_mask.sum()), "n_across": int(across_mask.sum())}


def common_edges(values, n_bins: int, *, step: float = 0.05, value_range=None) -> np.ndarray:
    """``n_bins + 1`` equal bin edges shared by every distribution, shape ``(n_bins + 1,)``.

    Without ``value_range``, the edges span all finite ``values`` rounded outward to multiples of
    ``step``, so nothing falls outside. Seed 004 uses ``linspace(.4, 1, 35)``, fitted to GPT-2.
    """
    if value_range is not None:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise LaminaError(f"a bin range needs low < high, got {lo}, {hi}.")
        return np.linspace(lo, hi, n_bins + 1)
    flat = np.concatenate([np.ravel(np.asarray(v, float)) for v in values])
    flat = flat[np.isfinite(flat)]
    if not len(flat):
        raise LaminaError("no finite values to bin.")
    lo, hi = np.floor(flat.min() / step) * step, np.ceil(flat.max() / step) * step
    if hi <= lo:
        hi = lo + step
    return np.linspace(lo, hi, n_bins + 1)


def layer_histograms(values, edges) -> np.ndarray:
    """Probability per bin (count / number of values) for each layer, shape ``(n_layers, n_bins)``.

    This is seed 004's "density × dx" when every value lies inside the edges; values outside
    them are not counted, so a row then sums to less than 1.

    Args:
        values: ``(n_layers, m)`` one row of similarities per layer; edges: ``(n_bins + 1,)``.
    """
    values = np.asarray(values, float)
    if values.shape[-1] == 0:
        return np.full((values.shape[0], len(edges) - 1), np.nan)
    return np.stack([np.histogram(row, bins=edges)[0] / len(row) for row in values])
