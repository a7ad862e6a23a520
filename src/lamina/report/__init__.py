"""Stage 8: the self-contained HTML reports: one run's page, and a comparison's across models."""

from .compare import render_comparison
from .html import render

__all__ = ["render", "render_comparison"]
