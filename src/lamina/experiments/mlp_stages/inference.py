"""Statistics of ``mlp-stages`` on recorded activations: pooled with bootstrap intervals, per replicate,
and across replicates.

Activations are ``acts[set][stage]`` of shape ``(n_layers, n, width)``: set ``one`` holds the
replicates' long-sequence items one window after another, set ``many`` the short sequences' items
in text order, replicate r owning items ``r * n_rep .. (r + 1) * n_rep - 1`` of both.

Resampling (pooled statistics): the one-sequence items are consecutive tokens, so they are
resampled in circular blocks within each window (:mod:`lamina.stats.blocks`), with a block length per
layer from the Politis–White rule on the items' leading principal components; the many-sequence
items are separate short sequences and are resampled one by one. The two sets get independent
resamples, so one − many has a valid interval; its bootstrap p-values are corrected across all
layers × pairs by Benjamini–Hochberg.
"""

from __future__ import annotations

import numpy as np

from ..._progress import progress_bar
from ...stats.blocks import block_length, circular_block_counts
from ...stats.bootstrap import bootstrap_pvalue, percentile_ci, resample_counts, rsa_bootstrap
from ...stats.dimensionality import centred_gram, dimensionality, participation_ratio_bootstrap
from ...stats.multiple import benjamini_hochberg, significant
from ...stats.similarity import cosine_matrix, rsa_pairs
from ..across import across_tests, intervals
from .result import ALPHA, CI_LEVEL, PAIR_NAMES, PAIRS, SETS, SITES, STAGES, LayerAcross


