"""The attention probabilities of chosen attention modules (``attn.pattern``), read without changing the model,
and the head count that splits the output projection (``attn.heads``).

Hugging Face runs attention in the implementation that ``config._attn_implementation`` names. ``"eager"``
forms the softmax probabilities, and every attention module returns them as the second element of its
output (what ``output_attentions=True`` collects); the fused implementations (``"sdpa"``, flash) never
form them. :func:`watch` reads them at one module:

* **eager**: a forward hook takes the module's ``output[1]``, HF's own tensor;
* **sdpa**: while some module is watched, the ``"sdpa"`` entry of transformers' attention interface
  (``ALL_ATTENTION_FUNCTIONS``, which every modern modeling file calls) is wrapped. A watched module's
  call runs the original sdpa function, whose output the model goes on with (so recording the pattern
  changes no other value, bit for bit), and then the module's own modeling file's
  ``eager_attention_forward`` on the same query, key, value and keyword arguments (scaling, sliding
  window, soft-capping, sinks; after rotary embeddings, with its own GQA repeat), with sdpa's mask turned
  into eager's additive one: exactly the probabilities HF's eager attention computes from those inputs.
  Calls of every other module go straight to the original, and without a watched module the interface
  is not touched at all.

Other implementations (flash, flex, paged) are refused: their masks are not sdpa's. Modules that compute
attention in their own code, outside the interface (Falcon under sdpa), are never seen by the wrapper;
the load-time self-check refuses ``attn.pattern`` there with the reason.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import LaminaError, one_line

SUPPORTED = ("eager", "sdpa")
_LOCK = threading.Lock()
_WATCHED: dict[int, list] = {}  # id(attention module) -> its watches (sdpa only)
_INSTALLED: list = []  # the original sdpa function while the wrapper is installed, else empty

_HEAD_ATTRS = ("num_heads", "num_attention_heads", "n_head", "n_heads")


class PatternFailed(LaminaError):
    """HF's own eager attention code fails on this module, so its probabilities cannot be computed."""


def implementation(module, config=None) -> str | None:
    """The attention implementation ``module`` runs: its config's ``_attn_implementation``, else that of
    ``config``'s language model."""
    if getattr(module, "config", None) is None and config is not None:
        getter = getattr(config, "get_text_config", None)
        config = getter(decoder=True) if callable(getter) else config
    return getattr(getattr(module, "config", None) or config, "_attn_implementation", None)


def refusal(module, config=None) -> str | None:
    """Why ``attn.pattern`` cannot be read at ``module`` as the model is configured (None: it can be tried;
    the self-check then verifies it)."""
    impl = implementation(module, config)
    if impl not in SUPPORTED:
        return (f"attn.pattern is read from eager or sdpa attention and this model runs {impl!r}; load it with "
                "attn_implementation='sdpa' (or 'eager')")
    if impl == "sdpa" and _eager_function(module) is None:
        return (f"its attention module ({type(module).__name__}) computes sdpa attention in its own code, which "
                "forms no probabilities, and its modeling code has no eager_attention_forward to compute them with")
    return None


@dataclass(eq=False)
class _Watch:
    module: torch.nn.Module
    on_pattern: Callable
    on_outputs: Callable | None

    def remove(self) -> None:
        with _LOCK:
            watches = _WATCHED.get(id(self.module), [])
            if self in watches:
                watches.remove(self)
            if not watches:
                _WATCHED.pop(id(self.module), None)
            if not _WATCHED and _INSTALLED:
                _uninstall()


def watch(module, on_pattern: Callable, *, on_outputs: Callable | None = None, config=None):
    """Call ``on_pattern(weights)`` with the attention probabilities ``(batch, head, query, key)`` each time
    ``module`` runs; returns a handle whose ``remove()`` stops it.

    ``on_outputs(eager_output, output)`` (sdpa only; the self-check's) also gets the attention output that
    eager computes from those probabilities and the one the model really used, to compare them.
    """
    reason = refusal(module, config)
    if reason is not None:
        raise LaminaError(f"{type(module).__name__}: {reason}.")
    if implementation(module, config) == "eager":
        def hook(_module, _args, output):
            weights = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if isinstance(weights, torch.Tensor) and weights.dim() == 4:
                on_pattern(weights)
        return module.register_forward_hook(hook)
    handle = _Watch(module, on_pattern, on_outputs)
    with _LOCK:
        _WATCHED.setdefault(id(module), []).append(handle)
        if not _INSTALLED:
            _install()
    return handle


def _install() -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def sdpa_watched(module, query, key, value, attention_mask, *args, **kwargs):
        output = original(module, query, key, value, attention_mask, *args, **kwargs)
        watches = _WATCHED.get(id(module))
        if watches:
            _eager_pattern(module, query, key, value, attention_mask, args, kwargs, output, list(watches))
        return output

    _INSTALLED.append(original)
    ALL_ATTENTION_FUNCTIONS["sdpa"] = sdpa_watched  # a local entry of the shared instance: every model file sees it


def _uninstall() -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = _INSTALLED.pop()
    del ALL_ATTENTION_FUNCTIONS["sdpa"]  # drops the local entry; the global mapping shows through again
    if ALL_ATTENTION_FUNCTIONS["sdpa"] is not original:  # someone else had registered a local one
        ALL_ATTENTION_FUNCTIONS["sdpa"] = original


def _eager_function(module):
    """The ``eager_attention_forward`` of ``module``'s modeling file: what HF runs under eager attention."""
    return getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)


def _eager_pattern(module, query, key, value, mask, args, kwargs, output, watches) -> None:
    eager = _eager_function(module)
    try:
        eager_output, weights = eager(module, query, key, value, _eager_mask(module, query, key, mask, kwargs),
                                      *args, **kwargs)
    except Exception as err:  # noqa: BLE001 - HF's own eager code: its failure is the reason to refuse
        raise PatternFailed(f"HF's eager attention fails on {type(module).__name__} ({type(err).__name__}: "
                            f"{one_line(err)}), so lamina cannot compute attn.pattern") from None
    for handle in watches:
        handle.on_pattern(weights)
        if handle.on_outputs is not None:
            handle.on_outputs(eager_output, output[0])


def _eager_mask(module, query, key, mask, kwargs):
    """sdpa's attention mask as eager's: additive, 0 where a key is attended and the dtype's minimum where
    not. sdpa gets no mask when causality is all there is (it sets its own ``is_causal`` flag then, for
    more than one query; upper-left aligned, as torch's)."""
    lowest = torch.finfo(query.dtype).min
    if mask is None:
        causal = kwargs.get("is_causal")
        if not ((getattr(module, "is_causal", True) if causal is None else causal) and query.shape[2] > 1):
            return None
        mask = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device).tril()[None, None]
    if mask.dtype == torch.bool:
        return torch.where(mask, torch.tensor(0.0, dtype=query.dtype, device=mask.device), lowest)
    return mask


def count_heads(attention, config) -> int | None:
    """Query heads of an attention module: its own attribute (``num_heads``, ...), else its config's or the
    model's language-model config's (``num_attention_heads``, ``n_head``, ...)."""
    getter = getattr(config, "get_text_config", None)
    config = getter(decoder=True) if callable(getter) else config
    for owner in (attention, getattr(attention, "config", None), config):
        for name in _HEAD_ATTRS:
            value = getattr(owner, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None
