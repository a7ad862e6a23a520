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
attn.out   n_layers     attention output after its output projection.
mlp.in     n_layers     input of the MLP (after the pre-MLP norm).
mlp.pre    n_layers     expansion before the nonlinearity (gated: gate proj).
mlp.post   n_layers     after the nonlinearity (gated: input of down proj).
mlp.out    n_layers     output of the MLP (after its down projection).
========== ============ ======================================================

Token-level outputs (``loss``, ``correct``, ``predicted``) are not hooks; they
are columns of every recording's token table.
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
        Site("attn.out", "attention output after its output projection", "d_model"),
        Site("mlp.in", "MLP input (after the pre-MLP norm)", "d_model"),
        Site("mlp.pre", "MLP expansion before the nonlinearity (gated: gate projection)", "d_mlp"),
        Site("mlp.post", "MLP after the nonlinearity (gated: input of the down projection)", "d_mlp"),
        Site("mlp.out", "MLP output (after the down projection)", "d_model"),
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
    sites = list(sites)
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


def resolve(hf_model, adapter: Adapter, site: str, layer: int, n_layers: int) -> tuple[object, str]:
    """The (module, "input"|"output") that holds ``site`` at ``layer``."""
    check_site(site)
    blocks = get_module(hf_model, adapter.layers)
    if site == "hidden":
        if layer == n_layers:
            return get_module(hf_model, adapter.final_norm), "output"
        return blocks[layer], "input"
    block = blocks[layer]
    hook: Hook = {
        "attn.out": adapter.attn_out,
        "mlp.in": Hook(adapter.mlp, "input"),
        "mlp.pre": adapter.mlp_pre,
        "mlp.post": adapter.mlp_post,
        "mlp.out": Hook(adapter.mlp, "output"),
    }[site]
    return get_module(block, hook.module), hook.which


def self_check(hf_model, adapter: Adapter, n_layers: int) -> None:
    """Fail at load time, naming the module, if an adapter path does not exist on this model."""
    for site in SITES:
        for layer in {0, n_entries(site, n_layers) - 1}:
            try:
                resolve(hf_model, adapter, site, layer, n_layers)
            except (AttributeError, IndexError, TypeError) as err:
                raise LaminaError(
                    f"the {adapter.family} adapter cannot find the module for site {site!r} at layer {layer} "
                    f"on this {type(hf_model).__name__} ({err}); this checkpoint's layout differs from the family's."
                ) from None
