"""Inference across replicates: the text sample, not the token, as the unit.

Each replicate (a window of a book, a passage, a subset of HellaSwag contexts) gives one value per
test (e.g. per layer). Tokens within one text depend on each other; replicates drawn from disjoint
text do much less, so they are the unit of inference here:

* a t interval and a one-sample t test of the replicates' mean against a null value, per test;
* across tests (layers), either Benjamini–Hochberg or Holm on those p-values, or a family-wise max-|t|
  test whose null flips the sign of each replicate's deviation from the null value (all layers of
  one replicate flip together, so the dependence between layers is kept). With R replicates there
  are 2**R sign patterns: they are enumerated exactly when that is at most ``n_flips``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..errors import LaminaError, check_level
from .multiple import benjamini_hochberg, holm

ALTERNATIVES = ("two-sided", "greater", "less")
CORRECTIONS = ("bh", "holm", "max", "none")


@dataclass(frozen=True)
class AcrossReplicates:
    """Per test (shape ``(n_tests,)`` each): the replicates' mean, its t interval, t statistic and p-values.

    Attributes:
        n: number of replicates (R); ``level``: interval level in percent.
        p: uncorrected one-sample t-test p-values; ``p_corrected``: after ``correction``.
    """

    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    t: np.ndarray
    p: np.ndarray
    p_corrected: np.ndarray
    n: int
    level: float
    correction: str


def _check(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise LaminaError(f"replicate values must have shape (n_replicates, n_tests), not {values.shape}.")
    if len(values) < 2:
        raise LaminaError(f"inference across replicates needs at least 2 replicates, not {len(values)}.")
    if not np.isfinite(values).all():
        raise LaminaError("replicate values contain NaN or inf.")
    return values


def t_interval(values, level: float = 95.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student t interval of the replicates, per test.

    Args:
        values: shape ``(R, n_tests)`` (or ``(R,)``), one row per replicate.

    Returns:
        ``(mean, low, high)``, each of shape ``(n_tests,)``.
    """
    values = _check(values)
    check_level(level)
    n = len(values)
    mean = values.mean(axis=0)
    half = sps.t.ppf(0.5 + level / 200, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def skew_t_interval(values, level: float = 95.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and skewness-corrected t interval of the replicates, per test (Hall 1992, "On the removal of skewness
    by transformation", JRSS B 54: 221–228).

    The t statistic T = (mean − μ) / (s / √R) of a skewed variable is itself skewed (a right-skewed variable's T has
    a long left tail: a low mean comes with a low s), so the symmetric t interval misses on the long side more
    often than ``level`` says. Hall's transformation g(T) = T + a T² + a² T³ / 3 + b, with a = γ / (3√R),
    b = γ / (6√R) and γ the sample skewness (third central moment over s³, s with R − 1), is monotone and removes
    the first-order skewness; the interval is ``[mean − g⁻¹(c) s/√R, mean − g⁻¹(−c) s/√R]`` with c the Student t
    quantile on R − 1 df and g⁻¹(y) = ((1 + 3a(y − b))^(1/3) − 1) / a. No skewness (γ = 0, e.g. 2 replicates)
    gives :func:`t_interval`'s interval (up to rounding); a right-skewed test's interval reaches further up than
    down. On values as skewed as corrupted p(answer) across prompts (log SD about 1) with 12 replicates it misses the
    mean about 9% of the time where the t interval misses 14% (docs/calibration.md, trace): better, not exact.

    Args:
        values: shape ``(R, n_tests)`` (or ``(R,)``), one row per replicate.

    Returns:
        ``(mean, low, high)``, each of shape ``(n_tests,)``; a test whose values are all equal: its mean three times.
    """
    values = _check(values)
    check_level(level)
    n = len(values)
    mean = values.mean(axis=0)
    sd = values.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(sd > 0, ((values - mean) ** 3).mean(axis=0) / sd ** 3, 0.0)
    a, b = gamma / (3 * np.sqrt(n)), gamma / (6 * np.sqrt(n))
    c = sps.t.ppf(0.5 + level / 200, n - 1)

    def inverse(y):  # ((1 + 3a(y − b))^(1/3) − 1) / a, written without dividing by a (stable as a → 0)
        r = np.cbrt(1 + 3 * a * (y - b))
        return 3 * (y - b) / (r * r + r + 1)

    return mean, mean - inverse(c) * sd / np.sqrt(n), mean - inverse(-c) * sd / np.sqrt(n)


def _t_stat(deviations: np.ndarray) -> np.ndarray:
    """One-sample t of ``deviations`` along axis -2 (replicates); 0/0 (all equal) gives 0, x/0 gives ±inf."""
    n = deviations.shape[-2]
    mean = deviations.mean(axis=-2)
    se = deviations.std(axis=-2, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / se
        return np.where(se > 0, t, np.where(mean == 0, 0.0, np.sign(mean) * np.inf))


@functools.lru_cache(maxsize=32)
def _all_signs(r: int) -> np.ndarray:
    """Every one of the ``2**r`` sign patterns, identity first (read-only: cached)."""
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=r)))
    signs.flags.writeable = False
    return signs


def _sign_patterns(r: int, n_flips: int, rng: np.random.Generator | None) -> np.ndarray:
    """``(n_patterns, r)`` signs: all ``2**r`` patterns when that is at most ``n_flips``, else the identity and
    ``n_flips - 1`` drawn from ``rng``."""
    if 2 ** r <= n_flips:
        return _all_signs(r)
    if rng is None:
        raise LaminaError(f"{r} replicates have 2**{r} sign patterns, more than n_flips={n_flips}: give rng "
                          "to draw them.")
    return np.vstack([np.ones(r), rng.choice([1.0, -1.0], size=(n_flips - 1, r))])


def simultaneous_t_band(values, level: float = 95.0, *, n_flips: int = 10_000,
                        rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mean and a simultaneous band across tests: ``mean ± c · s/√R`` at every test, with one critical value ``c``
    chosen so that the band covers every test's mean at once with probability ``level``.

    A test picked after looking at the data (the layer of the largest mean, the first layer past a threshold) is
    not covered ``level`` of the time by its own t interval: the choice favours a layer whose estimate erred
    upwards (the winner's curse). A band that holds for every test at once holds for the chosen one too, whatever
    the rule. ``c`` is the ``level`` quantile of max over tests of |t| of the replicates' deviations from their mean
    with each replicate's sign flipped (every test of one replicate together, so the dependence between tests is
    kept, as in :func:`sign_flip_max_t`), never less than the Student t quantile (the band is never narrower
    than the pointwise interval) and never more than the Bonferroni one (the t quantile at 1 − (1 − level) / (2 ·
    n_tests)), which holds for any dependence between tests wherever the t interval holds. Flipped samples with no
    spread (2 replicates flipped to one sign; a test whose values are all equal) count as |t| = 0; a test whose
    values are all equal has a band of width 0. With few replicates the 2**R patterns make a coarse distribution: a
    pattern that leaves the deviations nearly equal has a huge |t|, so with 4 or 5 replicates and many tests ``c`` is
    Bonferroni's.

    Args:
        values: shape ``(R, n_tests)``, one row per replicate, R >= 2, finite.
        n_flips: all ``2**R`` sign patterns when that is not more (R <= 13 at the default), else the identity plus
            ``n_flips - 1`` drawn from ``rng``.

    Returns:
        ``(mean, low, high, c)``: arrays of shape ``(n_tests,)`` and the critical value.
    """
    values = _check(values)
    check_level(level)
    r = len(values)
    mean = values.mean(axis=0)
    deviations = values - mean
    signs = _sign_patterns(r, n_flips, rng)
    flipped = signs @ deviations / r  # (patterns, tests): the mean of each flipped sample
    # a flipped sample's sum of squares is the deviations' own; its variance follows without forming it
    squares = np.sum(deviations ** 2, axis=0)
    var = (squares - r * flipped ** 2) / (r - 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread (up to rounding): |t| counted as 0
        t = np.where(var > 1e-12 * squares, np.abs(flipped) / np.sqrt(var / r), 0.0)
    pointwise = float(sps.t.ppf(0.5 + level / 200, r - 1))
    bonferroni = float(sps.t.ppf(1 - (1 - level / 100) / (2 * values.shape[1]), r - 1))
    c = min(max(float(np.quantile(t.max(axis=1), level / 100)), pointwise), bonferroni)
    half = c * values.std(axis=0, ddof=1) / np.sqrt(r)
    return mean, mean - half, mean + half, c


def sign_flip_max_t(values, *, null: float = 0.0, alternative: str = "two-sided", n_flips: int = 10_000,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Family-wise p-values across tests by the max-t over sign flips of whole replicates.

    Under H0 (each test's replicate values are symmetric about ``null``), flipping the sign of a
    replicate's deviations leaves their joint distribution unchanged; flipping all of a replicate's
    tests together keeps their dependence. ``p_l = #{flips: max_k T_k >= T_l} / n_flips``, where T is
    t, −t or |t| for ``alternative`` greater, less, two-sided; the identity flip is one of them, so p
    is never 0.

    Args:
        values: shape ``(R, n_tests)``.
        n_flips: at most this many sign patterns: all ``2**R`` when that is not more, else the
            identity plus ``n_flips - 1`` drawn from ``rng``.

    Returns:
        Shape ``(n_tests,)``.
    """
    values = _check(values)
    if alternative not in ALTERNATIVES:
        raise LaminaError(f"alternative must be one of {', '.join(ALTERNATIVES)}, not {alternative!r}.")
    deviations = values - null
    signs = _sign_patterns(len(values), n_flips, rng)
    t = _t_stat(signs[:, :, None] * deviations[None])  # (n_flips, n_tests); row 0 is the identity
    oriented = {"two-sided": np.abs(t), "greater": t, "less": -t}[alternative]
    max_null = oriented.max(axis=1)
    return (max_null[:, None] >= oriented[0][None, :]).mean(axis=0)


def across_replicates(values, *, null: float = 0.0, alternative: str = "two-sided", level: float = 95.0,
                      correction: str = "bh", n_flips: int = 10_000,
                      rng: np.random.Generator | None = None) -> AcrossReplicates:
    """Mean, t interval and one-sample t test against ``null`` per test, replicates as the unit.

    Args:
        values: shape ``(R, n_tests)``: one value per replicate and test (e.g. per layer), R >= 2.
        null: the value under H0 (0 for a difference; a null mean for a standardised statistic).
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        level: interval level in percent.
        correction: across tests: ``"bh"`` (Benjamini–Hochberg), ``"holm"`` (family-wise), ``"max"``
            (family-wise, :func:`sign_flip_max_t`) or ``"none"``.

    Returns:
        :class:`AcrossReplicates`.
    """
    values = _check(values)
    if alternative not in ALTERNATIVES:
        raise LaminaError(f"alternative must be one of {', '.join(ALTERNATIVES)}, not {alternative!r}.")
    if correction not in CORRECTIONS:
        raise LaminaError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}.")
    mean, low, high = t_interval(values, level)
    t = _t_stat(values - null)
    df = len(values) - 1
    p = {"two-sided": 2 * sps.t.sf(np.abs(t), df), "greater": sps.t.sf(t, df), "less": sps.t.cdf(t, df)}[alternative]
    if correction == "bh":
        corrected = benjamini_hochberg(p)
    elif correction == "holm":
        corrected = holm(p)
    elif correction == "max":
        corrected = sign_flip_max_t(values, null=null, alternative=alternative, n_flips=n_flips, rng=rng)
    else:
        corrected = p.copy()
    return AcrossReplicates(mean=mean, ci_low=low, ci_high=high, t=t, p=p, p_corrected=corrected,
                            n=len(values), level=level, correction=correction)
