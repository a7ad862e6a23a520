"""Item 10 (issue 27): what recording ``attn.pattern`` (and ``attn.heads``) at one layer costs against the bare
forward pass, against that layer's eager attention, and against TransformerLens and nnsight recording the same
pattern.

    python bench/bench_attention.py --model smollm2          # 8 x 256 tokens, layer 15, interleaved rounds

docs/sites.md quotes its output. Contenders, on one batch of 8 sequences of 256 tokens (BOS in front for
SmolLM2), the same ids for all; every one computes the logits (lamina: and the loss), none stops early:

    bare             hf(ids).logits, sdpa attention, no hooks
    attn.out         lamina.record(sites=["attn.out"], layers=15): what any one-layer recording costs
    attn.pattern     lamina.record(sites=["attn.pattern"], layers=15): sdpa everywhere, plus eager's
                     probabilities computed beside layer 15 only
    attn.heads       lamina.record(sites=["attn.heads"], layers=15)
    layer-eager      the bare forward with layer 15 alone run by HF's eager attention (the sdpa entry of
                     transformers' attention interface, wrapped for that module only: its
                     eager_attention_forward with sdpa's mask made additive), the others sdpa
    eager-attn       layer 15's eager attention alone: its modeling file's eager_attention_forward
                     (q·kᵀ, mask, softmax, ·v) on the query, key and value that layer gets in the bare
                     forward (captured once), with eager's additive causal mask built beforehand
    hf-eager         the whole model switched to eager attention with output_attentions=True: HF's own way
                     to get the probabilities (every layer's, as HF has no per-layer switch)
    transformerlens  TransformerBridge (TransformerLens 4; it runs the model in eager attention):
                     run_with_cache(ids, names_filter="blocks.15.attn.hook_pattern")
    nnsight          NNsight(hf) on a copy switched to eager attention (hf.set_attn_implementation("eager"),
                     what an nnsight user must do: sdpa forms no probabilities), saving
                     model.layers[15].self_attn.output[1] (HF attention modules return their probabilities
                     as the second output under eager) and the logits

The goal (issue 27): recording ``attn.pattern`` at one layer costs at most that layer's eager attention on top
of the fused forward, i.e. ``attn.pattern − bare ≤ eager-attn`` (median per-round differences of process CPU
seconds, and of wall seconds), and is faster than both peers. ``layer-eager − bare`` is reported beside it:
what switching that one layer from sdpa to eager costs, the cheapest way HF could give that pattern.
The check: lamina's pattern, hf-eager's, TransformerLens's and nnsight's agree to ``--tolerance``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys

import numpy as np
import torch

import common
from lamina.models.attention import _eager_mask  # sdpa's mask as eager's: the one attn.pattern uses

LAYER, BATCH, SEQ = 15, 8, 256
PEERS = ["transformerlens", "nnsight"]


def _envoy(root, path: str):
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def _eager_function(module):
    return sys.modules[type(module).__module__].eager_attention_forward


@contextlib.contextmanager
def sdpa_for(target, replacement):
    """While inside: calls of the sdpa attention function for module ``target`` go to ``replacement(original,
    module, query, key, value, mask, *args, **kwargs)``; every other module's go to sdpa unchanged."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def wrapped(module, query, key, value, attention_mask, *args, **kwargs):
        if module is target:
            return replacement(original, module, query, key, value, attention_mask, *args, **kwargs)
        return original(module, query, key, value, attention_mask, *args, **kwargs)

    ALL_ATTENTION_FUNCTIONS["sdpa"] = wrapped
    try:
        yield
    finally:
        del ALL_ATTENTION_FUNCTIONS["sdpa"]  # the local entry; the global mapping shows through again
        if ALL_ATTENTION_FUNCTIONS["sdpa"] is not original:
            ALL_ATTENTION_FUNCTIONS["sdpa"] = original


def make_layer_eager(hf, attn, ids):
    def eager_here(_original, module, query, key, value, mask, *args, **kwargs):
        return _eager_function(module)(module, query, key, value, _eager_mask(module, query, key, mask, kwargs),
                                       *args, **kwargs)

    def run():
        with sdpa_for(attn, eager_here):
            return hf(input_ids=ids, use_cache=False).logits
    return run


def make_eager_attn(hf, attn, ids):
    """Layer ``LAYER``'s eager attention alone, on the inputs it gets in the bare forward."""
    seen = {}

    def capture(original, module, query, key, value, mask, *args, **kwargs):
        seen.update(query=query.clone(), key=key.clone(), value=value.clone(), args=args, kwargs=dict(kwargs),
                    mask=_eager_mask(module, query, key, mask, kwargs))
        return original(module, query, key, value, mask, *args, **kwargs)

    with sdpa_for(attn, capture):
        hf(input_ids=ids, use_cache=False)
    eager = _eager_function(attn)

    def run():
        return eager(attn, seen["query"], seen["key"], seen["value"], seen["mask"], *seen["args"], **seen["kwargs"])
    return run


def make_transformerlens(model, ids):
    from bench_peers import boot_transformerlens

    bridge = boot_transformerlens(model, common.hf_copy(model))  # the bridge switches its model to eager
    name = f"blocks.{LAYER}.attn.hook_pattern"

    def run():
        logits, cache = bridge.run_with_cache(ids, names_filter=name)
        return cache[name]
    return run


