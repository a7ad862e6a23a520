"""Item 8 (issue 26): a lesion sweep that reuses the clean prefix, against the same ablations as loops.

    python bench/bench_lesion.py --mode time                       # every contender, interleaved, + Δ loss check
    python bench/bench_lesion.py --mode memory --lib nnsight       # one contender in this process: peak RSS
    python bench/bench_lesion.py --mode trace --model gemma3-270m  # causal tracing: seconds per prompt

The workload is the lesion experiment's default on SmolLM2: 8 disjoint windows × 128 tokens of Alice
(BOS in front: 8 × 129 ids), the per-token loss at every position, and the mean ablation of
``attn.out`` and of ``mlp.out``, one layer at a time, at every layer (``--every K``: every K-th
layer). Each contender returns Δ loss per (site, layer, window), edited − clean, and the check
compares them with lamina's (max |difference| ≤ 1e-5 nats). The means are over the stimulus
tokens (BOS excluded) and every ablation sets them at the stimulus positions only, as lamina's
``edits.mean`` does.

    lamina           lesion.ablation_sweep: per batch one clean pass that records the ablated sites
                     (the means' reference) and keeps the block outputs, then every ablation
                     replaying the blocks before its layer (lamina.recording.prefix.sweep)
    naive            the same edits as full passes, the loop lesion ran before:
                     lamina.record(model, stim, sites=["loss"], edits=[edits.mean(site, layer, ...)])
    transformerlens  TransformerBridge: run_with_cache (means, clean logits), then run_with_hooks with
                     one hook on blocks.{l}.hook_attn_out / hook_mlp_out per ablation
    nnsight          NNsight(hf).trace: means and clean logits saved in one trace, then one trace per
                     ablation assigning the mean to the module's output (the modules lamina's adapter names)

``--mode trace`` times ``trace``'s compute (the experiment's own code, hidden restored at every entry
and position) on the first 2 prompts of the set with 1 noise sample, and reports seconds per prompt.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import common

SITES = ("attn.out", "mlp.out")
LIBS = ["lamina", "naive", "transformerlens", "nnsight"]
PEERS = ["transformerlens", "nnsight"]
WINDOW, WINDOWS = 128, 8


def lesion_stimuli(model):
    import lamina

    stim = lamina.stimuli.windows(lamina.data.book("alice"), model, WINDOW, WINDOWS,
                                  max_length=model.context_length - int(model.prepend_bos))
    assert (np.asarray(stim.next_ids) >= 0).all() and (stim.lengths == WINDOW).all()
    return stim


def _deltas(clean: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """Per window: mean over its tokens of edited − clean loss (both ``(windows, tokens)``)."""
    return (edited.astype(np.float64) - clean.astype(np.float64)).mean(axis=1)


# ---------------------------------------------------------------- contenders


def make_lamina(model, stim, layers):
    from lamina.experiments.lesion import compute as lesion

    def run():
        clean, ablated = lesion.ablation_sweep(model, stim, "mean", SITES, 0, WINDOWS, layers=layers)
        base = clean["loss"].reshape(WINDOWS, WINDOW)
        return np.array([[_deltas(base, cols["loss"].reshape(WINDOWS, WINDOW)) for cols in per_layer]
                         for per_layer in ablated])
    return run


def make_naive(model, stim, layers):
    import lamina
    from lamina import edits

    def losses(rec):
        return rec.tokens.sort_values(["sequence", "position"])["loss"].to_numpy().reshape(WINDOWS, WINDOW)

    def run():
        ref = lamina.record(model, stim, sites=list(SITES), layers=layers, batch_size=WINDOWS, progress=False)
        base = losses(ref)
        return np.array([[_deltas(base, losses(lamina.record(
            model, stim, sites=["loss"], batch_size=WINDOWS, progress=False,
            edits=[edits.mean(site, layer, reference=ref)]))) for layer in layers] for site in SITES])
    return run


def _ids_and_targets(model, stim):
    """What lamina feeds (BOS + window) and each position's next token (the window's last: the book's next)."""
    ids = np.stack([np.asarray(s) for s in stim.ids])
    offset = int(model.prepend_bos)
    x = torch.as_tensor(ids)
    if offset:
        x = torch.cat([torch.full((len(ids), 1), model.bos_id, dtype=x.dtype), x], dim=1)
    targets = torch.as_tensor(np.concatenate([ids[:, 1:], np.asarray(stim.next_ids)[:, None]], axis=1))
    return x.to(model.device), targets.to(model.device), offset