def geometry(X: dict, threshold: float, what: str, grams=None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """One layer and set: PR ``(4,)``, effective dimensionality ``(4,)``, cosine matrices ``(4, n, n)``,
    RSA per pair ``(6,)``. ``X``: stage -> ``(n, width)``; ``grams``: stage -> its centred Gram, if
    computed already."""
    grams = grams or {}
    mats = np.stack([cosine_matrix(X[s]) for s in STAGES])
    dims = [dimensionality(X[s], threshold, what=f"{SITES[s]} {what}", gram=grams.get(s)) for s in STAGES]
    return (np.array([d[0] for d in dims]), np.array([d[1] for d in dims], dtype=np.int64), mats,
            rsa_pairs(mats, PAIRS))


def pooled(acts, config, ctx, windows=None) -> dict:
    """Every item of each set: PR, effective dimensionality and RSA with bootstrap intervals.

    Args:
        acts: set -> stage -> ``(n_layers, n, width)``.
        windows: ``(n,)`` which long sequence each one-sequence item comes from (None: one).

    Returns:
        ``pr``, ``effdim`` (set -> ``(n_layers, 4)``), ``rsa`` (set -> ``(n_layers, 6)``), ``ci`` (set ->
        ``(2, n_layers, 6)``), ``diff_ci`` ``(2, n_layers, 6)``, ``pr_ci`` (set -> ``(2, n_layers, 4)``),
        ``diff_p``, ``diff_p_bh`` ``(n_layers, 6)``, ``block`` ``(n_layers,)``.
    """
    n_layers, n = acts["one"]["in"].shape[:2]
    pr = {s: np.zeros((n_layers, 4)) for s in SETS}
    effdim = {s: np.zeros((n_layers, 4), dtype=np.int64) for s in SETS}
    rsa = {s: np.zeros((n_layers, 6)) for s in SETS}
    boot = {s: np.zeros((config.n_boot, n_layers, 6)) for s in SETS}
    pr_boot = {s: np.zeros((config.n_boot, n_layers, 4)) for s in SETS}
    block = np.ones(n_layers, dtype=np.int64)
    # The many-sequence items are independent short sequences: one set of item resamples for all layers.
    many_counts = resample_counts(ctx.rng, n, config.n_boot)
    for layer in progress_bar(range(n_layers), desc="mlp-stages stats", unit="layer", progress=ctx.progress):
        for which in SETS:
            X = {s: acts[which][s][layer] for s in STAGES}
            # The centred Gram matrix serves the spectrum, the PR resamples and the block length.
            grams = {s: centred_gram(X[s]) for s in STAGES} if n <= min(X[s].shape[1] for s in STAGES) else {}
            pr[which][layer], effdim[which][layer], mats, rsa[which][layer] = geometry(
                X, config.threshold, f"at layer {layer} ({which}-sequence set)", grams)
            if which == "one":
                block[layer] = block_length([X[s] for s in STAGES], grams=[grams.get(s) for s in STAGES])
                counts = circular_block_counts(ctx.rng, n, config.n_boot, int(block[layer]), groups=windows)
            else:
                counts = many_counts
            boot[which][:, layer] = rsa_bootstrap(mats, PAIRS, counts)
            pr_boot[which][:, layer] = np.stack([participation_ratio_bootstrap(X[s], counts, gram=grams.get(s))
                                                 for s in STAGES], axis=1)
    diff = boot["one"] - boot["many"]
    diff_p = bootstrap_pvalue(diff)
    return {"pr": pr, "effdim": effdim, "rsa": rsa, "block": block,
            "ci": {s: percentile_ci(boot[s], CI_LEVEL) for s in SETS},
            "pr_ci": {s: percentile_ci(pr_boot[s], CI_LEVEL) for s in SETS},
            "diff_ci": percentile_ci(diff, CI_LEVEL), "diff_p": diff_p,
            # One family: every layer × pair (30 × 6 = 180 decisions on SmolLM2).
            "diff_p_bh": benjamini_hochberg(diff_p.ravel()).reshape(diff_p.shape)}


def per_replicate(acts, n_replicates: int, threshold: float) -> dict[str, np.ndarray]:
    """Each replicate's statistics: ``pr_one`` ... ``(R, n_layers, 4)``, ``rsa_one`` ... ``(R, n_layers, 6)``."""
    n_layers, n = acts["one"]["in"].shape[:2]
    size = n // n_replicates
    out = {f"{m}_{w}": np.zeros((n_replicates, n_layers, 6 if m == "rsa" else 4), dtype=int if m == "effdim" else float)
           for m in ("pr", "effdim", "rsa") for w in SETS}
    for r in range(n_replicates):
        items = slice(r * size, (r + 1) * size)
        for layer in range(n_layers):
            for which in SETS:
                X = {s: acts[which][s][layer, items] for s in STAGES}
                pr, effdim, _, rsa = geometry(X, threshold, f"at layer {layer} ({which}-sequence set, replicate {r})")
                out[f"pr_{which}"][r, layer], out[f"effdim_{which}"][r, layer] = pr, effdim
                out[f"rsa_{which}"][r, layer] = rsa
    return out


def across(per: dict[str, np.ndarray]) -> tuple[LayerAcross, ...]:
    """Per layer: one − many across replicates (t tests, BH over every layer × pair or stage) and set means."""
    tests = {name: across_tests(per[f"{name}_one"] - per[f"{name}_many"], alpha=ALPHA, correction="bh",
                                level=CI_LEVEL) for name in ("rsa", "pr", "effdim")}
    bands = {key: intervals(values, CI_LEVEL) for key, values in per.items()}
    n_layers = per["rsa_one"].shape[1]

    def keyed(entries, layer, names):
        return dict(zip(names, entries[layer]))

    return tuple(LayerAcross(
        rsa_diff=keyed(tests["rsa"], layer, PAIR_NAMES), pr_diff=keyed(tests["pr"], layer, STAGES),
        effdim_diff=keyed(tests["effdim"], layer, STAGES),
        **{key: keyed(bands[key], layer, PAIR_NAMES if key.startswith("rsa") else STAGES) for key in bands})
        for layer in range(n_layers))


def decisions(p_bh) -> np.ndarray:
    """The one rule on the corrected p-values."""
    return significant(p_bh, ALPHA)
