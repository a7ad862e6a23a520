"""Profiles across models: where one leaves another's band, and the difference of two profiles.

A *profile* is one metric per layer with an optional interval per layer (the experiment's
replicate or bootstrap interval; NaN where it gives none). Two questions are asked of profiles:

* :func:`control_band`: at which layers does a trained model leave the band of its untrained
  controls (several initialisations of the same architecture, same layers)? Family-wise over layers.
* :func:`profile_difference`: how do two models' profiles differ at the same relative depth, when
  their layers do not line up? The shallower model's own layers are the grid, the deeper model is
  interpolated onto it with its interpolation error carried, and "differs" is decided
  family-wise over the grid.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import norm

from ..errors import LaminaError, check_level


def _arrays(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = out[0].shape
    if len(shape) != 1 or any(a.shape != shape for a in out):
        raise LaminaError(f"profile arrays must be 1-D and of one length, not {[a.shape for a in out]}.")
    return out


class ControlBand(NamedTuple):
    """A trained profile against the band of its untrained controls, per layer (shape ``(n_layers,)``).

    Attributes:
        center: the controls' mean; low, high: the family-wise prediction band for one more
            initialisation (NaN where not tested); half: its half-width.
        t: ``(value − center) / sqrt(V)`` (see :func:`control_band`); df: its degrees of freedom
            (``k − 1``; infinite where the controls agree exactly); p: two-sided per-layer p; p_fw:
            Bonferroni over the tested layers.
        tested: the layer has a finite value, at least two control values and ``V > 0``.
        outside: tested and ``p_fw <= alpha`` (the value lies outside the band); direction: +1 above,
            −1 below, 0 elsewhere; effect: ``value − center``.
    """

    center: np.ndarray
    low: np.ndarray
    high: np.ndarray
    half: np.ndarray
    t: np.ndarray
    df: np.ndarray
    p: np.ndarray
    p_fw: np.ndarray
    tested: np.ndarray
    outside: np.ndarray
    direction: np.ndarray
    effect: np.ndarray


def control_band(value, se, control_values, control_se, *, alpha: float = 0.05) -> ControlBand:
    """Where a trained profile leaves the band of its untrained controls, family-wise over layers.

    "Leaves its controls' band" is a statement about the architecture at initialisation: the
    trained model's value is not what another initialisation would give. So the band is a
    **prediction band for one more initialisation**, from ``k`` controls (independent init seeds of
    the same architecture), and the variance of ``value − center`` at a layer is

        V = max(s² (1 + 1/k), se² + mean(control_se²) / k)

    with ``s²`` the controls' between-seed variance (``k − 1`` degrees of freedom) and ``se`` /
    ``control_se`` the runs' own standard errors (from their intervals; 0 where they give none).
    The controls ran on the same texts as the trained model, so their spread already holds their
    estimation noise, and ``s² (1 + 1/k)`` is the exact prediction variance of one more
    initialisation; the own errors are a floor for a metric the initialisations agree on. ``t`` is
    referred to Student's t with ``k − 1`` degrees of freedom (the exact prediction interval; the
    floor only widens it), and a layer is outside when its Bonferroni-adjusted p over
    the tested layers is at most ``alpha``: the chance that an untrained model passed as the trained
    one leaves the band anywhere is at most ``alpha`` (measured: docs/calibration.md). Its null value,
    ``value − center = 0``, does not depend on the layer. Layers where ``V = 0`` (a metric constant
    across initialisations and exactly estimated) and layers with fewer than two control values are
    not tested.

    Args:
        value, se: the trained profile and its standard error, shape ``(n_layers,)`` (se NaN or 0: none).
        control_values, control_se: shape ``(k, n_layers)``, one row per control seed.
        alpha: the family-wise level.

    Returns:
        :class:`ControlBand`.
    """
    from scipy.stats import t as t_dist

    value, se = _arrays(value, se)
    controls = np.atleast_2d(np.asarray(control_values, dtype=np.float64))
    control_se = np.atleast_2d(np.asarray(control_se, dtype=np.float64))
    if controls.shape[1:] != value.shape or control_se.shape != controls.shape:
        raise LaminaError(f"control profiles must have shape (k, {len(value)}), not {controls.shape} and "
                          f"{control_se.shape}.")
    if not 0 < alpha < 1:
        raise LaminaError(f"alpha must be between 0 and 1, not {alpha}.")
    finite = np.isfinite(controls)
    k = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.where(k > 0, np.nansum(controls, axis=0) / np.maximum(k, 1), np.nan)
        s2 = np.where(k > 1, np.nansum((controls - center) ** 2, axis=0) / np.maximum(k - 1, 1), np.nan)
        between = s2 * (1 + 1 / np.maximum(k, 1))
        own = np.nan_to_num(se) ** 2 + np.nansum(np.where(finite, np.nan_to_num(control_se) ** 2, 0), axis=0) \
            / np.maximum(k, 1) ** 2
        # The controls ran on the same texts as the trained model, so their spread already holds their
        # estimation noise: s² (1 + 1/k) is the exact prediction variance for one more initialisation.
        # The runs' own errors are a floor only, for a metric the initialisations agree on (s² ≈ 0).
        variance = np.fmax(between, own)
        tested = np.isfinite(value) & (k > 1) & (variance > 0)
        # k − 1 degrees of freedom, not Welch–Satterthwaite's: when s² is small by chance the latter
        # grows without bound exactly where a rejection happens (measured: 12% at α 0.05 with k = 2).
        df = np.where(between > 0, np.maximum(k - 1, 1).astype(float), np.inf)
        t = (value - center) / np.sqrt(variance)
    n_tested = int(tested.sum())
    p = np.where(tested, 2 * t_dist.sf(np.abs(np.where(tested, t, 0.0)), np.where(tested, df, 1.0)), np.nan)
    p_fw = np.where(tested, np.minimum(1.0, p * max(n_tested, 1)), np.nan)
    q = t_dist.ppf(1 - alpha / (2 * max(n_tested, 1)), np.where(tested, df, 1.0))
    half = np.where(tested, q * np.sqrt(np.where(tested, variance, 0.0)), np.nan)
    with np.errstate(invalid="ignore"):
        outside = tested & (p_fw <= alpha)
    effect = value - center
    direction = np.where(outside, np.sign(effect), 0).astype(int)
    return ControlBand(center, center - half, center + half, half, np.where(tested, t, np.nan),
                       np.where(tested, df, np.nan), p, p_fw, tested, outside, direction, effect)


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
    check_level(level)
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
        ci_low, ci_high: the simultaneous interval over the grid at family-wise level ``1 − alpha``,
            widened by the interpolation allowance (NaN where either profile has no interval);
        a, b: the profiles on the grid; se: the difference's standard error; allowance: the bound on
            linear interpolation's error added to each side; excludes_zero: the interval excludes 0.
    """

    grid: np.ndarray
    difference: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    a: np.ndarray
    b: np.ndarray
    se: np.ndarray
    allowance: np.ndarray
    excludes_zero: np.ndarray


