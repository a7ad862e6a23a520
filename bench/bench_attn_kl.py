"""Benchmark: seed 001's permutation loop vs lamina's vectorised JS null, on synthetic attention outputs.

The seed (part 6) loops over layers and permutations; each permutation indexes the layer's
attention outputs, recomputes the log norms and calls ``symmetric_KL`` (two ``torch.histogram``
calls). lamina computes log norms once and the null for all layers with shared permutations
(:func:`lamina.stats.permutation.js_permutation_null`).

The seed loop is timed on ``--seed-layers`` layers (default 2) and extrapolated to all layers;
``--seed-layers 36`` times it in full (about 4-5 minutes on a 2-core CPU).

    .venv/bin/python bench/bench_attn_kl.py [--layers 36] [--tokens 1024] [--width 1280]
        [--permutations 1000] [--seed-layers 2] [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lamina.stats.multiple import max_statistic_pvalue, permutation_pvalue
from lamina.stats.norms import layer_log_norms
from lamina.stats.permutation import js_permutation_null
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from seed_code import symmetric_KL  # noqa: E402 -- seed 001's function, kept once


def seed_loop(att_projs: dict, prediction_acc: np.ndarray, layers, n_permutes: int) -> None:
    """Seed 001 part 6 without the plotting: observed value, null by permutation, p-value per layer."""
    for layeri in layers:
        C = att_projs[f'attn_L{layeri}'][0, prediction_acc, :]  # noqa: N806
        C_norms = torch.norm(C, dim=-1).log()  # noqa: N806
        I = att_projs[f'attn_L{layeri}'][0, ~prediction_acc, :]  # noqa: N806,E741
        I_norms = torch.norm(I, dim=-1).log()  # noqa: N806
        kldiv = symmetric_KL(C_norms, I_norms).item()
        kl_perms = np.zeros(n_permutes)
        for permi in range(n_permutes):
            fake_predictions = np.random.permutation(prediction_acc)
            C = att_projs[f'attn_L{layeri}'][0, fake_predictions, :]  # noqa: N806
            C_norms = torch.norm(C, dim=-1).log()  # noqa: N806
            I = att_projs[f'attn_L{layeri}'][0, ~fake_predictions, :]  # noqa: N806,E741
            I_norms = torch.norm(I, dim=-1).log()  # noqa: N806
            kl_perms[permi] = symmetric_KL(C_norms, I_norms)
        _ = (kl_perms > kldiv).sum() / n_permutes


def lamina_null(acts: np.ndarray, correct: np.ndarray, n_permutations: int, seed: int, device=None):
    """lamina's path: log norms of all layers once (acts (layer, token, width)), then the shared null.

    Returns the seconds spent on (log norms, null and p-values).
    """
    start = time.perf_counter()
    values = layer_log_norms(acts, what="attention outputs")
    middle = time.perf_counter()
    res = js_permutation_null(values, correct, n_permutations, np.random.default_rng(seed), device=device)
    permutation_pvalue(res.observed, res.null), max_statistic_pvalue(res.observed, res.null)
    return middle - start, time.perf_counter() - middle


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=36, help="layers (GPT-2 large: 36)")
    ap.add_argument("--tokens", type=int, default=1024, help="tokens in the window (GPT-2 context: 1024)")
    ap.add_argument("--width", type=int, default=1280, help="attention output width (GPT-2 large: 1280)")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--seed-layers", type=int, default=2, help="layers to time the seed loop on (then extrapolate)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of lamina's path (best is reported)")
    ap.add_argument("--device", default=None, help="torch device for lamina's matrix product (e.g. cuda)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    correct = rng.random(args.tokens) < 0.4
    # Synthetic attention outputs whose scale drifts with depth and a little with correctness.
    scale = np.exp(rng.normal(0, 0.3, (args.layers, args.tokens)) + 0.05 * correct).astype(np.float32)
    acts = rng.standard_normal((args.layers, args.tokens, args.width), dtype=np.float32) * scale[..., None]

    runs = np.array([lamina_null(acts, correct, args.permutations, seed=1, device=args.device)
                     for _ in range(args.repeats)])
    norms_s, null_s = runs.min(axis=0)
    lamina_s = runs.sum(axis=1).min()

    k = min(args.seed_layers, args.layers)
    att_projs = {f"attn_L{i}": torch.from_numpy(acts[i][None]) for i in range(k)}
    np.random.seed(1)
    start = time.perf_counter()
    seed_loop(att_projs, correct, range(k), args.permutations)
    seed_s = time.perf_counter() - start
    seed_full = seed_s / k * args.layers

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, device {args.device or 'cpu (NumPy)'}")
    print(f"problem: {args.layers} layers x {args.permutations} permutations x {args.tokens} tokens "
          f"(width {args.width})")
    print(f"seed loop:   {seed_s:8.2f} s for {k} layer(s) -> {seed_full:8.1f} s for {args.layers} layers"
          + (" (extrapolated)" if k < args.layers else ""))
    print(f"lamina:      {lamina_s:8.3f} s for all {args.layers} layers (best of {args.repeats}: log norms "
          f"{norms_s:.3f} s, null and both p-values {null_s:.3f} s)")
    print(f"speed-up:    {seed_full / lamina_s:8.0f} x")
    # Last line: one JSON object, for scripts that collect benchmark results.
    print(json.dumps({"benchmark": "attn_kl_null", "layers": args.layers, "tokens": args.tokens,
                      "width": args.width, "permutations": args.permutations, "seed_layers_timed": k,
                      "seed_seconds_timed": round(seed_s, 3), "seed_seconds_full": round(seed_full, 1),
                      "seed_extrapolated": k < args.layers, "lamina_seconds": round(float(lamina_s), 4),
                      "lamina_log_norm_seconds": round(float(norms_s), 4),
                      "lamina_null_seconds": round(float(null_s), 4), "device": args.device or "cpu",
                      "torch_threads": torch.get_num_threads(), "speedup": round(seed_full / lamina_s)}))


if __name__ == "__main__":
    main()
