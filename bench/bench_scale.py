"""Item 3: memory at scale. ``hidden`` at every layer, last position only, many short sequences.

    python bench/bench_scale.py --n 10000 [--out DIR] [--shard-size S]

One recording per process, so ``ru_maxrss`` (peak resident set) belongs to it alone. Reports the
RSS after imports, after loading the model and building the stimuli, after one forward pass of a
batch (the weights are then resident: "ready"), and the peak; the model's parameter bytes and the
recorded bytes (layers x sequences x width x 4). In memory, the peak should be about ready +
recorded bytes; with ``--out`` it should not grow with the number of sequences (one shard's
buffer at a time).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import common


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="smollm2", choices=["smollm2", *common.GPT2_SHAPES])
    p.add_argument("--n", type=int, default=10_000, help="number of sequences")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", default=None, help="stream to this directory (removed afterwards); 'tmp' for a fresh one")
    p.add_argument("--shard-size", type=int, default=None)
    args = p.parse_args()
    common.setup()
    import lamina

    rss_imports = common.rss_mb()
    model = common.load_model(args.model)
    model_mb = sum(t.nelement() * t.element_size() for t in model.hf.state_dict().values()) / 2**20
    rng = np.random.default_rng(0)
    hi = min(model.vocab_size, len(model.tokenizer)) - 300
    stim = lamina.Stimuli([rng.integers(100, hi, args.seq) for _ in range(args.n)])
    rss_loaded = common.rss_mb()
    # One forward pass of a batch first: it pages in the memory-mapped weights (SmolLM2's safetensors
    # are mapped lazily), so what follows is the recording's own memory. Logits of one position only:
    # a full (32, 64, 49152) logits tensor alone would be 400 MB, more than the recording needs.
    import torch

    with torch.inference_mode():
        model.hf(input_ids=torch.as_tensor(np.stack(stim.ids[:args.batch])), use_cache=False, logits_to_keep=1)
    rss_ready = common.rss_mb()
    out = None
    if args.out:
        out = Path(tempfile.mkdtemp(prefix="lamina-bench-")) / "rec" if args.out == "tmp" else Path(args.out)
    t0 = time.perf_counter()
    rec = lamina.record(model, stim, sites=["hidden"], positions="last", batch_size=args.batch, out=out,
                        overwrite=True, shard_size=args.shard_size, progress=False)
    seconds = time.perf_counter() - t0
    recorded_mb = (model.n_layers + 1) * args.n * model.d_model * 4 / 2**20
    peak = common.peak_rss_mb()
    assert rec["hidden"].shape == (model.n_layers + 1, args.n, 1, model.d_model)
    shards = None
    if out is not None:
        shards = len(rec.manifest["shards"]) if hasattr(rec, "manifest") else None
        shutil.rmtree(out.parent if args.out == "tmp" else out, ignore_errors=True)
    common.emit({
        "item": "scale", "model": args.model, "n": args.n, "seq": args.seq, "batch": args.batch,
        "on_disk": out is not None, "shard_size": args.shard_size, "shards": shards,
        "rss_imports_mb": rss_imports, "rss_loaded_mb": rss_loaded, "rss_ready_mb": rss_ready, "peak_rss_mb": peak,
        "model_mb": model_mb, "recorded_mb": recorded_mb,
        "peak_over_ready_mb": peak - rss_ready, "seconds": seconds, "tokens_per_s": args.n * args.seq / seconds,
    })


if __name__ == "__main__":
    main()
