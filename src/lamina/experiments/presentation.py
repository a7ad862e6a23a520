"""Presentation options several experiments share, declared once (see :mod:`.settings`).

Kept apart from :mod:`.settings` because a colormap's rule asks matplotlib, which computing never imports.
"""

from __future__ import annotations

import matplotlib as mpl

from .settings import setting


def _is_colormap(name) -> bool:
    return name in mpl.colormaps


def colormap(default: str | None):
    """A matplotlib colormap by name (an optional one: None keeps the figure's own colours)."""
    return setting(default, check=_is_colormap, means="a matplotlib colormap (e.g. viridis, plasma, Purples)")
