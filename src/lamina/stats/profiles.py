"""Profiles across models: where one leaves another's band, and the difference of two profiles.

A *profile* is one metric per layer with an optional interval per layer (the experiment's
replicate or bootstrap interval; NaN where it gives none). Two questions are asked of profiles:

* :func:`band_exits`: at which layers does a profile leave a reference profile's band (a trained
  model against its untrained control, which has the same layers)?
* :func:`profile_difference`: how do two models' profiles differ at the same relative depth, when
  their layers do not line up? Both are interpolated onto a common grid and the difference gets
  a pointwise interval.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import norm

from ..errors import LaminaError


def _arrays(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = out[0].shape
    if len(shape) != 1 or any(a.shape != shape for a in out):
        raise LaminaError(f"profile arrays must be 1-D and of one length, not {[a.shape for a in out]}.")
    return out


class BandExits(NamedTuple):
    """Per layer (shape ``(n_layers,)`` each).

    Attributes:
        tested: an interval was available (the profile's, the reference's, or both) and both values are finite.
        outside: tested and outside the band (see :func:`band_exits`).
        direction: +1 where the profile lies above the reference's band, -1 below, 0 elsewhere.
    """

    tested: np.ndarray
    outside: np.ndarray
    direction: np.ndarray


def band_exits(value, low, high, ref_value, ref_low, ref_high) -> BandExits:
    """Where a profile leaves a reference profile's band, layer by layer.

    The rule, per layer:

    * both have an interval: they do not overlap (``low > ref_high`` or ``high < ref_low``);
    * only the reference has one: ``value`` lies outside ``[ref_low, ref_high]``;
    * only the profile has one: ``ref_value`` lies outside ``[low, high]``;
    * neither has one: not tested (nothing says how far apart two single numbers must be).

    Non-overlap of two 95% intervals is a conservative test of a difference (it implies one at
    roughly the 0.6% level for independent normal estimates); a value outside one interval is not.

    Args:
        value, low, high: the profile and its interval, shape ``(n_layers,)`` (NaN: no interval).
        ref_value, ref_low, ref_high: the reference, same shape and layers.

    Returns:
        :class:`BandExits`.
    """
    value, low, high, ref_value, ref_low, ref_high = _arrays(value, low, high, ref_value, ref_low, ref_high)
    own = np.isfinite(low) & np.isfinite(high)
    ref = np.isfinite(ref_low) & np.isfinite(ref_high)
    finite = np.isfinite(value) & np.isfinite(ref_value)
    with np.errstate(invalid="ignore"):
        above = np.where(own & ref, low > ref_high,
                         np.where(ref, value > ref_high, np.where(own, ref_value < low, False)))
        below = np.where(own & ref, high < ref_low,
                         np.where(ref, value < ref_low, np.where(own, ref_value > high, False)))
    tested = finite & (own | ref)
    above, below = above & tested, below & tested
    return BandExits(tested, above | below, above.astype(int) - below.astype(int))


def runs(mask) -> list[tuple[int, int]]:
    """The runs of True in a 1-D boolean mask as inclusive ``(first, last)`` index pairs."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist()))


def interval_se(low, high, level: float = 95.0) -> np.ndarray:
    """The standard error a two-sided normal interval at ``level`` percent implies: width / (2 z).

    For a Student t interval from few replicates this overstates the standard error (its critical
    value is larger than z), and an asymmetric (percentile bootstrap) interval is treated as symmetric.
    """
    if not 0 < level < 100:
        raise LaminaError(f"a confidence level is a percentage between 0 and 100, not {level}.")
    low, high = _arrays(low, high)
    return (high - low) / (2 * norm.ppf(0.5 + level / 200))


