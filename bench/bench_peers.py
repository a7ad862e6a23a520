"""Item 2: the same sites recorded into CPU tensors with lamina, TransformerLens and nnsight.

    python bench/bench_peers.py --mode check  --model gpt2-small   # same tensors from every library?
    python bench/bench_peers.py --mode time   --model gpt2-small   # tokens/s, all libraries interleaved
    python bench/bench_peers.py --mode memory --model gpt2-small --lib nnsight   # one library, own process

Runs in the benchmark environment (.venv-bench: lamina + transformer-lens 4.x + nnsight 0.8.x).
Every library records the same sites at every layer and every position, on the same HF model
(same weights; each peer gets its own deep copy when they share a process, because
TransformerLens switches the model's attention to "eager"), from the same token ids, and the
per-token loss:

    site      TransformerLens (TransformerBridge)      nnsight (module paths from lamina's adapter)
    hidden    blocks.{l}.hook_resid_pre, ln_final.hook_out   input of block l, output of the final norm
    attn.out  blocks.{l}.hook_attn_out                 output of the attention output projection
    mlp.in    blocks.{l}.ln2.hook_out                  input of the MLP
    mlp.pre   blocks.{l}.mlp.hook_pre                  output of c_fc / gate_proj
    mlp.post  blocks.{l}.mlp.hook_post                 input of c_proj / down_proj
    mlp.out   blocks.{l}.hook_mlp_out                  output of the MLP
    loss      log-softmax of the returned logits       log-softmax of the saved logits

lamina writes them into its (layer, sequence, position, width) buffers; the peers return their
tensors (TransformerLens: its ActivationCache; nnsight: the saved proxies), moved to the CPU (a
no-op on the CPU). ``--mode check`` compares every site, layer and position with lamina's.
"""

from __future__ import annotations

import argparse
import gc

import numpy as np
import torch

import common

LIBS = ["bare", "lamina", "transformerlens", "nnsight"]
PEERS = ["transformerlens", "nnsight"]


# ---------------------------------------------------------------- the contenders


def tl_names(n: int) -> list[tuple[str, int, str]]:
    out = [("hidden", l, f"blocks.{l}.hook_resid_pre") for l in range(n)] + [("hidden", n, "ln_final.hook_out")]
    for l in range(n):
        out += [("attn.out", l, f"blocks.{l}.hook_attn_out"), ("mlp.in", l, f"blocks.{l}.ln2.hook_out"),
                ("mlp.pre", l, f"blocks.{l}.mlp.hook_pre"), ("mlp.post", l, f"blocks.{l}.mlp.hook_post"),
                ("mlp.out", l, f"blocks.{l}.hook_mlp_out")]
    return out


def boot_transformerlens(model, hf):
    """A TransformerBridge around ``hf`` (the same weights lamina records)."""
    import copy
    import logging

    from transformer_lens.model_bridge import TransformerBridge

    logging.getLogger("transformer_lens").setLevel(logging.ERROR)
    tok = copy.deepcopy(model.tokenizer)
    # The bridge re-loads a tokenizer by name unless this one already adds BOS; ids are passed
    # directly, so the tokenizer is never used to encode anything here.
    tok.init_kwargs.update(name_or_path=getattr(tok, "name_or_path", None) or "local", add_bos_token=True)
    arch = {"gpt2": "gpt2", "llama": "HuggingFaceTB/SmolLM2-135M-Instruct"}[model.adapter.family]
    return TransformerBridge.boot_transformers(arch, hf_model=hf, tokenizer=tok, device=str(model.device))


def make_transformerlens(model, hf, loss: bool = True):
    """Every site at every layer; with ``loss`` also the per-token loss. Without it the bridge's
    ``return_type=None``: TransformerLens has no way to skip the LM head and keep the final norm."""
    bridge = boot_transformerlens(model, hf)
    names = tl_names(model.n_layers)
    wanted = [name for _, _, name in names]
    offset = int(model.prepend_bos)

    def run(inputs):
        out = []
        for x in inputs:
            logits, cache = bridge.run_with_cache(x, names_filter=wanted, return_type="logits" if loss else None)
            acts = {(site, l): cache[name].cpu() for site, l, name in names}
            out.append((acts, common.loss_of(logits, x, offset) if loss else None))
            del cache, logits
        return out

    return run


def make_nnsight(model, hf, loss: bool = True):
    """Every site at every layer; with ``loss`` also the per-token loss, else ``tracer.stop()``
    right after the final norm (no LM head)."""
    from nnsight import NNsight

    a = model.adapter  # module paths come from lamina's adapter: the same modules lamina hooks
    n = model.n_layers
    nn_model = NNsight(hf)
    offset = int(model.prepend_bos)

    def envoy(root, path):
        for part in path.split("."):
            root = root[int(part)] if part.isdigit() else getattr(root, part)
        return root

    def read(env, which):
        return env.input if which == "input" else env.output

    def run(inputs):
        out = []
        for x in inputs:
            saved, logits = {}, None
            with torch.inference_mode(), nn_model.trace(input_ids=x, use_cache=False) as tracer:
                blocks = envoy(nn_model, a.layers)
                for l in range(n):
                    blk = blocks[l]
                    # nnsight needs the reads in the order the model computes them.
                    saved[("hidden", l)] = blk.input.cpu().save()
                    saved[("attn.out", l)] = read(envoy(blk, a.attn_out.module), a.attn_out.which).cpu().save()
                    saved[("mlp.in", l)] = envoy(blk, a.mlp).input.cpu().save()
                    saved[("mlp.pre", l)] = read(envoy(blk, a.mlp_pre.module), a.mlp_pre.which).cpu().save()
                    saved[("mlp.post", l)] = read(envoy(blk, a.mlp_post.module), a.mlp_post.which).cpu().save()
                    saved[("mlp.out", l)] = envoy(blk, a.mlp).output.cpu().save()
                saved[("hidden", n)] = envoy(nn_model, a.final_norm).output.cpu().save()
                if loss:
                    logits = nn_model.output.logits.save()
                else:
                    tracer.stop()
            out.append((dict(saved), common.loss_of(logits, x, offset) if loss else None))
            del saved
        return out

    return run


