"""Small checks and tokenizing helpers shared by the stimulus builders."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import LaminaError
from .base import encode


def check_tokenizer(tokenizer) -> None:
    """Raise unless ``tokenizer`` is a lamina Model or a callable HF tokenizer."""
    if tokenizer is None or isinstance(tokenizer, (str, bytes)) or not (
            callable(tokenizer) or (hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode"))):
        raise LaminaError(
            f"tokenizer must be a lamina Model or a Hugging Face tokenizer, not {type(tokenizer).__name__}"
            + (f" {tokenizer!r}; load it first (lamina.load({tokenizer!r}))." if isinstance(tokenizer, str) else "."))


def check_text(text, what: str = "text") -> str:
    if not isinstance(text, str):
        raise LaminaError(f"{what} must be a string, not {type(text).__name__}.")
    return text


def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LaminaError(f"{name} must be an integer, not {value!r}.")
    if value < minimum:
        raise LaminaError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def check_max_length(length: int, max_length, what: str = "a sequence") -> None:
    if max_length is None:
        return
    max_length = check_count(max_length, "max_length")
    if length > max_length:
        raise LaminaError(
            f"{what} of {length} tokens is longer than max_length={max_length} (the model's context length); "
            f"use at most {max_length} tokens.")


def token_array(tokenizer, text: str) -> np.ndarray:
    """Shape ``(n_tokens,)`` int64: the ids of ``text`` without special tokens."""
    return np.asarray(encode(tokenizer, text), dtype=np.int64).reshape(-1)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def tokenizer_key(tokenizer) -> str | None:
    """Which tokenizer this is, as ``Stimuli.tokenizer`` records it: ``"<name or path> (vocab N)"``;
    None when it cannot be told."""
    hf = tokenizer.tokenizer if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "encode") else tokenizer
    try:
        size = len(hf)
    except TypeError:
        return None
    return f"{getattr(hf, 'name_or_path', '') or type(hf).__name__} (vocab {size})"


def stamped(stimuli, tokenizer):
    """``stimuli`` with its :attr:`~lamina.Stimuli.tokenizer` set from ``tokenizer``."""
    stimuli.tokenizer = tokenizer_key(tokenizer)
    return stimuli
