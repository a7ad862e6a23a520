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
    """

    ids: list[np.ndarray]
    meta: pd.DataFrame = None
    next_ids: np.ndarray = None
    notes: list[str] = field(default_factory=list)

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
        return Stimuli([self.ids[i] for i in index], self.meta.iloc[index], self.next_ids[index], list(self.notes))

    def fingerprint(self) -> str:
        """sha256 over the token ids and next ids: equal stimuli, equal fingerprint."""
        digest = hashlib.sha256()
        for seq in self.ids:
            digest.update(len(seq).to_bytes(8, "little"))
            digest.update(seq.tobytes())
        digest.update(self.next_ids.tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        lengths = self.lengths
        span = f"{lengths.min()}" if lengths.min() == lengths.max() else f"{lengths.min()}-{lengths.max()}"
        return f"Stimuli({len(self)} sequences of {span} tokens, meta columns={list(self.meta.columns)})"


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens, from a lamina ``Model`` or an HF tokenizer."""
    if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode"):  # a lamina Model
        return tokenizer.encode(text)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def hf_tokenizer(tokenizer):
    """The HF tokenizer inside a lamina ``Model``, or ``tokenizer`` itself."""
    return tokenizer.tokenizer if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode") else tokenizer
