"""Vector norms on a log scale, with the zero case made explicit."""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError


def log_norms(X, *, what: str = "vectors", where=None) -> np.ndarray:
    """Natural log of the L2 norm over the last axis: ``(..., width)`` -> ``(...)``, returned as float64.

    The norm and log are taken in the recording's precision (float32, float16 raised to float32),
    as the seed notebooks do, so parity with them is exact; float64 would change nothing a
    float32 recording can resolve. A zero vector has no log norm: that is an error naming how
    many and where, never -inf. ``where(index_tuple) -> str`` names the first zero vector
    (default: its index).
    """
    X = np.asarray(X)
    X = X.astype(np.float32) if X.dtype == np.float16 else X
    norms = np.linalg.norm(X, axis=-1)
    if (norms == 0).any():
        first = tuple(int(i) for i in np.argwhere(norms == 0)[0])
        place = where(first) if where else f"index {list(first)}"
        raise LaminaError(f"{int((norms == 0).sum())} {what} have zero norm (first at {place}); "
                          "their log norm is undefined.")
    return np.log(norms).astype(np.float64)


def layer_log_norms(acts, positions=None, *, what: str = "vectors") -> np.ndarray:
    """Shape ``(n_layers, n_tokens)``: :func:`log_norms` of one sequence's vectors at every layer.

    Args:
        acts: shape ``(n_layers, n_tokens, width)``, e.g. ``attn.out`` of one sequence.
        positions: shape ``(n_tokens,)``, the tokens' positions, named (with the layer) in the
            error for a zero vector; default ``0..n_tokens-1``.
    """
    acts = np.asarray(acts)
    positions = np.arange(acts.shape[1]) if positions is None else np.asarray(positions)
    return log_norms(acts, what=what, where=lambda i: f"layer {i[0]}, position {positions[i[1]]}")
