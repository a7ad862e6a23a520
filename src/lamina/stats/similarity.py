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
    if len(X) < 3:
        raise LaminaError("RSA needs at least 3 items.")
    a, b = upper(cosine_matrix(X)), upper(cosine_matrix(Y))
    # All-equal similarities (e.g. identical items) have no structure to correlate; below this
    # spread the differences are rounding noise and r would be an artefact.
    if np.ptp(a) <= 1e-12 or np.ptp(b) <= 1e-12:
        raise LaminaError("RSA is undefined: every pairwise similarity in one set is the same.")
    return float(np.corrcoef(a, b)[0, 1])
