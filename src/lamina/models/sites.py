"""The canonical site vocabulary and how each site resolves onto a model.

A *site* is a named place in every block whose meaning does not depend on the
architecture. Each resolves, through the family's adapter, to the input or
output of one unmodified Hugging Face module, read by a forward hook:

========== ============ ======================================================
site       entries      what it is
========== ============ ======================================================
hidden     n_layers + 1 residual stream as HF ``output_hidden_states``: entry 0
                        is the embedding output (input of block 0), entry l the
                        input of block l, entry n the final norm's output.
attn.raw   n_layers     the attention module's own output (after its output
                        projection), before any post-norm or residual scale.
attn.out   n_layers     what attention adds to the residual stream.
mlp.in     n_layers     input of the MLP (after the pre-MLP norm).
mlp.pre    n_layers     expansion before the nonlinearity (gated: gate proj).
mlp.post   n_layers     after the nonlinearity (gated: input of down proj).
mlp.raw    n_layers     the MLP's own output (after its down projection),
                        before any post-norm or residual scale.
mlp.out    n_layers     what the MLP adds to the residual stream.
========== ============ ======================================================

On most families ``attn.raw == attn.out`` and ``mlp.raw == mlp.out``; they differ where
the block normalises or scales a sublayer's output before adding it (Gemma-2/3, OLMo-2,
Granite, ...). Token-level outputs (``loss``, ``correct``, ``predicted``) are not hooks;
they are columns of every recording's token table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LaminaError, closest
from .adapters import Adapter, Hook


@dataclass(frozen=True)
class Site:
    name: str
    description: str
    width: str  # "d_model" or "d_mlp"
    extra_entry: bool = False  # hidden has n_layers + 1 entries


SITES: dict[str, Site] = {
    s.name: s
    for s in (
        Site("hidden", "residual stream (HF output_hidden_states)", "d_model", extra_entry=True),
        Site("attn.raw", "attention output after its output projection, before any post-norm or scale",
             "d_model"),
        Site("attn.out", "attention's contribution to the residual stream", "d_model"),
        Site("mlp.in", "MLP input (after the pre-MLP norm)", "d_model"),
        Site("mlp.pre", "MLP expansion before the nonlinearity (gated: gate projection)", "d_mlp"),
        Site("mlp.post", "MLP after the nonlinearity (gated: input of the down projection)", "d_mlp"),
        Site("mlp.raw", "MLP output after the down projection, before any post-norm or scale", "d_model"),
        Site("mlp.out", "MLP's contribution to the residual stream", "d_model"),
    )
}
TOKEN_SITES = ("loss", "correct", "predicted")


def check_site(name: str) -> Site:
    """The :class:`Site` called ``name``; a clear error with suggestions otherwise."""
    if name in SITES:
        return SITES[name]
    raise LaminaError(
        f"unknown site {name!r}.{closest(name, list(SITES) + list(TOKEN_SITES))} "
        f"Sites: {', '.join(SITES)}."
    )


def split_sites(sites) -> list[str]:
    """Activation sites among ``sites`` (token-level names are accepted and dropped: the token
    table always holds them); unknown names raise with suggestions."""
    if isinstance(sites, str):
        sites = [sites]
    if isinstance(sites, (bytes, dict)) or not hasattr(sites, "__iter__"):
        raise LaminaError(f"sites must be a site name or a list of them ({', '.join(SITES)}), not {sites!r}.")
    sites = list(sites)
    bad = [s for s in sites if not isinstance(s, str)]
    if bad:
        raise LaminaError(f"sites are names such as 'hidden' or 'attn.out', not {bad[0]!r}.")
    if not sites:
        raise LaminaError(f"no sites given; choose from {', '.join(SITES)}.")
    out = []
    for name in sites:
        if name in TOKEN_SITES:
            continue
        check_site(name)
        if name not in out:
            out.append(name)
    return out


def n_entries(site: str, n_layers: int) -> int:
    """How many layer entries ``site`` has (n_layers, or n_layers + 1 for hidden)."""
    return n_layers + 1 if check_site(site).extra_entry else n_layers


def check_layers(site: str, layers, n_layers: int) -> list[int]:
    """Normalise a layer selection (None = all, int, or iterable; negatives count from the end)."""
    total = n_entries(site, n_layers)
    if layers is None:
        return list(range(total))
    if isinstance(layers, (str, bytes, dict, float)) or not (isinstance(layers, int) or hasattr(layers, "__iter__")):
        raise LaminaError(f"layers must be an integer or a list of integers, not {layers!r}.")
    chosen = [layers] if isinstance(layers, int) else list(layers)
    if not chosen:
        raise LaminaError(f"empty layer selection for site {site!r}.")
    out = []
    for layer in chosen:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise LaminaError(f"layers must be integers, got {layer!r}.")
        if not -total <= layer < total:
            raise LaminaError(f"layer {layer} is out of range for site {site!r}: it has entries 0..{total - 1}.")
        out.append(layer % total)
    if len(set(out)) != len(out):
        raise LaminaError(f"layer selection {chosen} for site {site!r} repeats a layer.")
    return out


def get_module(root, path: str):
    """``root.a.b.0.c`` for ``path = 'a.b.0.c'``."""
    module = root
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


def _check_available(adapter: Adapter, site: str) -> Hook | None:
    if site == "hidden":
        return None
    hook = adapter.hook(site)
    if hook is None:
        raise LaminaError(f"site {site!r} is not recorded on {adapter.family} models: "
                          f"{adapter.why_unavailable(site)}")
    return hook


def available(adapter: Adapter) -> list[str]:
    """The sites this family defines (all of :data:`SITES` but those in ``adapter.unavailable``)."""
    return [s for s in SITES if s == "hidden" or adapter.hook(s) is not None]


def resolve(hf_model, adapter: Adapter, site: str, layer: int, n_layers: int) -> tuple[object, str]:
    """The (module, "input"|"output") that holds ``site`` at ``layer``."""
    check_site(site)
    hook = _check_available(adapter, site)
    blocks = get_module(hf_model, adapter.layers)
    if site == "hidden":
        if layer == n_layers:
            return get_module(hf_model, adapter.final_norm), "output"
        return blocks[layer], "input"
    return get_module(blocks[layer], hook.module), hook.which


def transform(hf_model, adapter: Adapter, site: str, layer: int):
    """What turns the hooked tensor into the site's value: None (the tensor itself) or a function.

    A site's hook may need a residual scale (Granite multiplies each sublayer's output by the
    block's ``residual_multiplier`` before adding it) or half of a fused projection's output.
    """
    hook = _check_available(adapter, site)
    if hook is None or (hook.scale is None and hook.half is None and hook.bias is None and hook.plus is None):
        return None
    block = get_module(hf_model, adapter.layers)[layer]
    scale = None if hook.scale is None else float(getattr(block, hook.scale))
    bias = None if hook.bias is None else _optional(block, hook.bias)
    if scale is None and bias is None and hook.half is None and hook.plus is None:
        return None
    half = hook.half

    def apply(tensor, partner=None):
        if partner is not None:  # the output of hook.plus, computed just before
            tensor = tensor + partner
        if half is not None:
            tensor = tensor.chunk(2, dim=-1)[half]
        if bias is not None:
            tensor = tensor + bias.to(tensor.device)
        return tensor * scale if scale is not None else tensor
    return apply


def _optional(root, path: str):
    """``root.<path>``, or None where an attribute on the way is None."""
    value = root
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def partner(hf_model, adapter: Adapter, site: str, layer: int):
    """The module whose output a site adds to its own (``Hook.plus``), or None."""
    hook = _check_available(adapter, site)
    if hook is None or hook.plus is None:
        return None
    return get_module(get_module(hf_model, adapter.layers)[layer], hook.plus)


def hooked_input(args, kwargs):
    """The tensor a pre-hook reads as a module's input: its first positional argument, else the
    ``hidden_states`` keyword (blocks are often called with keywords only), else the first tensor."""
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    return next(v for v in kwargs.values() if hasattr(v, "shape"))


def as_tokens(tensor, batch_shape):
    """``tensor`` as ``(batch, seq, width)``: some blocks (OPT's) flatten the tokens to ``(batch * seq,
    width)`` around their MLP; ``batch_shape`` is the forward pass's ``(batch, seq)``."""
    if tensor.dim() == 2 and batch_shape is not None and tensor.shape[0] == batch_shape[0] * batch_shape[1]:
        return tensor.view(*batch_shape, tensor.shape[-1])
    return tensor


def hooked_output(output):
    """The tensor a forward hook reads as a module's output (the first element of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output
