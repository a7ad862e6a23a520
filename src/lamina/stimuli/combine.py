"""Stimuli from stimuli: concatenation, a shared prefix, and repeated random tokens (induction probes).

Like the builders, none of these adds BOS (the recording engine does), and each returns a
:class:`Stimuli` with its design in ``meta`` (one row per sequence) and ``token_columns`` (one value
per token, which a recording copies into its token table).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..errors import LaminaError
from ._tokens import check_count, check_max_length, check_text, check_tokenizer, stamped, token_array, tokenizer_key
from .base import Stimuli, filled, hf_tokenizer

__all__ = ["concat", "prefixed", "repeated_random"]


def concat(*parts: Stimuli, names=None) -> Stimuli:
    """Several stimuli sets as one: their sequences stacked in the order given (also ``a + b``).

    Args:
        parts: two or more :class:`Stimuli` from the same tokenizer (parts whose tokenizer is known
            must agree; see :attr:`Stimuli.tokenizer`).
        names: optional, one label per part, stored in ``meta['part_name']``.

    Returns:
        ``Stimuli`` with ``sum(len(p))`` sequences. ``meta``: every part's columns (a column a part
        lacks is NaN there) and ``part``, the index of the part each sequence came from; a part that is
        itself a concatenation keeps its parts apart, so ``(a + b) + c`` equals ``concat(a, b, c)``.
        ``token_columns``: every part's (a column a part lacks holds -1, NaN or False there).
        ``next_ids`` and ``notes`` are the parts', in order.
    """
    if len(parts) == 1 and isinstance(parts[0], (list, tuple)):
        parts = tuple(parts[0])  # concat([a, b]) as well as concat(a, b)
    if len(parts) < 2:
        raise LaminaError(f"concat needs at least two Stimuli, got {len(parts)}.")
    for i, part in enumerate(parts):
        if not isinstance(part, Stimuli):
            raise LaminaError(f"concat joins lamina Stimuli; part {i} is a {type(part).__name__}.")
    known = {p.tokenizer for p in parts if p.tokenizer is not None}
    if len(known) > 1:
        raise LaminaError(f"the parts come from different tokenizers ({', '.join(sorted(known))}); their token ids "
                          "mean different things. Build every part with the same model.")
    if names is not None:
        if isinstance(names, (str, bytes, dict)) or not hasattr(names, "__len__") or len(names) != len(parts):
            raise LaminaError(f"names must be a list with one label per part ({len(parts)}), not {names!r}.")
        names = list(names)
    metas, offset = [], 0
    for i, part in enumerate(parts):
        meta = part.meta.copy()
        inner = _inner_parts(meta)
        meta["part"] = offset + (inner if inner is not None else 0)
        offset += int(inner.max()) + 1 if inner is not None else 1
        if names is not None:
            meta["part_name"] = names[i]
        metas.append(meta)
    meta = pd.concat(metas, ignore_index=True)
    meta["part"] = meta["part"].astype(np.int64)
    columns = {}
    for name in dict.fromkeys(n for p in parts for n in p.token_columns):
        example = next(p.token_columns[name][0] for p in parts if name in p.token_columns)
        columns[name] = [array for p in parts for array in
                         (p.token_columns[name] if name in p.token_columns else
                          [filled(np.zeros(len(seq), example.dtype), np.ones(len(seq), bool)) for seq in p.ids])]
    notes = [f"part {i}: {note}" for i, p in enumerate(parts) for note in p.notes]
    return Stimuli([seq for p in parts for seq in p.ids], meta, np.concatenate([p.next_ids for p in parts]), notes,
                   columns, next(iter(known), None))


def _inner_parts(meta: pd.DataFrame):
    """The ``part`` column of a part that is itself a concatenation (integers from 0), else None."""
    if "part" not in meta.columns:
        return None
    values = meta["part"].to_numpy()
    if values.dtype.kind not in "iu" or len(values) == 0 or values.min() < 0:
        raise LaminaError("a part's meta already has a 'part' column that concat did not make; rename it first.")
    return values.astype(np.int64)


def prefixed(stimuli: Stimuli, prefix, tokenizer=None) -> Stimuli:
    """``stimuli`` with the same tokens in front of every sequence (also ``stimuli.prefixed(prefix)``).

    Args:
        stimuli: the sequences to prefix.
        prefix: token ids (a list or 1-D array of ints), or a text, tokenized without special tokens
            by ``tokenizer``. The model's BOS, when its policy feeds one, still goes first, before it.
        tokenizer: a lamina Model or an HF tokenizer; needed for a text prefix, and checked against
            the tokenizer the stimuli were built with when both are known.

    Returns:
        ``Stimuli`` with sequences of ``len(prefix) + len(seq)`` tokens. ``meta``: the stimuli's
        plus ``prefix_length``. ``token_columns``: ``original_position``, each token's position in the
        unprefixed sequence (-1 on prefix tokens; a second prefix keeps counting from the first
        sequence), and the stimuli's own columns shifted along (-1, NaN or False on the prefix).
        ``next_ids`` and notes are kept, and a note says what was prefixed.
    """
    if not isinstance(stimuli, Stimuli):
        raise LaminaError(f"prefixed needs a lamina Stimuli, not {type(stimuli).__name__}.")
    if tokenizer is not None:
        check_tokenizer(tokenizer)
        key = tokenizer_key(tokenizer)
        if stimuli.tokenizer is not None and key is not None and key != stimuli.tokenizer:
            raise LaminaError(f"the stimuli come from {stimuli.tokenizer}, the prefix's tokenizer is {key}; "
                              "use the model the stimuli were built with.")
    if isinstance(prefix, str):
        if tokenizer is None:
            raise LaminaError("a text prefix needs the tokenizer: stimuli.prefixed(text, model), or give token ids.")
        tokens = token_array(tokenizer, check_text(prefix, "prefix"))
        shown = repr(prefix if len(prefix) <= 40 else prefix[:37] + "...")
    else:
        tokens = _prefix_ids(prefix)
        shown = "token ids " + str(tokens.tolist()[:8])[1:-1] + (", ..." if len(tokens) > 8 else "")
    if len(tokens) == 0:
        raise LaminaError("the prefix is empty (it has no tokens).")
    vocab = len(hf_tokenizer(tokenizer)) if tokenizer is not None else None
    if vocab is not None and tokens.max() >= vocab:
        raise LaminaError(f"the prefix holds token id {int(tokens.max())}, outside the tokenizer's vocabulary "
                          f"(0..{vocab - 1}).")
    k = len(tokens)
    columns = {}
    for name, values in stimuli.token_columns.items():
        columns[name] = [filled(np.concatenate([np.zeros(k, v.dtype), v]), np.arange(k + len(v)) < k) for v in values]
    if "original_position" not in columns:
        columns["original_position"] = [np.concatenate([np.full(k, -1), np.arange(len(seq))]) for seq in stimuli.ids]
    meta = stimuli.meta.copy()
    meta["prefix_length"] = np.int64(k) + (meta["prefix_length"].to_numpy() if "prefix_length" in meta else 0)
    notes = list(stimuli.notes) + [f"every sequence prefixed with {shown} ({k} tokens)"]
    return Stimuli([np.concatenate([tokens, seq]) for seq in stimuli.ids], meta, stimuli.next_ids.copy(), notes,
                   columns, stimuli.tokenizer or (tokenizer_key(tokenizer) if tokenizer is not None else None))


def _prefix_ids(prefix) -> np.ndarray:
    if isinstance(prefix, (bytes, dict)) or not hasattr(prefix, "__iter__"):
        raise LaminaError(f"prefix must be a text or a list of token ids, not {prefix!r}.")
    values = list(np.asarray(prefix).reshape(-1)) if isinstance(prefix, np.ndarray) else list(prefix)
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise LaminaError(f"prefix token ids are non-negative integers, not {value!r}.")
    return np.asarray(values, dtype=np.int64)


def repeated_random(model, n_sequences: int, length: int, repeats: int = 2, seed: int = 0, *,
                    max_length=None) -> Stimuli:
    """Random token blocks, each repeated: the standard in-context-learning / induction probe.

    Each sequence is a block of ``length`` token ids drawn uniformly without replacement (so within
    a block each token occurs once and, in a repeat, the next token is determined by the previous
    occurrence) from the tokenizer's vocabulary without its special tokens, then the block
    ``repeats`` times. From the first repeat on, a model that copies (induction heads) predicts every
    token; in the first block nothing can be predicted better than chance.

    Args:
        model: a lamina Model or an HF tokenizer (its vocabulary and special tokens).
        n_sequences: number of sequences (>= 1), each with its own block.
        length: tokens per block (>= 1); each sequence has ``length * repeats`` tokens.
        repeats: how many times the block occurs (>= 1; 1 gives plain random tokens, a control).
        seed: seed of the draw (a non-negative int): the same seed gives the same stimuli.
        max_length: the model's context length; a longer sequence is an error.

    Returns:
        ``Stimuli`` with ``n_sequences`` sequences of shape ``(length * repeats,)``. ``meta``:
        ``block_length``, ``repeats``, ``seed``. ``token_columns``: ``repeat`` (0 for the first
        occurrence of the block, 1 for the first repeat, ...) and ``offset`` (position within the
        block), so ``position == repeat * length + offset``. ``next_ids``: -1 (no source text).
    """
    check_tokenizer(model)
    n_sequences = check_count(n_sequences, "n_sequences")
    length = check_count(length, "length")
    repeats = check_count(repeats, "repeats")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise LaminaError(f"seed must be a non-negative integer, not {seed!r}.")
    check_max_length(length * repeats, max_length, f"a sequence ({repeats} x {length})")
    tokenizer = hf_tokenizer(model)
    size = len(tokenizer)
    if hasattr(model, "vocab_size") and hasattr(model, "encode"):  # a lamina Model: ids its embedding has
        size = min(size, int(model.vocab_size))
    special = np.asarray(sorted(set(getattr(tokenizer, "all_special_ids", None) or [])), dtype=np.int64)
    pool = np.setdiff1d(np.arange(size, dtype=np.int64), special)
    if length > len(pool):
        raise LaminaError(f"a block of {length} distinct tokens needs more than the vocabulary's {len(pool)} "
                          "ordinary tokens; use a smaller length.")
    rng = np.random.default_rng(seed)
    blocks = [rng.choice(pool, size=length, replace=False) for _ in range(n_sequences)]
    meta = pd.DataFrame({"block_length": np.full(n_sequences, length), "repeats": np.full(n_sequences, repeats),
                         "seed": np.full(n_sequences, int(seed))}, dtype=np.int64)
    columns = {"repeat": [np.repeat(np.arange(repeats, dtype=np.int64), length) for _ in blocks],
               "offset": [np.tile(np.arange(length, dtype=np.int64), repeats) for _ in blocks]}
    return stamped(Stimuli([np.tile(block, repeats) for block in blocks], meta, None, [], columns), model)
