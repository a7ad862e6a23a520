"""Block bootstrap for items that come in text order (the tokens of one sequence).

Consecutive tokens of one text are not independent: a token's hidden state resembles its
neighbours'. Resampling single tokens as if they were independent hides that dependence and gives
intervals that are too narrow. The circular block bootstrap (Politis & Romano 1992) resamples
*blocks* of ``block`` consecutive items instead, so the dependence within a block is kept; a
block that runs past the end of the sequence wraps around to its start, which gives every item
the same chance to be drawn.

Resamples are stored as counts, like :func:`lamina.stats.bootstrap.resample_counts`: shape
``(n_boot, n_items)``, how often each item is drawn, each row summing to ``n_items``. Any statistic
written as weighted sums over items or pairs (RSA, participation ratio) takes them directly.

The block length follows Politis & White (2004) with the correction of Patton, Politis & White
(2009): the length that minimises the mean squared error of the bootstrap variance of a mean,
estimated from the series' autocovariances with a flat-top lag window.
"""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError


def circular_block_counts(rng: np.random.Generator, n_items: int, n_boot: int, block: int, *,
                          groups=None) -> np.ndarray:
    """Circular block bootstrap resamples as counts, shape ``(n_boot, n_items)`` int64.

    Each resample draws ``ceil(L / block)`` block starts uniformly in ``0..L-1`` of a sequence of
    length ``L``, takes ``block`` consecutive items from each (wrapping around the end) and keeps the
    first ``L`` items drawn. With ``block=1`` this is the ordinary bootstrap of items.

    Args:
        rng: the run's generator.
        n_items: items in sequence order.
        n_boot: resamples.
        block: items per block (>= 1); a block longer than a sequence is cut to its length.
        groups: optional, shape ``(n_items,)``: items with the same value form one sequence (in
            the order they appear), e.g. several windows of a text. Blocks never cross from one
            group to another, and each group keeps its size in every resample.
    """
    if n_items < 1 or n_boot < 1:
        raise LaminaError(f"a bootstrap needs at least one item and one resample (got {n_items}, {n_boot}).")
    if isinstance(block, bool) or int(block) != block or block < 1:
        raise LaminaError(f"the block length must be a positive integer, not {block!r}.")
    block = int(block)
    groups = np.zeros(n_items, dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != (n_items,):
        raise LaminaError(f"groups must have shape ({n_items},), not {groups.shape}.")
    counts = np.zeros((n_boot, n_items), dtype=np.int64)
    rows = np.arange(n_boot)[:, None]
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        length = len(members)
        b = min(block, length)
        n_blocks = -(-length // b)
        starts = rng.integers(0, length, size=(n_boot, n_blocks, 1))
        drawn = ((starts + np.arange(b)) % length).reshape(n_boot, -1)[:, :length]  # (n_boot, L)
        np.add.at(counts, (rows, members[drawn]), 1)
    return counts


def _flat_top(x: np.ndarray) -> np.ndarray:
    """The trapezoidal flat-top lag window: 1 on |x| <= 1/2, falling linearly to 0 at |x| = 1."""
    x = np.abs(x)
    return np.where(x <= 0.5, 1.0, np.where(x <= 1.0, 2.0 * (1.0 - x), 0.0))


def optimal_block_length(series, *, max_block: int | None = None) -> np.ndarray:
    """Politis–White block length for the circular block bootstrap of each series' mean.

    Per series: autocorrelations ``rho(k)``; ``m`` = the smallest lag after which ``K_N =
    max(5, ceil(sqrt(log10 n)))`` consecutive ``|rho|`` stay below ``2 sqrt(log10(n) / n)``;
    ``M = 2 m``; with flat-top weights ``lambda(k / M)``, ``G = sum |k| lambda R(k)`` and
    ``g0 = sum lambda R(k)`` over ``|k| <= M`` (R = autocovariance);
    ``b = (2 G**2 / D) ** (1/3) n ** (1/3)`` with ``D = (4/3) g0**2`` (circular bootstrap, the
    2009 correction). For an AR(1) series with coefficient phi this tends to
    ``(6 phi**2 / (1 - phi**2)**2) ** (1/3) n ** (1/3)``.

    Args:
        series: shape ``(n_series, n)`` or ``(n,)``; n >= 8.
        max_block: upper bound (default ``ceil(min(3 sqrt(n), n / 3))``, as Politis and White).

    Returns:
        Shape ``(n_series,)`` float, at least 1 (1: no dependence found; the ordinary bootstrap).
    """
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    if x.ndim != 2:
        raise LaminaError(f"series must have shape (n_series, n), not {np.shape(series)}.")
    n = x.shape[1]
    if n < 8:
        raise LaminaError(f"a block length needs a series of at least 8 items, not {n}.")
    if not np.isfinite(x).all():
        raise LaminaError("the series contain NaN or inf.")
    max_block = int(np.ceil(min(3 * np.sqrt(n), n / 3))) if max_block is None else int(max_block)
    x = x - x.mean(axis=1, keepdims=True)
    k_n = max(5, int(np.ceil(np.sqrt(np.log10(n)))))
    m_max = int(np.ceil(np.sqrt(n))) + k_n  # the search for m stops here (Politis and White)
    max_lag = min(n - 1, 2 * m_max + k_n)
    # Autocovariances R(0..max_lag) (divisor n) of every series, via the FFT.
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=1)[:, :max_lag + 1] / n
    bound = 2.0 * np.sqrt(np.log10(n) / n)
    out = np.ones(len(x))
    for i, r in enumerate(acov):
        if not r[0] > 0:
            continue  # a constant series: nothing to resample in blocks
        small = np.abs(r[1:] / r[0]) < bound  # small[k - 1]: lag k
        found = [m for m in range(min(m_max, max_lag - k_n) + 1) if small[m:m + k_n].all()]
        m = found[0] if found else min(m_max, max_lag // 2)
        if m == 0:
            continue  # no autocorrelation beyond noise: blocks of one item
        big_m = min(2 * m, max_lag)
        lags = np.arange(-big_m, big_m + 1)
        weighted = _flat_top(lags / big_m) * r[np.abs(lags)]
        g, g0 = np.sum(np.abs(lags) * weighted), np.sum(weighted)
        d = 4.0 / 3.0 * g0 ** 2
        if d > 0:
            out[i] = min(max((2 * g ** 2 / d) ** (1 / 3) * n ** (1 / 3), 1.0), max_block)
    return out


def rsa_item_series(matrices, pairs) -> np.ndarray:
    """Each item's share of the RSA between pairs of similarity matrices, in item order.

    RSA is the Pearson r over the upper triangles; with each triangle standardised (z), r is the
    mean over pairs of items of ``z_a * z_b``, i.e. the mean over items p of
    ``u_p = sum_{q != p} z_a[p, q] z_b[p, q] / (n - 1)``. Its bootstrap behaves like that of the mean
    of ``u``, so ``u``'s dependence along the items is what a block length must cover.

    Args:
        matrices: ``(k, n, n)`` symmetric similarity matrices of the same items; pairs: ``[(a, b), ...]``.

    Returns:
        Shape ``(len(pairs), n)``.
    """
    M = np.asarray(matrices, dtype=np.float64)
    if M.ndim != 3 or M.shape[1] != M.shape[2] or M.shape[1] < 3:
        raise LaminaError(f"matrices must have shape (k, n, n) with n >= 3, not {M.shape}.")
    n = M.shape[1]
    iu = np.triu_indices(n, 1)
    tri = M[:, iu[0], iu[1]]
    sd = tri.std(axis=1)
    sd = np.where(sd > 0, sd, 1.0)
    Z = (M - tri.mean(axis=1)[:, None, None]) / sd[:, None, None]
    Z[:, np.arange(n), np.arange(n)] = 0.0
    return np.stack([(Z[a] * Z[b]).sum(axis=1) / (n - 1) for a, b in pairs])


def principal_scores(X, k: int = 3, *, gram=None) -> np.ndarray:
    """Scores of the items on their ``k`` leading principal components, shape ``(k, n)`` (items in order).

    From the eigenvectors of the smaller of the centred Gram (n × n) and covariance (d × d) matrices.

    Args:
        X: shape ``(n, d)``.
        gram: optional centred Gram matrix ``Xc @ Xc.T`` (``(n, n)``), if computed already.
    """
    from scipy.linalg import eigh

    from .dimensionality import one_blas_thread

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise LaminaError(f"X must have shape (n, d) with n >= 2, not {np.shape(X)}.")
    Xc = X - X.mean(axis=0)
    n, d = Xc.shape
    k = min(k, n, d)
    # One BLAS thread: the eigensolver takes many small steps (see dimensionality.variance_spectrum).
    with one_blas_thread():
        if n <= d:
            values, vectors = eigh(Xc @ Xc.T if gram is None else gram, subset_by_index=[n - k, n - 1])
            scores = vectors * np.sqrt(np.clip(values, 0.0, None))
        else:
            _, vectors = eigh(Xc.T @ Xc, subset_by_index=[d - k, d - 1])
            scores = Xc @ vectors
    return scores.T[::-1]


def block_length(arrays, *, k: int = 3, max_block: int | None = None, grams=None) -> int:
    """One circular-bootstrap block length for items in sequence order, from how their leading
    principal components depend on earlier items.

    The Politis–White length (:func:`optimal_block_length`) of each array's ``k`` leading principal
    component scores, median over all of them, rounded (at least 1). Statistics of the items'
    geometry (RSA, participation ratio) vary along the sequence through these components.

    Args:
        arrays: one or more arrays of shape ``(n, d_i)``: the same n items (e.g. several stages).
        grams: optional, their centred Gram matrices (``(n, n)`` each), if computed already.
    """
    arrays = [arrays] if isinstance(arrays, np.ndarray) and arrays.ndim == 2 else list(arrays)
    grams = [None] * len(arrays) if grams is None else list(grams)
    series = np.concatenate([principal_scores(X, k, gram=g) for X, g in zip(arrays, grams)])
    return max(1, int(round(float(np.median(optimal_block_length(series, max_block=max_block))))))
