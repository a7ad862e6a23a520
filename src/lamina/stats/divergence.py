"""Divergences between two groups' histograms (KL, Jensen–Shannon) and seed 001's own formula.

Everything works on discrete distributions over the bins of one shared set of edges, in nats
(natural log). Conventions:

* ``0 · log 0 = 0``: a bin empty in the first argument contributes nothing.
* The true KL(P‖Q) is infinite when P has mass in a bin where Q has none. :func:`kl` returns
  ``inf`` there unless ``eps`` is given; with ``eps`` it computes ``Σ p·(log p − log(q + eps))``,
  seed 001's smoothing, which is finite but driven by ``eps`` (a bin with p = 0.01 and q = 0
  adds 0.01 · ln(0.01 / 1e-15) ≈ 0.32 nats).
* The Jensen–Shannon divergence ``JS = ½KL(P‖M) + ½KL(Q‖M)``, ``M = (P + Q)/2``, needs no
  smoothing (M > 0 wherever P or Q is) and lies in ``[0, ln 2]``.

Seed 001's ``symmetric_KL`` is not JS: ``F.kl_div(log(P + eps), M, reduction='batchmean')`` is
KL(M‖P) divided by the number of bins, so the seed's value is ``½[KL_eps(M‖P) + KL_eps(M‖Q)] / n_bins``
(:func:`symmetric_kl_to_mixture` divided by the number of bins; tests/seed_code.py holds the seed's
function itself). The permutation null of the JS divergence lives in
:mod:`lamina.stats.permutation`; :func:`bias_corrected_js` subtracts its mean, which removes the
plug-in bias that makes raw JS depend on bins, occupancy and group sizes.
"""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError

SEED_EPSILON = 1e-15  # seed 001 adds this to P and Q before the log
MIN_GROUP = 2  # fewer tokens than this in a group cannot make a histogram worth comparing


def check_groups(labels, names=("correct", "incorrect"), minimum: int = MIN_GROUP) -> np.ndarray:
    """``labels`` (shape ``(n,)``) as a bool array, or a LaminaError if either group has < ``minimum``.

    ``names`` name the True and the False group in the message.
    """
    labels = np.asarray(labels)
    if labels.dtype != bool:
        raise LaminaError(f"group labels must be booleans (True = {names[0]}), not {labels.dtype}.")
    n_true = int(labels.sum())
    counts = {names[0]: n_true, names[1]: len(labels) - n_true}
    for name, count in counts.items():
        if count < minimum:
            raise LaminaError(
                f"the {name!r} group has {count} of {len(labels)} tokens "
                f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); comparing histograms needs at least "
                f"{minimum} tokens in each group. Use a longer window or a model whose predictions are right "
                "some of the time and wrong some of the time.")
    return labels


def bin_edges(values, n_bins: int, what: str = "values") -> np.ndarray:
    """Shape ``(n_bins + 1,)``: ``np.linspace(min, max, n_bins + 1)`` over all of ``values``.

    Seed 001: ``torch.linspace(min, max, nbins)`` with ``nbins`` = number of *edges* (31 -> 30 bins).
    The edges span both groups together, so shuffling group labels never changes them.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if n_bins < 1:
        raise LaminaError(f"the number of histogram bins must be at least 1, not {n_bins}.")
    if values.size == 0 or not np.isfinite(values).all():
        raise LaminaError(f"the {what} are empty or not finite; a histogram needs finite values.")
    lo, hi = values.min(), values.max()
    if lo == hi:
        raise LaminaError(f"all {values.size} {what} equal {lo:g}; a histogram of one value has no shape to compare.")
    return np.linspace(lo, hi, n_bins + 1)


def bin_index(values, edges) -> np.ndarray:
    """Bin of each value (int64, same shape as ``values``), as ``np.histogram`` / ``torch.histogram`` count it.

    Bins are ``[e_i, e_{i+1})`` except the last, which includes its right edge. Values outside
    the edges are an error (edges from :func:`bin_edges` cover every value).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if (values < edges[0]).any() or (values > edges[-1]).any():
        raise LaminaError("values fall outside the histogram edges; build the edges from these values.")
    return np.minimum(np.searchsorted(edges, values, side="right") - 1, len(edges) - 2)


def group_histograms(values, labels, edges) -> np.ndarray:
    """Shape ``(2, n_bins)`` counts: row 0 the tokens where ``labels`` is True, row 1 the rest."""
    idx = bin_index(values, edges)
    labels = np.asarray(labels, dtype=bool)
    n_bins = len(edges) - 1
    return np.stack([np.bincount(idx[labels], minlength=n_bins), np.bincount(idx[~labels], minlength=n_bins)])


def probabilities(counts) -> np.ndarray:
    """Counts (shape ``(..., n_bins)``) scaled to sum to 1 along the last axis; an empty row is an error."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    if (totals == 0).any():
        raise LaminaError("a histogram has no values in any bin; each group needs at least one value.")
    return counts / totals


def kl(p, q, eps: float = 0.0) -> np.ndarray:
    """KL(P‖Q) = Σ p·log(p / (q + eps)) in nats along the last axis (shape ``(...)``).

    With ``eps=0`` this is the true divergence: ``inf`` when P has mass where Q has none.
    Bins with p = 0 contribute 0. ``eps=SEED_EPSILON`` reproduces seed 001's smoothing.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64) + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    total = terms.sum(axis=-1)
    # The true KL is never negative; for P equal to Q up to the last bit rounding gives ~-4e-16.
    # (With eps, Q + eps sums above 1 and a small negative value is real, so it stays.)
    return np.maximum(total, 0.0) if eps == 0 else total


