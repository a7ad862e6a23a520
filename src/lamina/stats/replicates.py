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

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..errors import LaminaError
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
    if not 0 < level < 100:
        raise LaminaError(f"a confidence level is a percentage between 0 and 100, not {level}.")
    n = len(values)
    mean = values.mean(axis=0)
    half = sps.t.ppf(0.5 + level / 200, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def _t_stat(deviations: np.ndarray) -> np.ndarray:
    """One-sample t of ``deviations`` along axis -2 (replicates); 0/0 (all equal) gives 0, x/0 gives ±inf."""
    n = deviations.shape[-2]
    mean = deviations.mean(axis=-2)
    se = deviations.std(axis=-2, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / se
        return np.where(se > 0, t, np.where(mean == 0, 0.0, np.sign(mean) * np.inf))


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
    r = len(values)
    if 2 ** r <= n_flips:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=r)))
    else:
        if rng is None:
            raise LaminaError(f"{r} replicates have 2**{r} sign patterns, more than n_flips={n_flips}: give rng "
                              "to draw them.")
        signs = np.vstack([np.ones(r), rng.choice([1.0, -1.0], size=(n_flips - 1, r))])
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
