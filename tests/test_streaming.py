"""Streaming per-layer summaries over shards equal the in-memory computations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lamina
from lamina import Stimuli
from lamina.stats import cosine_matrix, dimensionality, selectivity
from lamina.stats.norms import log_norms
from lamina.stats.streaming import LabelSums, Moments, summarize_layer


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_moments_merge_equals_batch(seed, sizes):
    rng = np.random.default_rng(seed)
    X = rng.normal(3, 2, size=(sum(sizes), 4)) * rng.uniform(0.1, 10, 4)
    m = Moments(4)
    for part in np.split(X, np.cumsum(sizes)[:-1]):
        m.update(part)
    np.testing.assert_allclose(m.mean, X.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m.covariance, np.cov(X.T, bias=True), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4))
def test_label_sums_equal_pairwise_means(seed, n_labels):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(n_labels), rng.integers(0, n_labels, 8)])
    X = rng.normal(size=(len(labels), 5))
    sums = LabelSums(5, n_labels)
    sums.update(X[:5], labels[:5])
    sums.update(X[5:], labels[5:])
    ref = selectivity(cosine_matrix(X), labels)
    within, across = sums.within_across()
    assert within == pytest.approx(float(ref["within_mean"][0]), abs=1e-12)
    assert across == pytest.approx(float(ref["across_mean"][0]), abs=1e-12)


def test_summaries_over_disk_shards_equal_in_memory(tiny_gpt2, tmp_path):
    rng = np.random.default_rng(0)
    stimuli = Stimuli([rng.integers(0, 5000, rng.integers(4, 12)) for _ in range(11)])
    labels = np.arange(11) % 3
    disk = lamina.record(tiny_gpt2, stimuli, sites=["mlp.pre", "hidden"], out=tmp_path / "r", shard_size=3,
                         progress=False)
    assert len(disk._shards) == 4
    for site, layer in [("mlp.pre", 1), ("hidden", 3)]:
        summary = summarize_layer(disk, site, layer, labels=labels)
        flat = disk.flat(site, layer)  # the in-memory reference
        np.testing.assert_allclose(summary["log_norms"], log_norms(flat), rtol=1e-12)
        np.testing.assert_allclose(summary["mean"], flat.astype(np.float64).mean(0), rtol=1e-9, atol=1e-12)
        pr, effdim = dimensionality(flat)
        assert summary["participation_ratio"] == pytest.approx(pr, rel=1e-8)
        assert summary["effective_dim"] == effdim
        token_labels = labels[disk.tokens["sequence"].to_numpy()]
        ref = selectivity(cosine_matrix(flat), token_labels)
        assert summary["within_mean"] == pytest.approx(float(ref["within_mean"][0]), abs=1e-9)
        assert summary["across_mean"] == pytest.approx(float(ref["across_mean"][0]), abs=1e-9)
    # Last-position recordings (one row per sequence, seed 004's design) work the same way.
    last = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], positions="last", out=tmp_path / "l",
                         shard_size=4, progress=False)
    summary = summarize_layer(last, "hidden", 2, labels=labels, covariance=False)
    ref = selectivity(cosine_matrix(last.flat("hidden", 2)), labels)
    assert summary["within_mean"] == pytest.approx(float(ref["within_mean"][0]), abs=1e-9)
