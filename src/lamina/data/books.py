"""Project Gutenberg books: local file, then the lamina cache, then gutenberg.org."""

import os
import re
from pathlib import Path

from lamina.errors import LaminaError, closest
from ..cache import cache_dir

from .local import data_dir, decode, normalize, read_text
from .web import fetch, save_atomic

BOOKS = {"alice": 11, "gatsby": 64317}
URL = "https://www.gutenberg.org/cache/epub/{id}/pg{id}.txt"

# Old files say "THIS PROJECT", new ones "THE PROJECT"; some omit the space after the stars.
_START = re.compile(r"^.*\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
_END = re.compile(r"^.*\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
# Older files repeat "End of [the] Project Gutenberg's <title>" just above the END marker.
_END_LINE = re.compile(r"\n[ \t]*End of (?:the )?Project Gutenberg.*\Z", re.I)


def strip_gutenberg(text: str) -> str:
    """``text`` without the Project Gutenberg header and license footer, as str.

    Drops everything up to and including the ``*** START OF THE/THIS PROJECT GUTENBERG
    EBOOK`` line and everything from the ``*** END OF ...`` line on (plus an "End of
    Project Gutenberg's ..." line right above it). Text without markers keeps its body.
    Line ends become LF and surrounding whitespace is stripped in every case.
    """
    text = normalize(text)
    start = _START.search(text)
    if start:
        text = text[start.end():]
    end = _END.search(text)
    if end:
        text = _END_LINE.sub("", text[:end.start()].rstrip())
    return text.strip()


def _book_id(book_id) -> int:
    if isinstance(book_id, bool) or not isinstance(book_id, int) or book_id <= 0:
        raise LaminaError(f"a Gutenberg book id is a positive int, got {book_id!r}.")
    return book_id


def _local(book_id: int) -> Path | None:
    root = data_dir()
    if root is None:
        return None
    # Sorted so the choice is stable when several files match.
    for path in sorted(root.iterdir()):
        if path.is_file() and (path.name == f"pg{book_id}.txt" or path.name.endswith(f"_pg{book_id}.txt")):
            return path
    return None


def gutenberg(book_id: int, strip: bool = True) -> str:
    """The text of Project Gutenberg book ``book_id`` as one str with LF line ends.

    Looks in ``LAMINA_DATA_DIR`` (``pg{id}.txt`` or ``*_pg{id}.txt``), then the cache
    ``cache_dir("gutenberg")/pg{id}.txt``, else downloads it into that cache. With
    ``strip`` the Gutenberg header/footer is removed (:func:`strip_gutenberg`).
    """
    book_id = _book_id(book_id)
    path = _local(book_id) or cache_dir("gutenberg") / f"pg{book_id}.txt"
    if path.is_file():
        text = read_text(path)
    else:
        url = URL.format(id=book_id)
        raw = fetch(url, f"Gutenberg book {book_id}")
        text = decode(raw, url)  # validate before caching so a bad body is not kept
        save_atomic(path, raw)
    if strip:
        text = strip_gutenberg(text)
        if not text:
            raise LaminaError(f"Gutenberg book {book_id} ({path}) has no text between its header and footer.")
    return text


def book(name_or_id) -> str:
    """A book's text as str: a name in ``BOOKS``, a Gutenberg id (int or digits), or a file path.

    Names and ids go through :func:`gutenberg` (header/footer stripped); a path is read
    as-is (UTF-8, BOM dropped, LF line ends).
    """
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
        return gutenberg(name_or_id)
    if isinstance(name_or_id, str):
        key = name_or_id.strip().lower()
        if key in BOOKS:
            return gutenberg(BOOKS[key])
        if key.isdigit():
            return gutenberg(int(key))
    if isinstance(name_or_id, (str, os.PathLike)):
        path = Path(name_or_id).expanduser()
        if path.is_file():
            return read_text(path)
        if path.is_dir() and (isinstance(name_or_id, os.PathLike) or os.sep in str(name_or_id)):
            raise LaminaError(f"{path} is a directory, not a text file.")
        if isinstance(name_or_id, os.PathLike) or os.sep in str(name_or_id) or path.suffix:
            raise LaminaError(f"no such file: {path}.")
        raise LaminaError(
            f"unknown book {name_or_id!r}; use one of {sorted(BOOKS)}, a Gutenberg id or a text file path."
            + closest(str(name_or_id).lower(), BOOKS)
        )
    raise LaminaError(f"book() takes a name, a Gutenberg id or a path, got {type(name_or_id).__name__}.")
