"""The load-time self-check: every site is verified on the loaded weights before anything is recorded.

One probe forward pass (two sequences of six tokens) reads every available site at every
layer exactly as recording does (the same :class:`~lamina.models.tap.Tap` objects, hooked by the
same registrar, :func:`lamina.models.tap.hooks`) and checks:

* ``hidden`` equals HF's ``output_hidden_states``, entry for entry, and the final norm maps
  ``resid``'s last entry (its input) to ``hidden``'s;
* where the block is a residual sum, ``hidden[l+1] = hidden[l] + attn.out[l] + mlp.out[l]``
  (for the last block: the final norm's input), and in a sequential block the residual between
  the sublayers is ``hidden[l] + attn.out[l]``;
* ``attn.out``/``mlp.out`` are the post-norm of ``attn.raw``/``mlp.raw`` where the block has one;
* ``mlp.pre``/``mlp.post`` recompute ``mlp.out`` through the MLP's own weights:
  ``pre = proj(mlp.in)``, ``post = act(pre) [* up(mlp.in)]``, ``down(post) = mlp.raw``;
* the per-token loss, ``-log_softmax(logits)[next token]`` of the model's own final logits, equals
  the loss HF computes from the same forward pass.

The first identity that fails stops the load with one line naming it, the layer and the size of
the mismatch: lamina never records sites it could not verify. The attention sites (``attn.heads``,
``attn.pattern``) are read in the same pass and checked by :mod:`lamina.models.attncheck`; where one of
their identities fails, that site alone is refused on this model, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import LaminaError
from .attention import PatternFailed
from .attncheck import ATTENTION_SITES, attention_taps, check_attention, compared_outputs
from .probe import capture, forward, mismatch, probe_ids
from .sites import available, get_module, n_entries
from .tap import Tap, taps

# Largest mismatch accepted, relative to the reference's largest magnitude (loss: in nats).
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6, torch.bfloat16: 3e-2, torch.float16: 1e-2}


class SelfCheckFailed(LaminaError):
    """An identity between sites does not hold on this model: its sites would be wrong."""


def _dtype(hf) -> torch.dtype:
    return next((p.dtype for p in hf.parameters() if p.is_floating_point()), torch.float32)


def _act(hf, block, path: str):
    if path.startswith("config:"):
        from transformers.activations import ACT2FN

        return ACT2FN[path.split(":", 1)[1]]
    return get_module(block, path)


def _call(module, x):
    """``module(x)`` with ``x`` on the module's device (accelerate's hooks move it for offloaded weights)."""
    param = next(module.parameters(), None) if isinstance(module, torch.nn.Module) else None
    if param is not None and param.device.type != "meta":
        x = x.to(param.device)
    return module(x)


@dataclass
class Checked:
    """What the self-check measured: each verified site's width, the attention sites it refused on this
    model (``{site: reason}``), and the number of query heads (None where no attention site is verified)."""

    widths: dict[str, int]
    refused: dict[str, str] = field(default_factory=dict)
    n_heads: int | None = None


def self_check(hf, adapter, n_layers: int) -> Checked:
    """Verify ``adapter`` on ``hf`` (see the module docstring); return what it measured (:class:`Checked`).

    Raises:
        SelfCheckFailed: naming the identity, the layer and the mismatch, when one does not hold.
        LaminaError: when a module the adapter names does not exist on this model.
    """
    sites = [site for site in available(adapter) if site not in ATTENTION_SITES]
    blocks = get_module(hf, adapter.layers)
    points: dict = {}
    try:
        site_taps = taps(hf, adapter, {site: range(n_entries(site, n_layers)) for site in sites}, n_layers=n_layers)
        extra = {"mid": adapter.resid_mid,
                 "attn.post_in": _post_norm_input(adapter, "attn"), "mlp.post_in": _post_norm_input(adapter, "mlp")}
        for key, hook in extra.items():
            for layer in range(n_layers) if hook is not None else ():
                points[(key, layer)] = Tap.point(get_module(blocks[layer], hook.module), hook.which)
        points[("final_in", n_layers)] = Tap.point(get_module(hf, adapter.final_norm), "input")
    except (AttributeError, IndexError, TypeError) as err:
        raise LaminaError(f"the {adapter.family} adapter names a module that {type(hf).__name__} does not have "
                          f"({err}); this checkpoint's layout differs from the family's.") from None
    attn_taps, refused = attention_taps(hf, adapter, n_layers)
    ids = probe_ids(hf)
    seen, compared = {}, {}
    try:
        out = _probe(hf, ids, {**site_taps, **points}, attn_taps, seen, compared)
    except PatternFailed as err:  # HF's own eager attention fails on this model: check everything else
        refused["attn.pattern"] = str(err)
        attn_taps = {key: t for key, t in attn_taps.items() if key[0] != "attn.pattern"}
        seen.clear()
        out = _probe(hf, ids, {**site_taps, **points}, attn_taps, seen, compared)
    values = {key: seen[key] for key in site_taps if key in seen}
    missing = [key for key in site_taps if key not in seen]
    if missing:
        site, layer = missing[0]
        raise SelfCheckFailed(f"{_who(hf, adapter)}: site {site!r} at layer {layer} was never computed by the "
                              "forward pass (its module is not called); its sites cannot be recorded")
    tol = TOLERANCE.get(_dtype(hf), 1e-4)
    check = _Checker(hf, adapter, tol)
    _check_finite(hf, adapter, values, n_layers)

    # hidden == output_hidden_states
    hs = getattr(out, "hidden_states", None)
    if hs is None or len(hs) != n_layers + 1:
        raise SelfCheckFailed(f"{_who(hf, adapter)}: output_hidden_states has "
                              f"{'no' if hs is None else len(hs)} entries, not n_layers + 1 = {n_layers + 1}")
    for layer in range(n_layers + 1):
        check(f"hidden[{layer}] == output_hidden_states[{layer}]", layer, values[("hidden", layer)], hs[layer])
    # resid shares hidden's taps but the last: the final norm's input, which the final norm maps to hidden[n]
    with torch.inference_mode():
        normed = _call(get_module(hf, adapter.final_norm), values[("resid", n_layers)])
    check("final norm(resid[n]) == hidden[n]", n_layers, normed, values[("hidden", n_layers)])
    # the residual stream: each block adds attn.out and mlp.out
    for layer in range(n_layers):
        h, a, m = (values[(s, layer)].float().cpu() for s in ("hidden", "attn.out", "mlp.out"))
        if not h.shape == a.shape == m.shape:
            raise SelfCheckFailed(f"{check.who}: self-check 'hidden, attn.out and mlp.out have one shape' fails at "
                                  f"layer {layer}: {tuple(h.shape)}, {tuple(a.shape)}, {tuple(m.shape)}")
        if ("mid", layer) in seen:
            check("residual between the sublayers == hidden[l] + attn.out[l]", layer, h + a, seen[("mid", layer)])
        if layer < n_layers - 1:
            check("hidden[l+1] == hidden[l] + attn.out[l] + mlp.out[l]", layer, h + a + m, values[("hidden", layer + 1)])
        else:
            check("final norm input == hidden[l] + attn.out[l] + mlp.out[l]", layer, h + a + m,
                  seen[("final_in", n_layers)])
        for part in ("attn", "mlp"):
            if (f"{part}.post_in", layer) in seen:
                check(f"{part}.raw == input of the post-{part} norm", layer, values[(f"{part}.raw", layer)],
                      seen[(f"{part}.post_in", layer)])
    # mlp.pre / mlp.post through the MLP's own weights
    if "mlp.pre" in sites:
        _check_mlp(hf, adapter, blocks, values, site_taps, n_layers, check)
    _check_loss(out, ids, tol, hf, adapter)
    widths, failed, n_heads = check_attention(hf, attn_taps, site_taps, seen, compared, tol, n_layers)
    widths.update({site: int(values[(site, 0)].shape[-1]) for site in sites})
    return Checked(widths, {**refused, **failed}, n_heads)


def _probe(hf, ids, points, attn_taps, seen, compared):
    """The probe pass: every site through its tap, as recording reads them (and, under sdpa, the attention
    outputs eager computes from the pattern)."""
    with capture(hf, {**points, **attn_taps}, seen), compared_outputs(hf, attn_taps, compared):
        return forward(hf, ids, output_hidden_states=True, labels=ids)


# Where a value first goes non-finite, in the order the block computes (raw sites after the canonical ones).
_ORDER = ("hidden", "resid", "attn.out", "attn.raw", "mlp.in", "mlp.pre", "mlp.post", "mlp.out", "mlp.raw")


def _check_finite(hf, adapter, values, n_layers):
    for layer in range(n_layers + 1):
        for site in _ORDER:
            value = values.get((site, layer))
            if value is not None and not torch.isfinite(value).all():
                raise LaminaError(f"{_who(hf, adapter)}: the self-check's probe pass gives non-finite values (NaN or "
                                  f"inf) at site {site!r}, layer {layer}; with float16 this is usually overflow: load "
                                  "the model in float32 or bfloat16.")


def _post_norm_input(adapter, part: str):
    """Hook on the input of the post-sublayer norm, when the site's module is not the raw one."""
    out, raw = (adapter.attn_out, adapter.hook("attn.raw")) if part == "attn" else \
        (adapter.hook("mlp.out"), adapter.hook("mlp.raw"))
    if out.module == raw.module:
        return None
    return type(out)(out.module, "input")


