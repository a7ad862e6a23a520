"""The local data directory (``LAMINA_DATA_DIR``) and reading text files from disk."""

import os
from pathlib import Path

from lamina.errors import LaminaError

ENV = "LAMINA_DATA_DIR"


def data_dir() -> Path | None:
    """The directory named by ``$LAMINA_DATA_DIR``, or None when the variable is unset or empty.

    Raises LaminaError when the variable is set but does not name a directory: a typo
    there would otherwise silently turn into a download attempt.
    """
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise LaminaError(f"{ENV}={value!r} is not a directory; point it at the folder with the texts "
                          "or unset it.")
    return path


def local_file(name: str) -> Path | None:
    """``data_dir() / name`` if that file exists, else None."""
    root = data_dir()
    if root is None:
        return None
    path = root / name
    return path if path.is_file() else None


def normalize(text: str) -> str:
    """``text`` without a leading BOM and with CRLF / CR line ends turned into LF."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def decode(raw: bytes, source: str) -> str:
    """UTF-8 ``raw`` as normalized text (see :func:`normalize`); LaminaError if empty or not UTF-8."""
    try:
        text = normalize(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LaminaError(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    if not text.strip():
        raise LaminaError(f"{source} is empty.")
    return text


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of the file at ``path``: BOM dropped, line ends LF; LaminaError if empty."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LaminaError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    return decode(raw, str(path))
