"""Builders that cut token sequences out of texts (seeds 000-004).

Every builder takes ``tokenizer`` = a lamina ``Model`` or a Hugging Face tokenizer,
tokenizes without special tokens (:func:`~lamina.stimuli.base.encode`) and never adds
BOS: the recording engine does that. Each returns a :class:`Stimuli` whose ``next_ids``
hold the token that follows each sequence in its text (-1 at the end of the text).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..errors import LaminaError, closest
from ._tokens import check_count, check_max_length, check_text, check_tokenizer, plural, stamped, token_array
from .base import Stimuli
from .words import word_token

__all__ = ["first_tokens", "one_long_sequence", "passage", "window", "windows", "word_in_contexts"]

_WHERE = ("middle", "start")


def first_tokens(texts, tokenizer, n: int, *, labels=None) -> Stimuli:
    """The first ``n`` tokens of each text (seed 000: ``tokenizer.encode(ctx)[:seqlen]``).

    Args:
        texts: a sequence of strings (e.g. HellaSwag contexts).
        tokenizer: a lamina Model or an HF tokenizer.
        n: tokens per sequence (>= 1).
        labels: optional, one label per text (stored in ``meta['label']``).

    Returns:
        ``Stimuli`` with ``m`` sequences of shape ``(n,)``, one per text with at least
        ``n`` tokens, in input order. ``meta``: ``text_index`` (position in ``texts``)
        and ``label`` when given. ``next_ids``: token ``n`` of the text, or -1 when the
        text has exactly ``n`` tokens. Shorter texts are dropped and counted in a note.
    """
    check_tokenizer(tokenizer)
    n = check_count(n, "n")
    if isinstance(texts, (str, bytes)):
        raise LaminaError("texts must be a list of strings, not one string; use [text] for a single text.")
    if isinstance(texts, dict) or not hasattr(texts, "__iter__"):
        raise LaminaError(f"texts must be a list of strings, not {type(texts).__name__}.")
    texts = list(texts)
    if not texts:
        raise LaminaError("texts is empty; first_tokens needs at least one text.")
    if labels is not None:
        if isinstance(labels, (str, bytes, dict)) or not hasattr(labels, "__iter__"):
            raise LaminaError(f"labels must be a list with one label per text, not {labels!r}.")
        labels = list(labels)
        if len(labels) != len(texts):
            raise LaminaError(f"labels has {len(labels)} entries for {len(texts)} texts; give one label per text.")
    ids, next_ids, kept = [], [], []
    for i, text in enumerate(texts):
        tokens = token_array(tokenizer, check_text(text, f"texts[{i}]"))
        if len(tokens) < n:
            continue
        ids.append(tokens[:n])
        next_ids.append(tokens[n] if len(tokens) > n else -1)
        kept.append(i)
    dropped = len(texts) - len(kept)
    if not kept:
        raise LaminaError(f"all {plural(len(texts), 'text')} have fewer than {plural(n, 'token')}; use a smaller n.")
    meta = pd.DataFrame({"text_index": np.asarray(kept, dtype=np.int64)})
    if labels is not None:
        meta["label"] = [labels[i] for i in kept]
    notes = [f"dropped {dropped} of {len(texts)} texts with fewer than {plural(n, 'token')}"] if dropped else []
    return stamped(Stimuli(ids, meta, np.asarray(next_ids, dtype=np.int64), notes), tokenizer)


def _span(tokens: np.ndarray, start: int, length: int) -> Stimuli:
    """One sequence ``tokens[start:start+length]``, meta ``start``/``length``, and its next id."""
    end = start + length
    next_id = int(tokens[end]) if end < len(tokens) else -1
    meta = pd.DataFrame({"start": [start], "length": [length]}, dtype=np.int64)
    return Stimuli([tokens[start:end]], meta, np.array([next_id], dtype=np.int64))


def _window_start(text, tokenizer, length, where, max_length) -> tuple[np.ndarray, int]:
    """The text's tokens and the checked start of a ``length``-token window at ``where``."""
    check_tokenizer(tokenizer)
    length = check_count(length, "length")
    check_max_length(length, max_length, "a window")
    tokens = token_array(tokenizer, check_text(text))
    n_tokens = len(tokens)
    if n_tokens == 0:
        raise LaminaError("the text is empty (it has no tokens).")
    if isinstance(where, str):
        if where not in _WHERE:
            raise LaminaError(f"where must be 'middle', 'start' or a token offset, not {where!r}."
                              + closest(where, _WHERE))
        start = n_tokens // 2 if where == "middle" else 0
    elif isinstance(where, numbers.Integral) and not isinstance(where, bool):
        start = int(where)
        if start < 0:
            raise LaminaError(f"where={start} is negative; give a token offset from 0 to {n_tokens - 1}.")
    else:
        raise LaminaError(f"where must be 'middle', 'start' or an int token offset, not {where!r}.")
    if start + length > n_tokens:
        if n_tokens < length:
            raise LaminaError(f"the text has {n_tokens} tokens, fewer than the window's {length}; "
                              "use a longer text or a smaller length.")
        if where == "middle":
            raise LaminaError(
                f"the text has {n_tokens} tokens; a window of {length} from the middle (token {start}) needs "
                f"{start + length}. Use length <= {n_tokens - start}, or where='start'.")
        raise LaminaError(
            f"the text has {n_tokens} tokens; a window of {length} from token {start} needs {start + length}. "
            f"Use where <= {n_tokens - length} or length <= {max(n_tokens - start, 0)}.")
    return tokens, start


