"""Progress bars, one rule for all of lamina: the notebook widget in Jupyter, plain text elsewhere.

``progress_bar(..., progress=...)`` makes every bar lamina shows (recording, statistics loops,
the architecture survey):

* in a Jupyter kernel (notebook, JupyterLab, VS Code, Colab) with ``ipywidgets`` installed: tqdm's
  widget (``tqdm.notebook``);
* anywhere else, or in a kernel without ``ipywidgets``: tqdm's plain text bar on stderr, without
  the "IProgress not found" warning that ``tqdm.auto`` gives there.

``progress=None`` (the default of every lamina function) shows the bar when someone is watching, a
notebook or a terminal (stderr is a TTY), and hides it in logs and pipes; ``True`` always shows
it, ``False`` never. The class is chosen per call, not when lamina is imported, so importing
lamina before or after IPython makes no difference.
"""

from __future__ import annotations

import importlib.util
import sys


def in_notebook() -> bool:
    """Whether this runs inside a Jupyter kernel (not a terminal, a script or the IPython console)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    # Colab's and VS Code's shells subclass the kernel's ZMQInteractiveShell.
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def bar_class() -> type:
    """``tqdm.notebook.tqdm`` in a Jupyter kernel with ipywidgets, else ``tqdm.std.tqdm``."""
    if in_notebook() and has_widgets():
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def shown(progress: bool | None) -> bool:
    """Whether a bar is shown: ``progress`` if given, else in a notebook or on a terminal."""
    if progress is not None:
        return bool(progress)
    if in_notebook():
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def progress_bar(iterable=None, *, progress: bool | None = None, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), shown per :func:`shown`.

    ``kwargs`` go to tqdm (``total``, ``desc``, ``unit``, ``initial``, ...).
    """
    return bar_class()(iterable, disable=not shown(progress), **kwargs)
