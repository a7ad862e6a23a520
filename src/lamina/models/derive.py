"""The structural resolver: an adapter derived from a model's module tree.

For an architecture with no hand-written adapter, lamina reads the structure off the model:

1. the decoder-layer ``ModuleList`` (as long as ``config.num_hidden_layers``);
2. in each block, the attention module and the MLP module (by class and attribute name;
   OPT-style blocks hold the MLP's two projections directly);
3. from one probe forward pass, how tensors flow between them: which norm reads the
   attention (or MLP) output before the residual add (a post-sublayer norm, as in Gemma-2/3
   and OLMo-2), which norm feeds the MLP, which module's output is HF's last hidden state;
4. inside the MLP: the projections that read ``mlp.in``, the one that writes the output, and
   which projection goes through which nonlinearity (tested, not guessed by name); inside the
   attention: the projection whose output is the module's output (``attn.heads`` splits its input).

Anything it cannot see fails here with one line, and whatever it derives is then verified on
every layer by the self-check. Blocks without attention + MLP (state-space, recurrent,
hybrid) are refused with the reason.
"""

from __future__ import annotations

import re

import torch

from ..errors import LaminaError
from .adapters import handwritten
from .adapters.base import Adapter, Hook
from .probe import capture, forward, probe_ids, same
from .scope import refusal

_ATTN_CLASS = re.compile(r"attention|attn", re.I)
_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention", "multi_head_attention", "self_att")
_CROSS_NAMES = ("encoder_attn", "cross_attn", "crossattention", "cross_attention", "cross_attn_attn_gate")
_MLP_CLASS = re.compile(r"mlp|feedforward|ffn|moe|expert|sparse", re.I)
_MLP_NAMES = ("mlp", "feed_forward", "ffn", "ff", "block_sparse_moe", "moe")
_MOE_CLASS = re.compile(r"expert|moe|router|sparse|topk", re.I)
_ACT_ATTRS = ("act", "act_fn", "activation_fn", "activation", "act_func", "activation_function", "gelu_impl")
_ACT_CONFIG_KEYS = ("hidden_act", "hidden_activation", "activation_function", "activation", "mlp_hidden_act",
                    "ffn_act_fn", "act_fn")
_SCALE_ATTRS = ("residual_multiplier", "residual_scale")
# Token mixers that are not attention: a block holding one beside attention is a hybrid.
_MIXER_CLASS = re.compile(r"mamba|mixer|ssm|conv|recurren|linearattention|deltanet|lstm|rwkv|hyperconnection", re.I)
# Attention modules that are linear-attention recurrences (delta rule, lightning), not softmax attention.
_LINEAR_ATTN_CLASS = re.compile(r"delta|linearattention|lightning", re.I)


class Refused(LaminaError):
    """The architecture is outside what lamina's sites describe (the message says why)."""


def adapter_for_model(hf) -> Adapter:
    """The adapter for a loaded model: refused with the reason, hand-written, or derived."""
    model_type = getattr(hf.config, "model_type", "")
    reason = refusal(model_type)
    if reason is not None:
        raise LaminaError(reason)
    return handwritten(model_type) or derive(hf)


def _is_norm(module) -> bool:
    return "norm" in type(module).__name__.lower()


def _is_linear(module) -> bool:
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 2 and not isinstance(module, torch.nn.Embedding)


def text_config(config):
    """The language model's config (a multimodal model's ``text_config``; the config itself otherwise)."""
    getter = getattr(config, "get_text_config", None)
    return getter(decoder=True) if callable(getter) else config


def find_layers(hf, n_layers: int) -> str:
    """Path of the ``ModuleList`` of decoder blocks: a list of ``n_layers`` blocks whose first block reads
    HF's first hidden state (a multimodal model's vision tower may hold a list as long)."""
    found = [name for name, module in hf.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers and name
             and all(len(list(block.children())) >= 2 for block in module)]
    if not found:
        raise Refused(f"no list of {n_layers} decoder blocks (config.num_hidden_layers) in {type(hf).__name__}")
    if len(found) == 1:
        return found[0]
    seen: dict = {}
    with capture(hf, {name: (hf.get_submodule(name)[0], "input") for name in found}, seen):
        out = forward(hf, probe_ids(hf), logits=False, output_hidden_states=True)
    hidden = getattr(out, "hidden_states", None)
    reading = [name for name in found if hidden is not None and same(seen.get(name), hidden[0])]
    return min(reading or found, key=lambda name: name.count("."))


def _children(block) -> dict[str, torch.nn.Module]:
    return dict(block.named_children())


