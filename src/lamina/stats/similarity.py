"""Similarity geometry: cosine matrices, upper triangles, RSA."""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError


def unit_rows(X, *, what: str = "vectors") -> np.ndarray:
    """Rows of ``X`` (shape ``(n, d)``) scaled to unit length, in float64; zero rows are an error."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise LaminaError(f"{int((norms == 0).sum())} of the {what} have zero norm; cosine similarity is undefined.")
    return X / norms


def cosine_matrix(X, Y=None) -> np.ndarray:
    """Cosine similarity between rows: shape ``(n, n)`` for X ``(n, d)``, or ``(n, m)`` with Y ``(m, d)``."""
    A = unit_rows(X)
    B = A if Y is None else unit_rows(Y)
    return np.clip(A @ B.T, -1.0, 1.0)


def upper(matrix: np.ndarray, k: int = 1) -> np.ndarray:
    """The upper triangle above diagonal ``k`` of a square matrix, row by row (``np.triu_indices``)."""
    return matrix[np.triu_indices(matrix.shape[0], k)]


def rsa(X, Y) -> float:
    """Representational similarity: Pearson r between the upper triangles of the cosine matrices of
    X ``(n, d1)`` and Y ``(n, d2)`` (the same n items)."""
    if len(X) != len(Y):
        raise LaminaError(f"RSA needs the same items in both sets: {len(X)} vs {len(Y)} rows.")
    return float(rsa_pairs(np.stack([cosine_matrix(X), cosine_matrix(Y)]), [(0, 1)])[0])


def rsa_pairs(matrices, pairs) -> np.ndarray:
    """RSA between pairs of similarity matrices of the same items: Pearson r of their upper triangles.

    Each matrix's triangle is taken once, however many pairs it is in.

    Args:
        matrices: shape ``(k, n, n)``, k similarity matrices over the same n >= 3 items.
        pairs: ``[(a, b), ...]`` indices into the k matrices.

    Returns:
        Shape ``(len(pairs),)``.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
        raise LaminaError(f"similarity matrices must have shape (k, n, n), not {matrices.shape}.")
    if matrices.shape[1] < 3:
        raise LaminaError("RSA needs at least 3 items.")
    triangles = [upper(m) for m in matrices]
    # All-equal similarities (e.g. identical items) have no structure to correlate; below this
    # spread the differences are rounding noise and r would be an artefact.
    flat = [i for i, t in enumerate(triangles) if np.ptp(t) <= 1e-12]
    if any(a in flat or b in flat for a, b in pairs):
        raise LaminaError("RSA is undefined: every pairwise similarity in one set is the same.")
    return np.array([np.corrcoef(triangles[a], triangles[b])[0, 1] for a, b in pairs])
