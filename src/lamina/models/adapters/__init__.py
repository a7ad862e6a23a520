"""One small adapter per model family; :func:`adapter_for` picks one from a config."""

from ...errors import LaminaError
from .base import Adapter, Hook
from .gpt2 import ADAPTER as GPT2
from .llama import ADAPTER as LLAMA
from .neox import ADAPTER as NEOX

ADAPTERS: tuple[Adapter, ...] = (GPT2, LLAMA, NEOX)


def supported_model_types() -> list[str]:
    return sorted(t for a in ADAPTERS for t in a.model_types)


def adapter_for(model_type: str) -> Adapter:
    """The adapter serving ``config.model_type``; a clear error for anything else."""
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    raise LaminaError(
        f"unsupported architecture {model_type!r}: lamina has adapters for "
        f"{', '.join(supported_model_types())} (families: "
        f"{', '.join(a.family for a in ADAPTERS)})."
    )


__all__ = ["ADAPTERS", "Adapter", "Hook", "adapter_for", "supported_model_types"]