def _sublayers(block, index: int, model_name: str) -> tuple[str, str | None]:
    """(attention child name, MLP child name or None for an inline MLP) of one block."""
    kids = _children(block)
    cross = [n for n in kids if n in _CROSS_NAMES]
    if cross:
        raise Refused(f"layer {index} of {model_name} cross-attends to another model's states ({cross[0]}): "
                      "the decoders of encoder-decoder models and cross-attention multimodal models are refused")
    kids = {n: m for n, m in kids.items() if not _is_norm(m)}
    attn = [n for n, m in kids.items() if n in _ATTN_NAMES or _ATTN_CLASS.search(type(m).__name__)]
    if len(attn) != 1:
        mixer = ", ".join(f"{n} ({type(m).__name__})" for n, m in kids.items()) or "none"
        what = "no attention sublayer" if not attn else f"{len(attn)} attention sublayers ({', '.join(attn)})"
        raise Refused(f"layer {index} of {model_name} has {what} (its sublayers: {mixer}); lamina's sites need "
                      "blocks of one attention + one MLP over a residual stream, so state-space, recurrent and "
                      "hybrid models are refused")
    if _LINEAR_ATTN_CLASS.search(type(kids[attn[0]]).__name__):
        raise Refused(f"layer {index} of {model_name} mixes tokens with linear attention ({attn[0]}: "
                      f"{type(kids[attn[0]]).__name__}), a recurrence rather than softmax attention; these "
                      "(usually hybrid) stacks are refused")
    mlp = [n for n, m in kids.items() if n not in attn and (n in _MLP_NAMES or _MLP_CLASS.search(type(m).__name__))]
    mixers = [f"{n} ({type(m).__name__})" for n, m in kids.items()
              if n not in attn and n not in mlp and _MIXER_CLASS.search(type(m).__name__)]
    if mixers:
        raise Refused(f"layer {index} of {model_name} runs {', '.join(mixers)} beside its attention: a hybrid "
                      "block, which lamina's attention + MLP sites do not describe")
    if len(mlp) > 1:
        raise Refused(f"layer {index} of {model_name} has {len(mlp)} MLP branches ({', '.join(mlp)}) whose sum is "
                      "the block's MLP contribution; no single module outputs it, so mlp.in/mlp.out are undefined")
    if not mlp and not [n for n, m in kids.items() if _is_linear(m)]:
        raise Refused(f"layer {index} of {model_name} has no MLP sublayer (children: {', '.join(kids)})")
    return attn[0], (mlp[0] if mlp else None)


def _is_moe(mlp_module) -> bool:
    """Whether an MLP routes tokens to experts: a list of experts, expert-stacked (3-D) weights, or
    a submodule named or typed as experts / router (the MLP's own class name is not enough:
    Qwen2-MoE calls its dense shared expert ``Qwen2MoeMLP``)."""
    for name, module in mlp_module.named_modules():
        if not name:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("experts", "router") or _MOE_CLASS.search(type(module).__name__) \
                or (isinstance(module, torch.nn.ModuleList) and len(module) > 2):
            return True
    return any(p.dim() == 3 for p in mlp_module.parameters())


def _act_candidates(hf, owner, prefix: str) -> dict[str, object]:
    """Nonlinearities an MLP may apply: its parameter-free submodules and activation attributes,
    then ``ACT2FN`` of the activation names in the config."""
    from transformers.activations import ACT2FN

    found = {}
    for name, child in owner.named_children():
        if not list(child.parameters()) and not _is_norm(child) and "dropout" not in type(child).__name__.lower():
            found[f"{prefix}{name}"] = child
    for name in _ACT_ATTRS:
        value = getattr(owner, name, None)
        if callable(value) and f"{prefix}{name}" not in found:
            found[f"{prefix}{name}"] = value
    for key in _ACT_CONFIG_KEYS:
        value = getattr(hf.config, key, None)
        value = value.get("name") if isinstance(value, dict) else value
        if isinstance(value, str) and value in ACT2FN and f"config:{value}" not in found:
            found[f"config:{value}"] = ACT2FN[value]
    return found


