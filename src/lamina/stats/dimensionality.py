"""How many dimensions a point cloud uses: participation ratio and effective dimensionality (seed 003).

Both are read off the variance spectrum of the mean-centred data, i.e. the squared singular
values ``s**2`` of ``X - X.mean(axis=0)``:

- participation ratio ``PR = (sum s**2)**2 / sum s**4``: 1 when one direction holds all the
  variance, k when k directions hold equal shares; never more than the rank.
- effective dimensionality: the number of components needed for the cumulative variance to
  pass ``threshold`` percent (strictly, as the seed's ``cumPctVar > 95``). Seed 003 returns
  ``np.where(cumPctVar > 95)[0][0]``, a 0-based index: its value is ours minus one.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController  # installed with scikit-learn

from ..errors import LaminaError


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS uses one thread.

    Small linear algebra (an eigensolver's many small steps, products of a few hundred rows) waits on
    its own threads when a busy machine's cores are shared: 40x slower measured on 2 shared cores.
    The controller is built once (``threadpool_limits()`` scans the loaded libraries on every call,
    about 5 ms each).
    """
    return _controller().limit(limits=1, user_api="blas")


def centred_gram(X) -> np.ndarray:
    """``Xc @ Xc.T`` of the mean-centred rows of ``X`` (shape ``(n, d)``): shape ``(n, n)``, float64.

    The spectrum, the participation ratio on resamples and the principal scores all start from it; an
    experiment that needs several of them computes it once and passes it on (``gram=``).
    """
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0, keepdims=True)
    return Xc @ Xc.T


def variance_spectrum(X, *, what: str = "the data", gram=None) -> np.ndarray:
    """Squared singular values of mean-centred ``X``, descending, float64.

    Computed as the eigenvalues of the smaller Gram matrix (``Xc @ Xc.T`` or ``Xc.T @ Xc``), which are
    exactly the SVD's ``s**2``: several times faster than ``np.linalg.svd`` for 300 x 1500 data, and
    accurate to ~1e-15 of the largest value, far below what PR or a percent-variance count can feel.

    Args:
        X: shape ``(n, d)``: n items (rows) in d dimensions.
        gram: optional :func:`centred_gram` of X, used when ``n <= d`` (the same numbers, computed once).

    Returns:
        Shape ``(min(n, d),)``; the sum is the total variance times ``n``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise LaminaError(f"{what} must be a 2-D array (items, dimensions), not shape {X.shape}.")
    if len(X) < 2:
        raise LaminaError(f"{what} has {len(X)} item(s); dimensionality needs at least 2.")
    if not np.isfinite(X).all():
        raise LaminaError(f"{what} holds NaN or infinite values.")
    if gram is None or X.shape[0] > X.shape[1]:
        Xc = X - X.mean(axis=0, keepdims=True)
        gram = Xc @ Xc.T if Xc.shape[0] <= Xc.shape[1] else Xc.T @ Xc
    # One BLAS thread: the eigensolver takes many small steps, and with several threads on a busy
    # machine each step waits for the others (40x slower measured on 2 shared cores).
    with one_blas_thread():
        eigenvalues = np.linalg.eigvalsh(gram)
    # eigvalsh returns ascending values; rounding can make zero eigenvalues slightly negative
    s2 = np.clip(eigenvalues[::-1], 0.0, None)
    if not s2.sum() > 0:
        raise LaminaError(f"{what} has zero variance (all {len(X)} rows are identical); participation ratio "
                          "and effective dimensionality are undefined. Use items that differ.")
    return s2


def participation_ratio_of(spectrum) -> float:
    """``(sum λ)**2 / sum λ**2`` of a variance spectrum ``λ`` (shape ``(k,)``, non-negative)."""
    lam = np.asarray(spectrum, dtype=np.float64)
    return float(lam.sum() ** 2 / (lam ** 2).sum())


def effective_dim_of(spectrum, threshold: float = 95.0) -> int:
    """Components (1-based count) for the cumulative percent variance to exceed ``threshold``.

    ``spectrum`` must be sorted descending (as :func:`variance_spectrum` returns it).
    """
    threshold = check_threshold(threshold)
    lam = np.asarray(spectrum, dtype=np.float64)
    cumulative = 100 * np.cumsum(lam) / lam.sum()
    passed = np.flatnonzero(cumulative > threshold)
    # The last entry is 100 up to rounding, so something passes for any threshold < 100; the
    # fallback only guards thresholds within rounding of 100.
    return int(passed[0]) + 1 if len(passed) else int(np.count_nonzero(lam))


def check_threshold(threshold) -> float:
    threshold = float(threshold)
    if not 0 < threshold < 100:
        raise LaminaError(f"the variance threshold is a percentage between 0 and 100 (exclusive), not {threshold}.")
    return threshold


def participation_ratio(X) -> float:
    """Participation ratio of the rows of ``X`` (shape ``(n, d)``), mean-centred."""
    return participation_ratio_of(variance_spectrum(X))


def effective_dim(X, threshold: float = 95.0) -> int:
    """Effective dimensionality of the rows of ``X`` (shape ``(n, d)``), mean-centred; seed 003's value + 1."""
    return effective_dim_of(variance_spectrum(X), threshold)


