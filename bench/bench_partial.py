"""Item 7 (issue #14): a recording costs only what it asks for.

    python bench/bench_partial.py --mode check  --model smollm2   # the peers keep the bytes lamina keeps?
    python bench/bench_partial.py --mode time   --model smollm2   # every case and baseline, interleaved
    python bench/bench_partial.py --mode memory --model smollm2 --case hidden6-last --lib nnsight
    python bench/bench_partial.py --mode parts  --model smollm2   # where lamina's all-site cost goes
    python bench/bench_partial.py --mode versus --model smollm2   # lamina / nnsight per case, with intervals

``--mode versus`` (issue 26) times lamina against nnsight alone (the faster peer in every case), every
case, each case's two calls back to back (who goes first alternates by round): the per-round ratio lamina / nnsight with a 95%
interval (geometric mean, t interval of the log ratios over rounds). A shorter run than ``time``,
holding five copies of the model rather than nine: on the benchmark VM ``time``'s rounds of the all-site cases
spread over 2× (1.07 to 2.05 s for the same nnsight call) where these stay within 10%.

``--mode parts`` (issue 26) times the two all-site cases through lamina as it is, with no buffer
recycled (``POOL.limit = 0``: every call's buffer fresh from the system), with the check
that no stored value is NaN or inf switched off, and with its hooks doing nothing (no copy, no
check), interleaved with nnsight and the baselines: the copy's and the check's share of the gap
to nnsight. It prints a markdown table before its JSON line.

Four cases, on one batch of 8 × 128 tokens (BOS in front for SmolLM2), the same ids for everyone:

    case            lamina.record(...)                                        goal (time)
    hidden6-all     sites=["hidden"], layers=6, loss=False                    ≤ 0.30 × bare
    hidden6-last    the same, positions="last"                                ≤ 0.25 × bare
    all-sites       the six sites at every layer, loss=False                  ≤ 0.85 × bare
    all-sites-loss  the six sites at every layer, with the per-token loss     ≤ 1.10 × bare + loss

Baselines, timed in the same interleaved rounds: ``bare`` is ``hf(ids).logits``; ``bare+loss``
adds the per-token loss (``cross_entropy(..., reduction="none")`` over the positions whose next
token is known); ``body`` is ``hf.base_model(ids)``, the model without its LM head.

The peers do the same work their own way. TransformerLens (TransformerBridge): ``bridge(ids,
stop_at_layer=6)`` returns the residual entering block 6 (= lamina's hidden 6); the all-site
cases use ``run_with_cache`` (``return_type=None`` without loss: the bridge cannot skip the LM head
and still run the final norm). nnsight: ``.save()`` of block 6's input, then ``tracer.stop()``;
the all-site cases save every site and ``tracer.stop()`` after the final norm unless the loss is
asked for. Same bytes kept: a peer's last-position slice is cloned (a view would keep the whole
tensor alive); whole tensors are kept as returned (with BOS: 1/129 more bytes than lamina's).
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np
import torch

import common
from bench_peers import boot_transformerlens, make_nnsight, make_transformerlens

SIX = ["hidden", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.out"]
LAYER = 6
CASES = {
    "hidden6-all": dict(sites=["hidden"], layers=LAYER, loss=False),
    "hidden6-last": dict(sites=["hidden"], layers=LAYER, positions="last", loss=False),
    "all-sites": dict(sites=SIX, loss=False),
    "all-sites-loss": dict(sites=SIX),
}
GOALS = {"hidden6-all": ("bare", 0.30), "hidden6-last": ("bare", 0.25), "all-sites": ("bare", 0.85),
         "all-sites-loss": ("bare+loss", 1.10)}
LIBS = ["lamina", "transformerlens", "nnsight"]
BASELINES = ["bare", "bare+loss", "body"]


# ---------------------------------------------------------------- contenders


def baseline(name: str, model):
    offset = int(model.prepend_bos)

    def run(inputs):
        with torch.inference_mode():
            for x in inputs:
                if name == "body":
                    model.hf.base_model(input_ids=x, use_cache=False)
                    continue
                logits = model.hf(input_ids=x, use_cache=False).logits
                if name == "bare+loss":
                    torch.nn.functional.cross_entropy(logits[:, offset:-1].reshape(-1, logits.shape[-1]),
                                                      x[:, offset + 1:].reshape(-1), reduction="none")
    return run


def lamina_case(case: str, model, inputs):
    import lamina

    offset = int(model.prepend_bos)
    stim = common.stimuli_of([x[:, offset:].cpu().numpy() for x in inputs])
    return lambda _inputs: lamina.record(model, stim, batch_size=len(inputs[0]), progress=False, **CASES[case])


def transformerlens_case(case: str, model, hf):
    if case.startswith("all-sites"):
        return make_transformerlens(model, hf, loss=case.endswith("loss"))
    bridge = boot_transformerlens(model, hf)
    last = case.endswith("last")

    def run(inputs):
        with torch.inference_mode():
            out = []
            for x in inputs:
                h = bridge(x, stop_at_layer=LAYER)  # (batch, tokens, d_model): the residual entering block 6
                out.append(h[:, -1].clone() if last else h)
            return out
    return run


def nnsight_case(case: str, model, hf):
    if case.startswith("all-sites"):
        return make_nnsight(model, hf, loss=case.endswith("loss"))
    from nnsight import NNsight

    nn_model = NNsight(hf)
    block = nn_model
    for part in f"{model.adapter.layers}.{LAYER}".split("."):
        block = block[int(part)] if part.isdigit() else getattr(block, part)
    last = case.endswith("last")

    def run(inputs):
        out = []
        for x in inputs:
            with torch.inference_mode(), nn_model.trace(input_ids=x, use_cache=False) as tracer:
                h = block.input[:, -1].clone().save() if last else block.input.save()
                tracer.stop()
            out.append(h)
        return out
    return run


def make(lib: str, case: str, model, inputs, own_copy: bool):
    if lib in BASELINES:
        return baseline(lib, model)
    if lib == "lamina":
        return lamina_case(case, model, inputs)
    hf = common.hf_copy(model) if own_copy else model.hf
    return {"transformerlens": transformerlens_case, "nnsight": nnsight_case}[lib](case, model, hf)


def kept_tensors(out) -> list[torch.Tensor]:
    """The tensors a contender keeps, whatever its result type."""
    if hasattr(out, "sites"):  # a lamina Recording
        return [torch.from_numpy(out[s]) for s in out.sites]
    tensors = []
    for item in out or []:
        if isinstance(item, tuple):  # (acts, loss) from bench_peers' contenders
            tensors += list(item[0].values())
        else:
            tensors.append(item)
    return tensors


def kept_mb(out) -> float:
    return sum(t.nelement() * t.element_size() for t in kept_tensors(out)) / 2**20


# ---------------------------------------------------------------- modes


def check(model) -> dict:
    """Max |difference| / max(1, max |value|) between each peer's hidden 6 and lamina's."""
    offset = int(model.prepend_bos)
    inputs = common.model_inputs(model, common.token_batches(model, 1, 2, 32, seed=1))
    worst = {}
    for case in ("hidden6-all", "hidden6-last"):
        ref = make("lamina", case, model, inputs, True)(inputs).layer("hidden", LAYER)  # (seq, slot, width)
        for lib in ("transformerlens", "nnsight"):
            got = make(lib, case, model, inputs, True)(inputs)[0].float().numpy()
            got = got[:, offset:] if got.ndim == 3 else got[:, None]
            scale = max(1.0, float(np.abs(ref).max()))
            worst[f"{lib}:{case}"] = float(np.abs(got - ref).max()) / scale
            gc.collect()
    return worst


def parts(model, inputs, repeats: int) -> dict:
    """Item 7's all-site cases through lamina with its per-hook work taken apart (see the docstring)."""
    from lamina.recording import capture

    check, call = capture.Capture._check, capture.Capture.__call__

    def without(name, replacement, fn):
        def run(inputs_):
            setattr(capture.Capture, name, replacement)
            try:
                return fn(inputs_)
            finally:
                capture.Capture._check, capture.Capture.__call__ = check, call
        return run

    from lamina.recording.pool import POOL

    def fresh(fn):  # every buffer from the system, none recycled (lamina before recording/pool.py)
        def run(inputs_):
            limit, POOL.limit = POOL.limit, 0
            try:
                return fn(inputs_)
            finally:
                POOL.limit = limit
        return run

    fns = {lib: make(lib, None, model, inputs, own_copy=False) for lib in ("bare", "bare+loss")}
    for case in ("all-sites", "all-sites-loss"):
        lam = make("lamina", case, model, inputs, own_copy=False)
        fns[f"lamina:{case}"] = lam
        fns[f"no recycling:{case}"] = fresh(lam)
        fns[f"no check:{case}"] = without("_check", lambda *a, **k: None, lam)
        fns[f"hooks only:{case}"] = without("__call__", lambda *a, **k: None, lam)
        fns[f"nnsight:{case}"] = make("nnsight", case, model, inputs, own_copy=True)
    for fn in fns.values():  # the warm-up round
        fn(inputs)
    wall, cpu = common.interleaved({name: (lambda f=f: f(inputs)) for name, f in fns.items()}, repeats, warmup=0)
    med = {name: common.median(v) for name, v in wall.items()}
    base = {name: "bare+loss" if name.endswith("loss") else "bare" for name in med}
    out = {"repeats": repeats, "seconds": wall, "cpu_seconds": cpu, "median_s": med,
           "ratio": {n: med[n] / med[base[n]] for n in med},
           "paired": {n: common.paired_ratio(wall[n], wall[base[n]]) for n in med},
           "cpu_ratio": {n: common.median(cpu[n]) / common.median(cpu[base[n]]) for n in med}}
    rows = ["| contender | all sites, no loss (/ bare) | all sites with loss (/ bare + loss) |", "|---|---|---|"]
    for who in ("lamina", "no recycling", "no check", "hooks only", "nnsight"):
        cells = [f"{out['ratio'][f'{who}:{c}']:.3f} (paired {out['paired'][f'{who}:{c}']:.3f}, CPU "
                 f"{out['cpu_ratio'][f'{who}:{c}']:.3f})" for c in ("all-sites", "all-sites-loss")]
        rows.append(f"| {who} | {cells[0]} | {cells[1]} |")
    print("\n".join(rows))
    return out


