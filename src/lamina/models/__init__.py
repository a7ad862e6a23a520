"""Stage 1: load a model and know where its sites are.

The names below are imported on first use, so ``lamina.models.depth`` (which every experiment's settings
use) can be imported without torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # what readers of the source (griffe for the docs, type checkers, IDEs) see
    from .adapters import ADAPTERS, Adapter, adapter_for
    from .control import random_control
    from .embedded import EMBEDDED
    from .loading import Model, load, wrap
    from .sites import SITES, TOKEN_SITES, check_layers, check_site

__all__ = ["ADAPTERS", "EMBEDDED", "SITES", "TOKEN_SITES", "Adapter", "Model", "adapter_for",
           "check_layers", "check_site", "load", "random_control", "wrap"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "ADAPTERS": (".adapters", "ADAPTERS"), "Adapter": (".adapters", "Adapter"),
    "adapter_for": (".adapters", "adapter_for"), "random_control": (".control", "random_control"),
    "EMBEDDED": (".embedded", "EMBEDDED"), "Model": (".loading", "Model"), "load": (".loading", "load"),
    "wrap": (".loading", "wrap"), "SITES": (".sites", "SITES"), "TOKEN_SITES": (".sites", "TOKEN_SITES"),
    "check_layers": (".sites", "check_layers"), "check_site": (".sites", "check_site")})
