"""Issue 10 figures: Ray throughput (local vs 1 and 2 workers) and streaming-statistic peak memory.

    .venv/bin/python bench/bench_distributed.py ray       # SmolLM2, 96 x 128 tokens, hidden at the last position
    .venv/bin/python bench/bench_distributed.py stream --gib 4 --limit-gib 2
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_ray(n_seq: int, length: int) -> dict:
    import lamina

    model = lamina.load("smollm2-135m")
    rng = np.random.default_rng(0)
    stimuli = lamina.Stimuli([rng.integers(100, 40000, length) for _ in range(n_seq)])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in [("local", {}), ("ray-1", {"backend": "ray", "workers": 1}),
                             ("ray-2", {"backend": "ray", "workers": 2})]:
            start = time.perf_counter()
            lamina.record(model, stimuli, sites=["hidden"], positions="last", out=Path(tmp) / name,
                          shard_size=n_seq // 8, batch_size=12, progress=False, **kwargs)
            seconds = time.perf_counter() - start
            out[name] = {"seconds": round(seconds, 2), "tokens_per_s": round(n_seq * length / seconds)}
    return out


def write_synthetic(path: Path, gib: float, width: int = 1536, layers: int = 4, tokens_per_seq: int = 64):
    """A recording directory of random activations, written shard by shard through lamina's store."""
    from lamina.recording import store

    per_seq = layers * tokens_per_seq * width * 4
    shard_size = max(1, (256 << 20) // per_seq)
    n_seq = int(gib * (1 << 30) // per_seq)
    n_shards = -(-n_seq // shard_size)
    rng = np.random.default_rng(0)
    path.mkdir(parents=True)
    shards = []
    for k in range(n_shards):
        start, stop = k * shard_size, min(n_seq, (k + 1) * shard_size)
        acts = rng.standard_normal((layers, stop - start, tokens_per_seq, width), dtype=np.float32)
        rows = (stop - start) * tokens_per_seq
        cols = {"sequence": np.repeat(np.arange(start, stop), tokens_per_seq),
                "position": np.tile(np.arange(tokens_per_seq), stop - start), "slot": np.tile(np.arange(tokens_per_seq), stop - start),
                "token_id": np.zeros(rows, np.int64), "next_id": np.full(rows, -1), "loss": np.full(rows, np.nan, np.float32),
                "correct": np.zeros(rows, bool), "predicted_id": np.zeros(rows, np.int64)}
        entry = store.write_shard(path, k, {"mlp.pre": acts}, cols, {0: "x"})
        entry.update(start=start, stop=stop)
        shards.append(entry)
    store.write_json(path / "meta.json", {"n_rows": n_seq, "table": {"columns": [], "data": [[]] * n_seq}})
    store.write_json(path / "manifest.json", {
        "format": store.FORMAT, "version": store.VERSION, "fingerprint": "synthetic", "complete": True,
        "n_shards": n_shards, "shard_size": shard_size, "n_slots": [tokens_per_seq] * n_seq,
        "sites": {"mlp.pre": {"layers": list(range(layers)), "width": width}}, "info": {}, "shards": shards})
    return n_seq * tokens_per_seq


def stream_child(path: str, limit_gib: float) -> dict:
    if limit_gib:
        limit = int(limit_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from lamina import Recording
    from lamina.stats.streaming import summarize_layer

    rec = Recording.load(path)
    start = time.perf_counter()
    summary = summarize_layer(rec, "mlp.pre", 2, labels=np.arange(rec.n_sequences) % 3)
    return {"rows": summary["n"], "pr": summary["participation_ratio"], "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["ray", "stream", "stream-child"])
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--limit-gib", type=float, default=2.0)
    parser.add_argument("--path", default=None)
    parser.add_argument("--n-seq", type=int, default=96)
    args = parser.parse_args()
    if args.what == "ray":
        result = bench_ray(args.n_seq, 128)
    elif args.what == "stream-child":
        result = stream_child(args.path, args.limit_gib)
    else:
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            path = Path(tmp) / "rec"
            rows = write_synthetic(path, args.gib)
            size = sum(p.stat().st_size for p in path.iterdir()) / (1 << 30)
            child = subprocess.run([sys.executable, __file__, "stream-child", "--path", str(path),
                                    "--limit-gib", str(args.limit_gib)], capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(child.stderr[-3000:])
            result = {"recording_gib": round(size, 2), "address_space_limit_gib": args.limit_gib, "rows": rows,
                      **json.loads(child.stdout.strip().splitlines()[-1])}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