def _token_loss(logits, targets, offset: int) -> np.ndarray:
    """What a peer user computes: −log_softmax(logits)[next token] at every stimulus position."""
    logp = torch.log_softmax(logits[:, offset:].float(), dim=-1)
    return -logp.gather(-1, targets[..., None])[..., 0].double().cpu().numpy()


def make_transformerlens(model, stim, layers, hf):
    from bench_peers import boot_transformerlens

    bridge = boot_transformerlens(model, hf)
    x, targets, offset = _ids_and_targets(model, stim)
    names = {(site, layer): f"blocks.{layer}.hook_{site.split('.')[0]}_out" for site in SITES for layer in layers}

    def run():
        with torch.inference_mode():
            logits, cache = bridge.run_with_cache(x, names_filter=list(names.values()))
            base = _token_loss(logits, targets, offset)
            means = {key: cache[name][:, offset:].double().mean((0, 1)) for key, name in names.items()}
            del cache, logits
            out = np.zeros((len(SITES), len(layers), WINDOWS))
            for (site, layer), name in names.items():
                def ablate(act, hook, mean=means[(site, layer)]):
                    act[:, offset:] = mean.to(act.dtype)
                    return act
                logits = bridge.run_with_hooks(x, fwd_hooks=[(name, ablate)])
                out[SITES.index(site), layers.index(layer)] = _deltas(base, _token_loss(logits, targets, offset))
                del logits
        return out
    return run


def make_nnsight(model, stim, layers, hf):
    from nnsight import NNsight

    a = model.adapter  # module paths from lamina's adapter: the modules lamina edits
    assert a.attn_out.which == "output" and a.attn_out.plus is None and a.attn_out.scale is None
    nn_model = NNsight(hf)
    x, targets, offset = _ids_and_targets(model, stim)

    def envoy(root, path):
        for part in path.split("."):
            root = root[int(part)] if part.isdigit() else getattr(root, part)
        return root

    def module(site, layer):
        block = envoy(nn_model, a.layers)[layer]
        return envoy(block, a.attn_out.module if site == "attn.out" else a.mlp)

    def run():
        means = {}
        with torch.inference_mode(), nn_model.trace(input_ids=x, use_cache=False):
            for layer in layers:  # nnsight reads modules in the order the model runs them
                for site in SITES:
                    means[(site, layer)] = module(site, layer).output[:, offset:].double().mean((0, 1)).save()
            logits = nn_model.output.logits.save()
        base = _token_loss(logits, targets, offset)
        del logits
        out = np.zeros((len(SITES), len(layers), WINDOWS))
        for (site, layer), mean in means.items():
            with torch.inference_mode(), nn_model.trace(input_ids=x, use_cache=False):
                out_ = module(site, layer).output
                out_[:, offset:] = mean.to(torch.float32)
                logits = nn_model.output.logits.save()
            out[SITES.index(site), layers.index(layer)] = _deltas(base, _token_loss(logits, targets, offset))
            del logits
        return out
    return run


def make(lib: str, model, stim, layers, own_copy: bool):
    if lib == "lamina":
        return make_lamina(model, stim, layers)
    if lib == "naive":
        return make_naive(model, stim, layers)
    hf = common.hf_copy(model) if own_copy else model.hf  # TransformerLens switches attention to eager
    return {"transformerlens": make_transformerlens, "nnsight": make_nnsight}[lib](model, stim, layers, hf)


