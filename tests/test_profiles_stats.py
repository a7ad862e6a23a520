"""stats.profiles: leaving a band, interpolation onto a common grid, differences of profiles with intervals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from lamina.errors import LaminaError
from lamina.stats.profiles import (band_exits, common_grid, interpolate, interval_se, profile_difference, runs)

NAN = np.nan
Z = norm.ppf(0.975)


def test_band_exits_rules():
    # layer 0: both intervals, overlapping; 1: both, disjoint above; 2: both, disjoint below;
    # 3: only the reference's interval, value above it; 4: only the profile's, reference below it;
    # 5: neither has an interval; 6: a NaN value.
    value = [1.0, 3.0, -3.0, 2.0, 1.0, 5.0, NAN]
    low = [0.5, 2.5, -3.5, NAN, 0.8, NAN, 0.0]
    high = [1.5, 3.5, -2.5, NAN, 1.2, NAN, 1.0]
    ref = [1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    ref_low = [0.9, -1.0, -1.0, -1.0, NAN, NAN, -1.0]
    ref_high = [1.6, 1.0, 1.0, 1.0, NAN, NAN, 1.0]
    exits = band_exits(value, low, high, ref, ref_low, ref_high)
    assert exits.tested.tolist() == [True, True, True, True, True, False, False]
    assert exits.outside.tolist() == [False, True, True, True, True, False, False]
    assert exits.direction.tolist() == [0, 1, -1, 1, 1, 0, 0]


def test_band_exits_needs_non_overlap_when_both_have_intervals():
    # The value lies outside the reference's band, but the two intervals overlap: not outside.
    exits = band_exits([2.0], [0.5], [3.0], [0.0], [-1.0], [1.0])
    assert exits.tested.all() and not exits.outside.any()


finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(arrays(float, 6, elements=finite), arrays(float, 6, elements=st.floats(0, 10)),
       arrays(float, 6, elements=finite), arrays(float, 6, elements=st.floats(0, 10)))
def test_band_exits_is_symmetric(value, half, ref, ref_half):
    """Swapping the profile and the reference flips the direction and keeps what is outside."""
    one = band_exits(value, value - half, value + half, ref, ref - ref_half, ref + ref_half)
    other = band_exits(ref, ref - ref_half, ref + ref_half, value, value - half, value + half)
    assert one.outside.tolist() == other.outside.tolist()
    assert one.direction.tolist() == (-other.direction).tolist()
    assert not (one.outside & ~one.tested).any()


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
    """Two models measuring the same linear profile at different depths differ by 0 everywhere on the grid."""
    depth_a, depth_b = (np.arange(n_a) + 0.5) / n_a, (np.arange(n_b) + 0.5) / n_b
    zero = np.zeros(n_a), np.zeros(n_b)
    diff = profile_difference(depth_a, slope * depth_a + intercept, zero[0], zero[0],
                              depth_b, slope * depth_b + intercept, zero[1], zero[1])
    assert len(diff.grid) == max(n_a, n_b)
    assert diff.grid[0] == pytest.approx(max(depth_a[0], depth_b[0]))
    assert diff.grid[-1] == pytest.approx(min(depth_a[-1], depth_b[-1]))
    np.testing.assert_allclose(diff.difference, 0, atol=1e-9)
    np.testing.assert_allclose(diff.ci_high - diff.ci_low, 0, atol=1e-12)  # zero-width inputs: zero-width CI


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
    # At a grid point that is a layer of both, the half-width is z * sqrt(se_a² + se_b²) from their intervals.
    se_a, se_b = interval_se(value_a - half_a, value_a + half_a), interval_se(value_b - half_b, value_b + half_b)
    assert ab.se.max() <= np.sqrt(se_a.max() ** 2 + se_b.max() ** 2) + 1e-9


def test_difference_at_shared_layers_is_exact():
    depth = np.array([0.25, 0.75])
    diff = profile_difference(depth, [1.0, 2.0], [0.0, 1.0], [2.0, 3.0], depth, [0.5, 0.0], [0.0, -1.0], [1.0, 1.0],
                              points=2)
    np.testing.assert_allclose(diff.difference, [0.5, 2.0])
    se = np.sqrt((2 / (2 * Z)) ** 2 + np.array([1, 2]) ** 2 / (2 * Z) ** 2)
    np.testing.assert_allclose(diff.ci_high - diff.difference, Z * se)


def test_profile_difference_edge_cases():
    no_ci = np.full(2, NAN)
    diff = profile_difference([0.0, 1.0], [1, 2], no_ci, no_ci, [0.0, 1.0], [0, 0], no_ci, no_ci)
    assert np.isnan(diff.ci_low).all() and np.allclose(diff.difference, [1, 2])
    disjoint = profile_difference([0.0, 0.2], [1, 2], [0, 0], [2, 2], [0.5, 1.0], [0, 0], [0, 0], [1, 1])
    assert disjoint.grid.size == 0
    assert len(common_grid([0, 1], [0, 1], points=11)) == 11
    with pytest.raises(LaminaError, match="at least 2 points"):
        common_grid([0, 1], [0, 1], points=1)
    with pytest.raises(LaminaError, match="1-D and of one length"):
        profile_difference([0, 1], [1], [0], [1], [0, 1], [1, 2], [0, 0], [1, 1])
    with pytest.raises(LaminaError, match="percentage"):
        interval_se([0], [1], level=100)
