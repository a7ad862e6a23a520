"""One :class:`Tap` per (site, layer): where a site is read on one loaded model, and the one function
that hooks taps.

A tap is resolved once, from the family's adapter and the loaded modules: the module whose input or
output holds the site, the partner module whose output the block adds to it (``Hook.plus``), and the
read transform (the block's residual scale, one half of a fused projection, a bias the block adds
outside the module, the partner's output). Recording (``recording/hooks.trace``), the load-time
self-check (``models/selfcheck``) and the structural resolver (``models/derive``, through
``models/probe.capture``) all read through :func:`hooks`, so "the self-check reads every site exactly
as recording does" holds by construction.

The two attention sites read differently: ``attn.pattern`` is the attention probabilities of the attention
module (``which="pattern"``, handed over as ``(batch, head, query, key)`` by :func:`lamina.models.attention.watch`),
and ``attn.heads`` hands over the output projection's input, ``(batch, seq, n_heads * head_dim)``, which
:meth:`Tap.split_heads` turns into the site's ``(..., head, d_model)``: recording splits only the kept
positions, so the array of every position times every head is never formed.

Writing (the interventions of ``lamina.recording.edits``) goes through the same objects:
:meth:`Tap.write` inverts the read transform, and :func:`hooks` with ``on_write`` registers hooks that
return the edited tensor, ahead of every reading hook on the same module.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import LaminaError
from . import attention
from .adapters.base import Adapter, Hook
from .sites import STREAM_SITES, check_site, get_module, n_entries


@dataclass(frozen=True, eq=False)
class Tap:
    """One site at one layer of one loaded model (or, with ``site=None``, one bare hook point).

    Reading: the hook reads ``module``'s input (``which="input"``: a forward pre-hook) or output
    (``"output"``: a forward hook; the first element of a tuple); :meth:`read` turns that tensor
    into the site's value, in this order:

    1. ``+ partner's output`` when the site is the sum of two modules' outputs (``partner``: the
       module named by ``Hook.plus``, which the block runs first; Granite-MoE-Shared's routed
       experts + shared MLP);
    2. ``.chunk(2, -1)[half]`` for one half of a fused projection (``[gate, up]``);
    3. ``+ bias`` for a bias the block adds outside the module (GPT-NeoX-Japanese);
    4. ``* scale`` for the block's residual multiplier (Granite).

    Writing (:meth:`write`, used by ``lamina.recording.edits``): an edit gives the site a new value
    ``v`` and must make the block compute with it, so the hook replaces what it reads by the inverse
    of the read transform, applied in the reverse order:

    ==================  ==============================================================================
    transform           what writing ``v`` to the site means
    ==================  ==============================================================================
    none                the module's output (forward hook returning ``v``, inside the tuple where the
                        module returns one) or its input (pre-hook replacing the first positional
                        argument or the ``hidden_states`` keyword: ``hidden[l]`` is block l's input,
                        ``mlp.in`` the MLP's, ``mlp.post`` the down projection's).
                        ``hidden[n_layers]`` replaces the final norm's output, ``resid[n_layers]`` its input.
    scale               the module outputs ``v / scale``; the block multiplies it back (exact only up
                        to rounding: ``(v / s) * s`` may differ from ``v`` in the last bit).
    half                only that half of the fused output is replaced: ``cat(v, other)`` for
                        ``half=0``, ``cat(other, v)`` for ``half=1``; the other half is kept as
                        computed (the gate and the up projection of one ``gate_up_proj``).
    bias                the module outputs ``v - bias``; the block adds the bias back.
    partner             the module outputs ``v - partner's output`` (the partner runs first, and its
                        output is kept for this); the partner itself is left alone.
    ==================  ==============================================================================

    Post-norms need no transform: where the block normalises a sublayer's output before adding it
    (Gemma-2/3, OLMo-2), ``attn.out``/``mlp.out`` are the post-norm's output, so writing them replaces
    what the residual stream receives, and ``attn.raw``/``mlp.raw`` are the sublayer's own output,
    which the post-norm then reads. Gated MLPs: ``mlp.pre`` is the gate projection's output (or its
    half of the fused projection), ``mlp.post`` the down projection's input.

    Several taps may hook one module (``attn.raw`` and ``attn.out`` on blocks without a post-norm
    or scale, ``mlp.pre`` and the up half of a fused projection); an edit of one is then an edit of
    the other, which :attr:`key` lets a writer detect.

    Attributes:
        site: the site name (None for a bare hook point of the probe).
        layer: the layer entry (``0 .. n_layers`` for ``hidden``).
        module: the hooked module.
        which: ``"input"`` or ``"output"``.
        path: the module's path from the model root (``"model.layers.3.mlp.down_proj"``).
        hook: the adapter's declaration of the site (None for ``hidden`` and bare points).
        partner: the module whose output the site adds to this one's, or None.
        scale: the residual multiplier's value (read from the block once), or None.
        half: 0 or 1 for one half of a fused projection's output, or None.
        bias: the bias tensor the block adds outside the module, or None.
        heads: ``attn.heads``: the number of heads the output projection's input splits into.
    """

    site: str | None
    layer: int | None
    module: torch.nn.Module
    which: str
    path: str = ""
    hook: Hook | None = None
    partner: torch.nn.Module | None = None
    scale: float | None = None
    half: int | None = None
    bias: torch.Tensor | None = None
    heads: int | None = None

    def split_heads(self, z: torch.Tensor) -> torch.Tensor:
        """``attn.heads`` from the output projection's input ``z`` (``(..., n_heads * head_dim)``): each head's
        slice times the matching input columns of the projection's weight, ``(..., n_heads, d_model)``; the
        heads sum to the projection's output less its bias."""
        with loaded(self.module):
            weight = self.module.weight
            if _is_conv1d(self.module):  # GPT-2's Conv1D keeps its weight as (in, out)
                weight = weight.view(self.heads, -1, weight.shape[-1])
            else:  # nn.Linear: (out, in); a view as (head, head_dim, d_model), no copy
                weight = weight.view(weight.shape[0], self.heads, -1).permute(1, 2, 0)
            z = z.reshape(*z.shape[:-1], self.heads, -1)
            return torch.einsum("...hi,hid->...hd", z, weight.to(z.device, z.dtype))

    @property
    def identity(self) -> bool:
        """Whether the site is the hooked tensor itself (no transform to read or to invert)."""
        return self.partner is None and self.scale is None and self.half is None and self.bias is None

    @property
    def exact_write(self) -> bool:
        """Whether writing a value and reading it back gives the same bits: no scale, bias or partner
        to invert in floating point (a half or a plain module output or input is exact)."""
        return self.partner is None and self.scale is None and self.bias is None

    @property
    def key(self) -> tuple[int, str]:
        """``(id(module), which)``: taps that share it read (and would write) one tensor."""
        return id(self.module), self.which

    def refusal(self) -> str | None:
        """Why no module output can give this site an arbitrary value (None: it can be written)."""
        if self.scale is not None and (self.scale == 0 or self.scale != self.scale or abs(self.scale) == float("inf")):
            return f"the block's residual multiplier is {self.scale:g}, which has no inverse"
        return None

    def write(self, value: torch.Tensor, hooked: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
        """The hooked tensor that makes the site read ``value``: the inverse of :meth:`read`, in the
        reverse order (divide by the scale, subtract the bias, put the half back beside the untouched
        other half, subtract the partner's output); ``hooked`` is the tensor as the module computed it,
        ``(batch, seq, width)``. Returned in ``hooked``'s dtype."""
        if self.scale is not None:
            value = value / self.scale
        if self.bias is not None:
            value = value - self.bias.to(value.device, value.dtype)
        if self.half is not None:
            other = (hooked if partner is None else hooked + partner).chunk(2, dim=-1)[1 - self.half]
            value = torch.cat((value, other.to(value.dtype)) if self.half == 0 else (other.to(value.dtype), value), -1)
        if partner is not None:
            value = value - partner
        return value.to(hooked.dtype)

    def read(self, tensor: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
        """The site's value from the hooked tensor (and the partner's output, computed just before)."""
        if partner is not None:
            tensor = tensor + partner
        if self.half is not None:
            tensor = tensor.chunk(2, dim=-1)[self.half]
        if self.bias is not None:
            tensor = tensor + self.bias.to(tensor.device)
        return tensor * self.scale if self.scale is not None else tensor

    @classmethod
    def point(cls, module: torch.nn.Module, which: str, path: str = "") -> Tap:
        """A bare hook point (no site, no transform): what the resolver and the self-check read besides
        the sites (a block's children, the input of a norm)."""
        return cls(None, None, module, which, path)

    def __repr__(self) -> str:
        what = f"{self.site}[{self.layer}]" if self.site is not None else "point"
        parts = [f"{self.which} of {self.path or type(self.module).__name__}"]
        if self.partner is not None:
            parts.append(f"+ {self.hook.plus}")
        if self.half is not None:
            parts.append(f"half {self.half}")
        if self.bias is not None:
            parts.append(f"+ {self.hook.bias}")
        if self.scale is not None:
            parts.append(f"x {self.scale:g}")
        return f"Tap({what}: {', '.join(parts)})"


def site_hook(adapter: Adapter, site: str) -> Hook | None:
    """The adapter's :class:`Hook` of ``site`` (None for ``hidden``); a clear error where the family
    does not define the site."""
    check_site(site)
    if site in STREAM_SITES:
        return None
    hook = adapter.hook(site)
    if hook is None:
        raise LaminaError(f"site {site!r} is not recorded on {adapter.family} models: "
                          f"{adapter.why_unavailable(site)}")
    return hook


def tap(hf, adapter: Adapter, site: str, layer: int, n_layers: int | None = None) -> Tap:
    """The :class:`Tap` of ``site`` at ``layer`` on the loaded model ``hf``.

    ``n_layers`` (default: the length of the adapter's block list) places ``hidden[n_layers]``, the
    final norm's output. Raises AttributeError / IndexError where the adapter names a module the
    model does not have (the self-check turns those into one line).
    """
    hook = site_hook(adapter, site)
    blocks = get_module(hf, adapter.layers)
    if n_layers is None:
        n_layers = len(blocks)
    if site in STREAM_SITES:
        if layer == n_layers:  # hidden: the final norm's output (HF's last hidden state); resid: its input
            which = "output" if site == "hidden" else "input"
            return Tap(site, layer, get_module(hf, adapter.final_norm), which, adapter.final_norm)
        return Tap(site, layer, blocks[layer], "input", f"{adapter.layers}.{layer}")
    block = blocks[layer]
    if site == "attn.heads":
        return _heads_tap(hf, adapter, block, layer, hook)
    return Tap(
        site, layer, get_module(block, hook.module), hook.which, f"{adapter.layers}.{layer}.{hook.module}", hook,
        partner=None if hook.plus is None else get_module(block, hook.plus),
        scale=None if hook.scale is None else float(getattr(block, hook.scale)),
        half=hook.half,
        bias=None if hook.bias is None else _optional(block, hook.bias),
    )


def taps(model_or_hf, adapter: Adapter | None = None, plan=None, *, n_layers: int | None = None) -> dict:
    """``{(site, layer): Tap}`` for every (site, layer) of ``plan`` (site -> layers; default: every
    site the family defines, at every layer entry).

    ``model_or_hf`` is a lamina ``Model`` (its adapter and depth are used) or a HF model with
    ``adapter``.
    """
    from .sites import available

    if isinstance(model_or_hf, torch.nn.Module):
        hf = model_or_hf
        if adapter is None:
            raise TypeError("taps(hf, adapter, plan): a Hugging Face model needs its adapter")
    else:  # a lamina Model
        hf, adapter = model_or_hf.hf, adapter or model_or_hf.adapter
        n_layers = model_or_hf.n_layers if n_layers is None else n_layers
    if n_layers is None:
        n_layers = len(get_module(hf, adapter.layers))
    if plan is None:
        plan = {site: range(n_entries(site, n_layers)) for site in available(adapter)}
    return {(site, layer): tap(hf, adapter, site, layer, n_layers) for site, layers in plan.items() for layer in layers}


def _heads_tap(hf, adapter: Adapter, block, layer: int, hook: Hook) -> Tap:
    """The ``attn.heads`` tap: the output projection's input, split into the attention's query heads."""
    proj = get_module(block, hook.module)
    heads = attention.count_heads(get_module(block, adapter.attn) if adapter.attn else None, hf.config)
    weight = getattr(proj, "weight", None)
    width = None if weight is None or weight.dim() != 2 else weight.shape[0 if _is_conv1d(proj) else 1]
    if heads is None or width is None or width % heads:
        raise LaminaError(f"cannot split the input of {hook.module} ({type(proj).__name__}, "
                          f"{width or 'no'} features) into {heads or 'an unknown number of'} heads")
    return Tap("attn.heads", layer, proj, "input", f"{adapter.layers}.{layer}.{hook.module}", hook, heads=heads)


@contextmanager
def loaded(module):
    """``module``'s own parameters in place for a computation outside its forward pass: a device map that
    offloads it keeps them on the meta device between passes, and accelerate loads them as for a pass."""
    if any(p.is_meta for p in module.parameters(recurse=False)):
        from accelerate.utils import align_module_device

        with align_module_device(module):
            yield module
    else:
        yield module


def _is_conv1d(module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, Conv1D)


def _optional(root, path: str):
    """``root.<path>``, or None where an attribute on the way is None."""
    value = root
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


@contextmanager
def hooks(root, taps, on_read=None, *, copy: bool = False, on_write=None):
    """Hook every tap in ``taps`` (an iterable of :class:`Tap`, or a dict of them) on ``root``'s forward
    passes; each pass calls ``on_read(tap, tensor)`` with the site's value, shaped
    ``(batch, seq, width)`` (:func:`as_tokens`); for ``attn.heads`` the output projection's input (which
    :meth:`Tap.split_heads` splits), for ``attn.pattern`` the probabilities ``(batch, head, query, key)``.

    Args:
        root: the HF model whose forward passes are hooked: a pre-hook on it reads the batch's
            ``(batch, seq)`` from ``input_ids``, to unflatten token-flattened tensors.
        taps: what to read; partners are hooked before the tap they belong to.
        on_read: the callback; with ``copy=False`` it gets the model's own tensor (or the transform
            of it) with no copy: a view it must not keep (under ``inference_mode`` nothing needs
            detaching). An exception it raises ends the forward pass.
        copy: hand over detached clones, taken when the module runs (the resolver and the self-check
            keep tensors past the pass, and some blocks update tensors in place after reading them).

    With ``on_read`` the hooks return nothing, so the forward pass is unchanged. With ``on_write``
    instead, ``on_write(tap, value)`` gets the site's value and returns its new value (or None: left
    as is); the hook writes it through :meth:`Tap.write` and returns the new output (forward hook) or
    new arguments (pre-hook). Writing hooks are registered *first* on their module (``prepend``, in the
    order of ``taps``), so every reading hook of that module, registered before or after, reads the
    edited tensor; two taps with one :attr:`Tap.key` see each other's edits.

    A module called without a tensor is skipped (the callback is not called for it). Yields the list
    of handles; all are removed on exit.
    """
    if (on_read is None) == (on_write is None):
        raise TypeError("hooks(): give on_read or on_write, not both")
    taps = list(taps.values()) if isinstance(taps, dict) else list(taps)
    handles, batch, stash = [], {}, {}

    def grab(tensor):
        return tensor.detach().clone() if copy else tensor

    def remember_batch(_module, args, kwargs):  # (batch, seq), to unflatten token-flattened tensors
        ids = kwargs.get("input_ids", args[0] if args else None)
        batch["shape"] = tuple(ids.shape[:2]) if ids is not None else None

    try:
        handles.append(root.register_forward_pre_hook(remember_batch, with_kwargs=True))
        if on_write is not None:
            _writers(taps, on_write, handles, batch, stash)
            yield handles
            return
        for i, t in enumerate(taps):
            if t.which == "pattern":  # the attention probabilities, from eager's output or beside sdpa
                handles.append(attention.watch(t.module, lambda w, t=t: on_read(t, grab(w)), config=root.config))
                continue
            if t.partner is not None:  # a site that is the sum of two modules' outputs: keep the first
                def stash_hook(_module, _args, output, i=i):
                    value = hooked_output(output)
                    if isinstance(value, torch.Tensor):
                        stash[i] = as_tokens(grab(value), batch.get("shape"))
                handles.append(t.partner.register_forward_hook(stash_hook))
            if t.which == "input":
                def pre_hook(_module, args, kwargs, t=t):
                    value = hooked_input(args, kwargs) if (args or kwargs) else None
                    if isinstance(value, torch.Tensor):
                        on_read(t, t.read(as_tokens(grab(value), batch.get("shape"))))
                handles.append(t.module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            else:
                def post_hook(_module, _args, output, t=t, i=i):
                    value = hooked_output(output)
                    if isinstance(value, torch.Tensor):
                        on_read(t, t.read(as_tokens(grab(value), batch.get("shape")), stash.pop(i, None)))
                handles.append(t.module.register_forward_hook(post_hook))
        yield handles
    finally:
        for handle in handles:
            handle.remove()


def _writers(taps, on_write, handles, batch, stash) -> None:
    """Register the writing hooks of :func:`hooks` (prepended, so registered last to first)."""
    for i, t in enumerate(taps):
        if t.partner is not None:
            def stash_hook(_module, _args, output, i=i):
                value = hooked_output(output)
                if isinstance(value, torch.Tensor):
                    stash[i] = as_tokens(value, batch.get("shape"))
            handles.append(t.partner.register_forward_hook(stash_hook))
    for i, t in reversed(list(enumerate(taps))):
        def edit(value, partner, t=t):
            tokens = as_tokens(value, batch.get("shape"))
            new = on_write(t, t.read(tokens, partner))
            return None if new is None else t.write(new, tokens, partner).reshape(value.shape)

        if t.which == "input":
            def pre_hook(_module, args, kwargs, edit=edit):
                value = hooked_input(args, kwargs) if (args or kwargs) else None
                if isinstance(value, torch.Tensor):
                    new = edit(value, None)
                    if new is not None:
                        return replaced_input(args, kwargs, new)
                return None
            handles.append(t.module.register_forward_pre_hook(pre_hook, with_kwargs=True, prepend=True))
        else:
            def post_hook(_module, _args, output, edit=edit, i=i):
                value = hooked_output(output)
                if isinstance(value, torch.Tensor):
                    new = edit(value, stash.pop(i, None))
                    if new is not None:
                        return replaced_output(output, new)
                return None
            handles.append(t.module.register_forward_hook(post_hook, prepend=True))


def replaced_input(args, kwargs, new):
    """``(args, kwargs)`` with the tensor :func:`hooked_input` reads replaced by ``new``."""
    if args:
        return (new, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else next(k for k, v in kwargs.items() if hasattr(v, "shape"))
    return args, {**kwargs, key: new}


def replaced_output(output, new):
    """``output`` with the tensor :func:`hooked_output` reads replaced by ``new``."""
    if isinstance(output, (tuple, list)):
        return type(output)([new, *output[1:]]) if isinstance(output, list) else (new, *output[1:])
    return new


def hooked_input(args, kwargs):
    """The tensor a pre-hook reads as a module's input: its first positional argument, else the
    ``hidden_states`` keyword (blocks are often called with keywords only), else the first tensor."""
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    return next(v for v in kwargs.values() if hasattr(v, "shape"))


def hooked_output(output):
    """The tensor a forward hook reads as a module's output (the first element of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def as_tokens(tensor, batch_shape):
    """``tensor`` as ``(batch, seq, width)``: some blocks (OPT's) flatten the tokens to ``(batch * seq,
    width)`` around their MLP; ``batch_shape`` is the forward pass's ``(batch, seq)``."""
    if tensor.dim() == 2 and batch_shape is not None and tensor.shape[0] == batch_shape[0] * batch_shape[1]:
        return tensor.view(*batch_shape, tensor.shape[-1])
    return tensor
