"""The load-time self-check of the two attention sites, run inside :func:`lamina.models.selfcheck.self_check`'s
probe pass (the same taps and registrar as recording).

A failure here refuses only that site on this model, with the reason (``lamina.record`` then names it), not
the whole model: every other site was verified on its own identities.

* ``attn.heads``: at every layer, the heads summed plus the output projection's bias equal ``attn.raw``;
  where the pattern is read too, the heads the projection's input splits into are as many as the
  attention's query heads (the pattern's head axis), which is what makes each slice one head's.
* ``attn.pattern``: every layer hands over probabilities shaped ``(batch, head, query, key)``, causal (0 for
  every later key), summing to at most 1 over the keys (less with attention sinks), with the same number of
  heads at every layer; under sdpa, the attention output that eager computes from them equals the output the
  model computed, so they are the probabilities that mixed the values.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..errors import LaminaError
from . import attention
from .probe import PROBE_SHAPE, mismatch
from .tap import loaded, tap

ATTENTION_SITES = ("attn.heads", "attn.pattern")


def attention_taps(hf, adapter, n_layers: int) -> tuple[dict, dict[str, str]]:
    """``{(site, layer): Tap}`` of the attention sites the adapter defines, and why a site cannot even be
    tried on this model (``{site: reason}``: no head count, an attention implementation lamina cannot read)."""
    found, refused = {}, {}
    for site in ATTENTION_SITES:
        if adapter.hook(site) is None:
            continue
        try:
            site_taps = {(site, layer): tap(hf, adapter, site, layer, n_layers) for layer in range(n_layers)}
        except LaminaError as err:
            refused[site] = str(err)
            continue
        except (AttributeError, IndexError, TypeError) as err:
            refused[site] = f"the adapter names a module this model does not have ({err})"
            continue
        reason = attention.refusal(site_taps[(site, 0)].module, hf.config) if site == "attn.pattern" else None
        if reason is not None:
            refused[site] = reason
            continue
        found.update(site_taps)
    return found, refused


@contextmanager
def compared_outputs(hf, attn_taps: dict, store: dict):
    """Under sdpa, ``store[layer]`` = the mismatch (:func:`~lamina.models.probe.mismatch`) between the attention
    output eager computes from ``attn.pattern`` and the output the model computed, for every pass inside."""
    handles = []
    try:
        for (site, layer), t in attn_taps.items():
            if site == "attn.pattern" and attention.implementation(t.module, hf.config) == "sdpa":
                def keep(eager_output, output, layer=layer):
                    store[layer] = mismatch(eager_output, output)
                handles.append(attention.watch(t.module, lambda _w: None, on_outputs=keep, config=hf.config))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def check_attention(hf, attn_taps: dict, site_taps: dict, seen: dict, compared: dict, tol: float,
                    n_layers: int) -> tuple[dict[str, int], dict[str, str], int | None]:
    """``(widths, refused, n_heads)`` of the attention sites after the probe pass: each verified site's width
    (``attn.heads``: d_model), ``{site: reason}`` for each that failed, and the number of query heads."""
    widths, refused, n_heads = {}, {}, None
    if ("attn.pattern", 0) in attn_taps:
        reason, n_heads = _check_pattern(hf, attn_taps, seen, compared, tol, n_layers)
        if reason is not None:
            refused["attn.pattern"], n_heads = reason, None
    if ("attn.heads", 0) in attn_taps:
        reason, width = _check_heads(attn_taps, site_taps, seen, tol, n_layers, n_heads)
        if reason is not None:
            refused["attn.heads"] = reason
        else:
            widths["attn.heads"] = width
            n_heads = n_heads or attn_taps[("attn.heads", 0)].heads
    return widths, refused, n_heads


def _fails(identity: str, layer: int, size: str) -> str:
    return f"self-check '{identity}' fails at layer {layer}: {size}"


def _off(err: float, rel: float) -> str:
    return "shapes differ" if err == float("inf") else f"off by {err:.3g} ({rel:.2%} of the largest value)"


def _check_pattern(hf, attn_taps, seen, compared, tol, n_layers) -> tuple[str | None, int | None]:
    sdpa = attention.implementation(attn_taps[("attn.pattern", 0)].module, hf.config) == "sdpa"
    counts = []
    for layer in range(n_layers):
        weights = seen.get(("attn.pattern", layer))
        if weights is None:
            name = type(attn_taps[("attn.pattern", layer)].module).__name__
            return (f"its attention module ({name}) hands over no probabilities at layer {layer}: "
                    + ("it computes attention in its own code, outside transformers' attention interface, and "
                       "under sdpa none are formed; load it with attn_implementation='eager'" if sdpa else
                       "under eager attention it returns none"), None)
        batch, length = PROBE_SHAPE
        if weights.dim() != 4 or weights.shape[0] != batch or tuple(weights.shape[2:]) != (length, length):
            return _fails("attn.pattern is (batch, head, query, key)", layer, f"shape {tuple(weights.shape)}"), None
        weights = weights.float().cpu()
        if weights.triu(1).abs().max() > 0:
            return _fails("attn.pattern gives 0 to every later key", layer,
                          f"{float(weights.triu(1).abs().max()):.3g} on a later key"), None
        excess = float(weights.sum(-1).max()) - 1
        if excess > tol:
            return _fails("attn.pattern sums to at most 1 over the keys", layer, f"a row sums to {1 + excess:.6g}"), None
        if sdpa and not compared.get(layer, (0.0, 0.0))[1] <= tol:
            return _fails("the output eager attention computes from attn.pattern == the output the model computed",
                          layer, _off(*compared[layer])), None
        counts.append(int(weights.shape[1]))
    if len(set(counts)) > 1:
        return f"its layers have different numbers of heads ({sorted(set(counts))}), which one array cannot hold", None
    return None, counts[0]


def _check_heads(attn_taps, site_taps, seen, tol, n_layers, n_heads) -> tuple[str | None, int | None]:
    first = attn_taps[("attn.heads", 0)]
    if n_heads is not None and first.heads != n_heads:
        return (f"the output projection's input splits into {first.heads} heads (from the config), but the "
                f"attention computes {n_heads}"), None
    width = None
    for layer in range(n_layers):
        t = attn_taps[("attn.heads", layer)]
        z = seen.get(("attn.heads", layer))
        if z is None:
            return f"the output projection {t.hook.module} never runs at layer {layer}", None
        with torch.inference_mode(), loaded(t.module):
            heads = t.split_heads(z)
            width, total = int(heads.shape[-1]), heads.sum(-2)
            for bias in (getattr(t.module, "bias", None), site_taps[("attn.raw", layer)].bias):
                if bias is not None:  # the projection's own bias, and one the block adds outside (NeoX-Japanese)
                    total = total + bias.to(total.device, total.dtype)
        err, rel = mismatch(total, seen[("attn.raw", layer)])
        if not rel <= tol:
            return _fails("attn.heads summed over heads + the projection's bias == attn.raw", layer, _off(err, rel)), None
    return None, width
