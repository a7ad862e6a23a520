"""Check a recording against the model itself: the site identities, on what :func:`lamina.record` wrote.

The load-time self-check (``lamina.models.selfcheck``) verifies the hooks; this verifies the
recording path end to end (batching, padding, BOS offset, transforms, copies into the buffers):
every site of a short random batch is recorded with :func:`lamina.record`, then

* ``hidden`` equals HF's ``output_hidden_states`` of the same input;
* ``hidden[l] + attn.out[l] + mlp.out[l] == hidden[l+1]`` (for the last block, through the final norm);
* ``mlp.pre``/``mlp.post`` recompute ``mlp.raw`` through the MLP's own modules;
* each token's ``loss`` equals ``-log_softmax`` of HF's logits at that position;
* ``attn.heads`` summed over heads plus the output projection's bias equals ``attn.raw``;
* ``attn.pattern`` equals HF's ``output_attentions`` under eager attention (the model switched to eager
  for the reference pass only), each sequence run alone: padded batches give the same probabilities,
  keys a sequence does not have hold 0 and padded query slots NaN.

``lamina architectures --verify`` and the all-architectures test run it on every verified type.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import LaminaError
from ..models.selfcheck import TOLERANCE, _act, _call
from ..models.sites import available, get_module
from ..models.tap import tap
from ..stimuli import Stimuli
from .engine import record


def _close(what: str, value, reference, tol: float) -> None:
    value, reference = np.asarray(value, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if value.shape != reference.shape:
        raise LaminaError(f"recording check '{what}': shapes {value.shape} and {reference.shape} differ")
    err = float(np.max(np.abs(value - reference))) if value.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    if not err <= tol * max(scale, 1e-12):
        raise LaminaError(f"recording check '{what}' fails: off by {err:.3g} ({err / max(scale, 1e-12):.2%})")


def check_recording(model, n: int = 3, length: int = 7, seed: int = 0) -> None:
    """Record every site of ``model`` on ``n`` random sequences (two lengths, so one batch is padded)
    and check the identities above; raises :class:`LaminaError` naming the first that fails."""
    rng = np.random.default_rng(seed)
    vocab = min(model.vocab_size, 5000)
    seqs = [rng.integers(0, vocab, length - (i % 2)) for i in range(n)]
    sites = available(model.adapter)
    rec = record(model, Stimuli(seqs), sites=sites, batch_size=2, progress=False)
    tol = 10 * TOLERANCE.get(model.dtype, 1e-4)
    off = int(model.prepend_bos)
    blocks = get_module(model.hf, model.adapter.layers)
    for i, seq in enumerate(seqs):
        ids = torch.as_tensor(np.concatenate([np.full(off, model.bos_id or 0), seq]).astype(np.int64))[None]
        ids = ids.to(model.device)
        with torch.inference_mode():
            out = model.hf(input_ids=ids, output_hidden_states=True, use_cache=False)
        k = len(seq)
        for layer, h in enumerate(out.hidden_states):
            _close(f"hidden[{layer}] == output_hidden_states", rec["hidden"][layer, i, :k], h[0, off:].float().cpu(), tol)
        logp = torch.log_softmax(out.logits[0, off:].float(), dim=-1).cpu()
        loss = -logp[torch.arange(k - 1), torch.as_tensor(seq[1:])]
        tokens = rec.tokens[rec.tokens.sequence == i].sort_values("position")
        _close("loss == -log_softmax(logits)[next]", tokens.loss.to_numpy()[:k - 1], loss, tol)
    h, a, m = rec["hidden"], rec["attn.out"], rec["mlp.out"]
    mask = ~np.isnan(h[0])  # padded slots are NaN
    for layer in range(model.n_layers - 1):
        _close(f"hidden[{layer}] + attn.out + mlp.out == hidden[{layer + 1}]",
               (h[layer] + a[layer] + m[layer])[mask], h[layer + 1][mask], tol)
    if "mlp.pre" in sites:
        _check_mlp(model, rec, blocks, mask, tol)
    if "attn.heads" in sites:
        _check_heads(model, rec, mask, tol)
    if "attn.pattern" in sites:
        _check_pattern(model, rec, seqs, tol)


def _check_heads(model, rec, mask, tol):
    heads, raw = rec["attn.heads"], rec["attn.raw"]
    for layer in range(model.n_layers):
        total = heads[layer].sum(-2)
        biases = (getattr(tap(model.hf, model.adapter, "attn.heads", layer).module, "bias", None),
                  tap(model.hf, model.adapter, "attn.raw", layer).bias)  # the projection's; one added outside it
        for bias in biases:
            if bias is not None:
                total = total + bias.detach().float().cpu().numpy()
        _close(f"attn.heads[{layer}] summed over heads + bias == attn.raw", total[mask], raw[layer][mask], tol)


def eager_attentions(model, ids):
    """HF's ``output_attentions`` for ``ids`` with the model switched to eager attention for this pass."""
    hf = model.hf
    before = model.text_config._attn_implementation
    hf.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            return hf(input_ids=ids, output_attentions=True, use_cache=False).attentions
    finally:
        hf.set_attn_implementation(before)


