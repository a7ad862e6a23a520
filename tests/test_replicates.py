"""Inference across replicates (stats/replicates.py), the decision rule, and the windows builder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import lamina
from lamina.experiments.across import across_layers, across_tests, column
from lamina.stats.multiple import holm, significant
from lamina.stats.replicates import (across_replicates, sign_flip_max_t, simultaneous_t_band, skew_t_interval,
                                    t_interval)


def test_t_test_and_interval_match_scipy():
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 1, size=(8, 5))
    res = across_replicates(values, correction="none")
    ref = sps.ttest_1samp(values, 0.0, axis=0)
    np.testing.assert_allclose(res.t, ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(res.p, ref.pvalue, rtol=1e-12)
    ci = ref.confidence_interval(0.95)
    np.testing.assert_allclose(res.ci_low, ci.low, rtol=1e-12)
    np.testing.assert_allclose(res.ci_high, ci.high, rtol=1e-12)
    greater = across_replicates(values, null=0.1, alternative="greater", correction="none")
    np.testing.assert_allclose(greater.p, sps.ttest_1samp(values, 0.1, axis=0, alternative="greater").pvalue)


def test_sign_flips_are_exact_and_never_zero():
    values = np.array([[1.0, 0.1], [2.0, -0.2], [1.5, 0.05], [1.2, 0.0]])
    p = sign_flip_max_t(values)
    assert p.shape == (2,) and (p >= 1 / 16).all()  # 2**4 patterns, the identity among them
    assert p[0] == pytest.approx(2 / 16)  # only the identity and its mirror reach |t| of a consistent effect
    with pytest.raises(lamina.LaminaError, match="give rng"):
        sign_flip_max_t(np.ones((20, 3)) + np.arange(20)[:, None], n_flips=100)


def test_skew_t_interval_is_halls_and_t_without_skew():
    symmetric = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]]) + 3
    np.testing.assert_allclose(skew_t_interval(symmetric), t_interval(symmetric), rtol=1e-12)
    values = np.exp(np.random.default_rng(2).normal(size=(12, 3)))
    mean, low, high = skew_t_interval(values)
    assert ((high - mean) > (mean - low)).all()  # right skew: reaches further up
    # at the bounds, Hall's g(T) = T + aT² + a²T³/3 + b equals ∓ the t quantile (T = (mean − μ) / se)
    n, sd = len(values), values.std(axis=0, ddof=1)
    gamma = ((values - mean) ** 3).mean(axis=0) / sd ** 3
    a, b = gamma / (3 * np.sqrt(n)), gamma / (6 * np.sqrt(n))
    g = lambda t: t + a * t ** 2 + a ** 2 * t ** 3 / 3 + b  # noqa: E731
    c = sps.t.ppf(0.975, n - 1)
    np.testing.assert_allclose(g((mean - low) / (sd / np.sqrt(n))), c, rtol=1e-9)
    np.testing.assert_allclose(g((mean - high) / (sd / np.sqrt(n))), -c, rtol=1e-9)
    assert np.allclose(skew_t_interval(np.ones((4, 2))), 1.0)


def test_simultaneous_band_contains_the_t_interval_and_widens_with_independent_tests():
    rng = np.random.default_rng(3)
    one = rng.normal(size=(10, 1))
    _, low, high, c = simultaneous_t_band(one)  # one test: nothing to choose from, the t interval
    np.testing.assert_allclose([low, high], t_interval(one)[1:], rtol=1e-12)
    assert c == pytest.approx(sps.t.ppf(0.975, 9))
    same = simultaneous_t_band(np.repeat(one, 5, axis=1))[3]  # identical tests: barely wider
    independent = simultaneous_t_band(rng.normal(size=(10, 20)))[3]
    assert c <= same < c + 0.3 and independent > same + 0.5
    assert independent <= sps.t.ppf(1 - 0.025 / 20, 9) + 1e-12  # never wider than Bonferroni
    constant = np.column_stack([rng.normal(size=10), np.full(10, 2.0)])
    _, low, high, _ = simultaneous_t_band(constant)
    assert low[1] == high[1] == 2.0
    with pytest.raises(lamina.LaminaError, match="give rng"):
        simultaneous_t_band(rng.normal(size=(20, 3)), n_flips=100)


def test_simultaneous_band_covers_every_mean_at_once():
    """10 replicates, 15 correlated tests with different means: the band covers all of them in ~95% of samples
    (the pointwise t intervals together do not)."""
    rng = np.random.default_rng(4)
    means = np.linspace(-1, 1, 15)
    band = pointwise = 0
    for _ in range(300):
        shared = rng.normal(size=(10, 1))
        values = means + 0.7 * shared + 0.7 * rng.normal(size=(10, 15))
        _, low, high, _ = simultaneous_t_band(values)
        band += ((low <= means) & (means <= high)).all()
        _, low, high = t_interval(values)
        pointwise += ((low <= means) & (means <= high)).all()
    assert band / 300 >= 0.91 and pointwise / 300 < 0.85


def test_family_wise_max_t_calibrated_under_dependent_null():
    """Replicates independent, 10 correlated layers (a shared replicate effect): the max-t test keeps the
    family-wise error near alpha; the uncorrected per-layer test does not."""
    rng = np.random.default_rng(1)
    any_fw, any_raw = [], []
    for _ in range(400):
        shared = rng.normal(size=(8, 1))
        values = 0.7 * shared + 0.7 * rng.normal(size=(8, 10))
        res = across_replicates(values, correction="max", n_flips=256)
        any_fw.append(significant(res.p_corrected, 0.05).any())
        any_raw.append(significant(res.p, 0.05).any())
    assert 0.02 <= np.mean(any_fw) <= 0.08
    assert np.mean(any_raw) > 0.12


def test_t_test_calibrated_per_layer():
    rng = np.random.default_rng(2)
    p = np.array([across_replicates(rng.standard_t(5, size=(6, 1)), correction="none").p[0] for _ in range(2000)])
    assert abs(significant(p, 0.05).mean() - 0.05) < 0.015


def test_holm_matches_statsmodels_and_leaves_nan_out():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    values = rng.normal(0.5, 1, size=(6, 7))
    res = across_replicates(values, correction="holm")
    np.testing.assert_allclose(res.p_corrected, multipletests(res.p, method="holm")[1], rtol=1e-12)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06])  # three tests; NaN is none of them


def test_across_layers_is_across_replicates_in_the_tests_shape():
    """across.py's columnar form (any trailing shape: layer × head) and its per-test entries are the same
    tests; the entries write a t of ±inf (replicates that do not vary) as NaN, the columns keep it."""
    rng = np.random.default_rng(4)
    values = rng.normal(0.2, 1, size=(5, 3, 4))
    values[:, 0, 0] = 1.0  # no variation, mean away from the null: t = inf
    tests = across_layers(values, alpha=0.05, correction="max")
    flat = across_replicates(values.reshape(5, -1), correction="max")
    assert tests.mean.shape == tests.significant.shape == (3, 4)
    for name in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected"):
        np.testing.assert_array_equal(getattr(tests, name).ravel(), getattr(flat, name))
    np.testing.assert_array_equal(tests.significant.ravel(), significant(flat.p_corrected, 0.05))
    entries = across_tests(values, alpha=0.05, correction="max")
    assert entries.shape == (3, 4) and tests.t[0, 0] == np.inf and np.isnan(entries[0, 0].t)
    np.testing.assert_array_equal(column(entries, "p_corrected"), tests.p_corrected)
    assert [e.significant for e in entries.ravel()] == tests.significant.ravel().tolist()
    one = across_layers(values[:, 1, 1], alpha=0.05, alternative="greater", correction="none")  # one test
    assert one.mean.shape == () and one.p_corrected == one.p


def test_bad_input():
    with pytest.raises(lamina.LaminaError, match="at least 2 replicates"):
        across_replicates(np.ones((1, 3)))
    with pytest.raises(lamina.LaminaError, match="NaN"):
        across_replicates(np.array([[1.0], [np.nan]]))
    with pytest.raises(lamina.LaminaError, match="correction"):
        across_replicates(np.ones((3, 2)), correction="bonferroni")
    with pytest.raises(lamina.LaminaError, match="alternative"):
        across_replicates(np.ones((3, 2)), alternative="up")
    constant = across_replicates(np.ones((3, 2)), null=1.0)
    assert (constant.t == 0).all() and (constant.p == 1).all()


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_interval_contains_the_mean(values):
    mean, low, high = t_interval(np.array(values))
    assert low[0] <= mean[0] + 1e-6 * (1 + abs(mean[0])) and mean[0] <= high[0] + 1e-6 * (1 + abs(mean[0]))


def test_significant_is_p_at_most_alpha():
    np.testing.assert_array_equal(significant([0.01, 0.05, 0.0500001, np.nan], 0.05), [True, True, False, False])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), length=st.integers(1, 400))
def test_windows_are_disjoint_and_start_with_the_middle(gpt2_tokenizer, data_dir, n, length):
    text = lamina.data.book("alice")[:20000]
    n_tokens = len(gpt2_tokenizer(text)["input_ids"])
    middle = lamina.stimuli.window(text, gpt2_tokenizer, length)
    mid = int(middle.meta["start"][0])
    room = mid // length + (n_tokens - mid - length) // length + 1
    if n > room:
        with pytest.raises(lamina.LaminaError, match="disjoint windows"):
            lamina.stimuli.windows(text, gpt2_tokenizer, length, n)
        return
    stim = lamina.stimuli.windows(text, gpt2_tokenizer, length, n)
    assert list(stim.meta["replicate"]) == list(range(n)) and len(stim) == n
    np.testing.assert_array_equal(stim.ids[0], middle.ids[0])
    starts = np.sort(stim.meta["start"].to_numpy())
    assert (np.diff(starts) >= length).all() and starts[0] >= 0 and starts[-1] + length <= n_tokens
    assert (stim.lengths == length).all()
