"""Item 5: wall time of ``lamina run EXPERIMENT`` for every experiment, on the embedded model.

    python bench/bench_e2e.py [--names position,attn-kl] [--repeats 1]
    python bench/bench_e2e.py --names attn-autoregression,mlp-stages,categories --repeats 3 \\
        --before bench/results/e2e-before.json          # "after" beside a saved "before"

Each run is ``lamina run NAME --force --out TMP/NAME`` in its own process (what a user types),
after the converted model is in the cache (``make model``). The time includes starting Python,
importing lamina, loading the model, the experiment and writing its report. The run directory's
manifest gives the time of each stage; the ``record`` stage is reported beside the wall time.

``--save FILE`` also writes the result to FILE (e.g. a "before" measurement of the current code);
``--before FILE`` puts such a saved result beside this one, name by name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def _stage_seconds(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("timings", {})
    except (OSError, ValueError):
        return {}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--names", default=None, help="comma-separated experiments (default: all)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--save", default=None, help="also write the JSON result to this file")
    p.add_argument("--before", default=None, help="a result saved with --save, shown beside this one")
    args = p.parse_args()
    lamina = str(Path(sys.executable).with_name("lamina"))
    names = args.names.split(",") if args.names else subprocess.run(
        [lamina, "experiments", "--names"], capture_output=True, text=True, check=True).stdout.split()
    env = dict(os.environ, OMP_NUM_THREADS=str(common.THREADS))
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-e2e-"))
    results = {}
    machine = common.machine()
    try:
        subprocess.run([lamina, "prepare"], check=True, capture_output=True)  # the model is cached first
        for name in names:
            times, record_s, loads, status = [], [], [], "ok"
            for _ in range(args.repeats):
                load = os.getloadavg()[0]
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
                record_s.append(_stage_seconds(tmp / name).get("record"))
                loads.append([load, os.getloadavg()[0]])
            known = [s for s in record_s if s is not None]
            results[name] = {"status": status, "seconds": times, "median_s": common.median(times) if times else None,
                             "record_s": record_s, "record_median_s": common.median(known) if known else None,
                             "loadavg": loads}
            print(f"{name}: {status} {results[name]['median_s']} (record {results[name]['record_median_s']})",
                  file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"item": "e2e", "model": "smollm2-135m", "repeats": args.repeats, "runs": results,
           "commit": machine["commit"], "dirty": machine["dirty"], "date": machine["date"]}
    if args.before:
        out["before"] = json.loads(Path(args.before).read_text())
    if args.save:
        Path(args.save).write_text(json.dumps(out, indent=1) + "\n")
    common.emit(out)


if __name__ == "__main__":
    main()
