"""Single-token word stimuli (seed 004 part A), word-list files and the seed's word lists."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LaminaError, closest
from ._tokens import check_tokenizer, plural, stamped
from .base import Stimuli, encode

__all__ = ["SEED_004_CATEGORIES", "SEED_004_CONTEXT_WORDS", "check_single_tokens", "read_words",
           "single_token_words"]

#: Seed 004's 34 words (categories 1, 2, 3 there), in the seed's order.
SEED_004_CATEGORIES: dict[str, list[str]] = {
    "space": ["galaxy", "asteroid", "comet", "cosmos", "space", "sun", "planet", "moon", "star", "orbit"],
    "house": ["ceiling", "sofa", "couch", "carpet", "door", "window", "lamp", "chair", "table", "rug", "bed",
              "floor", "wall"],
    "fruit": ["pear", "grape", "banana", "cherry", "peach", "apple", "seed", "jelly", "orange", "lime", "fruit"],
}

#: Seed 004 part B's target words in The Great Gatsby.
SEED_004_CONTEXT_WORDS = (" years", " garage", " lawn")

_ON_INVALID = ("raise", "drop")


def _check_word(word) -> str:
    if not isinstance(word, str):
        raise LaminaError(f"words must be strings, not {type(word).__name__} {word!r}.")
    if not word.strip():
        raise LaminaError(f"{word!r} is not a word (it is empty or only whitespace).")
    return word


def _forms(word: str) -> tuple[str, str]:
    """(with a leading space, without one) for ``word``."""
    return (word, word[1:]) if word.startswith(" ") else (" " + word, word)


def _used(word: str, leading_space: bool) -> str:
    """The string a builder encodes: a leading space added when asked, else the word as given."""
    return _forms(word)[0] if leading_space else word


def _count_message(word: str, tokenizer) -> str:
    spaced, bare = _forms(word)
    n_spaced, n_bare = len(encode(tokenizer, spaced)), len(encode(tokenizer, bare))
    return f"{spaced!r} is {plural(n_spaced, 'token')}, {bare!r} is {plural(n_bare, 'token')}"


def word_token(word: str, tokenizer, leading_space: bool = True) -> int:
    """The one token id of ``word`` (a leading space added when ``leading_space``); error if not one token."""
    check_tokenizer(tokenizer)
    used = _used(_check_word(word), leading_space)
    ids = encode(tokenizer, used)
    if len(ids) != 1:
        raise LaminaError(f"{used!r} is not a single token: {_count_message(word, tokenizer)}. "
                          "Use a word that is one token" + ("." if leading_space else
                                                            ", or leading_space=True."))
    return int(ids[0])


def check_single_tokens(words, tokenizer, leading_space: bool = True) -> pd.DataFrame:
    """Which words are single tokens, for reports.

    Returns:
        One row per word (input order): ``word``, ``n_tokens_with_space``,
        ``n_tokens_without_space``, ``single`` (bool: the form the builders encode,
        with a leading space when ``leading_space``, else as given, is one token).
    """
    check_tokenizer(tokenizer)
    if isinstance(words, str):
        words = [words]
    if isinstance(words, (bytes, dict)) or not hasattr(words, "__iter__"):
        raise LaminaError(f"words must be a word or a list of words, not {words!r}.")
    rows = []
    for word in words:
        spaced, bare = _forms(_check_word(word))
        n_spaced, n_bare = len(encode(tokenizer, spaced)), len(encode(tokenizer, bare))
        used = n_spaced if (leading_space or word.startswith(" ")) else n_bare
        rows.append((word, n_spaced, n_bare, used == 1))
    frame = pd.DataFrame(rows, columns=["word", "n_tokens_with_space", "n_tokens_without_space", "single"])
    return frame.astype({"n_tokens_with_space": np.int64, "n_tokens_without_space": np.int64, "single": bool})


def _pairs(categories) -> list[tuple[object, str]]:
    """(category, word) pairs from a dict {category: [words]} or a list of pairs."""
    if isinstance(categories, dict):
        pairs = []
        for cat, words in categories.items():
            if isinstance(words, str) or not hasattr(words, "__iter__"):
                raise LaminaError(f"category {cat!r} must map to a list of words, not {words!r}.")
            words = list(words)
            if not words:
                raise LaminaError(f"category {cat!r} has no words.")
            pairs.extend((cat, w) for w in words)
    elif isinstance(categories, (str, bytes)) or not hasattr(categories, "__iter__"):
        raise LaminaError("categories must be a dict {category: [words]} or a list of (category, word) pairs.")
    else:
        pairs = []
        for item in categories:
            if isinstance(item, str) or not hasattr(item, "__len__") or len(item) != 2:
                raise LaminaError(f"each entry must be a (category, word) pair like [1, 'galaxy'], not {item!r}.")
            pairs.append((item[0], item[1]))
    if not pairs:
        raise LaminaError("categories is empty; give at least one word.")
    for _, word in pairs:
        _check_word(word)
    return pairs


def single_token_words(categories, tokenizer, *, leading_space: bool = True, on_invalid: str = "raise") -> Stimuli:
    """One one-token sequence per word (seed 004 part A).

    Args:
        categories: ``{category: [words]}`` or a list of ``(category, word)`` pairs like
            the seed's ``[[1, 'galaxy'], ...]``; order is kept.
        tokenizer: a lamina Model or an HF tokenizer.
        leading_space: encode ``' galaxy'`` rather than ``'galaxy'`` (seed 004's words
            are single GPT-2 tokens only with the space).
        on_invalid: ``"raise"``: words that are not one token are an error naming them all;
            ``"drop"``: they are dropped and named in a note.

    Returns:
        ``Stimuli`` with one sequence of shape ``(1,)`` per word. ``meta``: ``category``,
        ``word`` (as given), ``token`` (its id). ``next_ids``: all -1.
    """
    check_tokenizer(tokenizer)
    if on_invalid not in _ON_INVALID:
        raise LaminaError(f"on_invalid must be 'raise' or 'drop', not {on_invalid!r}."
                          + (closest(on_invalid, _ON_INVALID) if isinstance(on_invalid, str) else ""))
    pairs = _pairs(categories)
    seen = {}
    for cat, word in pairs:
        key = _used(word, leading_space)
        if key in seen:
            raise LaminaError(f"{word!r} is listed twice (in {seen[key]!r} and {cat!r}); list each word once.")
        seen[key] = cat
    rows, bad = [], []
    for cat, word in pairs:
        ids = encode(tokenizer, _used(word, leading_space))
        if len(ids) == 1:
            rows.append((cat, word, int(ids[0])))
        else:
            bad.append(f"{_count_message(word, tokenizer)}")
    if bad and on_invalid == "raise":
        form = "with a leading space" if leading_space else "as given"
        raise LaminaError(f"{plural(len(bad), 'word')} of {len(pairs)} {'is' if len(bad) == 1 else 'are'} not a "
                          f"single token {form}: {'; '.join(bad)}. "
                          "Remove them or pass on_invalid='drop'.")
    if not rows:
        raise LaminaError(f"none of the {plural(len(pairs), 'word')} is a single token: {'; '.join(bad)}.")
    notes = [f"dropped {len(bad)} of {len(pairs)} words that are not single tokens: {'; '.join(bad)}"] if bad else []
    meta = pd.DataFrame(rows, columns=["category", "word", "token"])
    return stamped(Stimuli([[tid] for _, _, tid in rows], meta, None, notes), tokenizer)


def read_words(path) -> dict[str, list[str]]:
    """Read a word list: ``category,word`` lines (``#`` comments, optional header) or a JSON dict.

    Surrounding whitespace is stripped from categories and words; builders add the
    leading space themselves (``leading_space=True``). Returns ``{category: [words]}``
    in file order.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise LaminaError(f"a word list is a file path, not {path!r}.")
    path = Path(path)
    if path.is_dir():
        raise LaminaError(f"word list {str(path)!r} is a directory, not a file.")
    if not path.is_file():
        raise LaminaError(f"word list {str(path)!r} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LaminaError(f"word list {str(path)!r} is not UTF-8 text ({exc.reason}).") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        return _read_json(text, path)
    return _read_csv(text, path)


def _read_json(text: str, path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LaminaError(f"word list {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    if not isinstance(data, dict) or not data:
        raise LaminaError(f"word list {str(path)!r} must be a JSON object {{category: [words]}} with at least "
                          "one category.")
    out = {}
    for cat, words in data.items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise LaminaError(f"word list {str(path)!r}: category {cat!r} must be a non-empty list of words, "
                              f"got {words!r}.")
        out[cat.strip()] = [w.strip() for w in words]
    return out


def _read_csv(text: str, path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    first = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader(io.StringIO(line)))]
        if first and [f.lower() for f in fields] == ["category", "word"]:
            first = False
            continue
        first = False
        if len(fields) != 2 or not all(fields):
            raise LaminaError(f"word list {str(path)!r} line {lineno}: expected 'category,word', got {line.strip()!r}.")
        out.setdefault(fields[0], []).append(fields[1])
    if not out:
        raise LaminaError(f"word list {str(path)!r} has no words (expected 'category,word' lines).")
    return out