def versus(model, inputs, repeats: int) -> dict:
    """Every case through lamina and nnsight, interleaved; lamina / nnsight per round with a 95% interval."""
    import lamina
    from lamina.stats.replicates import t_interval

    # Everyone on a deep copy of the weights: nnsight a copy per case, as in ``time`` (its wrappers hook the
    # modules), lamina one copy too. The loaded model's weights lie in the safetensors file's memory map, at
    # offsets no kernel aligns for; lamina on them against nnsight on a copy measured up to 4% of the weights'
    # memory, not of the libraries, in the early-stopped cases.
    own = lamina.wrap(common.hf_copy(model), model.tokenizer, name=model.name)
    assert own.prepend_bos == model.prepend_bos
    fns = {}
    for case in CASES:
        fns[f"lamina:{case}"] = make("lamina", case, own, inputs, own_copy=False)
        fns[f"nnsight:{case}"] = make("nnsight", case, model, inputs, own_copy=True)
    for fn in fns.values():  # the warm-up round
        fn(inputs)
    # Each case's pair back to back, who goes first alternating by round: the first call after a large
    # free (the all-site cases drop 632 MB) meets fresh pages, and that must fall on both alike.
    wall, cpu = {name: [] for name in fns}, {name: [] for name in fns}
    for r in range(repeats):
        for c, case in enumerate(CASES):
            pair = [f"lamina:{case}", f"nnsight:{case}"]
            for name in pair if (r + c) % 2 == 0 else pair[::-1]:
                t0, c0 = time.perf_counter(), time.process_time()
                fns[name](inputs)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    out = {"repeats": repeats, "seconds": wall, "cpu_seconds": cpu, "versus": {}}
    rows = ["| case | lamina (median s) | nnsight (median s) | lamina / nnsight time, per round (95% interval) | "
            "verdict |", "|---|---|---|---|---|"]
    for case in CASES:
        logs = np.log(np.array(wall[f"lamina:{case}"]) / np.array(wall[f"nnsight:{case}"]))
        ratio, low, high = (float(np.exp(x[0])) for x in t_interval(logs[:, None]))
        verdict = "faster" if high < 1 else "slower" if low > 1 else "tie (interval holds 1)"
        out["versus"][case] = {"ratio": ratio, "low": low, "high": high, "verdict": verdict,
                               "lamina_s": common.median(wall[f"lamina:{case}"]),
                               "nnsight_s": common.median(wall[f"nnsight:{case}"])}
        rows.append(f"| {case} | {out['versus'][case]['lamina_s']:.3f} | {out['versus'][case]['nnsight_s']:.3f} | "
                    f"{ratio:.3f} [{low:.3f}, {high:.3f}] | {verdict} |")
    print("\n".join(rows))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["check", "time", "memory", "parts", "versus"], required=True)
    p.add_argument("--model", default="smollm2", choices=["smollm2", *common.GPT2_SHAPES])
    p.add_argument("--case", default=None, choices=list(CASES), help="memory mode: the case")
    p.add_argument("--lib", default=None, choices=[*BASELINES, *LIBS], help="memory mode: the contender")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    common.setup()
    model = common.load_model(args.model)
    inputs = common.model_inputs(model, common.token_batches(model, 1, args.batch, args.seq))
    info = {"item": "partial", "mode": args.mode, "model": args.model, "shape": [args.batch, args.seq],
            "tokens": args.batch * args.seq, "loadavg_start": list(os.getloadavg())}

    if args.mode == "check":
        worst = check(model)
        info.update(shape=[2, 32], tokens=64, worst=worst, tolerance=args.tolerance,
                    ok=all(w <= args.tolerance for w in worst.values()))
    elif args.mode == "parts":
        info.update(parts(model, inputs, args.repeats))
    elif args.mode == "versus":
        info.update(versus(model, inputs, args.repeats))
    elif args.mode == "memory":
        # One contender, one case, in this fresh process: peak RSS over set-up and one pass whose
        # result is kept (run.py subtracts the bare forward pass's).
        fn = make(args.lib, args.case, model, inputs, own_copy=False)
        out = fn(inputs)
        info.update(case=args.case, lib=args.lib, peak_rss_mb=common.peak_rss_mb(), kept_mb=kept_mb(out))
    else:
        fns = {lib: make(lib, None, model, inputs, own_copy=False) for lib in BASELINES}
        fns.update({f"{lib}:{case}": make(lib, case, model, inputs, own_copy=True) for case in CASES for lib in LIBS})
        kept = {name: kept_mb(fn(inputs)) for name, fn in fns.items() if ":" in name}
        # The passes above were the warm-up.
        wall, cpu = common.interleaved({name: (lambda f=f: f(inputs)) for name, f in fns.items()}, args.repeats,
                                       warmup=0, shuffle=0)
        med = {name: common.median(v) for name, v in wall.items()}
        info.update(repeats=args.repeats, seconds=wall, cpu_seconds=cpu, median_s=med, kept_mb=kept,
                    ratio={name: med[name] / med["bare"] for name in med},
                    paired={name: common.paired_ratio(wall[name], wall["bare"]) for name in med},
                    cpu_ratio={name: common.median(cpu[name]) / common.median(cpu["bare"]) for name in med})
    info["loadavg_end"] = list(os.getloadavg())
    common.emit(info)


if __name__ == "__main__":
    main()