def common_grid(depth_a, depth_b, points: int | None = None) -> np.ndarray:
    """The depths at which two profiles are compared: by default the layers of the profile with fewer
    layers (``a`` on a tie) that lie within the depths the other covers, so one of the two is never
    interpolated and no depth is counted that neither model measured; ``points``: that many evenly
    spaced depths over the common range instead (both then interpolated)."""
    depth_a, depth_b = np.asarray(depth_a, dtype=float), np.asarray(depth_b, dtype=float)
    if len(depth_a) == 0 or len(depth_b) == 0:
        return np.empty(0)
    lo, hi = max(depth_a.min(), depth_b.min()), min(depth_a.max(), depth_b.max())
    if lo > hi:
        return np.empty(0)
    if points is None:
        anchor = depth_a if len(depth_a) <= len(depth_b) else depth_b
        return anchor[(anchor >= lo - 1e-12) & (anchor <= hi + 1e-12)]
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise LaminaError(f"a profile grid needs at least 2 points, not {points!r}.")
    return np.linspace(lo, hi, int(points))


def interpolation_allowance(depth, values, grid) -> np.ndarray:
    """A bound on linear interpolation's error at each grid point, shape ``(G,)``: 0 on a layer, and
    between layers ``j`` and ``j + 1`` at fraction ``w`` ``w (1 − w) / 2 · max |Δ²|`` over the two
    layers, with ``Δ²`` the profile's second difference (the error of linear interpolation of a
    smooth curve is ``w (1 − w) h² f'' / 2``). Measured second differences include noise, which
    makes the allowance larger, never smaller."""
    depth, values = _arrays(depth, values)
    grid = np.asarray(grid, dtype=np.float64)
    if len(depth) < 3:
        return np.zeros(grid.shape)
    d2 = np.abs(values[2:] - 2 * values[1:-1] + values[:-2])
    curvature = np.concatenate([[d2[0]], d2, [d2[-1]]])  # per layer; the ends take their neighbour's
    j = np.clip(np.searchsorted(depth, grid, side="right") - 1, 0, len(depth) - 2)
    w = np.clip((grid - depth[j]) / (depth[j + 1] - depth[j]), 0.0, 1.0)
    return w * (1 - w) / 2 * np.fmax(curvature[j], curvature[j + 1])


