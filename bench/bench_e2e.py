"""Item 5: wall time of ``lamina run EXPERIMENT`` for every experiment, on the embedded model.

    python bench/bench_e2e.py [--names position,attn-kl] [--repeats 1]
    python bench/bench_e2e.py --names attn-autoregression,mlp-stages,categories --repeats 3 \\
        --baseline 50fe8f3          # before (that commit's src/) and after (this tree), interleaved

Each run is ``lamina run NAME --force --out TMP/NAME`` in its own process (what a user types),
after the converted model is in the cache (``make model``). The time includes starting Python,
importing lamina, loading the model, the experiment and writing its report. The run directory's
manifest gives the time of each stage; the ``record`` stage is reported beside the wall time.

``--baseline REV`` also runs every experiment with ``src/`` as it was at git revision REV (extracted
into a temporary directory and put first on PYTHONPATH), alternating with this tree's code run
by run, so that both see the same load on a shared machine: before/after from one command.
``--save FILE`` also writes the result to FILE; ``--before FILE`` puts such a saved result
(e.g. one measured on the code before a change) beside this one, name by name.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _extract(rev: str) -> Path:
    """``src/`` at git revision ``rev`` in a temporary directory (the checkout is not touched)."""
    where = Path(tempfile.mkdtemp(prefix=f"lamina-bench-{rev}-"))
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=common.ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where / "src"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_once(name: str, out: Path, env: dict, timeout: int) -> tuple[float | None, float | None, float | None, str]:
    """Wall seconds, record-stage seconds, CPU seconds and status of one ``lamina run NAME`` in its own process.

    CPU seconds (user + system, all threads) vary less than wall time when other processes share the cores.
    """
    t0, c0 = time.perf_counter(), _children_cpu()
    try:
        proc = subprocess.run([sys.executable, "-m", "lamina.cli", "run", name, "--force", "--out", str(out)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, None, f"timed out after {timeout} s"
    if proc.returncode != 0:
        return None, None, None, f"failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"
    return time.perf_counter() - t0, _stage_seconds(out).get("record"), _children_cpu() - c0, "ok"


def _summary(times, record_s, cpu_s, loads, status) -> dict:
    known = [s for s in record_s if s is not None]
    return {"status": status, "seconds": times, "median_s": common.median(times) if times else None,
            "record_s": record_s, "record_median_s": common.median(known) if known else None,
            "cpu_s": cpu_s, "cpu_median_s": common.median(cpu_s) if cpu_s else None, "loadavg": loads}


def _measure(names, variants: dict, repeats: int, timeout: int) -> dict:
    """variant -> experiment -> summary; the variants take turns run by run (before, after, before, ...)."""
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-e2e-"))
    runs = {v: {} for v in variants}
    try:
        for name in names:
            got = {v: ([], [], [], [], "ok") for v in variants}
            for _ in range(repeats):
                for variant, env in variants.items():
                    times, record_s, cpu_s, loads, status = got[variant]
                    if status != "ok":
                        continue
                    load = os.getloadavg()[0]
                    seconds, rec, cpu, status = _run_once(name, tmp / variant / name, env, timeout)
                    if seconds is not None:
                        times.append(seconds)
                        record_s.append(rec)
                        cpu_s.append(cpu)
                        loads.append([load, os.getloadavg()[0]])
                    got[variant] = (times, record_s, cpu_s, loads, status)
            for variant in variants:
                runs[variant][name] = r = _summary(*got[variant])
                print(f"{name} [{variant}]: {r['status']} {r['median_s']} (record {r['record_median_s']})",
                      file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return runs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--names", default=None, help="comma-separated experiments (default: all)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--save", default=None, help="also write the JSON result to this file")
    p.add_argument("--before", default=None, help="a result saved with --save, shown beside this one")
    p.add_argument("--baseline", default=None, help="git revision whose src/ runs too, interleaved (before/after)")
    args = p.parse_args()
    lamina = str(Path(sys.executable).with_name("lamina"))
    names = args.names.split(",") if args.names else subprocess.run(
        [lamina, "experiments", "--names"], capture_output=True, text=True, check=True).stdout.split()
    env = dict(os.environ, OMP_NUM_THREADS=str(common.THREADS))
    variants = {"after": env}
    if args.baseline:
        old_src = _extract(args.baseline)
        path = [str(old_src)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        variants = {"before": dict(env, PYTHONPATH=os.pathsep.join(path)),
                    "after": env}
    machine = common.machine()
    try:
        subprocess.run([lamina, "prepare"], check=True, capture_output=True)  # the model is cached first
        runs = _measure(names, variants, args.repeats, args.timeout)
    finally:
        if args.baseline:
            shutil.rmtree(old_src.parent, ignore_errors=True)
    results = runs["after"]
    out = {"item": "e2e", "model": "smollm2-135m", "repeats": args.repeats, "runs": results,
           "commit": machine["commit"], "dirty": machine["dirty"], "date": machine["date"]}
    if args.baseline:
        out["baseline"] = {"revision": args.baseline, "runs": runs["before"]}
    if args.before:
        out["before"] = json.loads(Path(args.before).read_text())
    if args.save:
        Path(args.save).write_text(json.dumps(out, indent=1) + "\n")
    common.emit(out)


if __name__ == "__main__":
    main()