def interpolate(depth, values, grid) -> np.ndarray:
    """Linear interpolation of ``values`` at ``depth`` (shape ``(n,)``, increasing) onto ``grid`` (``(G,)``).

    NaN outside ``[depth[0], depth[-1]]`` and wherever a neighbouring value is NaN (no extrapolation,
    no bridging over a missing layer).
    """
    depth, values = _arrays(depth, values)
    grid = np.asarray(grid, dtype=np.float64)
    if len(depth) == 0:
        return np.full(grid.shape, np.nan)
    if np.any(np.diff(depth) <= 0):
        raise LaminaError("profile depths must be strictly increasing.")
    if len(depth) == 1:
        return np.where(grid == depth[0], values[0], np.nan)
    # Interpolate value and "is NaN" separately: any weight on a NaN neighbour makes the point NaN.
    filled = np.interp(grid, depth, np.nan_to_num(values))
    touched = np.interp(grid, depth, np.isnan(values).astype(float)) > 0
    outside = (grid < depth[0]) | (grid > depth[-1])
    return np.where(touched | outside, np.nan, filled)


class ProfileDifference(NamedTuple):
    """The difference ``a - b`` of two profiles on a common grid (shape ``(G,)`` each).

    Attributes:
        grid: the relative depths; difference: ``a - b`` at each;
        ci_low, ci_high: the pointwise interval at ``level`` (NaN where either profile has no interval);
        a, b: the interpolated profiles; se: the difference's standard error.
    """

    grid: np.ndarray
    difference: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    a: np.ndarray
    b: np.ndarray
    se: np.ndarray


def common_grid(depth_a, depth_b, points: int | None = None) -> np.ndarray:
    """``points`` evenly spaced depths over the range both profiles cover (default: as many as the
    longer profile has layers, so the grid is no finer than the finer model)."""
    depth_a, depth_b = np.asarray(depth_a, dtype=float), np.asarray(depth_b, dtype=float)
    if len(depth_a) == 0 or len(depth_b) == 0:
        return np.empty(0)
    lo, hi = max(depth_a.min(), depth_b.min()), min(depth_a.max(), depth_b.max())
    if lo > hi:
        return np.empty(0)
    points = max(len(depth_a), len(depth_b)) if points is None else points
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise LaminaError(f"a profile grid needs at least 2 points, not {points!r}.")
    return np.linspace(lo, hi, int(points))


def profile_difference(depth_a, value_a, low_a, high_a, depth_b, value_b, low_b, high_b, *,
                       points: int | None = None, level: float = 95.0) -> ProfileDifference:
    """The difference of two profiles on a common relative-depth grid, with a pointwise interval.

    Each profile's value and standard error (:func:`interval_se` of its interval) are interpolated
    linearly onto :func:`common_grid`; the difference ``a - b`` gets the standard error
    ``sqrt(se_a² + se_b²)`` and a normal interval at ``level``.

    Why this is conservative rather than exact: interpolating the standard error linearly is its
    upper bound between two layers (Var(w x + (1 - w) y) <= (w se_x + (1 - w) se_y)², equality when
    neighbouring layers are perfectly correlated); adding the variances of a and b assumes the
    models' estimates are independent, when both were measured on the same texts (positively
    correlated, which makes the true variance of the difference smaller). Limits: the interval is
    pointwise, not simultaneous over the grid; between layers it describes the interpolated line,
    which no layer measured; asymmetric intervals are symmetrised.

    Args:
        depth_a, value_a, low_a, high_a: profile a, shape ``(n_a,)``, depths strictly increasing;
            low/high NaN where a layer has no interval.
        depth_b, value_b, low_b, high_b: profile b, shape ``(n_b,)``.
        points: grid size (default ``max(n_a, n_b)``); level: the intervals' level in percent.

    Returns:
        :class:`ProfileDifference`; every array has shape ``(points,)`` (empty when the depths do not overlap).
    """
    depth_a, value_a, low_a, high_a = _arrays(depth_a, value_a, low_a, high_a)
    depth_b, value_b, low_b, high_b = _arrays(depth_b, value_b, low_b, high_b)
    grid = common_grid(depth_a, depth_b, points)
    a, b = interpolate(depth_a, value_a, grid), interpolate(depth_b, value_b, grid)
    se_a = interpolate(depth_a, interval_se(low_a, high_a, level), grid)
    se_b = interpolate(depth_b, interval_se(low_b, high_b, level), grid)
    difference = a - b
    se = np.sqrt(se_a ** 2 + se_b ** 2)
    half = norm.ppf(0.5 + level / 200) * se
    return ProfileDifference(grid, difference, difference - half, difference + half, a, b, se)
