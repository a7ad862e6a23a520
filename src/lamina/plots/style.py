"""The seed notebooks' look, applied per figure (no global pyplot state, no GUI backend)."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

STYLE = {
    "axes.spines.right": False,
    "axes.spines.top": False,
    "axes.titleweight": "bold",
    "axes.labelweight": "bold",
    "savefig.dpi": 150,
}


class NotebookFigure(Figure):
    """A ``matplotlib.figure.Figure`` that shows itself as the value of a notebook cell.

    lamina's figures are not registered with pyplot (no global state), and IPython's inline
    backend only knows how to show ``Figure`` once pyplot has drawn something; ``_repr_png_``
    makes ``run.figure("name")`` display in any notebook, before or after ``import pyplot``.
    Everything else is the plain matplotlib Figure: restyle its ``.axes``, ``savefig`` it.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def figure(ncols: int = 1, nrows: int = 1, size=(10, 4), **kwargs) -> tuple[Figure, object]:
    """A new ``Figure`` (:class:`NotebookFigure`) with an ``(nrows, ncols)`` grid of axes in the seed style."""
    with matplotlib.rc_context(STYLE):
        fig = NotebookFigure(figsize=size, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=True, **kwargs)
    return fig, axes


# Byte-reproducible files: SVG ids from a fixed salt instead of a random one, no creation date.
_REPRODUCIBLE = {"svg.hashsalt": "lamina"}


def save(fig: Figure, stem) -> list[str]:
    """Write ``stem.png`` and ``stem.svg``; returns the two paths.

    The same figure always gives the same bytes (no date, fixed SVG ids), so a figure redrawn
    from a run directory, or by a rerun with the same seed, can be compared file for file.
    """
    paths = [f"{stem}.png", f"{stem}.svg"]
    with matplotlib.rc_context({**STYLE, **_REPRODUCIBLE}):
        for path in paths:
            fig.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)
    return paths