def unsupported_bins(p, q) -> np.ndarray:
    """Number of bins (along the last axis) where P has mass and Q has none: KL(P‖Q) is infinite if > 0."""
    return ((np.asarray(p) > 0) & (np.asarray(q) == 0)).sum(axis=-1)


def js_divergence(p, q) -> np.ndarray:
    """Jensen–Shannon divergence ½KL(P‖M) + ½KL(Q‖M), M = (P+Q)/2, in nats, in ``[0, ln 2]``.

    Args:
        p, q: probabilities of shape ``(..., n_bins)``, each summing to 1 along the last axis.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2
    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, np.log(2))  # clip: rounding only


def js_noise_floor(bins, n_a: int, n_b: int):
    """≈ mean JS divergence (nats) of two histograms with ``bins`` bins when both groups share one distribution.

    For small differences JS ≈ ⅛ Σ (p − q)² / m, and under the null E[(p − q)²] = m(1 − m)(1/n_a + 1/n_b),
    so E[JS] ≈ (bins − 1)/8 · (1/n_a + 1/n_b) (fewer where bins are empty).
    """
    return (np.asarray(bins, dtype=float) - 1) / 8 * (1 / n_a + 1 / n_b)


def bias_corrected_js(observed, null) -> np.ndarray:
    """JS divergence minus the mean of its label-shuffle null: the divergence beyond the plug-in bias.

    The plug-in JS of two sampled histograms is positive even when both groups share one distribution,
    by about (occupied bins − 1)/8 · (1/n_a + 1/n_b) nats (:func:`js_noise_floor`): it grows with the
    bins a layer occupies and shrinks with the group sizes, so raw JS values of layers, models or
    controls with different occupancy or sizes are not comparable (with 256-token windows the bias is
    about 0.05 nats, real effects about 0.005). Under H0 (labels exchangeable within the shuffles'
    strata, whatever the values) the observed labelling is one of the equally likely shuffles, so
    ``E[JS | values]`` is the mean of JS over all shuffles: exactly the plug-in bias for this layer's
    binned values and these group sizes. ``JS − mean(null)`` therefore has expectation 0 under H0 at
    every layer, whatever its bins, occupancy and group sizes (the mean of drawn shuffles estimates the
    mean over all of them without bias). Positive values are divergence beyond chance, in nats.

    Args:
        observed: shape ``(...)``, e.g. ``(n_layers,)``.
        null: shape ``(n_permutations, ...)``: JS of the same values under shuffled labels.

    Returns:
        Shape ``(...)``: may be negative (a JS below its null's mean).
    """
    return np.asarray(observed, dtype=np.float64) - np.asarray(null, dtype=np.float64).mean(axis=0)


def symmetric_kl_to_mixture(p, q, eps: float = SEED_EPSILON) -> np.ndarray:
    """½[KL(M‖P) + KL(M‖Q)] with ``eps`` added to P and Q (what seed 001's formula computes, times n_bins).

    Symmetric but unbounded: a bin that one group fills and the other leaves empty adds
    about ``m·ln(m / eps)``, so the value is driven by ``eps``.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2
    return 0.5 * (kl(m, p, eps) + kl(m, q, eps))


def group_divergences(values, labels, n_bins: int, *, eps: float = SEED_EPSILON, what: str = "values") -> dict:
    """Histograms of the True and False groups of ``values`` over shared edges, and their divergences.

    Args:
        values: shape ``(n,)``; labels: shape ``(n,)`` bool (True = first group).
        n_bins: equal bins from the smallest to the largest of all ``values`` (:func:`bin_edges`).
        eps: the smoothing of the KL values (seed 001's 1e-15).

    Returns:
        ``edges`` ``(n_bins + 1,)``; ``counts`` and ``probs`` ``(2, n_bins)`` (row 0 the True group);
        in nats: ``js`` (Jensen–Shannon), ``kl_true_false`` = KL_eps(P_true ‖ P_false) and
        ``kl_false_true``; ``unsupported_true_false`` / ``unsupported_false_true``: bins that make the
        unsmoothed KL infinite (:func:`unsupported_bins`); ``mixture_kl``:
        :func:`symmetric_kl_to_mixture` (seed 001's ``symmetric_KL`` times ``n_bins``).
    """
    edges = bin_edges(values, n_bins, what)
    counts = group_histograms(values, labels, edges)
    p, q = probabilities(counts)
    return {"edges": edges, "counts": counts, "probs": np.stack([p, q]), "js": float(js_divergence(p, q)),
            "kl_true_false": float(kl(p, q, eps)), "kl_false_true": float(kl(q, p, eps)),
            "unsupported_true_false": int(unsupported_bins(p, q)),
            "unsupported_false_true": int(unsupported_bins(q, p)),
            "mixture_kl": float(symmetric_kl_to_mixture(p, q, eps))}
