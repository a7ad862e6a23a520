"""Label-permutation tests, every layer at once, one set of shuffles shared by all layers.

* :func:`js_permutation_null`: the Jensen–Shannon divergence between two groups' histograms
  (attn-kl, seed 001);
* :func:`selectivity_permutation_test`: within- minus across-label mean similarity (categories,
  seed 004), one-sided, corrected across layers.

Sharing the shuffles across layers is what the max-statistic correction needs.

JS null. Seed 001 loops over layers and permutations and rebuilds both histograms each time
(about 36 × 1000 ``torch.histogram`` pairs). Three facts make that a few matrix products:

* The edges span the union of both groups (min to max of all tokens), which a label shuffle
  never changes, so each layer's edges, and each token's bin, are fixed: binned once.
* The same label permutations serve every layer (which the max-statistic correction needs).
* The counts of the True group for all permutations and layers are one product
  ``labels (n_sets, n_tokens) @ one_hot (n_tokens, n_layers·n_bins)``; the False group's are
  the totals minus those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from ..errors import LaminaError
from .divergence import bin_edges, bin_index, check_groups
from .multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue
from .selectivity import check_pairs, label_codes, pair_masks, stack_matrices

# Permutations that give the same partition as the data tie with it up to summation order.
_TIE = 1e-12


@dataclass
class JSNull:
    """The observed JS divergence per layer and its permutation null.

    Attributes:
        observed: shape ``(n_layers,)``, nats.
        null: shape ``(n_permutations, n_layers)``, nats; row k used permutation k at every layer.
        edges: shape ``(n_layers, n_bins + 1)``, each layer's histogram edges.
    """

    observed: np.ndarray
    null: np.ndarray
    edges: np.ndarray


def permuted_labels(labels, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Shape ``(n_permutations, n)``, ``labels``' dtype: each row an independent shuffle of ``labels`` (n,)."""
    if n_permutations < 1:
        raise LaminaError(f"n_permutations must be at least 1, not {n_permutations}.")
    return rng.permuted(np.tile(np.asarray(labels), (n_permutations, 1)), axis=1)


