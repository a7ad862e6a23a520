"""Stage 8: the self-contained HTML report."""

from .html import render

__all__ = ["render"]
