"""Item 4b: the categories label-permutation test, a per-layer per-permutation loop vs lamina's.

    python bench/bench_categories.py [--items 34 --layers 31 --permutations 1000]

Seed 004 has no permutation test (it reports a t statistic per layer); the reference here is
the loop one would write in the seed's style: for each layer and each shuffle of the labels,
build the within/across masks of the upper triangle and take the two means (NumPy, the same
shuffles as lamina's). lamina's :func:`lamina.stats.permutation.selectivity_permutation_test` shares each
shuffle across layers and gets every within-sum from matrix products with one-hot label matrices.
Default size: the seed's 34 words in 3 categories, SmolLM2's 31 hidden entries, 1000 shuffles.
With ``--loop-layers K`` the loop is timed on K layers and scaled to all of them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import common


def loop_null(S: np.ndarray, codes: np.ndarray, shuffled: np.ndarray, layers) -> np.ndarray:
    """Within-minus-across mean similarity, per permutation and layer, one mask at a time."""
    upper = np.triu(np.ones(S.shape[1:], dtype=bool), 1)
    null = np.zeros((len(shuffled), len(layers)))
    for j, layer in enumerate(layers):
        for i, perm in enumerate(shuffled):
            same = perm[:, None] == perm[None, :]
            within, across = S[layer][same & upper], S[layer][~same & upper]
            null[i, j] = within.mean() - across.mean()
    return null


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=34)
    p.add_argument("--categories", type=int, default=3)
    p.add_argument("--layers", type=int, default=31)
    p.add_argument("--width", type=int, default=576)
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--loop-layers", type=int, default=None, help="time the loop on this many layers, then scale")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    common.setup()
    from lamina.stats.permutation import selectivity_permutation_test
    from lamina.stats.selectivity import label_codes

    rng = np.random.default_rng(0)
    labels = np.arange(args.items) % args.categories
    x = rng.standard_normal((args.layers, args.items, args.width)) + 0.3 * labels[None, :, None]
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    S = x @ x.transpose(0, 2, 1)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = selectivity_permutation_test(S, labels, args.permutations, np.random.default_rng(1))
        times.append(time.perf_counter() - t0)
    # The same shuffles lamina drew (same generator, same call).
    codes = label_codes(labels)
    shuffled = np.random.default_rng(1).permuted(np.tile(codes, (args.permutations, 1)), axis=1)
    k = min(args.loop_layers or args.layers, args.layers)
    t0 = time.perf_counter()
    null = loop_null(S, codes, shuffled, range(k))
    loop_s = time.perf_counter() - t0
    loop_full = loop_s / k * args.layers
    lamina_s = common.median(times)
    common.emit({
        "item": "categories", "items": args.items, "categories": args.categories, "layers": args.layers,
        "permutations": args.permutations, "loop_layers_timed": k, "loop_seconds_timed": loop_s,
        "loop_seconds_full": loop_full, "loop_extrapolated": k < args.layers, "lamina_seconds": lamina_s,
        "lamina_seconds_all": times, "speedup": loop_full / lamina_s,
        "max_abs_diff_null": float(np.abs(null - res["null"][:, :k]).max()),
    })


if __name__ == "__main__":
    main()
