"""The one exception type users see.

Anything a user can cause (a bad name, a short text, a word that is not one
token) raises :class:`LaminaError` with a message that says what to do. The CLI
prints it on one line and exits 2; every other exception is a bug in lamina.
"""


class LaminaError(ValueError):
    """A user-facing error: bad input, missing files, unsupported models."""


def closest(name: str, choices) -> str:
    """A ' Did you mean ...?' hint for an unknown name, or '' if nothing is close."""
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(m) for m in match)}?" if match else ""
