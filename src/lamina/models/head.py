"""The LM head of a loaded model as a function lamina can call on any residual-stream vector, one
slice of the vocabulary at a time (the logit lens, direct logit attribution).

A causal LM's forward ends ``final_norm → [pre-head module] → W x + b → logit transform``. The final
norm is the adapter's (``adapter.final_norm``, the module whose output is HF's last hidden state,
``hidden[n_layers]``); ``W`` and ``b`` are ``hf.get_output_embeddings()``. What comes between and after
is family code in the CausalLM's ``forward``, read off transformers 5.23's modeling files:

==========================================  ==============================================================
model types                                 what the forward does beyond ``lm_head(hidden)``
==========================================  ==============================================================
gemma2, gemma3_text, vaultgemma, nanochat   ``cap · tanh(logits / cap)``, ``cap = config.final_logit_softcapping``
cohere, cohere2, cohere2_moe,               ``logits · logit_scale`` (the CausalLM's own attribute, from the
cohere_compass_text                         config)
granite, granite_swa, granitemoe,           ``logits / config.logits_scaling``
granitemoe_swa, granitemoeshared
hyperclovax                                 ``logits · config.logits_scaling`` (multiplied, unlike Granite)
minicpm3                                    ``lm_head(hidden / config.logits_scaling)``
modernbert-decoder                          ``decoder(lm_head(hidden))``: a prediction head (dense, act,
                                            norm) before the output embeddings
==========================================  ==============================================================

Softcapping is taken from the config wherever it is set (only those families set it). A family whose
forward does something else is not caught here: the lens experiment checks that decoding
``hidden[n_layers]`` gives the model's own loss at every token, and refuses the model otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import LaminaError
from .sites import get_module

#: model types whose CausalLM multiplies the logits by its ``logit_scale`` attribute
LOGIT_SCALE_ATTRIBUTE = ("cohere", "cohere2", "cohere2_moe", "cohere_compass_text")
#: model types whose CausalLM divides the logits by ``config.logits_scaling``
DIVIDES_BY_LOGITS_SCALING = ("granite", "granite_swa", "granitemoe", "granitemoe_swa", "granitemoeshared")
#: ... multiplies them by it
MULTIPLIES_BY_LOGITS_SCALING = ("hyperclovax",)
#: ... divides the final hidden state by it before the LM head
HIDDEN_BY_LOGITS_SCALING = ("minicpm3",)
#: model type -> attribute of the CausalLM holding a module that runs between the final norm and the head
PRE_HEAD = {"modernbert-decoder": "lm_head"}


@dataclass(frozen=True, eq=False)
class Head:
    """``logits(x) = softcap(logit_scale · (W · pre(hidden_scale · x) + b))`` for a final-norm output ``x``.

    Attributes:
        norm: the final norm (``hidden[n_layers] = norm(residual stream after the last block)``).
        weight: ``(V, d_model)``, the output embeddings; ``bias``: ``(V,)`` or None.
        pre: a module between the final norm and the output embeddings, or None.
        hidden_scale, logit_scale: scalars (1.0 where the family has none); softcap: a float or None.
    """

    norm: torch.nn.Module
    weight: torch.Tensor
    bias: torch.Tensor | None = None
    pre: torch.nn.Module | None = None
    hidden_scale: float = 1.0
    logit_scale: float = 1.0
    softcap: float | None = None

    @property
    def vocab_size(self) -> int:
        return int(self.weight.shape[0])

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def normed(self, residual: torch.Tensor) -> torch.Tensor:
        """The final norm of residual-stream vectors ``(..., d_model)``, in float32 on the head's device.

        A ``hidden`` entry ``l < n_layers`` goes through this before :meth:`logits`; entry ``n_layers``
        is the norm's output already."""
        param = next(self.norm.parameters(), None)
        dtype = param.dtype if param is not None else self.weight.dtype
        device = param.device if param is not None else self.weight.device
        return self.norm(residual.to(device=device, dtype=dtype)).to(self.device, torch.float32)

    def prepared(self, normed: torch.Tensor) -> torch.Tensor:
        """What the output embeddings read: ``pre(hidden_scale · normed)``, float32, ``(..., d_model)``."""
        x = normed.to(self.device, torch.float32)
        if self.hidden_scale != 1.0:
            x = x * self.hidden_scale
        if self.pre is not None:
            x = self.pre(x.to(self.weight.dtype)).float()
        return x

    def logits(self, prepared: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Logits of vocabulary ids ``start..stop-1`` for :meth:`prepared` vectors: ``(..., stop - start)``, float32.

        Only that slice of ``W`` is read (a float32 copy of it when the model is in 16 bits), so the
        memory is ``(..., stop - start)`` floats, never the whole vocabulary unless asked."""
        w = self.weight[start:stop].float()
        b = None if self.bias is None else self.bias[start:stop].float()
        z = torch.nn.functional.linear(prepared, w, b)
        if self.logit_scale != 1.0:
            z = z * self.logit_scale
        if self.softcap is not None:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z


def lm_head(model) -> Head:
    """The :class:`Head` of a lamina ``Model`` (see the module docstring for the families' transforms)."""
    hf, cfg = model.hf, model.text_config
    out = hf.get_output_embeddings()
    weight = getattr(out, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise LaminaError(f"{model.name}: its output embeddings ({type(out).__name__}) have no (vocabulary × width) "
                          "weight matrix, so lamina cannot decode the residual stream through them.")
    bias = getattr(out, "bias", None)
    model_type = getattr(cfg, "model_type", "")
    family = getattr(model.config, "model_type", model_type)
    types = {model_type, family}
    logit_scale, hidden_scale = 1.0, 1.0
    if types & set(LOGIT_SCALE_ATTRIBUTE):
        logit_scale = float(getattr(hf, "logit_scale", None) or getattr(cfg, "logit_scale", 1.0))
    if types & set(DIVIDES_BY_LOGITS_SCALING):
        logit_scale = 1.0 / float(cfg.logits_scaling)
    if types & set(MULTIPLIES_BY_LOGITS_SCALING):
        logit_scale = float(cfg.logits_scaling)
    if types & set(HIDDEN_BY_LOGITS_SCALING):
        hidden_scale = 1.0 / float(cfg.logits_scaling)
    pre = next((getattr(hf, PRE_HEAD[t]) for t in types if t in PRE_HEAD), None)
    softcap = getattr(cfg, "final_logit_softcapping", None)
    return Head(norm=get_module(hf, model.adapter.final_norm), weight=weight,
                bias=bias if isinstance(bias, torch.Tensor) else None, pre=pre, hidden_scale=hidden_scale,
                logit_scale=logit_scale, softcap=float(softcap) if softcap else None)
