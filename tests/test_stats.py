"""Property tests (hypothesis) for the shared statistics: cosine, RSA, corrections, p-values, norms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamina import LaminaError
from lamina.stats import (benjamini_hochberg, cosine_matrix, max_statistic_pvalue, ols, permutation_pvalue, rsa,
                          upper)
from lamina.stats.norms import layer_log_norms, log_norms

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


def matrices(min_rows=3, max_rows=12, cols=st.integers(2, 8)):
    return st.tuples(st.integers(min_rows, max_rows), cols).flatmap(
        lambda shape: arrays(np.float64, shape, elements=finite))


def nonzero_rows(X):
    return np.linalg.norm(X, axis=1).min() > 0


@settings(max_examples=60, deadline=None)
@given(matrices())
def test_cosine_in_range_symmetric_unit_diagonal(X):
    if not nonzero_rows(X):
        with pytest.raises(LaminaError, match="zero norm"):
            cosine_matrix(X)
        return
    C = cosine_matrix(X)
    assert C.shape == (len(X), len(X))
    assert (C >= -1).all() and (C <= 1).all()
    np.testing.assert_allclose(C, C.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(C), 1, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(matrices(min_rows=4), st.floats(0.01, 100), st.floats(0.01, 100))
def test_rsa_unchanged_by_scaling(X, a, b):
    if not nonzero_rows(X):
        return
    Y = np.tanh(X) + 0.1 * X[:, ::-1]
    if not nonzero_rows(Y):
        return
    try:
        r = rsa(X, Y)
    except LaminaError as err:
        assert "undefined" in str(err)  # constant similarities: refused, not a number
        return
    assert np.isfinite(r) and -1 - 1e-12 <= r <= 1 + 1e-12
    assert rsa(a * X, b * Y) == pytest.approx(r, abs=1e-9)


def test_rsa_errors_and_upper_order():
    with pytest.raises(LaminaError, match="undefined"):
        rsa(np.ones((4, 3)), np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(LaminaError, match="same items"):
        rsa(np.ones((4, 2)), np.ones((5, 2)))
    M = np.arange(16).reshape(4, 4)
    assert upper(M).tolist() == [1, 2, 3, 6, 7, 11]  # row by row, like np.triu_indices (seeds 003/004)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1)))
def test_bh_adjusted_at_least_raw_monotone_and_bounded(p):
    adj = benjamini_hochberg(p)
    assert (adj >= p - 1e-12).all() and (adj <= 1 + 1e-12).all()
    order = np.argsort(p)
    assert (np.diff(adj[order]) >= -1e-12).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 200), st.integers(0, 10_000))
def test_permutation_pvalues_never_zero_and_max_stat_is_conservative(n_tests, n_perm, seed):
    rng = np.random.default_rng(seed)
    null = rng.normal(size=(n_perm, n_tests))
    observed = rng.normal(2, 1, size=n_tests)
    raw = permutation_pvalue(observed, null)
    corrected = max_statistic_pvalue(observed, null)
    assert (raw >= 1 / (n_perm + 1)).all() and (raw <= 1).all()
    assert (corrected >= raw - 1e-12).all()


def test_permutation_pvalue_calibrated_under_null():
    """Observed drawn from the null itself: P(p <= 0.05) is about 0.05."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(2000, 200))  # 2000 experiments, 199 permutations + 1 observed each
    p = permutation_pvalue(draws[:, 0], draws[:, 1:], axis=1)
    rate = (p <= 0.05).mean()
    assert 0.035 < rate < 0.065


def test_log_norms_zero_vector_is_an_error():
    X = np.ones((3, 4), dtype=np.float32)
    np.testing.assert_allclose(log_norms(X), np.log(2.0))
    X[1] = 0
    with pytest.raises(LaminaError, match="1 vectors have zero norm"):
        log_norms(X)


