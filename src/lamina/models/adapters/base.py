"""What an architecture adapter is: a map from canonical sites to HF module paths.

An adapter never changes the model. It names, for one model family, which
unmodified Hugging Face module each canonical site hooks and whether the site
is that module's input or its output. Paths of per-layer sites are relative to
one block (``layers[i]``); the others are relative to the ``*ForCausalLM`` model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hook:
    """Where a site is read: the ``input`` (first positional arg) or ``output`` of a module."""

    module: str
    which: str  # "input" | "output"


@dataclass(frozen=True)
class Adapter:
    """Canonical site -> module, for one model family.

    Attributes:
        family: short name shown to users ("gpt2", "llama", "neox").
        model_types: the ``config.model_type`` values this adapter serves.
        layers: path of the ``ModuleList`` of transformer blocks.
        final_norm: path of the norm after the last block (HF's last hidden state).
        attn_out: the attention block's output after its output projection.
        mlp: the whole MLP module (its input is ``mlp.in``, its output ``mlp.out``).
        mlp_pre: expansion before the nonlinearity (gated MLPs: the gate projection).
        mlp_post: after the nonlinearity (gated MLPs: input of the down projection).
        mlp_kind: "gelu" (up, act, down) or "gated" (act(gate) * up, down).
        prepend_bos: default BOS policy for this family (see docs/sites.md).
        parallel_residual: config attribute that, when true, makes attention and MLP
            read the same residual input (GPT-NeoX); ``None`` if never parallel.
    """

    family: str
    model_types: tuple[str, ...]
    layers: str
    final_norm: str
    attn_out: Hook
    mlp: str
    mlp_pre: Hook
    mlp_post: Hook
    mlp_kind: str
    prepend_bos: bool
    parallel_residual: str | None = None
    examples: str = ""
