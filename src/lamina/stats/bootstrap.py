"""Bootstrap over items: resampling counts, RSA on resampled items, percentile intervals.

A resample of n items with replacement is stored as counts ``w`` (shape ``(n,)``, summing to
n): item p was drawn ``w[p]`` times. Statistics on pairs of items (RSA) are then weighted sums
over pairs, which turns thousands of resamples into a few matrix products.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import LaminaError, check_level


def resample_counts(rng: np.random.Generator, n_items: int, n_boot: int) -> np.ndarray:
    """Shape ``(n_boot, n_items)`` int64: how often each item is drawn in each resample.

    The same as counting ``rng.integers(0, n_items, n_items)`` per resample (a multinomial).
    """
    if n_items < 1 or n_boot < 1:
        raise LaminaError(f"a bootstrap needs at least one item and one resample (got {n_items}, {n_boot}).")
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot)


def rsa_bootstrap(matrices, pairs, counts, *, dtype=np.float32, max_bytes: int = 64 << 20) -> np.ndarray:
    """RSA (Pearson r of two similarity matrices' upper triangles) on each resample of the items.

    Duplicated items: a resample that draws item p twice would put the pair (p, p') of the two
    copies into the upper triangle with similarity 1 in *every* stage, a perfect agreement that
    no real pair of distinct items has; it inflates r. The resampled upper triangle therefore
    holds only pairs of *distinct* items, each distinct pair (p, q) weighted by ``w[p] * w[q]``,
    the number of times it appears (the usual fix for bootstrapping RDMs over stimuli, as in
    rsatoolbox). With all counts 1 this is exactly the ordinary RSA.

    With ``A`` symmetric and its diagonal set to 0, ``sum_{p<q} w_p w_q A_pq = w @ A @ w / 2``;
    r follows from five such weighted sums (of x, y, x², y², xy) and the pair weight
    ``((sum w)² - sum w²) / 2``. All pairs and resamples share one matrix product.

    Args:
        matrices: shape ``(k, n, n)``: k symmetric similarity matrices over the same n items.
        pairs: ``[(a, b), ...]`` indices into the k matrices.
        counts: shape ``(n_boot, n)`` from :func:`resample_counts`.
        dtype: precision of the matrix products. float32 halves the time; since the matrices are
            centred first, its error (~1e-5 in r) is far below a bootstrap's spread.
        max_bytes: resamples are processed in chunks whose product stays under this size.

    Returns:
        Shape ``(n_boot, len(pairs))``; NaN where a resample leaves fewer than two distinct pairs
        or one side constant.
    """
    M = np.asarray(matrices, dtype=np.float64)
    counts = np.asarray(counts)
    if M.ndim != 3 or M.shape[1] != M.shape[2]:
        raise LaminaError(f"matrices must have shape (k, n, n), not {M.shape}.")
    k, n, _ = M.shape
    if counts.ndim != 2 or counts.shape[1] != n:
        raise LaminaError(f"counts must have shape (n_boot, {n}), not {counts.shape}.")
    pairs = [(int(a), int(b)) for a, b in pairs]
    if any(not (0 <= a < k and 0 <= b < k) for a, b in pairs):
        raise LaminaError(f"pairs {pairs} index matrices outside 0..{k - 1}.")
    used = sorted({i for pair in pairs for i in pair})
    slot = {s: i for i, s in enumerate(used)}
    # Correlation ignores a constant shift; centring on the full-sample mean of each triangle keeps
    # the weighted sums small, so "W*Sxx - Sx**2" loses little to cancellation.
    iu = np.triu_indices(n, 1)
    C = M[used] - M[used][:, iu[0], iu[1]].mean(axis=1)[:, None, None]
    C[:, np.arange(n), np.arange(n)] = 0.0  # self-pairs and pairs of copies of one item never count
    forms = ([C[i] for i in range(len(used))] + [C[i] ** 2 for i in range(len(used))]
             + [C[slot[a]] * C[slot[b]] for a, b in pairs])
    A = np.concatenate(forms, axis=1).astype(dtype)  # (n, m*n)
    m = len(forms)
    sums = np.empty((len(counts), m))
    step = max(1, max_bytes // (m * n * np.dtype(dtype).itemsize))
    for start in range(0, len(counts), step):
        w = counts[start:start + step].astype(dtype)
        sums[start:start + step] = np.einsum("bmn,bn->bm", (w @ A).reshape(len(w), m, n), w) / 2
    w = counts.astype(np.float64)
    W = (w.sum(axis=1) ** 2 - (w ** 2).sum(axis=1)) / 2  # number of (weighted) distinct pairs
    u = len(used)
    S, SS, SXY = sums[:, :u], sums[:, u:2 * u], sums[:, 2 * u:]
    out = np.empty((len(counts), len(pairs)))
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, (a, b) in enumerate(pairs):
            sx, sy = S[:, slot[a]], S[:, slot[b]]
            cov = W * SXY[:, j] - sx * sy
            var = (W * SS[:, slot[a]] - sx ** 2) * (W * SS[:, slot[b]] - sy ** 2)
            out[:, j] = np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
    return np.clip(out, -1.0, 1.0)


def percentile_ci(values, level: float = 95.0, axis: int = 0) -> np.ndarray:
    """Percentile bootstrap interval: shape ``(2, ...)`` = (low, high) along ``axis``, NaNs ignored."""
    check_level(level)
    tail = (100 - level) / 2
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice gives NaN, on purpose
        return np.nanpercentile(values, [tail, 100 - tail], axis=axis)


def bootstrap_pvalue(values, null: float = 0.0, axis: int = 0) -> np.ndarray:
    """Two-sided bootstrap p-value of ``statistic = null``: the smallest alpha whose percentile interval
    excludes ``null``, ``min(1, 2 min((1 + #{v <= null}), (1 + #{v >= null})) / (1 + B))``.

    So ``p <= alpha`` when (up to the +1) the (1 − alpha) percentile interval of
    :func:`percentile_ci` excludes ``null``; never 0. NaN resamples are left out (all NaN: NaN).

    Args:
        values: bootstrap replicates, B along ``axis``.

    Returns:
        The shape of ``values`` without ``axis``.
    """
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    finite = np.isfinite(values)
    b = finite.sum(axis=0)
    below = ((values <= null) & finite).sum(axis=0)
    above = ((values >= null) & finite).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2 * np.minimum(1 + below, 1 + above) / (1 + b))
    return np.where(b > 0, p, np.nan)