def _mlp_parts(hf, block, mlp: str | None, seen: dict, moe: bool) -> dict:
    """Adapter fields for the inside of the MLP: mlp.pre / mlp.post, or why they are undefined."""
    owner = block if mlp is None else getattr(block, mlp)
    prefix = "" if mlp is None else f"{mlp}."
    linears = {f"{prefix}{n}": m for n, m in owner.named_children() if _is_linear(m)}
    x = seen.get(("mlp.in", None))
    ins = [p for p in linears if same(seen.get((p, "input")), x)]
    d_model = x.shape[-1] if x is not None else None
    downs = [p for p in linears if p not in ins and seen.get((p, "output")) is not None
             and seen[(p, "output")].shape[-1] == d_model]
    if moe:
        return {"mlp_kind": "moe", "unavailable": tuple(
            (site, "its MLP is a mixture of experts: each token's expansion lives in the experts it is routed "
                   "to, so there is no single expansion to record; mlp.in and mlp.out (the whole MoE layer) are "
                   "recorded") for site in ("mlp.pre", "mlp.post"))}
    raw = seen.get(("mlp.raw", None))
    if len(downs) == 1 and 1 <= len(ins) <= 2 and (raw is None or same(seen[(downs[0], "output")], raw)):
        down = downs[0]
        post = seen[(down, "input")]
        acts = _act_candidates(hf, owner, prefix)
        outs = {p: seen[(p, "output")] for p in ins}
        tries = []
        if len(ins) == 1:
            (up,) = ins
            if outs[up].shape[-1] == 2 * post.shape[-1]:  # fused [gate, up] projection
                tries = [("gated", Hook(up, "output", half=g), Hook(up, "output", half=1 - g)) for g in (0, 1)]
            else:
                tries = [("gelu", Hook(up, "output"), None)]
        else:
            a, b = sorted(ins, key=lambda p: "gate" not in p.rsplit(".", 1)[-1])
            tries = [("gated", Hook(a, "output"), Hook(b, "output")), ("gated", Hook(b, "output"), Hook(a, "output"))]
        with torch.inference_mode():
            for kind, pre_hook, up_hook in tries:
                pre = _part(outs[pre_hook.module], pre_hook.half)
                for act_path, act in acts.items():
                    try:
                        value = act(pre)
                        if up_hook is not None:
                            value = value * _part(outs[up_hook.module], up_hook.half)
                    except Exception:  # an attribute that is not an activation after all
                        continue
                    if same(value, post):
                        return {"mlp_kind": kind, "mlp_pre": pre_hook, "mlp_post": Hook(down, "input"),
                                "mlp_up": up_hook, "mlp_act": act_path, "_down": down}
    described = ", ".join(f"{p} ({type(m).__name__})" for p, m in linears.items()) or "no linear layers"
    reason = (f"lamina could not identify up-projection -> nonlinearity -> down-projection inside its MLP "
              f"({described}), so mlp.pre/mlp.post are not defined; mlp.in and mlp.out are recorded")
    return {"mlp_kind": "gelu", "unavailable": (("mlp.pre", reason), ("mlp.post", reason))}


def _attn_proj(block, attn: str, seen: dict) -> str | None:
    """The attention's output projection: the one linear layer inside the attention module (at any depth)
    whose output is the module's own output (``attn.raw``), found on the probe, not by name."""
    raw = seen.get((attn, "output"))
    found = [f"{attn}.{name}" for name, module in getattr(block, attn).named_modules()
             if name and _is_linear(module) and same(seen.get((f"{attn}.{name}", "output")), raw)]
    return found[0] if len(found) == 1 else None


def _part(tensor, half):
    return tensor if half is None else tensor.chunk(2, dim=-1)[half]


