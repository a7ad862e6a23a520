"""Calibration of categories' claims: part A's label permutation with its max-statistic over layers,
and part B's test across replicates (interleaved subsets of each word's contexts)."""

from __future__ import annotations

import numpy as np

from lamina.stats import cosine_matrix
from lamina.stats.permutation import mean_difference
from lamina.stats.replicates import across_replicates
from lamina.stats.permutation import selectivity_permutation_test

from .cells import Cell

LABELS = np.repeat([0, 1, 2], 11)  # seed 004: 34 words in 3 categories, 33 here for balance


def part_a_claims(n, rng, *, n_layers=6, shift=0.0, clusters=True):
    """Words with no category structure (a shared direction, and clusters of words unrelated to the
    categories when ``clusters``), their states correlated across layers; ``shift``: a planted category
    direction of that size. Counts simulations with any layer significant family-wise."""
    hits = 0
    for _ in range(n):
        groups = rng.integers(0, 4, len(LABELS))
        base = 3.0 + rng.normal(size=(1, 1, 16)) + (1.5 * rng.normal(size=(1, 4, 16))[:, groups] if clusters else 0)
        words = rng.normal(size=(1, len(LABELS), 16))
        layers = base + words + 0.5 * rng.normal(size=(n_layers, len(LABELS), 16))
        layers = layers + shift * rng.normal(size=(1, 3, 16))[:, LABELS]
        S = np.stack([cosine_matrix(x) for x in layers])
        hits += bool((selectivity_permutation_test(S, LABELS, 99, rng)["p_maxstat"] <= 0.05).any())
    return hits


def _bursty(rng, bursts, n_words=3, per_word=30, length=60000, spread=300):
    positions, labels = [], []
    for word in range(n_words):
        if bursts:
            centres = rng.uniform(0, length, 5)
            pos = (centres[:, None] + rng.uniform(-spread, spread, (5, per_word // 5))).ravel()
        else:
            pos = rng.uniform(0, length, per_word)
        positions.append(np.sort(pos))
        labels.append(np.full(pos.size, word))
    return np.concatenate(positions), np.concatenate(labels)


def part_b_claims(n, rng, *, bursts=False, drift=True, shift=0.0, n_rep=6):
    """One word's contexts vs others' across ``n_rep`` interleaved replicates (categories' design). The
    states drift with the text position (a Gaussian process, scale 1000 tokens) when ``drift``; the
    occurrences come in bursts (5 scenes) when ``bursts``; ``shift``: a planted word direction."""
    hits = 0
    for _ in range(n):  # a new book each time: where the words occur is part of the null
        positions, labels = _bursty(rng, bursts)
        rank = np.concatenate([np.arange((labels == w).sum()) for w in range(3)])
        parts = rank % n_rep
        distance = np.abs(positions[:, None] - positions[None, :])
        chol = np.linalg.cholesky(np.exp(-distance / 1000) + 1e-9 * np.eye(len(positions))) if drift else None
        x = rng.normal(size=(len(positions), 16)) + 2.0
        if drift:
            x = x + chol @ rng.normal(size=(len(positions), 16))
        x = x + shift * rng.normal(size=(3, 16))[labels]
        S = cosine_matrix(x)
        delta = [mean_difference(S[np.ix_(parts == k, parts == k)][None], labels[parts == k])[0, 0]
                 for k in range(n_rep)]
        test = across_replicates(np.array(delta)[:, None], alternative="greater", correction="max", rng=rng)
        hits += bool(test.p_corrected[0] <= 0.05)
    return hits


PART_A = "part A: within-category > across-category similarity at some layer"
PART_B = "part B: one word's contexts closer than other words' (across replicates)"
CELLS = [
    Cell(PART_A, "stats.permutation.selectivity_permutation_test (max-statistic over layers)",
         "a shared direction and word clusters unrelated to the categories, 6 layers", "level",
         lambda n, rng: part_a_claims(n, rng), n=1000, fast_n=150),
    Cell(PART_A, "stats.permutation.selectivity_permutation_test (max-statistic over layers)",
         "words independent (no clusters), 6 layers", "level",
         lambda n, rng: part_a_claims(n, rng, clusters=False), n=1000, fast_n=150),
    Cell(PART_A, "stats.permutation.selectivity_permutation_test (max-statistic over layers)",
         "planted category direction 0.6 (word SD 1)", "power",
         lambda n, rng: part_a_claims(n, rng, shift=0.6), n=500, fast_n=60, min_rate=0.5),
    Cell(PART_B, "stats.replicates.across_replicates (one-sided t, replicates as the unit)",
         "states drifting with text position, occurrences spread over the book", "level",
         lambda n, rng: part_b_claims(n, rng), n=1000, fast_n=150),
    Cell(PART_B, "stats.replicates.across_replicates (one-sided t, replicates as the unit)",
         "drift and bursty occurrences (5 scenes per word): KNOWN EXCESS, the replicates share scenes "
         "(stated in the report's notes)", "level",
         lambda n, rng: part_b_claims(n, rng, bursts=True), n=500, fast_n=100, max_rate=0.4),
    Cell(PART_B, "stats.replicates.across_replicates (one-sided t, replicates as the unit)",
         "planted word direction 0.5, with drift", "power",
         lambda n, rng: part_b_claims(n, rng, shift=0.5), n=500, fast_n=60, min_rate=0.5),
]
