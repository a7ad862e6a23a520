"""Autoregressions of series over several passages, with ordinary or Newey–West (HAC) standard errors.

Each passage of text gives one series per layer (e.g. attention-output log norms, shape
``(n_layers, T)``). :func:`lagged_fits` regresses ``y[t]`` on ``y[t - lag]`` with the targets of every
passage stacked into one least-squares fit per layer; the lags never reach across a passage
boundary. With one passage and ``se="ols"`` it is :func:`lamina.stats.regression.lagged_ols`.

Standard errors:

* ``"ols"``: the classical ones (errors independent with one variance), as the seed notebook;
* ``"hac"``: Newey–West (Bartlett kernel) within each passage, robust to residual
  autocorrelation up to ``maxlags`` tokens and to unequal variances (statsmodels ``hac-panel``
  with the passages as groups, with its small-sample factor n / (n − k)); t tests on the residual
  degrees of freedom. ``maxlags`` defaults to Newey and West's (1994) ``floor(4 (T / 100) ** (2/9))``
  for T regression rows per passage.

:func:`ljung_box` tests the residuals of each fit for autocorrelation, passage by passage, summed.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from ..errors import LaminaError
from .regression import lagged_design

SE_KINDS = ("ols", "hac")


def newey_west_lags(n_rows: int) -> int:
    """Newey–West's rule of thumb for the HAC lag truncation: ``floor(4 (n / 100) ** (2/9))``, at least 1."""
    return max(1, int(np.floor(4 * (n_rows / 100) ** (2 / 9))))


def _designs(passages, lags, first):
    """Stacked targets ``(n_series, rows)``, predictors ``(n_series, rows, k)`` and passage of each row."""
    ys, xs, groups = [], [], []
    for index, series in enumerate(passages):
        pieces = [lagged_design(row, lags=lags, first=first) for row in series]
        ys.append(np.stack([y for y, _ in pieces]))
        xs.append(np.stack([x for _, x in pieces]))
        groups.append(np.full(ys[-1].shape[1], index))
    return np.concatenate(ys, axis=1), np.concatenate(xs, axis=1), np.concatenate(groups)


def _check(passages) -> list[np.ndarray]:
    if isinstance(passages, np.ndarray) and passages.ndim == 2:
        passages = [passages]
    passages = [np.asarray(p, dtype=np.float64) for p in passages]
    if not passages or any(p.ndim != 2 for p in passages):
        raise LaminaError("passages must be a list of arrays of shape (n_series, T).")
    if len({p.shape[0] for p in passages}) != 1:
        raise LaminaError(f"every passage needs the same number of series, not {[p.shape[0] for p in passages]}.")
    if not all(np.isfinite(p).all() for p in passages):
        raise LaminaError("the series contain NaN or inf.")
    return passages


def lagged_fits(passages, lags=(1, 2), first: int = 3, *, se: str = "ols",
                maxlags: int | None = None) -> dict[str, np.ndarray]:
    """One autoregression per series over all passages stacked, one intercept per passage.

    Args:
        passages: a list of arrays of shape ``(n_series, T_p)`` (one per passage; the same series,
            e.g. layers, in each), or one such array.
        lags: which earlier steps predict ``y[t]``.
        first: first target index within each passage.
        se: ``"ols"`` or ``"hac"`` (module docstring).
        maxlags: HAC truncation lag; None: :func:`newey_west_lags` of the mean rows per passage.

    Returns:
        ``intercept`` ``(n_series,)`` (the mean of the passages' intercepts); ``beta``, ``se``, ``p``
        ``(n_series, len(lags))`` (two-sided t tests); ``r2`` ``(n_series,)`` (within passages:
        1 − residual / within-passage sum of squares, so the passages' intercepts explain none of it);
        ``resid`` ``(n_series, rows)``; ``groups`` ``(rows,)`` passage of each row; ``maxlags`` (int; 0
        for ``"ols"``).
    """
    import statsmodels.api as sm

    if se not in SE_KINDS:
        raise LaminaError(f"se must be one of {', '.join(SE_KINDS)}, not {se!r}.")
    passages = _check(passages)
    lags = tuple(int(lag) for lag in lags)
    y, X, groups = _designs(passages, lags, first)
    if maxlags is None:
        maxlags = newey_west_lags(y.shape[1] // len(passages))
    if se == "hac" and (int(maxlags) != maxlags or maxlags < 1):
        raise LaminaError(f"maxlags must be a positive integer, not {maxlags!r}.")
    dummies = (groups[:, None] == np.arange(len(passages))[None]).astype(np.float64)  # one intercept per passage
    fits = []
    for target, predictors in zip(y, X):
        model = sm.OLS(target, np.concatenate([dummies, predictors], axis=1))
        if se == "hac":
            fits.append(model.fit(cov_type="hac-panel", cov_kwds={"groups": groups, "maxlags": int(maxlags)}))
        else:
            fits.append(model.fit())
    k = len(passages)
    beta = np.array([f.params[k:] for f in fits])
    errors = np.array([f.bse[k:] for f in fits])
    # t tests on the residual degrees of freedom for both kinds (statsmodels' hac-panel would use
    # n_passages - 1, which is 0 with one passage).
    df = y.shape[1] - k - len(lags)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * sps.t.sf(np.abs(beta / errors), df)
    return {"intercept": np.array([f.params[:k].mean() for f in fits]), "beta": beta, "se": errors, "p": p,
            "r2": _within_r2(y, np.array([f.resid for f in fits]), groups),
            "resid": np.array([f.resid for f in fits]),
            "groups": groups, "maxlags": int(maxlags) if se == "hac" else 0}


def _within_r2(y: np.ndarray, resid: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """1 − SSR / sum of squares around each passage's own mean, per series."""
    centred = y.copy()
    for value in np.unique(groups):
        rows = groups == value
        centred[:, rows] -= y[:, rows].mean(axis=1, keepdims=True)
    return 1 - (resid ** 2).sum(axis=1) / (centred ** 2).sum(axis=1)


def ljung_box(resid, groups=None, lags: int = 10) -> np.ndarray:
    """Ljung–Box test of residual autocorrelation up to ``lags``, per series, passages summed.

    Each passage's statistic ``Q = n (n + 2) sum_k r_k² / (n − k)`` is chi-square with ``lags``
    degrees of freedom under no autocorrelation; the passages are independent, so their sum is
    chi-square with ``lags × passages``.

    Args:
        resid: shape ``(n_series, rows)``; groups: ``(rows,)`` passage of each row (None: one).

    Returns:
        p-values, shape ``(n_series,)``.
    """
    resid = np.atleast_2d(np.asarray(resid, dtype=np.float64))
    groups = np.zeros(resid.shape[1], dtype=np.int64) if groups is None else np.asarray(groups)
    q, df = np.zeros(len(resid)), 0
    for value in np.unique(groups):
        e = resid[:, groups == value]
        n = e.shape[1]
        h = min(lags, n - 1)
        if h < 1:
            continue
        e = e - e.mean(axis=1, keepdims=True)
        denominator = (e ** 2).sum(axis=1)
        r = np.stack([(e[:, k:] * e[:, :-k]).sum(axis=1) for k in range(1, h + 1)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = r / denominator[:, None]
        q += n * (n + 2) * np.sum(r ** 2 / (n - np.arange(1, h + 1)), axis=1)
        df += h
    return sps.chi2.sf(q, df) if df else np.full(len(resid), np.nan)
