"""``Stimuli``: the token sequences a recording runs on, with one metadata row each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import LaminaError


@dataclass
class Stimuli:
    """Token sequences to record, and what each one is.

    Attributes:
        ids: one 1-D int64 array of token ids per sequence (lengths may differ).
            No special tokens: the recording engine adds BOS when the model wants it.
        meta: one row per sequence (index ``0..n-1``); builders put their design in it
            (source row, category, word, occurrence index, ...).
        next_ids: shape ``(n_sequences,)``, the token that follows each sequence in its
            source text, or -1 when there is none. It gives the last position a loss.
        notes: what the builder dropped or changed, in words, for reports.
        token_columns: per-token metadata: column name -> one 1-D array per sequence, as long as
            the sequence (numbers or bools). A recording adds them to its token table (rows of the
            kept positions; the BOS row of ``keep_bos`` gets -1, NaN or False). Builders put their
            design in them (:func:`repeated_random`'s ``repeat`` and ``offset``,
            :meth:`prefixed`'s ``original_position``).
        tokenizer: which tokenizer the ids come from (its name and vocabulary size), set by the
            builders; None when unknown. :func:`concat` refuses parts from two different ones.
    """

    ids: list[np.ndarray]
    meta: pd.DataFrame = None
    next_ids: np.ndarray = None
    notes: list[str] = field(default_factory=list)
    token_columns: dict[str, list[np.ndarray]] = None
    tokenizer: str | None = None

    def __post_init__(self):
        self.ids = [np.asarray(seq, dtype=np.int64).reshape(-1) for seq in self.ids]
        if not self.ids:
            raise LaminaError("no sequences to record (the stimuli are empty).")
        if any(len(seq) == 0 for seq in self.ids):
            raise LaminaError("a stimulus sequence is empty; every sequence needs at least one token.")
        n = len(self.ids)
        self.meta = pd.DataFrame(index=range(n)) if self.meta is None else self.meta.reset_index(drop=True)
        if len(self.meta) != n:
            raise LaminaError(f"stimuli metadata has {len(self.meta)} rows for {n} sequences.")
        self.next_ids = (np.full(n, -1, dtype=np.int64) if self.next_ids is None
                         else np.asarray(self.next_ids, dtype=np.int64).reshape(-1))
        if len(self.next_ids) != n:
            raise LaminaError(f"next_ids has {len(self.next_ids)} entries for {n} sequences.")
        self.token_columns = _check_token_columns(self.token_columns, self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Shape ``(n_sequences,)``: tokens per sequence."""
        return np.array([len(seq) for seq in self.ids], dtype=np.int64)

    def as_array(self) -> np.ndarray:
        """Shape ``(n_sequences, length)`` when all sequences have one length."""
        if len(set(self.lengths.tolist())) != 1:
            raise LaminaError("sequences differ in length; use .ids for the ragged list.")
        return np.stack(self.ids)

    def subset(self, index) -> "Stimuli":
        """The sequences at ``index`` (ints or a boolean mask), metadata and notes kept."""
        index = np.arange(len(self))[np.asarray(index)]
        columns = {name: [values[i] for i in index] for name, values in self.token_columns.items()}
        return Stimuli([self.ids[i] for i in index], self.meta.iloc[index], self.next_ids[index], list(self.notes),
                       columns, self.tokenizer)

    def prefixed(self, prefix, tokenizer=None) -> "Stimuli":
        """The same sequences with ``prefix`` in front of every one (see :func:`lamina.stimuli.prefixed`)."""
        from .combine import prefixed

        return prefixed(self, prefix, tokenizer)

    def __add__(self, other) -> "Stimuli":
        """``a + b``: :func:`lamina.stimuli.concat` of the two (``(a + b) + c`` == ``concat(a, b, c)``)."""
        if not isinstance(other, Stimuli):
            return NotImplemented
        from .combine import concat

        return concat(self, other)

    def fingerprint(self) -> str:
        """sha256 over the token ids and next ids: equal stimuli, equal fingerprint."""
        digest = hashlib.sha256()
        for seq in self.ids:
            digest.update(len(seq).to_bytes(8, "little"))
            digest.update(seq.tobytes())
        digest.update(self.next_ids.tobytes())
        for name, values in sorted(self.token_columns.items()):  # only when there are any: old fingerprints hold
            digest.update(name.encode() + b"\0")
            for array in values:
                digest.update(array.dtype.str.encode() + array.tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        lengths = self.lengths
        span = f"{lengths.min()}" if lengths.min() == lengths.max() else f"{lengths.min()}-{lengths.max()}"
        per_token = f", token columns={list(self.token_columns)}" if self.token_columns else ""
        return f"Stimuli({len(self)} sequences of {span} tokens, meta columns={list(self.meta.columns)}{per_token})"


#: The token table's own columns (lamina.recording.recording): a stimulus' token column may not shadow one.
RESERVED_COLUMNS = ("sequence", "position", "slot", "token_id", "token", "next_id", "loss", "correct",
                    "predicted_id", "predicted", "bos")


def fill_value(dtype: np.dtype):
    """What a token column holds where it has no value (a BOS row, a prefix, a part without it):
    -1 for integers, NaN for floats, False for bools."""
    return {"b": False, "f": np.nan}.get(np.dtype(dtype).kind, -1)


def filled(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` with :func:`fill_value` where ``where`` is True (unsigned integers become int64 to hold -1)."""
    values = np.asarray(values)
    if values.dtype.kind == "u":
        values = values.astype(np.int64)
    return np.where(where, fill_value(values.dtype), values).astype(values.dtype)


def _check_token_columns(columns, ids: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """``columns`` as name -> one 1-D numeric array per sequence, each as long as its sequence."""
    if columns is None:
        return {}
    if not isinstance(columns, dict):
        raise LaminaError(f"token_columns must be a dict of column name -> one array per sequence, "
                          f"not {type(columns).__name__}.")
    out = {}
    for name, values in columns.items():
        if not isinstance(name, str) or not name:
            raise LaminaError(f"token column names are non-empty strings, not {name!r}.")
        if name in RESERVED_COLUMNS:
            raise LaminaError(f"token column {name!r} would hide the token table's own column of that name; "
                              "choose another name.")
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") or len(values) != len(ids):
            n = len(values) if hasattr(values, "__len__") and not isinstance(values, (str, bytes)) else "no"
            raise LaminaError(f"token column {name!r} has {n} entries for {len(ids)} sequences; give one array "
                              "per sequence.")
        arrays = [np.asarray(v).reshape(-1) for v in values]
        for i, (array, seq) in enumerate(zip(arrays, ids)):
            if array.dtype.kind not in "biuf":
                raise LaminaError(f"token column {name!r} holds {array.dtype} values; token columns hold numbers "
                                  "or bools (put text in meta, one row per sequence).")
            if len(array) != len(seq):
                raise LaminaError(f"token column {name!r} has {len(array)} values for sequence {i}'s "
                                  f"{len(seq)} tokens.")
        out[name] = arrays
    return out


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens, from a lamina ``Model`` or an HF tokenizer."""
    if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode"):  # a lamina Model
        return tokenizer.encode(text)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def hf_tokenizer(tokenizer):
    """The HF tokenizer inside a lamina ``Model``, or ``tokenizer`` itself."""
    return tokenizer.tokenizer if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode") else tokenizer
