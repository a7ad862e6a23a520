"""Attention-head scores on attention patterns, and massive activations in the residual stream.

Every score takes a *square* pattern over model positions: ``pattern[..., q, k]`` is the probability
with which the query at model position q attends to key k (``attn.pattern`` recorded with
``keep_bos=True`` where a BOS is fed, so slot q is model position q; without a BOS the slots are the
positions already). Leading axes (layer, sequence, head, ...) are kept. Each score is averaged over
query positions q >= 1: query 0 sees only itself, so it would give sink 1 and entropy 0 whatever the
head does.

* sink: ``pattern[q, 0]``, attention to the first position (the BOS where one is fed);
* previous: ``pattern[q, q - 1]``, attention to the previous token;
* induction: ``sum_k pattern[q, k] * M[q, k]`` with ``M[q, k] = 1`` when ``k = j + 1`` for some
  ``j < q`` with ``token[j] == token[q]`` (the token after an earlier occurrence of the current token:
  what an induction head attends to, Olsson et al. 2022), averaged over the queries with at least one
  such j; queries with none are left out, and a sequence with none gives NaN;
* entropy: ``-sum_k pattern[q, k] log pattern[q, k]`` in nats (0 log 0 = 0): 0 for a head that attends
  to one key, ``log(q + 1)`` for uniform attention over the q + 1 keys a causal query sees.
"""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError


def _square(pattern) -> np.ndarray:
    pattern = np.asarray(pattern, dtype=np.float64)
    if pattern.ndim < 2 or pattern.shape[-1] != pattern.shape[-2] or pattern.shape[-1] < 2:
        raise LaminaError(f"an attention pattern must be square over at least 2 positions (..., query, key), "
                          f"not {pattern.shape}.")
    return pattern


def sink_score(pattern) -> np.ndarray:
    """Mean attention to position 0 over queries 1..P-1. ``pattern``: ``(..., P, P)``; returns ``(...)``."""
    pattern = _square(pattern)
    return pattern[..., 1:, 0].mean(axis=-1)


def previous_score(pattern) -> np.ndarray:
    """Mean attention to the previous position, ``pattern[q, q-1]``, over queries 1..P-1. ``(..., P, P)`` -> ``(...)``."""
    pattern = _square(pattern)
    p = pattern.shape[-1]
    return pattern[..., np.arange(1, p), np.arange(p - 1)].mean(axis=-1)


def induction_mask(tokens) -> np.ndarray:
    """``M[q, k]`` (bool, ``(P, P)``) for token ids ``tokens`` ``(P,)``: True where ``k = j + 1``, ``j < q`` and
    ``tokens[j] == tokens[q]`` (k <= q, so the key is one the causal query sees)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise LaminaError(f"tokens must be one sequence of ids (P,), not shape {tokens.shape}.")
    p = len(tokens)
    same = tokens[:, None] == tokens[None, :]  # same[q, j]
    earlier = np.tril(np.ones((p, p), dtype=bool), k=-1)  # j < q
    mask = np.zeros((p, p), dtype=bool)
    mask[:, 1:] = (same & earlier)[:, :-1]  # key k = j + 1
    return mask


def induction_score(pattern, tokens) -> np.ndarray:
    """Mean over queries with an earlier occurrence of their token of the attention to the tokens that
    followed those occurrences (module docstring). ``pattern``: ``(..., P, P)`` of one sequence (or
    several with the same tokens), ``tokens``: ``(P,)``; returns ``(...)``, NaN where no query qualifies."""
    pattern = _square(pattern)
    mask = induction_mask(tokens)
    if mask.shape[-1] != pattern.shape[-1]:
        raise LaminaError(f"{len(tokens)} tokens for a pattern over {pattern.shape[-1]} positions.")
    rows = mask.any(axis=1)
    if not rows.any():
        return np.full(pattern.shape[:-2], np.nan)
    return (pattern[..., rows, :] * mask[rows]).sum(axis=-1).mean(axis=-1)


def pattern_entropy(pattern) -> np.ndarray:
    """Mean entropy (nats) of the attention rows of queries 1..P-1. ``(..., P, P)`` -> ``(...)``."""
    rows = _square(pattern)[..., 1:, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(rows > 0, -rows * np.log(rows), 0.0)
    return terms.sum(axis=-1).mean(axis=-1)


def massive_activations(values) -> dict[str, np.ndarray]:
    """Massive activations (Sun et al. 2024) per entry: the largest |value| relative to the entry's median |value|.

    Args:
        values: ``(entry, sequence, position, dim)``, e.g. ``resid`` of a recording.

    Returns:
        ``ratio``, ``top``, ``median`` (``(entry,)`` float: max |x| / median |x|, max |x|, median |x|),
        ``sequence``, ``position``, ``dim`` (``(entry,)`` int: where the largest |x| sits), and
        ``per_sequence_position`` (``(entry, sequence)`` int: the position of each sequence's largest |x|).
    """
    values = np.abs(np.asarray(values, dtype=np.float64))
    if values.ndim != 4 or 0 in values.shape:
        raise LaminaError(f"massive activations need values of shape (entry, sequence, position, dim), "
                          f"not {values.shape}.")
    if not np.isfinite(values).all():
        raise LaminaError("massive activations: the values contain NaN or inf.")
    e, s, p, d = values.shape
    flat = values.reshape(e, -1)
    where = flat.argmax(axis=1)
    top = flat[np.arange(e), where]
    median = np.median(flat, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(median > 0, top / median, np.inf)
    seq, pos, dim = np.unravel_index(where, (s, p, d))
    per_seq = values.max(axis=3).argmax(axis=2)  # (entry, sequence)
    return {"ratio": ratio, "top": top, "median": median, "sequence": seq.astype(np.int64),
            "position": pos.astype(np.int64), "dim": dim.astype(np.int64),
            "per_sequence_position": per_seq.astype(np.int64)}
