"""Hand-written adapters, for the families where they exist; every other architecture's adapter is
derived from its module tree (:func:`lamina.models.derive.adapter_for_model`).

This package imports no other module of ``lamina.models`` at import time but ``scope`` (lazily): the
structural resolver, the taps and the self-check import it, never the other way round."""

from ...errors import LaminaError
from .base import Adapter, Hook
from .bloom import ADAPTER as BLOOM
from .dbrx import ADAPTER as DBRX
from .gpt2 import ADAPTER as GPT2
from .granite_shared import ADAPTER as GRANITE_SHARED
from .llama import ADAPTER as LLAMA
from .mpt import ADAPTER as MPT
from .neox import ADAPTER as NEOX
from .neox_japanese import ADAPTER as NEOX_JAPANESE

ADAPTERS: tuple[Adapter, ...] = (GPT2, LLAMA, NEOX, BLOOM, MPT, DBRX, NEOX_JAPANESE, GRANITE_SHARED)


def supported_model_types() -> list[str]:
    """Model types with a hand-written adapter (many more are derived: see `lamina architectures`)."""
    return sorted(t for a in ADAPTERS for t in a.model_types)


def handwritten(model_type: str) -> Adapter | None:
    """The hand-written adapter serving ``config.model_type``, if there is one."""
    return next((a for a in ADAPTERS if model_type in a.model_types), None)


def adapter_for(model_type: str) -> Adapter:
    """The hand-written adapter for ``model_type``; a clear error when lamina refuses the type, or when
    its adapter can only be derived from a loaded model (``lamina.load`` / ``lamina.wrap`` do that)."""
    from ..scope import refusal

    adapter = handwritten(model_type)
    if adapter is not None:
        return adapter
    reason = refusal(model_type)
    if reason is not None:
        raise LaminaError(reason)
    raise LaminaError(f"no hand-written adapter for {model_type!r} (those exist for "
                      f"{', '.join(supported_model_types())}): lamina derives one from the model's modules when "
                      "it loads it (lamina.load / lamina.wrap).")


__all__ = ["ADAPTERS", "Adapter", "Hook", "adapter_for", "handwritten",
           "supported_model_types"]