def make(lib: str, model, inputs, own_copy: bool):
    import lamina

    if lib == "bare":
        def run(_inputs):
            with torch.inference_mode():
                for x in _inputs:
                    model.hf(input_ids=x, use_cache=False).logits
        return run
    if lib == "lamina":
        stim = common.stimuli_of([x[:, int(model.prepend_bos):].cpu().numpy() for x in inputs])
        batch = len(inputs[0])
        return lambda _inputs: lamina.record(model, stim, sites=common.SITES, batch_size=batch, progress=False)
    hf = common.hf_copy(model) if own_copy else model.hf
    return {"transformerlens": make_transformerlens, "nnsight": make_nnsight}[lib](model, hf)


# ---------------------------------------------------------------- modes


def check(model, inputs) -> dict:
    """Max |difference| from lamina's recording, per library and site, over every layer and position."""
    offset = int(model.prepend_bos)
    ref = make("lamina", model, inputs, True)(inputs)
    result = {}
    for lib in PEERS:
        out = make(lib, model, inputs, True)(inputs)
        diffs = {}
        for b, (acts, loss) in enumerate(out):
            rows = slice(b * len(inputs[0]), (b + 1) * len(inputs[0]))
            for (site, l), t in acts.items():
                got = t.float().numpy()[:, offset:]
                want = ref.layer(site, l)[rows]
                scale = max(1.0, float(np.abs(want).max()))
                d = float(np.abs(got - want).max()) / scale
                diffs[site] = max(diffs.get(site, 0.0), d)
            want_loss = ref.tokens["loss"].to_numpy().reshape(-1, inputs[0].shape[1] - offset)[rows, :-1]
            diffs["loss"] = max(diffs.get("loss", 0.0), float(np.abs(loss.numpy() - want_loss).max()))
        result[lib] = diffs
        del out
        gc.collect()
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["check", "time", "memory"], required=True)
    p.add_argument("--model", default="gpt2-small", choices=["smollm2", *common.GPT2_SHAPES])
    p.add_argument("--lib", default="all", choices=["all", "none", *LIBS])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batches", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    common.setup()
    model = common.load_model(args.model, args.device)
    batches = common.token_batches(model, args.batches, args.batch, args.seq)
    inputs = common.model_inputs(model, batches)
    tokens = args.batches * args.batch * args.seq
    info = {"item": "peers", "mode": args.mode, "model": args.model, "device": args.device,
            "shape": [args.batch, args.seq], "batches": args.batches, "tokens": tokens}

    if args.mode == "check":
        small = common.model_inputs(model, common.token_batches(model, 2, 2, 32, seed=1))
        diffs = check(model, small)
        worst = {lib: max(d.values()) for lib, d in diffs.items()}
        info.update(shape=[2, 32], batches=2, tokens=128, max_rel_diff=diffs, worst=worst, tolerance=args.tolerance,
                    ok=all(w <= args.tolerance for w in worst.values()))
        common.emit(info)
        return

    if args.mode == "memory":
        # One library in this fresh process: its peak RSS over set-up and one pass whose result is
        # kept (run.py subtracts the bare forward pass's). --lib none: model + batches only.
        before = common.peak_rss_mb()
        result_mb = 0.0
        if args.lib != "none":
            fn = make(args.lib, model, inputs, own_copy=False)
            out = fn(inputs)
            result_mb = _result_mb(out)
        info.update(lib=args.lib, peak_rss_mb=common.peak_rss_mb(), rss_before_mb=before, result_mb=result_mb)
        common.emit(info)
        return

    libs = LIBS if args.lib == "all" else [args.lib]
    fns = {lib: make(lib, model, inputs, own_copy=True) for lib in libs}
    wall, cpu = common.interleaved({lib: (lambda f=f: f(inputs)) for lib, f in fns.items()}, args.repeats,
                                   device=args.device)
    med = {lib: common.median(v) for lib, v in wall.items()}
    info.update(repeats=args.repeats, seconds=wall, cpu_seconds=cpu, median_s=med,
                tokens_per_s={lib: tokens / s for lib, s in med.items()})
    if "lamina" in med:
        peers = [lib for lib in PEERS if lib in med]
        if peers:
            fastest = min(peers, key=med.get)
            info.update(fastest_peer=fastest, speedup_vs_fastest_peer=med[fastest] / med["lamina"],
                        paired_speedup=common.paired_ratio(wall[fastest], wall["lamina"]))
        if "bare" in med:
            info["ratio_to_bare"] = {lib: med[lib] / med["bare"] for lib in med}
    common.emit(info)


def _result_mb(out) -> float:
    if hasattr(out, "sites"):  # a lamina Recording
        return sum(out[s].nbytes for s in out.sites) / 2**20
    if isinstance(out, list) and out and isinstance(out[0], tuple):
        return sum(t.nelement() * t.element_size() for acts, _ in out for t in acts.values()) / 2**20
    return 0.0


if __name__ == "__main__":
    main()
