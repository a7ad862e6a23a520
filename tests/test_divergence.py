"""Divergences between histograms and the vectorised permutation null (lamina.stats.divergence / permutation)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from lamina import LaminaError
from lamina.stats.divergence import (SEED_EPSILON, bias_corrected_js, bin_edges, bin_index, check_groups,
                                     group_divergences, group_histograms, js_divergence, js_noise_floor, kl,
                                     probabilities, symmetric_kl_to_mixture, unsupported_bins)
from lamina.stats.permutation import binned, js_by_labels, js_permutation_null, permuted_labels
from seed_code import symmetric_KL as seed_symmetric_KL

LN2 = np.log(2)




def distributions(n_bins):
    """Pairs of probability vectors with n_bins entries, zeros allowed (each sums to 1)."""
    weights = arrays(np.float64, n_bins, elements=st.one_of(st.just(0.0), st.floats(1e-6, 1e3)))
    return weights.filter(lambda w: w.sum() > 0).map(lambda w: w / w.sum())


pairs = st.integers(2, 40).flatmap(lambda n: st.tuples(distributions(n), distributions(n)))


@given(pairs)
@settings(max_examples=300, deadline=None)
def test_divergences_nonnegative_js_symmetric_and_bounded(pq):
    p, q = pq
    js = js_divergence(p, q)
    assert 0 <= js <= LN2
    assert js == pytest.approx(js_divergence(q, p), abs=1e-12)
    m = (p + q) / 2  # scipy's own terms (its jensenshannon takes a sqrt that is NaN when p == q)
    assert js == pytest.approx(0.5 * rel_entr(p, m).sum() + 0.5 * rel_entr(q, m).sum(), abs=1e-12)
    assert kl(p, q, SEED_EPSILON) == pytest.approx(rel_entr(p, q + SEED_EPSILON).sum(), rel=1e-9, abs=1e-12)
    assert kl(p, q, SEED_EPSILON) >= -1e-12  # ε adds n·1e-15 to Q's total: at most that much below 0
    assert kl(p, p) == pytest.approx(0, abs=1e-12) and js_divergence(p, p) == pytest.approx(0, abs=1e-12)
    assert symmetric_kl_to_mixture(p, q) >= -1e-12
    true_kl = kl(p, q)
    if unsupported_bins(p, q):
        assert true_kl == np.inf
    else:
        assert 0 <= true_kl < np.inf


def test_js_reaches_ln2_for_disjoint_supports_and_matches_scipy():
    assert js_divergence([0.5, 0.5, 0, 0], [0, 0, 0.2, 0.8]) == pytest.approx(LN2)
    p, q = np.array([0.1, 0.2, 0.7, 0.0]), np.array([0.3, 0.3, 0.1, 0.3])
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=np.e) ** 2, abs=1e-12)


def test_kl_direction_and_epsilon():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert kl(p, q) == pytest.approx(np.log(2))  # Σ p log(p/q) over p > 0
    assert kl(q, p) == np.inf and unsupported_bins(q, p) == 1
    assert kl(q, p, SEED_EPSILON) == pytest.approx(0.5 * np.log(0.5) + 0.5 * np.log(0.5 / 1e-15), rel=1e-9)
    # torch's F.kl_div(log Q, P) is KL(P‖Q): the seed's "Target is incorrect" line
    ref = F.kl_div(torch.log(torch.tensor(q) + 1e-15), torch.tensor(p), reduction="sum").item()
    assert kl(p, q, SEED_EPSILON) == pytest.approx(ref, rel=1e-12)


@given(arrays(np.float64, st.integers(2, 300), elements=st.floats(-50, 50)), st.integers(1, 60))
@settings(max_examples=200, deadline=None)
def test_bin_index_counts_like_numpy_histogram(values, n_bins):
    if values.min() == values.max():
        with pytest.raises(LaminaError, match="a histogram of one value"):
            bin_edges(values, n_bins)
        return
    edges = bin_edges(values, n_bins)
    idx = bin_index(values, edges)
    assert idx.min() >= 0 and idx.max() < n_bins
    np.testing.assert_array_equal(np.bincount(idx, minlength=n_bins), np.histogram(values, bins=edges)[0])


@given(st.integers(0, 10_000), st.integers(3, 52))
@settings(max_examples=60, deadline=None)
def test_mixture_kl_over_bins_equals_seed_function(seed, nbins):
    """The seed's symmetric_KL(d1, d2, nbins) (nbins = edges) is group_divergences' mixture_kl / (nbins - 1):
    'batchmean' divides ½[KL(M‖P) + KL(M‖Q)] by the number of bins. attn-kl reports this value."""
    rng = np.random.default_rng(seed)
    d1 = rng.normal(0, 1, rng.integers(2, 200)).astype(np.float32)
    d2 = rng.normal(rng.normal(0, 1), rng.uniform(0.3, 3), rng.integers(2, 200)).astype(np.float32)
    ref = seed_symmetric_KL(torch.from_numpy(d1), torch.from_numpy(d2), nbins).item()
    values = np.concatenate([d1, d2]).astype(np.float64)
    labels = np.arange(len(values)) < len(d1)
    ours = group_divergences(values, labels, nbins - 1)
    assert ours["mixture_kl"] / (nbins - 1) == pytest.approx(ref, rel=1e-4, abs=1e-7)
    p, q = probabilities(group_histograms(values, labels, bin_edges(values, nbins - 1)))
    assert ours["mixture_kl"] == pytest.approx(symmetric_kl_to_mixture(p, q), rel=1e-12)
    np.testing.assert_array_equal(ours["probs"], np.stack([p, q]))
    assert ours["js"] == pytest.approx(js_divergence(p, q), abs=1e-15)
    assert ours["kl_true_false"] == kl(p, q, SEED_EPSILON) and ours["kl_false_true"] == kl(q, p, SEED_EPSILON)
    assert ours["unsupported_true_false"] == unsupported_bins(p, q)


def test_check_groups_names_the_empty_group():
    with pytest.raises(LaminaError, match=r"'correct' group has 0 of 5 tokens \(correct: 0, incorrect: 5\)"):
        check_groups(np.zeros(5, bool))
    with pytest.raises(LaminaError, match=r"'incorrect' group has 1 of 4 tokens"):
        check_groups(np.array([True, True, True, False]))
    with pytest.raises(LaminaError, match="must be booleans"):
        check_groups(np.array([1, 0, 1]))
    assert check_groups(np.array([True, False, True, False])).dtype == bool


def test_permuted_labels_keep_group_sizes_and_are_reproducible():
    labels = np.arange(50) % 3 == 0
    a = permuted_labels(labels, 200, np.random.default_rng(7))
    b = permuted_labels(labels, 200, np.random.default_rng(7))
    assert a.shape == (200, 50) and (a.sum(1) == labels.sum()).all()
    np.testing.assert_array_equal(a, b)
    assert len({row.tobytes() for row in a}) > 190  # rows are independent shuffles


def test_null_equals_a_per_permutation_loop_that_rebuilds_edges():
    """Seed 001's loop structure (new min/max edges for every shuffle, two histograms) gives the same null."""
    rng = np.random.default_rng(3)
    values = np.vstack([rng.normal(0, 1, 120), rng.gamma(2, 1, 120), np.round(rng.normal(0, 1, 120), 1)])
    labels = rng.random(120) < 0.3
    sets = np.vstack([labels, permuted_labels(labels, 50, rng)])
    _, bins = binned(values, 30)
    fast = js_by_labels(bins, sets, 30, chunk=17)  # chunks smaller than the set count
    for k, row in enumerate(sets):
        for layer, v in enumerate(values):
            c, i = v[row], v[~row]
            edges = np.linspace(min(c.min(), i.min()), max(c.max(), i.max()), 31)
            p, q = (np.histogram(g, bins=edges)[0] for g in (c, i))
            assert fast[k, layer] == pytest.approx(js_divergence(p / p.sum(), q / q.sum()), abs=1e-12)


