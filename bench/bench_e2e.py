"""Item 5: wall time of ``lamina run EXPERIMENT`` for every experiment, on the embedded model.

    python bench/bench_e2e.py [--names position,attn-kl] [--repeats 1]

Each run is ``lamina run NAME --force --out TMP/NAME`` in its own process (what a user types),
after the converted model is in the cache (``make model``). The time includes starting Python,
importing lamina, loading the model, the experiment and writing its report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--names", default=None, help="comma-separated experiments (default: all)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args()
    lamina = str(Path(sys.executable).with_name("lamina"))
    names = args.names.split(",") if args.names else subprocess.run(
        [lamina, "experiments", "--names"], capture_output=True, text=True, check=True).stdout.split()
    env = dict(os.environ, OMP_NUM_THREADS=str(common.THREADS))
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-e2e-"))
    results = {}
    try:
        subprocess.run([lamina, "prepare"], check=True, capture_output=True)  # the model is cached first
        for name in names:
            times, status = [], "ok"
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                try:
                    proc = subprocess.run([lamina, "run", name, "--force", "--out", str(tmp / name)], env=env,
                                          capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    status = f"timed out after {args.timeout} s"
                    break
                if proc.returncode != 0:
                    status = f"failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"
                    break
                times.append(time.perf_counter() - t0)
            results[name] = {"status": status, "seconds": times,
                             "median_s": common.median(times) if times else None}
            print(f"{name}: {status} {results[name]['median_s']}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.emit({"item": "e2e", "model": "smollm2-135m", "repeats": args.repeats, "runs": results})


if __name__ == "__main__":
    main()