def _check_pattern(model, rec, seqs, tol):
    pattern, off = rec["attn.pattern"], int(model.prepend_bos)
    for i, seq in enumerate(seqs):
        ids = torch.as_tensor(np.concatenate([np.full(off, model.bos_id or 0), seq]).astype(np.int64))[None]
        reference = eager_attentions(model, ids.to(model.device))
        k = len(seq)
        for layer, weights in enumerate(reference):
            got = pattern[layer, i]
            _close(f"attn.pattern[{layer}] == eager output_attentions", got[:, :k, :k + off],
                   weights[0, :, off:].float().cpu(), tol)
            if not (got[:, :k, k + off:] == 0).all() or not np.isnan(got[:, k:]).all():
                raise LaminaError(f"recording check 'attn.pattern[{layer}] is 0 on keys sequence {i} does not "
                                  "have and NaN on its padded query slots' fails")


def _check_mlp(model, rec, blocks, mask, tol):
    adapter = model.adapter
    for layer, block in enumerate(blocks):
        x = torch.as_tensor(np.nan_to_num(rec["mlp.in"][layer]), dtype=model.dtype)
        pre = torch.as_tensor(np.nan_to_num(rec["mlp.pre"][layer]), dtype=model.dtype)
        with torch.inference_mode():
            again = _call(get_module(block, adapter.mlp_pre.module), x)
            if adapter.mlp_pre.half is not None:
                again = again.chunk(2, dim=-1)[adapter.mlp_pre.half]
            post = _act(model.hf, block, adapter.mlp_act)(pre)
            if adapter.mlp_up is not None:
                up = _call(get_module(block, adapter.mlp_up.module), x)
                post = post.to(up.device) * (up if adapter.mlp_up.half is None else up.chunk(2, dim=-1)[adapter.mlp_up.half])
            raw = _call(get_module(block, adapter.mlp_post.module), torch.as_tensor(
                np.nan_to_num(rec["mlp.post"][layer]), dtype=model.dtype))
        _close(f"mlp.pre[{layer}] == projection of mlp.in", rec["mlp.pre"][layer][_rows(mask, again)],
               again.float().cpu().numpy()[_rows(mask, again)], tol)
        _close(f"mlp.post[{layer}] == act(mlp.pre)[* up]", rec["mlp.post"][layer][_rows(mask, post)],
               post.float().cpu().numpy()[_rows(mask, post)], tol)
        _close(f"down(mlp.post[{layer}]) == mlp.raw", rec["mlp.raw"][layer][mask], raw.float().cpu().numpy()[mask], tol)


def _rows(mask, like):
    """``mask`` (sequence, slot, d_model) widened to ``like``'s width."""
    return np.broadcast_to(mask[..., :1], tuple(like.shape))