def make_nnsight(model, ids):
    from nnsight import NNsight

    hf = common.hf_copy(model)
    hf.set_attn_implementation("eager")  # sdpa forms no probabilities: an nnsight user switches the model
    nn_model = NNsight(hf)
    path = f"{model.adapter.layers}.{LAYER}.{model.adapter.attn}"

    def run():
        with nn_model.trace(input_ids=ids, use_cache=False):
            pattern = _envoy(nn_model, path).output[1].save()
            nn_model.output.logits.save()
        return pattern
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--no-peers", action="store_true", help="leave TransformerLens and nnsight out")
    args = parser.parse_args()
    common.setup()
    import lamina

    loadavg_start = list(os.getloadavg())
    model = common.load_model(args.model)
    batches = common.token_batches(model, 1, BATCH, SEQ)
    stimuli = common.stimuli_of(batches)
    (ids,) = common.model_inputs(model, batches)
    hf = model.hf
    attn = _envoy(hf, f"{model.adapter.layers}.{LAYER}.{model.adapter.attn}")
    offset = int(model.prepend_bos)

    def bare():
        return hf(input_ids=ids, use_cache=False).logits

    def record(site):
        return lambda: lamina.record(model, stimuli, sites=[site], layers=LAYER, batch_size=BATCH, progress=False)

    def hf_eager():
        before = model.text_config._attn_implementation
        hf.set_attn_implementation("eager")
        try:
            return hf(input_ids=ids, use_cache=False, output_attentions=True).attentions[LAYER]
        finally:
            hf.set_attn_implementation(before)

    fns = {"bare": bare, "attn.out": record("attn.out"), "attn.pattern": record("attn.pattern"),
           "attn.heads": record("attn.heads"), "layer-eager": make_layer_eager(hf, attn, ids),
           "eager-attn": make_eager_attn(hf, attn, ids), "hf-eager": hf_eager}
    missing = [m for m in ("transformer_lens", "nnsight") if importlib.util.find_spec(m) is None]
    peers = [] if args.no_peers or missing else PEERS
    if "transformerlens" in peers:
        fns["transformerlens"] = make_transformerlens(model, ids)
    if "nnsight" in peers:
        fns["nnsight"] = make_nnsight(model, ids)

    # The check (also the warm-up round): every pattern of layer LAYER against lamina's, queries at the
    # stimulus positions (lamina keeps no BOS query), every key.
    mine = torch.as_tensor(fns["attn.pattern"]().layer("attn.pattern", LAYER))  # (sequence, head, slot, key)
    theirs = {"hf-eager": fns["hf-eager"](), "eager-attn": fns["eager-attn"]()[1]}
    for lib in peers:
        theirs[lib] = fns[lib]()
    diffs = {lib: float((p.float()[:, :, offset:, :] - mine).abs().max()) for lib, p in theirs.items()}
    # layer-eager must compute what the bare forward does (its mask is the causal one): its logits vs bare's
    logits_diff = float((fns["layer-eager"]() - fns["bare"]()).abs().max())
    for name in ("attn.out", "attn.heads"):
        fns[name]()  # warm-up of the others

    wall, cpu = common.interleaved(fns, args.repeats, warmup=0)
    med = {k: common.median(v) for k, v in wall.items()}
    cpu_med = {k: common.median(v) for k, v in cpu.items()}

    def extra(times, a, b):
        """Median per-round difference a − b (the rounds ran back to back)."""
        return common.median([x - y for x, y in zip(times[a], times[b])])

    pattern_extra = {"wall_s": extra(wall, "attn.pattern", "bare"), "cpu_s": extra(cpu, "attn.pattern", "bare")}
    result = {"item": "attention", "model": args.model, "layer": LAYER, "batch": BATCH, "seq": SEQ,
              "repeats": args.repeats, "peers": peers, "peers_missing": missing,
              "seconds": wall, "cpu_seconds": cpu, "median_s": med, "cpu_s": cpu_med,
              "paired_vs_bare": {k: common.paired_ratio(v, wall["bare"]) for k, v in wall.items() if k != "bare"},
              "cpu_vs_bare": {k: v / cpu_med["bare"] for k, v in cpu_med.items()},
              "extra_over_bare": {k: {"wall_s": extra(wall, k, "bare"), "cpu_s": extra(cpu, k, "bare")}
                                  for k in fns if k not in ("bare", "eager-attn")},
              "pattern_over_attn_out": {"wall_s": extra(wall, "attn.pattern", "attn.out"),
                                        "cpu_s": extra(cpu, "attn.pattern", "attn.out")},
              "eager_attention": {"wall_s": med["eager-attn"], "cpu_s": cpu_med["eager-attn"]},
              "pattern_extra": pattern_extra,
              "goal_met": {k: pattern_extra[k] <= {"wall_s": med, "cpu_s": cpu_med}[k]["eager-attn"]
                           for k in ("wall_s", "cpu_s")},
              "max_abs_diff": diffs, "layer_eager_logits_diff": logits_diff, "tolerance": args.tolerance,
              "ok": all(d <= args.tolerance for d in diffs.values()),
              "pattern_mb": BATCH * model.n_heads * SEQ * (SEQ + offset) * 4 / 2 ** 20,
              "threads": torch.get_num_threads(), "loadavg_start": loadavg_start,
              "loadavg_end": list(os.getloadavg()), "machine": common.machine()}
    if peers:
        fastest = min(peers, key=med.get)
        result.update(fastest_peer=fastest, speedup_vs_fastest_peer=med[fastest] / med["attn.pattern"],
                      paired_speedup=common.paired_ratio(wall[fastest], wall["attn.pattern"]),
                      cpu_speedup=cpu_med[fastest] / cpu_med["attn.pattern"])
    common.emit(result)


if __name__ == "__main__":
    main()