def block_passes(n_layers: int, layers: list[int]) -> dict:
    """Blocks computed per sweep: the loops run every block in each of their 1 + 2·|layers| passes; lamina
    runs one clean pass (which also records the means) and n_layers − l blocks per ablation at layer l."""
    loop = n_layers * (1 + len(SITES) * len(layers))
    mine = n_layers + len(SITES) * sum(n_layers - layer for layer in layers)
    return {"loop": loop, "lamina": mine, "ratio": mine / loop, "lm_head_passes": 1 + len(SITES) * len(layers)}


# ---------------------------------------------------------------- modes


def trace_cost(name: str) -> dict:
    import lamina
    from lamina.experiments import get
    from lamina.experiments.base import Context

    model = lamina.load(name)
    experiment = get("trace")
    config = experiment.config({"n_prompts": 2, "samples": 1})
    ctx = Context(0, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    result = experiment.compute(model, config, ctx)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"model": name, "n_prompts": result.n_prompts, "samples": 1, "sites": config.sites,
            "forwards": result.forwards, "seconds": seconds, "cpu_seconds": cpu,
            "seconds_per_prompt": seconds / max(result.n_prompts, 1), "stages": ctx.timings}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["time", "memory", "trace"], required=True)
    p.add_argument("--lib", default="lamina", choices=["none", *LIBS], help="memory mode: the contender")
    p.add_argument("--model", default="smollm2-135m", choices=["smollm2-135m", "gemma3-270m"],
                   help="trace mode: the embedded model")
    p.add_argument("--every", type=int, default=1, help="ablate every K-th layer (1: all)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tolerance", type=float, default=1e-5)
    args = p.parse_args()
    common.setup()
    info = {"item": "lesion", "mode": args.mode, "loadavg_start": list(os.getloadavg())}
    if args.mode == "trace":
        info.update(trace_cost(args.model), loadavg_end=list(os.getloadavg()))
        common.emit(info)
        return
    model = common.load_model("smollm2")
    stim = lesion_stimuli(model)
    layers = list(range(0, model.n_layers, args.every))
    info.update(model="smollm2", shape=[WINDOWS, WINDOW], layers=layers, sites=list(SITES),
                passes=block_passes(model.n_layers, layers))

    if args.mode == "memory":
        # One contender in this fresh process: peak RSS over set-up and one whole sweep.
        before = common.peak_rss_mb()
        if args.lib != "none":
            make(args.lib, model, stim, layers, own_copy=False)()
        info.update(lib=args.lib, peak_rss_mb=common.peak_rss_mb(), rss_before_mb=before)
        common.emit(info)
        return

    fns = {lib: make(lib, model, stim, layers, own_copy=True) for lib in LIBS}
    results = {lib: fn() for lib, fn in fns.items()}  # the warm-up round, also the check
    diffs = {lib: float(np.abs(results[lib] - results["lamina"]).max()) for lib in LIBS if lib != "lamina"}
    wall, cpu = common.interleaved({lib: fn for lib, fn in fns.items()}, args.repeats, warmup=0)
    med = {lib: common.median(v) for lib, v in wall.items()}
    fastest = min(PEERS, key=med.get)
    info.update(repeats=args.repeats, seconds=wall, cpu_seconds=cpu, median_s=med,
                max_abs_diff=diffs, tolerance=args.tolerance, ok=all(d <= args.tolerance for d in diffs.values()),
                max_abs_delta=float(np.abs(results["lamina"]).max()), fastest_peer=fastest,
                ratio_to_fastest_peer=med["lamina"] / med[fastest],
                paired_ratio=common.paired_ratio(wall["lamina"], wall[fastest]),
                ratio_to_naive=med["lamina"] / med["naive"],
                cpu_ratio_to_fastest_peer=common.median(cpu["lamina"]) / common.median(cpu[fastest]),
                loadavg_end=list(os.getloadavg()))
    common.emit(info)


if __name__ == "__main__":
    main()