def test_js_permutation_null_shapes_and_observed():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, (4, 300))
    labels = rng.random(300) < 0.5
    values[2, labels] += 1.0  # one layer with a real difference
    res = js_permutation_null(values, labels, 99, np.random.default_rng(1), n_bins=20)
    assert res.null.shape == (99, 4) and res.edges.shape == (4, 21)
    for layer in range(4):
        p, q = probabilities(group_histograms(values[layer], labels, res.edges[layer]))
        assert res.observed[layer] == pytest.approx(js_divergence(p, q), abs=1e-12)
    assert (res.null[:, 2] < res.observed[2]).all()
    again = js_permutation_null(values, labels, 99, np.random.default_rng(1), n_bins=20)
    np.testing.assert_array_equal(res.null, again.null)


def test_js_permutation_null_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(LaminaError, match="'incorrect' group has 0"):
        js_permutation_null(rng.normal(size=(2, 10)), np.ones(10, bool), 10, rng)
    with pytest.raises(LaminaError, match=r"shape \(n_layers, 10\)"):
        js_permutation_null(rng.normal(size=(2, 9)), np.arange(10) % 2 == 0, 10, rng)
    with pytest.raises(LaminaError, match="values of layer 1"):
        js_permutation_null(np.vstack([rng.normal(size=10), np.ones(10)]), np.arange(10) % 2 == 0, 10, rng)
    with pytest.raises(LaminaError, match="n_permutations must be at least 1"):
        permuted_labels(np.arange(10) % 2 == 0, 0, rng)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_null_on_gpu_equals_cpu():
    rng = np.random.default_rng(0)
    values, labels = rng.normal(size=(36, 1023)), rng.random(1023) < 0.4
    cpu = js_permutation_null(values, labels, 200, np.random.default_rng(1))
    gpu = js_permutation_null(values, labels, 200, np.random.default_rng(1), device="cuda")
    np.testing.assert_allclose(gpu.null, cpu.null, atol=1e-12)
    np.testing.assert_allclose(gpu.observed, cpu.observed, atol=1e-12)


