"""A vectorised permutation null for the Jensen–Shannon divergence between two groups, every layer at once.

Seed 001 loops over layers and permutations and rebuilds both histograms each time
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
import torch
from scipy.special import xlogy

from ..errors import LaminaError
from .divergence import bin_edges, bin_index, check_groups


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
    """Shape ``(n_permutations, n_tokens)`` bool: each row an independent shuffle of ``labels``."""
    if n_permutations < 1:
        raise LaminaError(f"n_permutations must be at least 1, not {n_permutations}.")
    labels = np.asarray(labels, dtype=bool)
    return rng.permuted(np.tile(labels, (n_permutations, 1)), axis=1)


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
    if device is not None:
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
