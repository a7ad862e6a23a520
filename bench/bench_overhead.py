"""Item 1: lamina.record of every seed site vs the bare Hugging Face forward pass, same batches.

    python bench/bench_overhead.py --model smollm2 [--batch 8 --seq 128 --batches 1 --repeats 7]

Both contenders run under ``torch.inference_mode`` on the same ``(batch, seq)`` token ids (BOS
prepended for both when the model's policy says so). ``bare`` is ``hf(input_ids, use_cache=False)``
with no hook; ``lamina`` is ``lamina.record(model, stimuli, sites=SITES)`` with every position, so
it includes hooks, copies into a fresh buffer, the float32 loss at every token and the token table.
"""

from __future__ import annotations

import argparse

import torch

import common


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="smollm2", choices=["smollm2", *common.GPT2_SHAPES])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batches", type=int, default=1, help="batches per timed call")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    common.setup()
    import lamina

    model = common.load_model(args.model, args.device)
    batches = common.token_batches(model, args.batches, args.batch, args.seq)
    stim = common.stimuli_of(batches)
    inputs = common.model_inputs(model, batches)

    def bare():
        with torch.inference_mode():
            for x in inputs:
                model.hf(input_ids=x, use_cache=False).logits

    def record():
        return lamina.record(model, stim, sites=common.SITES, batch_size=args.batch, progress=False)

    rec = record()
    recorded_mb = sum(rec[s].nbytes for s in rec.sites) / 2**20
    del rec
    times, cpu = common.interleaved({"bare": bare, "lamina": record}, args.repeats, device=args.device)
    tokens = args.batches * args.batch * args.seq
    common.emit({
        "item": "overhead", "model": args.model, "device": args.device, "shape": [args.batch, args.seq],
        "batches": args.batches, "tokens": tokens, "repeats": args.repeats, "sites": common.SITES,
        "recorded_mb": recorded_mb,
        "seconds": times, "median_s": {k: common.median(v) for k, v in times.items()},
        "tokens_per_s": {k: tokens / common.median(v) for k, v in times.items()},
        "ratio": common.median(times["lamina"]) / common.median(times["bare"]),
        "paired_ratio": common.paired_ratio(times["lamina"], times["bare"]),
        "cpu_seconds": cpu, "cpu_ratio": common.median(cpu["lamina"]) / common.median(cpu["bare"]),
        "threads": common.THREADS, "loadavg_end": list(common.os.getloadavg()),
    })


if __name__ == "__main__":
    main()
