"""Property tests (hypothesis) for the shared statistics: cosine, RSA, corrections, p-values, norms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamina import LaminaError
from lamina.stats import (benjamini_hochberg, cosine_matrix, max_statistic_pvalue, ols, permutation_pvalue, rsa,
                          upper)
from lamina.stats.norms import log_norms

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