def window(text: str, tokenizer, length: int, *, where="middle", max_length=None) -> Stimuli:
    """One window of ``length`` consecutive tokens from a text (seed 001).

    Args:
        text: the whole text; it is tokenized in one piece, then cut.
        tokenizer: a lamina Model or an HF tokenizer.
        length: tokens in the window (>= 1).
        where: ``"middle"`` starts at ``n_tokens // 2`` (seed 001's
            ``start_idx = len(allTokens)//2``), ``"start"`` at 0, an int at that token offset.
        max_length: the model's context length; a longer window is an error.

    Returns:
        ``Stimuli`` with one sequence of shape ``(length,)`` = ``tokens[start:start+length]``.
        ``meta``: ``start``, ``length``. ``next_ids``: ``tokens[start+length]`` (seed 001
        takes the last position's target from the full text), or -1 at the end of the text.
    """
    tokens, start = _window_start(text, tokenizer, length, where, max_length)
    return stamped(_span(tokens, start, length), tokenizer)


def windows(text: str, tokenizer, length: int, n: int, *, max_length=None) -> Stimuli:
    """``n`` disjoint windows of ``length`` tokens from one text: replicates of seed 001's design.

    Window 0 is :func:`window`'s ``where="middle"`` window (the seed's); the others are spread evenly
    over the rest of the text, in text order: the span before the middle window and the span after
    it are cut into equal slots, one window centred in each (slots shared in proportion to the two
    spans' lengths).

    Args:
        text: the whole text (tokenized in one piece).
        tokenizer: a lamina Model or an HF tokenizer.
        length: tokens per window (>= 1).
        n: number of windows (>= 1).
        max_length: the model's context length; a longer window is an error.

    Returns:
        ``Stimuli`` with ``n`` sequences of shape ``(length,)``; ``meta``: ``replicate`` (0 = the
        middle window), ``start``, ``length``. ``next_ids``: the token after each window (-1 at the
        end of the text).
    """
    n = check_count(n, "n")
    tokens, mid = _window_start(text, tokenizer, length, "middle", max_length)
    before, after = mid, len(tokens) - (mid + length)
    fit = before // length + after // length
    if n - 1 > fit:
        raise LaminaError(f"the text has room for {fit + 1} disjoint windows of {length} tokens, not {n}; "
                          "use fewer replicates or shorter windows.")
    # Share the other n - 1 windows between the two spans in proportion to their room.
    n_before = min(before // length, max(n - 1 - after // length, round((n - 1) * before / max(before + after, 1))))
    n_after = n - 1 - n_before
    starts = [mid]
    for span_start, span, k in ((0, before, n_before), (mid + length, after, n_after)):
        slot = span / max(k, 1)
        starts += [span_start + int(i * slot + (slot - length) / 2) for i in range(k)]
    others = sorted(starts[1:])
    spans = [_span(tokens, start, length) for start in [mid] + others]
    meta = pd.concat([s.meta for s in spans], ignore_index=True)
    meta.insert(0, "replicate", np.arange(n, dtype=np.int64))
    return stamped(Stimuli([s.ids[0] for s in spans], meta, np.concatenate([s.next_ids for s in spans])), tokenizer)


def passage(text: str, tokenizer, *, max_length=None) -> Stimuli:
    """The whole text as one sequence (seed 002: ``tokenizer.encode(txt)``).

    Returns:
        ``Stimuli`` with one sequence of shape ``(n_tokens,)``. ``meta``: ``start`` (0),
        ``length`` (``n_tokens``). ``next_ids``: ``[-1]``.
    """
    check_tokenizer(tokenizer)
    tokens = token_array(tokenizer, check_text(text))
    if len(tokens) == 0:
        raise LaminaError("the text is empty (it has no tokens).")
    check_max_length(len(tokens), max_length, "the passage")
    return stamped(_span(tokens, 0, len(tokens)), tokenizer)


def one_long_sequence(text: str, tokenizer, length: int, *, max_length=None) -> Stimuli:
    """The first ``length`` tokens of a text as one sequence (seed 003's ``tokens[:ntargets+1]``).

    Returns:
        ``Stimuli`` with one sequence of shape ``(length,)``. ``meta``: ``start`` (0),
        ``length``. ``next_ids``: ``tokens[length]``, or -1 when the text ends there.
        A text with fewer than ``length`` tokens is an error (no silent truncation).
    """
    check_tokenizer(tokenizer)
    length = check_count(length, "length")
    check_max_length(length, max_length, "a sequence")
    tokens = token_array(tokenizer, check_text(text))
    if len(tokens) == 0:
        raise LaminaError("the text is empty (it has no tokens).")
    if len(tokens) < length:
        raise LaminaError(f"the text has {len(tokens)} tokens, fewer than the {length} asked for; "
                          f"use length <= {len(tokens)}.")
    return stamped(_span(tokens, 0, length), tokenizer)


def word_in_contexts(text: str, tokenizer, words, length: int, *, leading_space: bool = True) -> Stimuli:
    """The ``length`` tokens ending at each occurrence of single-token words (seeds 003, 004B).

    For each word (seed 003: ``tokens[idx-nseq+1 : idx+1]`` with ``nseq=10``; seed 004:
    ``contextwin+1 = 51`` tokens), every occurrence of its token in the tokenized text
    gives one sequence that ends with (and includes) it.

    Args:
        text: the text to search; tokenized in one piece.
        tokenizer: a lamina Model or an HF tokenizer.
        words: one word or a list; each must be a single token. With ``leading_space``
            a word without one gets a leading space (``'coffee'`` -> ``' coffee'``).
        length: tokens per sequence, the occurrence included (>= 1).

    Returns:
        ``Stimuli`` with one sequence of shape ``(length,)`` per kept occurrence,
        grouped by word in the order given, in text order within a word. ``meta``:
        ``word`` (as given), ``word_index``, ``token`` (its id), ``occurrence`` (0-based
        among the word's kept occurrences), ``position`` (token index in the text).
        ``next_ids``: ``tokens[position + 1]`` or -1 at the end of the text.
        Occurrences with fewer than ``length - 1`` tokens before them are dropped and
        counted in a note (seed 003's slice breaks for them).
    """
    check_tokenizer(tokenizer)
    length = check_count(length, "length")
    if isinstance(words, str):
        words = [words]
    if isinstance(words, (bytes, dict)) or not hasattr(words, "__iter__"):
        raise LaminaError(f"words must be a word or a list of words, not {words!r}.")
    words = list(words)
    if not words:
        raise LaminaError("words is empty; give at least one word.")
    token_ids = [word_token(w, tokenizer, leading_space) for w in words]
    seen = {}
    for word, tid in zip(words, token_ids):
        if tid in seen:
            raise LaminaError(f"{word!r} and {seen[tid]!r} are the same token ({tid}); list each word once.")
        seen[tid] = word
    tokens = token_array(tokenizer, check_text(text))
    if len(tokens) == 0:
        raise LaminaError("the text is empty (it has no tokens).")
    ids, rows, next_ids, notes = [], [], [], []
    for wi, (word, tid) in enumerate(zip(words, token_ids)):
        positions = np.flatnonzero(tokens == tid)
        shown = _shown(word, leading_space)
        if len(positions) == 0:
            raise LaminaError(f"{shown!r} does not occur in the text.")
        kept = positions[positions >= length - 1]
        if len(kept) == 0:
            raise LaminaError(
                f"{'the only occurrence' if len(positions) == 1 else f'all {len(positions)} occurrences'} of "
                f"{shown!r} {'has' if len(positions) == 1 else 'have'} fewer than {length - 1} tokens "
                f"before them (the first is at token {positions[0]}); use length <= {positions[-1] + 1}.")
        if len(kept) < len(positions):
            notes.append(f"dropped {len(positions) - len(kept)} of {len(positions)} occurrences of {shown!r} "
                         f"with fewer than {plural(length - 1, 'token')} before them")
        for occ, pos in enumerate(kept.tolist()):
            ids.append(tokens[pos - length + 1:pos + 1])
            next_ids.append(int(tokens[pos + 1]) if pos + 1 < len(tokens) else -1)
            rows.append((word, wi, tid, occ, pos))
    meta = pd.DataFrame(rows, columns=["word", "word_index", "token", "occurrence", "position"])
    return stamped(Stimuli(ids, meta, np.asarray(next_ids, dtype=np.int64), notes), tokenizer)


def _shown(word: str, leading_space: bool) -> str:
    return " " + word if leading_space and not word.startswith(" ") else word
