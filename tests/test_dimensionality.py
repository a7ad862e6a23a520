"""Dimensionality (participation ratio, effective dimensionality) and the item bootstrap for RSA."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamina.errors import LaminaError
from lamina.stats.bootstrap import percentile_ci, resample_counts, rsa_bootstrap
from lamina.stats.dimensionality import (dimensionality, effective_dim, effective_dim_of, participation_ratio,
                                         variance_spectrum)
from lamina.stats.similarity import cosine_matrix, rsa, upper

# Values on a grid of 0.1: hypothesis' favourite 1e-300 would underflow when squared, a float64
# limit that says nothing about the statistics.
grid = st.integers(-1000, 1000).map(lambda v: v / 10)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def point_clouds(draw):
    """(n, d) data with at least some variance, including low-rank ones (rows repeated, columns copied)."""
    n = draw(st.integers(2, 12))
    d = draw(st.integers(1, 10))
    X = draw(arrays(np.float64, (n, d), elements=grid))
    if draw(st.booleans()):  # low rank: every row a combination of the first k columns
        k = draw(st.integers(1, min(n, d)))
        X = X[:, :k] @ draw(arrays(np.float64, (k, d), elements=grid))
    assume(np.ptp(X, axis=0).max() > 0)  # some variance
    return X


def _rank(X):
    """Rank of the centred data as numpy decides it: directions below its tolerance are rounding noise."""
    return np.linalg.matrix_rank(X - X.mean(axis=0))


@PROPERTY
@given(point_clouds())
def test_participation_ratio_between_one_and_rank(X):
    pr = participation_ratio(X)
    assert 1 - 1e-9 <= pr <= _rank(X) + 1e-6


@PROPERTY
@given(point_clouds(), st.floats(1, 99.9))
def test_effective_dim_between_one_and_rank(X, threshold):
    assert 1 <= effective_dim(X, threshold) <= _rank(X)


@PROPERTY
@given(point_clouds(), st.floats(1, 98), st.floats(0.5, 1.9))
def test_effective_dim_grows_with_threshold(X, low, step):
    assert effective_dim(X, low) <= effective_dim(X, min(low + step, 99.9))


@PROPERTY
@given(point_clouds(), st.floats(1e-3, 1e3), st.floats(-50, 50))
def test_dimensionality_unchanged_by_scaling_and_shift(X, scale, shift):
    pr, ed = dimensionality(X)
    pr2, ed2 = dimensionality(scale * X + shift)
    assert pr2 == pytest.approx(pr, rel=1e-6)
    # The count may move only where the cumulative variance sits on the threshold to rounding.
    spectrum = variance_spectrum(X)
    cumulative = 100 * np.cumsum(spectrum) / spectrum.sum()
    if np.min(np.abs(cumulative - 95)) > 1e-6:
        assert ed2 == ed


def test_known_values():
    # Four orthogonal directions with equal variance: PR 4, and 95% needs all four.
    X = np.vstack([np.eye(4), -np.eye(4)])
    assert participation_ratio(X) == pytest.approx(4.0)
    assert effective_dim(X) == 4
    # Variances 90, 6, 4 percent: 95% is passed with two components (the seed's index: 1).
    spectrum = np.array([90.0, 6.0, 4.0])
    assert effective_dim_of(spectrum) == 2
    assert effective_dim_of(spectrum, 96.5) == 3
    # "pass" is strict, as the seed's `cumPctVar > 95`: exactly 95% is not enough.
    assert effective_dim_of(np.array([95.0, 5.0])) == 2
    # One direction only: PR 1, one component.
    line = np.outer(np.arange(5.0), [1.0, 2.0, -1.0])
    assert participation_ratio(line) == pytest.approx(1.0)
    assert effective_dim(line) == 1


def test_seed_formula():
    """PR and effective dimensionality equal seed 003's calc_partrat_effdim (index + 1) on random data."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 25)) @ np.diag(np.linspace(3, 0.1, 25))
    Xc = X - X.mean(axis=0, keepdims=True)
    s2 = np.linalg.svd(Xc, compute_uv=False) ** 2
    seed_pr = sum(s2) ** 2 / sum(s2 ** 2)
    seed_index = np.where(100 * np.cumsum(s2) / s2.sum() > 95)[0][0]
    pr, ed = dimensionality(X, 95)
    assert pr == pytest.approx(seed_pr, rel=1e-12)
    assert ed == seed_index + 1