def binned(values, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer edges ``(n_layers, n_bins + 1)`` and bin of each token ``(n_layers, n_tokens)``.

    Args:
        values: shape ``(n_layers, n_tokens)``, e.g. log norms.
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.stack([bin_edges(row, n_bins, f"values of layer {layer}") for layer, row in enumerate(values)])
    return edges, np.stack([bin_index(row, e) for row, e in zip(values, edges)])


def js_by_labels(bins, label_sets, n_bins: int, *, device=None, chunk: int = 1000) -> np.ndarray:
    """JS divergence between the True and False groups for many label sets, at every layer.

    Args:
        bins: shape ``(n_layers, n_tokens)`` int, each token's bin at each layer.
        label_sets: shape ``(n_sets, n_tokens)`` bool; every row must have the same group sizes
            (permutations of one labelling), each at least 1.
        n_bins: bins per layer.
        device: None counts with NumPy on the CPU; a torch device (``"cuda"``) does the matrix
            product there. Counts are exact either way, so the results are the same.
        chunk: label sets per matrix product (bounds memory at chunk × n_layers × n_bins).

    Returns:
        Shape ``(n_sets, n_layers)``, nats.
    """
    bins = np.asarray(bins)
    label_sets = np.asarray(label_sets, dtype=bool)
    n_layers, n_tokens = bins.shape
    n_true = label_sets.sum(axis=1)
    if (n_true != n_true[0]).any():
        raise LaminaError("every label set must have the same group sizes (permutations of one labelling).")
    n_true, n_false = int(n_true[0]), n_tokens - int(n_true[0])
    if min(n_true, n_false) < 1:
        raise LaminaError(f"each group needs at least one token (True: {n_true}, False: {n_false}).")
    # Columns: layer-major, bin-minor. Counts are exact in float32 up to 2**24 tokens.
    one_hot = np.zeros((n_tokens, n_layers * n_bins), dtype=np.float32)
    one_hot[np.arange(n_tokens)[None, :], bins + (np.arange(n_layers) * n_bins)[:, None]] = 1.0
    totals = one_hot.sum(0, dtype=np.float64).reshape(n_layers, n_bins)
    if device is not None:  # the GPU path only: torch is not imported for NumPy counts (nor for a report)
        import torch

        one_hot_dev = torch.as_tensor(one_hot, device=device)
    out = []
    for start in range(0, len(label_sets), chunk):
        labels = label_sets[start:start + chunk].astype(np.float32)
        if device is None:  # NumPy's BLAS: no thread-pool start-up, fastest on a shared CPU
            counts = labels @ one_hot
        else:
            counts = (torch.as_tensor(labels, device=device) @ one_hot_dev).cpu().numpy()
        out.append(_js_from_counts(counts.reshape(-1, n_layers, n_bins), totals, n_true, n_false))
    return np.concatenate(out)


def _js_from_counts(counts, totals, n_true: int, n_false: int) -> np.ndarray:
    """JS divergence (shape ``(n_sets, n_layers)``) from True-group counts ``(n_sets, n_layers, n_bins)``.

    JS = H(M) − ½H(P) − ½H(Q) (entropies in nats). For counts c out of n, H = ln n − Σ c·ln c / n,
    and c·ln c comes from a table over the integers 0..n_tokens: one log per bin (for M) instead of four.
    """
    counts = np.rint(counts).astype(np.int64)
    rest = np.rint(totals).astype(np.int64) - counts
    c_log_c = xlogy(np.arange(n_true + n_false + 1), np.arange(n_true + n_false + 1))  # 0·ln 0 = 0
    h_p = np.log(n_true) - c_log_c[counts].sum(-1) / n_true
    h_q = np.log(n_false) - c_log_c[rest].sum(-1) / n_false
    m = (counts / n_true + rest / n_false) / 2
    h_m = -xlogy(m, m).sum(-1)
    return np.clip(h_m - (h_p + h_q) / 2, 0.0, np.log(2))  # clip: rounding only


def js_permutation_null(values, labels, n_permutations: int, rng: np.random.Generator, *, n_bins: int = 30,
                        device=None, names=("correct", "incorrect")) -> JSNull:
    """Observed JS divergence per layer and its null under shuffled labels, permutations shared by layers.

    Args:
        values: shape ``(n_layers, n_tokens)`` (log norms).
        labels: shape ``(n_tokens,)`` bool (True = first group of ``names``).
        n_permutations: label shuffles drawn from ``rng``.
        n_bins: histogram bins per layer, between that layer's min and max over all tokens.
        device: None (NumPy, CPU) or a torch device for the matrix product.

    Returns:
        :class:`JSNull`. Use :func:`lamina.stats.multiple.permutation_pvalue` and
        :func:`~lamina.stats.multiple.max_statistic_pvalue` on ``observed`` and ``null``.
    """
    labels = check_groups(labels, names)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(labels):
        raise LaminaError(f"values must have shape (n_layers, {len(labels)}), not {values.shape}.")
    edges, bins = binned(values, n_bins)
    # The observed labelling goes through the same code as the permutations, so ties compare exactly.
    sets = np.vstack([labels[None], permuted_labels(labels, n_permutations, rng)])
    js = js_by_labels(bins, sets, n_bins, device=device)
    return JSNull(observed=js[0], null=js[1:], edges=edges)


# ---- within vs across similarity (categories, seed 004) --------------------------------------------
def mean_difference(S, codes) -> np.ndarray:
    """Within-minus-across mean similarity for many labellings at once, shape ``(n_labellings, n_layers)``.

    Only the masks change between labellings, so the sums come from matrix products with one-hot
    label matrices ``M`` (n × k): the within sum is ``(Σ_c M_cᵀ S M_c − trace S) / 2`` and the
    across sum is the upper-triangle total minus it.

    Args:
        S: ``(n_layers, n, n)`` symmetric similarity matrices (or one ``(n, n)``).
        codes: ``(n_labellings, n)`` int labels ``0..k-1``, or one labelling ``(n,)``.
    """
    S = stack_matrices(S)
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    k = int(codes.max()) + 1
    onehot = np.zeros(codes.shape + (k,))  # (P, n, k)
    np.put_along_axis(onehot, codes[..., None], 1.0, axis=-1)
    trace = np.trace(S, axis1=1, axis2=2)  # (L,)
    total = (S.sum(axis=(1, 2)) - trace) / 2
    sizes = onehot.sum(axis=1)  # (P, k)
    n_within = (sizes * (sizes - 1) / 2).sum(axis=1)  # (P,)
    n_pairs = codes.shape[1] * (codes.shape[1] - 1) / 2
    # (L, 1, n, n) @ (1, P, n, k) -> (L, P, n, k); summed against M gives Σ_c M_cᵀ S M_c.
    quad = np.einsum("lpic,pic->pl", np.matmul(S[:, None], onehot[None]), onehot)
    within_sum = (quad - trace[None]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return within_sum / n_within[:, None] - (total[None] - within_sum) / (n_pairs - n_within)[:, None]


def selectivity_permutation_test(S, labels, n_permutations: int, rng: np.random.Generator, *,
                                 chunk: int = 100) -> dict[str, np.ndarray]:
    """One-sided label-permutation test of within > across, per layer, corrected across layers.

    The statistic is the within-minus-across mean similarity. Each permutation shuffles the
    labels across items (category sizes kept) and is shared by all layers, so the maximum across
    layers gives a family-wise correction.

    Args:
        S: ``(n_layers, n, n)`` similarity matrices; labels: ``(n,)``.
        n_permutations: number of shuffles (>= 1).
        rng: the run's generator (all randomness comes from it).
        chunk: permutations per matrix product (bounds memory at n_layers·chunk·n·k floats).

    Returns:
        ``observed`` ``(n_layers,)``; ``null`` ``(n_permutations, n_layers)``;
        ``p`` raw one-sided p = (1 + #{null ≥ observed}) / (1 + n_permutations);
        ``p_maxstat``: family-wise corrected by the maximum across layers of the statistic
        standardised by each layer's null mean and sd (layers differ in spread);
        ``p_bh``: Benjamini–Hochberg adjusted ``p``.
    """
    S = stack_matrices(S)
    codes = label_codes(labels)
    if len(codes) != S.shape[1]:
        raise LaminaError(f"{len(codes)} labels for {S.shape[1]} items; give one label per item.")
    check_pairs(*pair_masks(codes))
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise LaminaError(f"n_permutations must be a positive integer, not {n_permutations!r}.")
    observed = mean_difference(S, codes)[0]
    shuffled = permuted_labels(codes, n_permutations, rng)
    null = np.concatenate([mean_difference(S, shuffled[i:i + chunk]) for i in range(0, n_permutations, chunk)])
    p = permutation_pvalue(observed - _TIE, null)
    centre, spread = null.mean(axis=0), null.std(axis=0)
    flat = spread <= _TIE  # a layer whose null has no spread cannot be standardised; it never wins the max
    spread = np.where(flat, 1.0, spread)
    # The tie margin is applied before standardising: the map is monotone per layer, so a null value
    # counts for p_maxstat whenever it counts for p, and p_maxstat >= p always.
    z_obs = np.where(flat, -np.inf, (observed - _TIE - centre) / spread)
    z_null = np.where(flat[None], -np.inf, (null - centre) / spread)
    p_maxstat = max_statistic_pvalue(z_obs, z_null)
    return {"observed": observed, "null": null, "p": p, "p_maxstat": p_maxstat, "p_bh": benjamini_hochberg(p)}
