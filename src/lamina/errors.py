"""The one exception type users see.

Anything a user can cause (a bad name, a short text, a word that is not one
token) raises :class:`LaminaError` with a message that says what to do. The CLI
prints it on one line and exits 2; every other exception is a bug in lamina.
"""


import errno

#: errno values of a full disk or quota: no later step can succeed, so nothing carries on past them.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class LaminaError(ValueError):
    """A user-facing error: bad input, missing files, unsupported models."""


def closest(name: str, choices) -> str:
    """A ' Did you mean ...?' hint for an unknown name, or '' if nothing is close."""
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(m) for m in match)}?" if match else ""


def one_line(message) -> str:
    """``message`` as one printable line: newlines folded, characters the terminal cannot encode
    (e.g. undecodable bytes from the command line, held as lone surrogates) shown as escapes."""
    text = " ".join(str(message).split("\n"))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_level(level) -> None:
    """A confidence level in percent, strictly between 0 and 100 (every interval of lamina.stats checks it so)."""
    if not 0 < level < 100:
        raise LaminaError(f"a confidence level is a percentage between 0 and 100, not {level}.")


def check_output_dir(path, what: str = "out"):
    """``path`` as a :class:`~pathlib.Path` where a directory can be written, or a LaminaError naming ``what``.

    Refused before any work: a path that is an existing file, one whose nearest existing ancestor is
    a file (``file.txt/run``), one that names no file system location (empty, NUL byte, undecodable
    bytes), and one under a directory this process may not write to.
    """
    import os
    from pathlib import Path

    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise LaminaError(f"{what} must be a directory path, not {path!r}.")
    text = os.fspath(path)
    if not str(text).strip():
        raise LaminaError(f"{what} is empty; give a directory path.")
    if "\x00" in str(text):
        raise LaminaError(f"{what} {one_line(repr(text))} holds a NUL byte; give a directory path.")
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError:
        raise LaminaError(f"{what} {one_line(repr(text))} is not valid UTF-8; give a directory path "
                          "a report can name.") from None
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise LaminaError(f"{what} {str(path)!r} is an existing file, not a directory; choose another path.")
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise LaminaError(f"{what} {str(path)!r} cannot be created: {str(parent)!r} is a file, not a directory.")
    if not os.access(parent, os.W_OK | os.X_OK) or _pseudo_fs(parent):
        raise LaminaError(f"{what} {str(path)!r} cannot be created: {str(parent)!r} is not writable.")
    return path


def _pseudo_fs(path) -> bool:
    """A kernel file system (/proc, /sys) where nothing can be created, even by root."""
    parts = path.resolve().parts
    return len(parts) > 1 and parts[0] == "/" and parts[1] in ("proc", "sys")