def test_errors():
    with pytest.raises(LaminaError, match="zero variance"):
        dimensionality(np.ones((5, 3)))
    with pytest.raises(LaminaError, match="at least 2"):
        participation_ratio(np.ones((1, 3)))
    with pytest.raises(LaminaError, match="2-D"):
        participation_ratio(np.ones(4))
    with pytest.raises(LaminaError, match="NaN"):
        participation_ratio(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(LaminaError, match="between 0 and 100"):
        effective_dim(np.eye(3), 100)


# ---- RSA and the item bootstrap -----------------------------------------------------------------
@st.composite
def rsa_inputs(draw):
    n = draw(st.integers(4, 10))
    X = draw(arrays(np.float64, (n, 5), elements=grid))
    Y = draw(arrays(np.float64, (n, 7), elements=grid))
    assume((np.abs(X).sum(axis=1) > 0).all() and (np.abs(Y).sum(axis=1) > 0).all())  # cosine needs nonzero rows
    return X, Y


def _rsa_defined(X, Y):
    return np.std(upper(cosine_matrix(X))) > 1e-6 and np.std(upper(cosine_matrix(Y))) > 1e-6


@PROPERTY
@given(rsa_inputs(), st.floats(1e-3, 1e3), arrays(np.float64, 10, elements=st.floats(0.01, 100, width=64)))
def test_rsa_unchanged_by_scaling(inputs, scale, row_scales):
    X, Y = inputs
    assume(_rsa_defined(X, Y))
    r = rsa(X, Y)
    # cosine ignores each row's length, so RSA ignores global and per-item positive scaling
    assert rsa(scale * X, Y) == pytest.approx(r, abs=1e-9)
    assert rsa(X * row_scales[:len(X), None], Y / scale) == pytest.approx(r, abs=1e-9)
    mats = np.stack([cosine_matrix(X), cosine_matrix(Y)])
    scaled = np.stack([cosine_matrix(scale * X), cosine_matrix(Y * row_scales[:len(Y), None])])
    ones = np.ones((1, len(X)), dtype=int)
    np.testing.assert_allclose(rsa_bootstrap(scaled, [(0, 1)], ones, dtype=np.float64),
                               rsa_bootstrap(mats, [(0, 1)], ones, dtype=np.float64), atol=1e-9)


def _brute_force_rsa(matrices, pairs, counts_row):
    """Expand the resample to its items, drop pairs of copies of one item, correlate."""
    items = np.repeat(np.arange(len(counts_row)), counts_row)
    i, j = np.triu_indices(len(items), 1)
    keep = items[i] != items[j]
    out = []
    for a, b in pairs:
        x = matrices[a][np.ix_(items, items)][i, j][keep]
        y = matrices[b][np.ix_(items, items)][i, j][keep]
        out.append(np.corrcoef(x, y)[0, 1])
    return np.array(out)


def test_rsa_bootstrap_equals_expanded_resamples():
    rng = np.random.default_rng(0)
    n = 25
    base = rng.standard_normal((n, 6))
    data = [base + s * rng.standard_normal((n, 6)) for s in (0.2, 1.0, 3.0)]
    mats = np.stack([cosine_matrix(X) for X in data])
    pairs = [(0, 1), (0, 2), (1, 2)]
    # all counts 1: the ordinary RSA of similarity.rsa
    ones = np.ones((1, n), dtype=int)
    np.testing.assert_allclose(rsa_bootstrap(mats, pairs, ones, dtype=np.float64)[0],
                               [rsa(data[a], data[b]) for a, b in pairs], atol=1e-12)
    counts = resample_counts(rng, n, 20)
    assert counts.shape == (20, n) and (counts.sum(axis=1) == n).all()
    exact = rsa_bootstrap(mats, pairs, counts, dtype=np.float64)
    fast = rsa_bootstrap(mats, pairs, counts)  # float32 products
    for b in range(len(counts)):
        np.testing.assert_allclose(exact[b], _brute_force_rsa(mats, pairs, counts[b]), atol=1e-12)
    np.testing.assert_allclose(fast, exact, atol=1e-4)
    # chunking changes nothing
    np.testing.assert_allclose(rsa_bootstrap(mats, pairs, counts, dtype=np.float64, max_bytes=1), exact, atol=1e-12)


def test_duplicates_do_not_inflate_rsa():
    """Two unrelated similarity structures: with copies counted as pairs, r would be pulled towards 1."""
    rng = np.random.default_rng(1)
    n = 40
    mats = np.stack([cosine_matrix(rng.standard_normal((n, 8))) for _ in range(2)])
    counts = resample_counts(rng, n, 400)
    r = rsa_bootstrap(mats, [(0, 1)], counts, dtype=np.float64)[:, 0]
    assert abs(np.mean(r)) < 0.05
    # the naive version that keeps copies: each copy pair has cosine 1 in both matrices
    items = np.repeat(np.arange(n), counts[0])
    i, j = np.triu_indices(n, 1)
    naive = np.corrcoef(mats[0][np.ix_(items, items)][i, j], mats[1][np.ix_(items, items)][i, j])[0, 1]
    assert naive > r[0] + 0.1


def test_percentile_ci_and_errors():
    values = np.arange(1001, dtype=float)[:, None] * np.array([1.0, 2.0])
    lo, hi = percentile_ci(values, 95)
    np.testing.assert_allclose(lo, [25, 50])
    np.testing.assert_allclose(hi, [975, 1950])
    assert np.isnan(percentile_ci(np.full((10, 1), np.nan))).all()
    with pytest.raises(LaminaError, match="between 0 and 100"):
        percentile_ci(values, 100)
    with pytest.raises(LaminaError, match="shape"):
        rsa_bootstrap(np.zeros((2, 3, 4)), [(0, 1)], np.ones((1, 3)))
    with pytest.raises(LaminaError, match="index"):
        rsa_bootstrap(np.zeros((2, 3, 3)), [(0, 2)], np.ones((1, 3)))
