"""Stage 1: load a model and know where its sites are."""

from .adapters import ADAPTERS, Adapter, adapter_for
from .control import random_control
from .embedded import EMBEDDED
from .load import Model, load, wrap
from .sites import SITES, TOKEN_SITES, check_layers, check_site

__all__ = ["ADAPTERS", "EMBEDDED", "SITES", "TOKEN_SITES", "Adapter", "Model", "adapter_for",
           "check_layers", "check_site", "load", "random_control", "wrap"]
