"""Which positions of each sequence a recording keeps."""

from __future__ import annotations

import numpy as np

from ..errors import LaminaError

#: The stimulus position of the BOS token lamina feeds, in a recording made with ``keep_bos=True``:
#: one before the stimulus' first token (position 0), so the stimulus' positions keep their numbers.
BOS_POSITION = -1


def kept_positions(positions, lengths: np.ndarray, *, allow_empty: bool = False) -> list[np.ndarray]:
    """Per sequence, the positions to keep (0-based indices into the stimulus tokens).

    Args:
        positions: ``"all"``; ``"last"``; an int (negative counts from the end) applied
            to every sequence; a sequence of ints, one per sequence; or a list with one
            list/array of positions per sequence.
        lengths: shape ``(n_sequences,)``, tokens per sequence.
        allow_empty: whether a sequence may get no position (an edit that leaves it alone).

    Returns:
        One int64 array per sequence, each sorted as given and within ``[0, length)``.
    """
    n = len(lengths)
    if isinstance(positions, str):
        if positions == "all":
            return [np.arange(length, dtype=np.int64) for length in lengths]
        if positions == "last":
            return [np.array([length - 1], dtype=np.int64) for length in lengths]
        raise LaminaError(f"positions must be 'all', 'last', an int or one index per sequence, not {positions!r}.")
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        if not -2 ** 63 <= int(positions) < 2 ** 63:
            raise LaminaError(f"positions={positions} is out of range.")
        per_seq = [np.array([positions], dtype=np.int64)] * n
    else:
        if isinstance(positions, (bytes, dict, bool, float)) or not hasattr(positions, "__iter__"):
            raise LaminaError(f"positions must be 'all', 'last', an int or one index per sequence, not {positions!r}.")
        items = list(positions)
        if len(items) != n:
            raise LaminaError(f"positions has {len(items)} entries for {n} sequences; give one per sequence.")
        per_seq = []
        for i, item in enumerate(items):
            array = np.atleast_1d(np.asarray(item, dtype=object))
            if array.ndim != 1 or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in array):
                raise LaminaError(f"positions of sequence {i} must be integer indices, not {item!r}.")
            if any(not -2 ** 63 <= int(x) < 2 ** 63 for x in array):
                raise LaminaError(f"positions of sequence {i} are out of range: {item!r}.")
            per_seq.append(array.astype(np.int64))
    out = []
    for i, (pos, length) in enumerate(zip(per_seq, lengths)):
        if pos.size == 0 and not allow_empty:
            raise LaminaError(f"sequence {i}: no positions selected.")
        if (pos < -length).any() or (pos >= length).any():
            raise LaminaError(f"sequence {i} has {length} tokens; positions {pos.tolist()} are out of range.")
        pos = pos % length
        if len(np.unique(pos)) != len(pos):
            raise LaminaError(f"sequence {i}: positions {pos.tolist()} repeat an index.")
        out.append(pos)
    return out


def describe(positions) -> str | list:
    """JSON-friendly form of a positions argument, for manifests."""
    if isinstance(positions, (str, int, np.integer)):
        return positions if isinstance(positions, str) else int(positions)
    return [np.atleast_1d(np.asarray(p)).tolist() for p in positions]