def test_ols_input_errors():
    with pytest.raises(LaminaError, match="too few"):
        ols([1.0, 2.0], [1.0, 3.0])
    with pytest.raises(LaminaError, match="NaN"):
        ols([1.0, 2.0, np.nan, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(LaminaError, match="rows"):
        ols([1.0, 2.0, 3.0], [1.0, 2.0])


def test_layer_log_norms_name_layer_and_position_of_a_zero_vector():
    acts = np.ones((3, 4, 8), np.float32)
    acts[2, 1] = 0
    with pytest.raises(LaminaError, match=r"1 attention outputs have zero norm \(first at layer 2, position 11\)"):
        layer_log_norms(acts, np.arange(10, 14), what="attention outputs")
    np.testing.assert_allclose(layer_log_norms(acts[:2], np.arange(4)), np.log(np.sqrt(8)))
    assert layer_log_norms(acts[:2]).shape == (2, 4)


# ---- functions that moved down from the experiments -------------------------------------------
def test_lagged_ols_equals_one_ols_per_series():
    """attn-autoregression's per-layer loop: each row's fit is ols(y[t] on y[t-1], y[t-2])."""
    from lamina.stats.regression import lagged_design, lagged_ols

    rng = np.random.default_rng(0)
    series = np.cumsum(rng.normal(size=(4, 60)), axis=1)
    fits = lagged_ols(series, lags=(1, 2), first=3)
    assert fits["beta"].shape == fits["se"].shape == fits["p"].shape == (4, 2) and fits["r2"].shape == (4,)
    for i, y in enumerate(series):
        one = ols(*lagged_design(y, lags=(1, 2), first=3), names=["a", "b"])
        assert fits["intercept"][i] == one["params"]["const"] and fits["r2"][i] == one["r2"]
        assert fits["beta"][i].tolist() == [one["params"]["a"], one["params"]["b"]]
        assert fits["se"][i].tolist() == [one["bse"]["a"], one["bse"]["b"]]
        assert fits["p"][i].tolist() == [one["pvalues"]["a"], one["pvalues"]["b"]]
    with pytest.raises(LaminaError, match="n_series, T"):
        lagged_ols(series[0])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 15))
def test_rsa_pairs_is_pearson_of_upper_triangles(seed, n):
    """mlp-stages' RSA of stage pairs: the same r as rsa() on the data, with its guards."""
    from lamina.stats.similarity import rsa_pairs

    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(n, d)) for d in (3, 5, 4)]
    mats = np.stack([cosine_matrix(x) for x in X])
    pairs = [(0, 1), (0, 2), (1, 2)]
    got = rsa_pairs(mats, pairs)
    expected = [np.corrcoef(upper(mats[a]), upper(mats[b]))[0, 1] for a, b in pairs]
    np.testing.assert_array_equal(got, expected)
    assert got[0] == pytest.approx(rsa(X[0], X[1]), abs=1e-15)


def test_rsa_pairs_guards():
    from lamina.stats.similarity import rsa_pairs

    rng = np.random.default_rng(0)
    mats = np.stack([cosine_matrix(rng.normal(size=(5, 3))), np.ones((5, 5))])
    with pytest.raises(LaminaError, match="every pairwise similarity in one set is the same"):
        rsa_pairs(mats, [(0, 1)])
    assert np.isfinite(rsa_pairs(np.stack([mats[0], mats[0]]), [(0, 1)])).all()
    with pytest.raises(LaminaError, match="at least 3 items"):
        rsa_pairs(mats[:, :2, :2], [(0, 1)])
    with pytest.raises(LaminaError, match=r"\(k, n, n\)"):
        rsa_pairs(mats[0], [(0, 1)])


def test_central_range_ignores_the_extremes():
    from lamina.stats.ranges import central_range

    values = np.concatenate([np.linspace(-1, 1, 1001), [1e6, np.nan]])
    low, high = central_range([values], 99.0)
    assert -1.1 < low < -1.0 and 1.0 < high < 1.1  # the central 99% padded by 5%; 1e6 outside, NaN ignored
    low, high = central_range([np.array([0.0, 1.0, 2.0])], 100.0, symmetric=True)
    assert low == -high and high == pytest.approx(2.2)
    assert central_range([np.zeros(5)]) == (-0.05, 0.05)  # no spread: padded by 5% of 1
    with pytest.raises(LaminaError, match="percentage"):
        central_range([values], 0)


def test_confusion_percent_is_row_normalised():
    from lamina.stats.regression import classification, confusion_percent

    cm = np.array([[3, 1], [0, 0]])
    pct = confusion_percent(cm)
    np.testing.assert_allclose(pct[0], [75.0, 25.0])
    assert np.isnan(pct[1]).all()  # a class without samples
    scores = classification([0, 0, 1, 1], [0, 1, 1, 1], 2)
    np.testing.assert_array_equal(scores["confusion_pct"], confusion_percent(scores["confusion"]))
