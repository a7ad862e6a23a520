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
resid      n_layers + 1 the raw residual stream: entries 0..n-1 as ``hidden``;
                        entry n the last block's output *before* the final
                        norm (the final norm's input).
attn.raw   n_layers     the attention module's own output (after its output
                        projection), before any post-norm or residual scale.
attn.out   n_layers     what attention adds to the residual stream.
mlp.in     n_layers     input of the MLP (after the pre-MLP norm).
mlp.pre    n_layers     expansion before the nonlinearity (gated: gate proj).
mlp.post   n_layers     after the nonlinearity (gated: input of down proj).
mlp.raw    n_layers     the MLP's own output (after its down projection),
                        before any post-norm or residual scale.
mlp.out    n_layers     what the MLP adds to the residual stream.
attn.heads n_layers     each head's share of ``attn.raw``: its slice of the output
                        projection's input times the matching columns of the
                        projection's weight, ``(position, head, d_model)``.
attn.pattern n_layers   attention probabilities, ``(head, query, key)``: queries
                        at the kept positions, keys every model position.
========== ============ ======================================================

On most families ``attn.raw == attn.out`` and ``mlp.raw == mlp.out``; they differ where
the block normalises or scales a sublayer's output before adding it (Gemma-2/3, OLMo-2,
Granite, ...). Token-level outputs (``loss``, ``correct``, ``predicted``) are not hooks;
they are columns of every recording's token table.

Where each site is read on a loaded model (the hooked module, its transforms) is a
:class:`~lamina.models.tap.Tap`, resolved once per (site, layer) in :mod:`lamina.models.tap`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LaminaError, closest
from .adapters.base import Adapter


@dataclass(frozen=True)
class Site:
    """One site: its meaning, its width and the axes each sequence holds of it.

    Attributes:
        axes: the axes after ``(layer, sequence)`` in a recording: ``("slot", "width")`` for the vectors
            of most sites, ``("slot", "head", "width")`` for ``attn.heads``, ``("head", "slot", "key")``
            for ``attn.pattern`` (``slot`` = the kept positions: queries for the pattern).
        not_editable: why ``lamina.edits`` refuses the site (None: it can be edited).
    """

    name: str
    description: str
    width: str  # "d_model", "d_mlp", or "keys" (attn.pattern: one entry per model position)
    extra_entry: bool = False  # hidden and resid have n_layers + 1 entries
    axes: tuple[str, ...] = ("slot", "width")
    not_editable: str | None = None

    @property
    def slot_axis(self) -> int:
        """Where the kept positions lie in one layer's ``(sequence, ...)`` array (1, or 2 for the pattern)."""
        return 1 + self.axes.index("slot")


# Neither attention site is a tensor the block goes on computing with, so writing one would change nothing.
_HEADS_NOT_EDITABLE = ("attn.heads is a decomposition lamina computes from the output projection's input, not a "
                       "tensor the block reads; edit attn.raw or attn.out instead")
_PATTERN_NOT_EDITABLE = ("attn.pattern is computed beside the pass (fused attention never forms the probabilities), "
                         "so the block never reads it; edit attn.raw or attn.out instead")


SITES: dict[str, Site] = {
    s.name: s
    for s in (
        Site("hidden", "residual stream (HF output_hidden_states)", "d_model", extra_entry=True),
        Site("resid", "raw residual stream: hidden's entries, but the last is the final norm's input", "d_model",
             extra_entry=True),
        Site("attn.raw", "attention output after its output projection, before any post-norm or scale",
             "d_model"),
        Site("attn.out", "attention's contribution to the residual stream", "d_model"),
        Site("mlp.in", "MLP input (after the pre-MLP norm)", "d_model"),
        Site("mlp.pre", "MLP expansion before the nonlinearity (gated: gate projection)", "d_mlp"),
        Site("mlp.post", "MLP after the nonlinearity (gated: input of the down projection)", "d_mlp"),
        Site("mlp.raw", "MLP output after the down projection, before any post-norm or scale", "d_model"),
        Site("mlp.out", "MLP's contribution to the residual stream", "d_model"),
        Site("attn.heads", "each head's share of attn.raw (its slice of the output projection; heads + bias = "
             "attn.raw)", "d_model", axes=("slot", "head", "width"), not_editable=_HEADS_NOT_EDITABLE),
        Site("attn.pattern", "attention probabilities per head (queries at the kept positions, every key)", "keys",
             axes=("head", "slot", "key"), not_editable=_PATTERN_NOT_EDITABLE),
    )
}
TOKEN_SITES = ("loss", "correct", "predicted")
#: The residual stream's sites: read on block boundaries (every family has them), not inside a block.
STREAM_SITES = ("hidden", "resid")


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
    """How many layer entries ``site`` has (n_layers, or n_layers + 1 for hidden and resid)."""
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


def available(adapter: Adapter) -> list[str]:
    """The sites this family defines (all of :data:`SITES` but those in ``adapter.unavailable``)."""
    return [s for s in SITES if s in STREAM_SITES or adapter.hook(s) is not None]


def editable(adapter: Adapter) -> list[str]:
    """The available sites that ``lamina.edits`` can write (all but the attention decompositions)."""
    return [s for s in available(adapter) if SITES[s].not_editable is None]