def test_js_null_mean_matches_the_documented_noise_floor():
    """The bins-sweep figure's dashed line: E[JS] ≈ (bins − 1)/8 · (1/n_a + 1/n_b) when groups do not differ."""
    rng = np.random.default_rng(5)
    values = rng.uniform(size=(3, 2000))  # every bin well filled
    labels = rng.random(2000) < 0.3
    for n_bins in (10, 30):
        res = js_permutation_null(values, labels, 300, rng, n_bins=n_bins)
        expected = js_noise_floor(n_bins, labels.sum(), (~labels).sum())
        assert res.null.mean() == pytest.approx(expected, rel=0.05)


def _null_js(values, labels, n_bins, n_permutations, rng):
    """Observed and shuffled JS of each row of ``values`` (independent of ``labels``)."""
    _, bins = binned(values, n_bins)
    sets = np.vstack([labels, permuted_labels(labels, n_permutations, rng)])
    js = js_by_labels(bins, sets, n_bins)
    return js[0], js[1:]


def test_bias_corrected_js_is_zero_under_the_null_whatever_bins_occupancy_and_sizes():
    """Issue 25, item 1: the plug-in JS of two histograms has a null floor that grows with the occupied bins
    and shrinks with the group sizes, so raw JS values of layers, models or controls are not comparable. JS
    minus its shuffles' mean (bias_corrected_js) has mean 0 under the null in every configuration: 300
    independent rows per configuration (each a "layer" of label-independent values), 99 shuffles."""
    rng = np.random.default_rng(11)
    configs = {  # name: (values of n tokens, n_bins, n_true)
        "normal, 30 bins, 30 of 256": (lambda n: rng.normal(size=(300, n)), 30, 30, 256),
        "normal, 30 bins, 128 of 256": (lambda n: rng.normal(size=(300, n)), 30, 128, 256),
        "heavy tails (few occupied), 30 bins": (lambda n: rng.standard_t(1.5, size=(300, n)), 30, 90, 256),
        "ties, 10 bins, 500 of 2000": (lambda n: np.round(rng.gamma(2.0, size=(300, n)), 1), 10, 500, 2000),
        "uniform, 50 bins, 40 of 200": (lambda n: rng.uniform(size=(300, n)), 50, 40, 200),
    }
    raw_means = []
    for name, (make, n_bins, n_true, n) in configs.items():
        values = make(n)
        labels = np.zeros(n, dtype=bool)
        labels[rng.choice(n, n_true, replace=False)] = True
        observed, null = _null_js(values, labels, n_bins, 99, rng)
        corrected = bias_corrected_js(observed, null)
        se = corrected.std(ddof=1) / np.sqrt(len(corrected))
        assert abs(corrected.mean()) < 3.5 * se, (name, corrected.mean(), se)
        assert observed.mean() > 10 * se  # the raw JS is far from 0: mostly bias
        raw_means.append(observed.mean())
    # and its null value depends on the configuration (0.01 to 0.13 nats here)
    assert max(raw_means) > 4 * min(raw_means)


def test_bias_corrected_js_keeps_a_real_difference():
    """A shift between the groups stays positive after the correction; the bias it removes does not depend on it."""
    rng = np.random.default_rng(3)
    labels = rng.random(512) < 0.4
    values = rng.normal(size=(200, 512)) + 0.5 * labels
    observed, null = _null_js(values, labels, 30, 99, rng)
    corrected = bias_corrected_js(observed, null)
    assert corrected.mean() > 0.02 and (corrected > 0).mean() > 0.95
    np.testing.assert_allclose(corrected, observed - null.mean(axis=0))
