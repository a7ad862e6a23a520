"""Stage 6: figure families drawn onto axes you pass in (Figure objects, no pyplot state)."""

from .style import STYLE, figure, save

__all__ = ["STYLE", "figure", "save"]