def _check_mlp(hf, adapter, blocks, values, site_taps, n_layers, check):
    with torch.inference_mode():
        for layer in range(n_layers):
            block = blocks[layer]
            x, pre, post = (values[(s, layer)] for s in ("mlp.in", "mlp.pre", "mlp.post"))
            pre_tap = site_taps[("mlp.pre", layer)]  # its projection, read as the site (a fused one's half)
            pre_again = pre_tap.read(_call(pre_tap.module, x))
            check("mlp.pre == its projection of mlp.in", layer, pre_again, pre)
            post_again = _act(hf, block, adapter.mlp_act)(pre) if adapter.mlp_act else None
            if post_again is not None:
                if adapter.mlp_up is not None:
                    up = _call(get_module(block, adapter.mlp_up.module), x)
                    if adapter.mlp_up.half is not None:
                        up = up.chunk(2, dim=-1)[adapter.mlp_up.half]
                    post_again = post_again.to(up.device) * up
                check("mlp.post == act(mlp.pre)" + (" * up(mlp.in)" if adapter.mlp_up else ""), layer,
                      post_again, post)
            down = get_module(block, adapter.mlp_post.module)
            check("down projection of mlp.post == mlp.raw", layer, _call(down, post), values[("mlp.raw", layer)])


def _check_loss(out, ids, tol, hf, adapter):
    logits = out.logits.float()
    ours = -torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(logits.device))[..., 0]
    theirs = getattr(out, "loss", None)
    if theirs is None:
        raise SelfCheckFailed(f"{_who(hf, adapter)}: the model returns no loss for labels, so lamina cannot check "
                              "its per-token loss against the model's own")
    aux = getattr(out, "aux_loss", None)  # mixture-of-experts load-balancing term, added to HF's loss
    coef = getattr(hf.config, "router_aux_loss_coef", 0.0) or 0.0
    reference = theirs.float() - (coef * aux.float() if aux is not None and coef else 0.0)
    err = abs(float(ours.mean()) - float(reference))
    if not err <= max(tol, 1e-5) * max(1.0, abs(float(reference))):
        raise SelfCheckFailed(f"{_who(hf, adapter)}: self-check 'loss == -log_softmax(final logits)[next token]' "
                              f"fails: the mean differs from the model's own loss by {err:.3g} nats")


class _Checker:
    def __init__(self, hf, adapter, tol):
        self.who, self.tol = _who(hf, adapter), tol

    def __call__(self, identity: str, layer: int, value, reference):
        err, rel = mismatch(value, reference)
        if not rel <= self.tol:
            size = "shapes differ" if err == float("inf") else f"off by {err:.3g} ({rel:.2%} of the largest value)"
            raise SelfCheckFailed(f"{self.who}: self-check '{identity}' fails at layer {layer}: {size}; "
                                  "lamina refuses to record sites it cannot verify")


def _who(hf, adapter) -> str:
    how = "derived" if adapter.derived else "hand-written"
    return f"{getattr(hf.config, 'model_type', '?')} ({type(hf).__name__}, {how} adapter)"