def dimensionality(X, threshold: float = 95.0, *, what: str = "the data", gram=None) -> tuple[float, int]:
    """``(participation ratio, effective dimensionality)`` of ``X`` (shape ``(n, d)``) from one SVD
    (``gram``: its :func:`centred_gram`, if computed already)."""
    spectrum = variance_spectrum(X, what=what, gram=gram)
    return participation_ratio_of(spectrum), effective_dim_of(spectrum, threshold)


def participation_ratio_bootstrap(X, counts, *, dtype=np.float32, gram=None) -> np.ndarray:
    """Participation ratio of the rows of ``X`` on each bootstrap resample, copies of an item kept apart.

    With ``A`` the Gram matrix of the items centred on the resample's (weighted) mean, ``n·tr C =
    sum_p w_p A_pp`` and ``n²·tr C² = sum_{p,q} w_p w_q A_pq²``, so PR = (tr C)² / tr C² on a
    resample is a few weighted sums over the full sample's Gram matrix. A resample that draws item
    p twice would count the pair of its two copies, ``A_pp²`` (an item's squared norm, squared),
    as if it were a pair of two items; in high dimensions that term is tens of times a real pair's,
    and it would pull PR down in every resample. As for RSA (:func:`lamina.stats.bootstrap.rsa_bootstrap`),
    pairs of copies are left out: the diagonal counts ``w_p`` times, distinct pairs ``w_p w_q``
    times (rescaled to the ``n(n-1)`` pairs of a sample of n distinct items). With all counts 1
    this is exactly :func:`participation_ratio`.

    Args:
        X: shape ``(n, d)``: n items.
        counts: shape ``(n_boot, n)``, each row summing to n (:func:`lamina.stats.bootstrap.resample_counts`,
            :func:`lamina.stats.blocks.circular_block_counts`).
        dtype: precision of the two matrix products (float32: the centred Gram keeps the sums small).
        gram: optional :func:`centred_gram` of X (computed once by a caller that needs it elsewhere).

    Returns:
        Shape ``(n_boot,)``; NaN for a resample of one distinct item.
    """
    X = np.asarray(X, dtype=np.float64)
    counts = np.asarray(counts)
    if X.ndim != 2 or len(X) < 2:
        raise LaminaError(f"X must have shape (n, d) with n >= 2, not {X.shape}.")
    n = len(X)
    if counts.ndim != 2 or counts.shape[1] != n:
        raise LaminaError(f"counts must have shape (n_boot, {n}), not {counts.shape}.")
    G = centred_gram(X) if gram is None else np.asarray(gram, dtype=np.float64)
    w = counts.astype(np.float64)
    products = w.astype(dtype) @ np.concatenate([G, G * G], axis=1).astype(dtype)  # (n_boot, 2n)
    g = products[:, :n].astype(np.float64) / n  # G w / n
    wGGw = np.einsum("bn,bn->b", products[:, n:].astype(np.float64), w)
    c = np.einsum("bn,bn->b", w, g) / n  # w'Gw / n²
    diag = np.diag(G)
    a_diag = diag[None, :] - 2 * g + c[:, None]  # A_pp on the resample's centring
    trace = w @ diag - n * c  # sum_p w_p A_pp
    total = wGGw - 2 * n * np.einsum("bn,bn->b", w, g ** 2) + n ** 2 * c ** 2  # sum_{p,q} w_p w_q A_pq²
    on_diag = np.einsum("bn,bn->b", w, a_diag ** 2)
    off_diag = total - np.einsum("bn,bn->b", w ** 2, a_diag ** 2)
    pairs = n ** 2 - (w ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        squares = on_diag + off_diag * (n * (n - 1)) / pairs
        # A resample of one distinct item has no spread: its PR is undefined.
        return np.where((pairs > 0) & (squares > 0), trace ** 2 / squares, np.nan)
