"""stats.profiles: a trained profile against its controls' band, interpolation, family-wise differences of profiles."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from lamina.errors import LaminaError
from lamina.stats.profiles import (common_grid, control_band, interpolate, interpolation_allowance, interval_se,
                                   profile_difference, runs)

NAN = np.nan
Z = norm.ppf(0.975)
finite = st.floats(-1e3, 1e3, allow_nan=False)


def test_control_band_matches_a_t_prediction_interval():
    """One layer, no own errors: the band is mean ± t_{k-1}(1 − α/2) · s · sqrt(1 + 1/k), the textbook
    prediction interval for one more draw; a value exactly on its edge has p = α."""
    from scipy.stats import t as t_dist

    controls = np.array([[1.0], [2.0], [4.0]])
    band = control_band([10.0], [0.0], controls, np.zeros_like(controls), alpha=0.05)
    s = controls.std(ddof=1)
    half = t_dist.ppf(0.975, 2) * s * np.sqrt(1 + 1 / 3)
    assert band.tested.all() and band.df[0] == pytest.approx(2)
    np.testing.assert_allclose([band.low[0], band.high[0]], [7 / 3 - half, 7 / 3 + half])
    edge = control_band([7 / 3 + half], [0.0], controls, np.zeros_like(controls), alpha=0.05)
    assert edge.p[0] == pytest.approx(0.05)


def test_control_band_is_family_wise_and_skips_what_cannot_be_tested():
    rng = np.random.default_rng(0)
    controls = rng.normal(size=(4, 6))
    controls[:, 4] = 3.0  # constant across initialisations, exactly estimated: not tested
    value = controls.mean(axis=0)
    value[0] += 50  # far above at layer 0
    value[5] = NAN
    band = control_band(value, np.zeros(6), controls, np.zeros((4, 6)))
    assert band.tested.tolist() == [True, True, True, True, False, False]
    assert band.outside.tolist() == [True, False, False, False, False, False] and band.direction[0] == 1
    np.testing.assert_allclose(band.p_fw[:4], np.minimum(1, band.p[:4] * 4))  # Bonferroni over 4 tested layers
    one = control_band(value, np.zeros(6), controls[:1], np.zeros((1, 6)))  # one initialisation: no band
    assert not one.tested.any()
    own_error = control_band([1.0], [0.5], [[1.0], [1.0]], [[0.0], [0.0]])  # spread 0, but the own error counts
    assert own_error.tested.all() and own_error.df[0] == np.inf


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.floats(0.0, 3.0), st.integers(0, 2 ** 32 - 1))
def test_an_untrained_model_passed_as_trained_stays_in_its_band(k, n_layers, own_noise, seed):
    """Exchangeable profiles (the null): over many draws, the trained-as-untrained profile leaves the
    band anywhere in at most about alpha of them. Checked in aggregate per draw of settings."""
    rng = np.random.default_rng(seed)
    n = 200
    shared = np.cumsum(rng.normal(size=n_layers))  # the architecture's profile
    hits = 0
    for _ in range(n):
        init = rng.normal(size=(k + 1, n_layers)) + shared  # k + 1 initialisations
        se = np.full((k + 1, n_layers), own_noise)
        values = init + rng.normal(size=init.shape) * own_noise
        band = control_band(values[0], se[0], values[1:], se[1:])
        hits += bool(band.outside.any())
    assert hits <= 0.05 * n + 3 * np.sqrt(0.05 * 0.95 * n) + 1


def test_runs():
    assert runs([False, True, True, False, True]) == [(1, 2), (4, 4)]
    assert runs([]) == [] and runs([True]) == [(0, 0)]


def test_interpolate():
    depth = np.array([0.0, 0.5, 1.0])
    assert np.allclose(interpolate(depth, [0.0, 1.0, 4.0], [0.0, 0.25, 0.5, 0.75, 1.0]), [0, 0.5, 1, 2.5, 4])
    out = interpolate(depth, [0.0, NAN, 4.0], [0.0, 0.25, 1.0])
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2] == 4.0  # no bridging over a missing layer
    assert np.isnan(interpolate(depth, [1, 2, 3], [-0.1, 1.1])).all()  # no extrapolation
    with pytest.raises(LaminaError, match="strictly increasing"):
        interpolate([0.0, 0.0], [1, 2], [0.0])


@given(st.floats(-5, 5), st.floats(-5, 5), st.integers(2, 40), st.integers(2, 40))
def test_linear_profiles_interpolate_exactly(slope, intercept, n_a, n_b):
    """Two models measuring the same linear profile at different depths differ by 0 at every depth of the
    shallower one, with no interpolation allowance (a line has no curvature)."""
    depth_a, depth_b = (np.arange(n_a) + 0.5) / n_a, (np.arange(n_b) + 0.5) / n_b
    zero = np.zeros(n_a), np.zeros(n_b)
    diff = profile_difference(depth_a, slope * depth_a + intercept, zero[0], zero[0],
                              depth_b, slope * depth_b + intercept, zero[1], zero[1])
    anchor = depth_a if n_a <= n_b else depth_b
    lo, hi = max(depth_a[0], depth_b[0]), min(depth_a[-1], depth_b[-1])
    np.testing.assert_allclose(diff.grid, anchor[(anchor >= lo - 1e-12) & (anchor <= hi + 1e-12)])
    np.testing.assert_allclose(diff.difference, 0, atol=1e-9)
    np.testing.assert_allclose(diff.allowance, 0, atol=1e-9)
    np.testing.assert_allclose(diff.ci_high - diff.ci_low, 0, atol=1e-8)  # zero-width inputs: zero-width CI


def test_interpolation_allowance_bounds_the_error_of_a_parabola():
    depth = np.linspace(0, 1, 11)
    grid = np.linspace(0, 1, 101)
    f = lambda x: 3 * x ** 2  # noqa: E731
    error = np.abs(interpolate(depth, f(depth), grid) - f(grid))
    allowance = interpolation_allowance(depth, f(depth), grid)
    assert (error <= allowance + 1e-12).all() and allowance.max() > 0
    assert np.allclose(interpolation_allowance(depth, f(depth), depth), 0)  # none on a layer


@settings(max_examples=50)
@given(arrays(float, 5, elements=finite), arrays(float, 5, elements=st.floats(0.01, 10)),
       arrays(float, 7, elements=finite), arrays(float, 7, elements=st.floats(0.01, 10)))
def test_difference_interval(value_a, half_a, value_b, half_b):
    depth_a, depth_b = np.arange(5) / 4, (np.arange(7) + 0.5) / 7
    ab = profile_difference(depth_a, value_a, value_a - half_a, value_a + half_a,
                            depth_b, value_b, value_b - half_b, value_b + half_b)
    ba = profile_difference(depth_b, value_b, value_b - half_b, value_b + half_b,
                            depth_a, value_a, value_a - half_a, value_a + half_a)
    np.testing.assert_allclose(ab.grid, ba.grid)
    np.testing.assert_allclose(ab.difference, -ba.difference, atol=1e-9)
    assert (ab.ci_low <= ab.difference).all() and (ab.difference <= ab.ci_high).all()
    se_a, se_b = interval_se(value_a - half_a, value_a + half_a), interval_se(value_b - half_b, value_b + half_b)
    assert ab.se.max() <= np.sqrt(se_a.max() ** 2 + se_b.max() ** 2) + 1e-9
    assert (ab.excludes_zero == ((ab.ci_low > 0) | (ab.ci_high < 0))).all()


def test_difference_at_shared_layers_is_bonferroni_over_the_grid():
    depth = np.array([0.25, 0.75])
    diff = profile_difference(depth, [1.0, 2.0], [0.0, 1.0], [2.0, 3.0], depth, [0.5, 0.0], [0.0, -1.0], [1.0, 1.0])
    np.testing.assert_allclose(diff.difference, [0.5, 2.0])
    se = np.sqrt((2 / (2 * Z)) ** 2 + np.array([1, 2]) ** 2 / (2 * Z) ** 2)
    np.testing.assert_allclose(diff.ci_high - diff.difference, norm.ppf(1 - 0.05 / 4) * se)


def test_identical_smooth_profiles_at_30_and_18_layers_are_not_called_different():
    """Issue 25's case: the same peaked profile sampled at 30 and 18 layers with noise; the family-wise
    decision calls them different anywhere in at most about alpha of the simulations (pointwise on an
    interpolated grid it was 86%)."""
    rng = np.random.default_rng(1)
    f = lambda x: np.exp(-((x - 0.6) / 0.12) ** 2)  # noqa: E731
    da, db = (np.arange(30) + 0.5) / 30, (np.arange(18) + 0.5) / 18
    se = 0.05
    n, hits = 400, 0
    for _ in range(n):
        va, vb = f(da) + rng.normal(0, se, 30), f(db) + rng.normal(0, se, 18)
        d = profile_difference(da, va, va - Z * se, va + Z * se, db, vb, vb - Z * se, vb + Z * se)
        hits += bool(d.excludes_zero.any())
    assert hits / n <= 0.08


def test_profile_difference_edge_cases():
    no_ci = np.full(2, NAN)
    diff = profile_difference([0.0, 1.0], [1, 2], no_ci, no_ci, [0.0, 1.0], [0, 0], no_ci, no_ci)
    assert np.isnan(diff.ci_low).all() and np.allclose(diff.difference, [1, 2]) and not diff.excludes_zero.any()
    disjoint = profile_difference([0.0, 0.2], [1, 2], [0, 0], [2, 2], [0.5, 1.0], [0, 0], [0, 0], [1, 1])
    assert disjoint.grid.size == 0
    assert len(common_grid([0, 1], [0, 1], points=11)) == 11
    with pytest.raises(LaminaError, match="at least 2 points"):
        common_grid([0, 1], [0, 1], points=1)
    with pytest.raises(LaminaError, match="1-D and of one length"):
        profile_difference([0, 1], [1], [0], [1], [0, 1], [1, 2], [0, 0], [1, 1])
    with pytest.raises(LaminaError, match="percentage"):
        interval_se([0], [1], level=100)