def derive(hf) -> Adapter:
    """An :class:`Adapter` for ``hf`` read off its module tree and one probe forward pass."""
    config = hf.config
    model_type = getattr(config, "model_type", type(hf).__name__)
    name = f"{model_type!r} ({type(hf).__name__})"
    n_layers = getattr(text_config(config), "num_hidden_layers", None)
    if not isinstance(n_layers, int):
        raise Refused(f"{name} has no config.num_hidden_layers; lamina cannot find its decoder blocks")
    layers = find_layers(hf, n_layers)
    blocks = hf.get_submodule(layers)
    structure = [_sublayers(block, i, name) for i, block in enumerate(blocks)]
    if len(set(structure)) > 1:
        i = next(i for i, s in enumerate(structure) if s != structure[0])
        raise Refused(f"layer {i} of {name} is built differently from layer 0 ({structure[i]} vs {structure[0]}); "
                      "hybrid stacks are refused")
    attn, mlp = structure[0]
    block = blocks[0]
    moe = mlp is not None and any(_is_moe(getattr(b, mlp)) for b in blocks)

    # One probe pass: inputs and outputs of the block, its children, and the MLP's children.
    points = {("block", "input"): (block, "input"), ("block", "output"): (block, "output")}
    for child, module in block.named_children():
        points[(child, "input")] = (module, "input")
        points[(child, "output")] = (module, "output")
    if mlp is not None:
        for child, module in getattr(block, mlp).named_children():
            points[(f"{mlp}.{child}", "input")] = (module, "input")
            points[(f"{mlp}.{child}", "output")] = (module, "output")
    for path, module in getattr(block, attn).named_modules():  # the output projection may sit deeper (GPT-Neo)
        if path and _is_linear(module):
            points[(f"{attn}.{path}", "output")] = (module, "output")
    outside = {n: m for n, m in hf.named_modules() if n and not (n + ".").startswith(layers + ".") and _is_norm(m)}
    for path, module in outside.items():
        points[(path, "final")] = (module, "output")
    seen: dict = {}
    with capture(hf, points, seen):
        out = forward(hf, probe_ids(hf), logits=False, output_hidden_states=True)
    if getattr(out, "hidden_states", None) is None:
        raise Refused(f"{name} does not return output_hidden_states, which lamina's hidden site is defined by")

    finals = [p for p in outside if same(seen.get((p, "final")), out.hidden_states[-1])]
    if not finals:
        raise Refused(f"no module of {name} outputs HF's last hidden state (the final norm); lamina cannot place "
                      "hidden[n]")
    norms = [c for c, m in block.named_children() if _is_norm(m)]

    def post_norm(sublayer_output):
        return next((c for c in norms if same(seen.get((c, "input")), sublayer_output)), None)

    scale = next((a for a in _SCALE_ATTRS if isinstance(getattr(block, a, None), (int, float))
                  and not isinstance(getattr(block, a), bool)), None)
    attn_raw = Hook(attn, "output")
    attn_post = post_norm(seen.get((attn, "output")))
    attn_out = Hook(attn_post or attn, "output", scale=scale)
    linears = [c for c, m in block.named_children() if _is_linear(m)]
    if mlp is None:  # OPT-style: the block holds the MLP's projections itself
        ins = [c for c in linears if seen.get((c, "input")) is not None and seen[(c, "input")].shape[-1] ==
               seen[("block", "input")].shape[-1]]
        if not ins:
            raise Refused(f"no MLP found in the blocks of {name}")
        seen[("mlp.in", None)] = seen[(ins[0], "input")]
        parts = _mlp_parts(hf, block, None, seen, moe=False)
        down = parts.pop("_down", None)
        if down is None:
            raise Refused(f"the MLP of {name} sits in its blocks without a module of its own, and lamina could "
                          "not identify its projections")
        mlp_in, mlp_raw_hook = Hook(ins[0], "input"), Hook(down, "output")
    else:
        seen[("mlp.in", None)] = seen.get((mlp, "input"))
        seen[("mlp.raw", None)] = seen.get((mlp, "output"))  # what the down projection must give
        parts = _mlp_parts(hf, block, mlp, seen, moe)
        parts.pop("_down", None)
        mlp_in, mlp_raw_hook = Hook(mlp, "input"), Hook(mlp, "output")
    mlp_post_norm = post_norm(seen.get((mlp_raw_hook.module, "output")))
    mlp_out = Hook(mlp_post_norm or mlp_raw_hook.module, "output", scale=scale)
    # The pre-MLP norm of a sequential block reads the residual between the two sublayers.
    pre_mlp = next((c for c in norms if same(seen.get((c, "output")), seen[("mlp.in", None)])), None)
    resid_mid = None
    if pre_mlp is not None and not same(seen.get((pre_mlp, "input")), seen[("block", "input")]):
        resid_mid = Hook(pre_mlp, "input")
    attn_proj = _attn_proj(block, attn, seen)
    unavailable = parts.get("unavailable", ())
    if attn_proj is None:
        unavailable += (("attn.heads", f"no linear layer inside its attention module ({attn}: "
                                       f"{type(getattr(block, attn)).__name__}) outputs the module's output, so lamina "
                                       "finds no output projection to split by head"),)
    return Adapter(
        family=model_type, model_types=(model_type,), layers=layers, final_norm=finals[-1],
        attn_out=attn_out, attn_raw=attn_raw if attn_out != attn_raw else None,
        mlp=mlp, mlp_in=mlp_in, mlp_out=mlp_out, mlp_raw=mlp_raw_hook if mlp_out != mlp_raw_hook else None,
        mlp_pre=parts.get("mlp_pre"), mlp_post=parts.get("mlp_post"), mlp_up=parts.get("mlp_up"),
        mlp_act=parts.get("mlp_act"), mlp_kind=parts["mlp_kind"], unavailable=unavailable,
        resid_mid=resid_mid, attn=attn, attn_proj=attn_proj, prepend_bos=None, derived=True,
        parallel_residual=None, examples="",
    )