def profile_difference(depth_a, value_a, low_a, high_a, depth_b, value_b, low_b, high_b, *,
                       points: int | None = None, alpha: float = 0.05, level: float = 95.0) -> ProfileDifference:
    """The difference of two profiles at the same relative depths, decided family-wise over depth.

    Grid: :func:`common_grid` (by default the shallower model's own layers within the common range).
    Each profile's value and standard error (:func:`interval_se` of its interval at ``level``) are
    linearly interpolated onto the grid; the difference ``a − b`` gets ``se = sqrt(se_a² + se_b²)``
    and a simultaneous interval ``difference ± (allowance + z_{1 − alpha/(2G)} se)``: Bonferroni
    over the ``G`` grid points with an interval, widened by :func:`interpolation_allowance` of each
    profile. "The profiles differ at depth x" is then a family-wise statement: two models with the
    same smooth profile, sampled at different depths, are called different anywhere with
    probability at most ``alpha`` (measured: docs/calibration.md).

    Conservative on purpose: linearly interpolated standard errors are an upper bound between two
    layers, adding the two variances treats the models as independent when they saw the same texts,
    and the allowance bounds the curvature with noisy second differences. Asymmetric intervals are
    symmetrised.

    Args:
        depth_a, value_a, low_a, high_a: profile a, shape ``(n_a,)``, depths strictly increasing;
            low/high NaN where a layer has no interval.
        depth_b, value_b, low_b, high_b: profile b, shape ``(n_b,)``.
        points: an evenly spaced grid of this many points instead of the shallower model's layers.
        alpha: family-wise level of the decision; level: the level (percent) of the given intervals.

    Returns:
        :class:`ProfileDifference`; every array has shape ``(G,)`` (empty when the depths do not overlap).
    """
    depth_a, value_a, low_a, high_a = _arrays(depth_a, value_a, low_a, high_a)
    depth_b, value_b, low_b, high_b = _arrays(depth_b, value_b, low_b, high_b)
    if not 0 < alpha < 1:
        raise LaminaError(f"alpha must be between 0 and 1, not {alpha}.")
    grid = common_grid(depth_a, depth_b, points)
    a, b = interpolate(depth_a, value_a, grid), interpolate(depth_b, value_b, grid)
    se_a = interpolate(depth_a, interval_se(low_a, high_a, level), grid)
    se_b = interpolate(depth_b, interval_se(low_b, high_b, level), grid)
    allowance = (interpolation_allowance(depth_a, value_a, grid) if len(grid) else np.empty(0)) + \
        (interpolation_allowance(depth_b, value_b, grid) if len(grid) else np.empty(0))
    difference = a - b
    se = np.sqrt(se_a ** 2 + se_b ** 2)
    m = max(int(np.isfinite(se).sum()), 1)
    half = allowance + norm.ppf(1 - alpha / (2 * m)) * se
    low, high = difference - half, difference + half
    with np.errstate(invalid="ignore"):
        excludes = (low > 0) | (high < 0)
    return ProfileDifference(grid, difference, low, high, a, b, se, allowance, excludes)
