"""What an architecture adapter is: a map from canonical sites to HF module paths.

An adapter never changes the model. It names, for one model family, which
unmodified Hugging Face module each canonical site hooks and whether the site
is that module's input or its output. Paths of per-layer sites are relative to
one block (``layers[i]``); the others are relative to the ``*ForCausalLM`` model.

Families with a hand-written adapter (``gpt2.py``, ``llama.py``, ...) declare it;
every other architecture gets one derived from its module tree by
:mod:`lamina.models.derive`. Either way the load-time self-check
(:mod:`lamina.models.selfcheck`) verifies it on the loaded weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hook:
    """Where a site is read: the ``input`` (first positional arg) or ``output`` of a module, or (``attn.pattern``)
    the attention probabilities of an attention module.

    Attributes:
        module: path of the module, relative to the block (or to the model for non-block sites).
        which: ``"input"``, ``"output"`` or ``"pattern"``.
        scale: name of a float attribute of the *block* that multiplies the tensor before the
            block adds it to the residual (Granite's ``residual_multiplier``); the site holds the
            scaled tensor, i.e. what the residual stream really receives.
        half: 0 or 1 to keep only the first or second half of the last axis (fused ``gate_up``
            projections, whose output is ``[gate, up]``).
        bias: path (in the block) of a bias vector the block adds to the tensor outside the module
            (GPT-NeoX-Japanese returns its output projection's bias separately); skipped in blocks
            where that attribute is None.

        plus: path (in the block) of a second module whose output the block adds to this one's
            before the residual add (Granite-MoE-Shared: routed experts + shared MLP); it runs first.
    """

    module: str
    which: str  # "input" | "output" | "pattern"
    scale: str | None = None
    half: int | None = None
    bias: str | None = None
    plus: str | None = None


@dataclass(frozen=True)
class Adapter:
    """Canonical site -> module, for one model family.

    Attributes:
        family: short name shown to users ("gpt2", "llama", "neox", or the model type when derived).
        model_types: the ``config.model_type`` values this adapter serves.
        layers: path of the ``ModuleList`` of transformer blocks.
        final_norm: path of the module whose output is HF's last hidden state (the final norm).
        attn_out: the attention sublayer's contribution to the residual stream (after its output
            projection, and after a post-attention norm or residual scale where the block has one).
        mlp: path of the whole MLP module in the block (None when the MLP's layers sit directly
            in the block, as in OPT).
        mlp_pre: expansion before the nonlinearity (gated MLPs: the gate projection); None when
            the site is not defined on this family (see ``unavailable``).
        mlp_post: after the nonlinearity (gated MLPs: input of the down projection).
        mlp_kind: "gelu" (up, pointwise nonlinearity, down: GELU, ReLU, ... alike), "gated"
            (act(gate) * up, down) or "moe" (a mixture of experts).
        prepend_bos: default BOS policy for this family (None: decided from the tokenizer; see
            :mod:`lamina.models.bos`).
        parallel_residual: config attribute that, when true, makes attention and MLP
            read the same residual input (GPT-NeoX); ``None`` if never parallel.
        examples: checkpoints of this family, for the docs.
        attn_raw: the attention module's own output before any post-norm or scale (default:
            ``attn_out``, where the block adds it unchanged).
        mlp_in: the MLP input (default: input of ``mlp``).
        mlp_out: the MLP's contribution to the residual stream (default: output of ``mlp``).
        mlp_raw: the MLP's own output before any post-norm or scale (default: ``mlp_out``).
        mlp_up: gated MLPs: the up projection (used by the self-check to recompute ``mlp.post``).
        mlp_act: path of the MLP's activation module in the block, or ``"config:<name>"`` for
            ``transformers.activations.ACT2FN[<name>]``.
        resid_mid: the residual stream between attention and MLP in a sequential block (input of
            the pre-MLP norm); the self-check tests ``resid_mid == hidden + attn.out`` with it.
        attn: path of the attention module in the block, whose probabilities are ``attn.pattern``.
        attn_proj: path of the attention's output projection in the block; ``attn.heads`` splits its input
            by head (None: ``attn.heads`` is not defined, with the reason in ``unavailable``).
        unavailable: ``(site, reason)`` pairs for sites this family does not define (or that the load-time
            self-check refused on this model: ``attn.heads``, ``attn.pattern``).
        derived: True when the adapter was derived from the module tree, not hand-written.
    """

    family: str
    model_types: tuple[str, ...]
    layers: str
    final_norm: str
    attn_out: Hook
    mlp: str | None
    mlp_pre: Hook | None
    mlp_post: Hook | None
    mlp_kind: str
    prepend_bos: bool | None
    parallel_residual: str | None = None
    examples: str = ""
    attn_raw: Hook | None = None
    mlp_in: Hook | None = None
    mlp_out: Hook | None = None
    mlp_raw: Hook | None = None
    mlp_up: Hook | None = None
    mlp_act: str | None = None
    resid_mid: Hook | None = None
    attn: str | None = None
    attn_proj: str | None = None
    unavailable: tuple[tuple[str, str], ...] = field(default=())
    derived: bool = False

    def hook(self, site: str) -> Hook | None:
        """The :class:`Hook` of a per-block site (None if the site is unavailable on this family)."""
        if site in dict(self.unavailable):
            return None
        return {
            "attn.out": self.attn_out,
            "attn.raw": self.attn_raw or self.attn_out,
            "mlp.in": self.mlp_in or Hook(self.mlp, "input"),
            "mlp.pre": self.mlp_pre,
            "mlp.post": self.mlp_post,
            "mlp.out": self.mlp_out or Hook(self.mlp, "output"),
            "mlp.raw": self.mlp_raw or self.mlp_out or Hook(self.mlp, "output"),
            "attn.heads": None if self.attn_proj is None else Hook(self.attn_proj, "input"),
            "attn.pattern": None if self.attn is None else Hook(self.attn, "pattern"),
        }[site]

    def why_unavailable(self, site: str) -> str | None:
        """Why ``site`` is not defined on this family (None: it is): the adapter's own reason, or the
        module it names none of (``attn.heads`` needs the output projection, ``attn.pattern`` the attention)."""
        if site in dict(self.unavailable):
            return dict(self.unavailable)[site]
        if site == "attn.heads" and self.attn_proj is None:
            return "the adapter names no output projection of the attention"
        if site == "attn.pattern" and self.attn is None:
            return "the adapter names no attention module"
        return None
