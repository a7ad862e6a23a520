"""Regression and decoding: OLS with inference, multinomial logistic decoding, confusion tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import LaminaError, check_level


def ols(y, X, names=None, *, groups=None, level: float = 95.0) -> dict:
    """Ordinary least squares with a constant, via statsmodels.

    Args:
        y: shape ``(n,)``, the dependent variable.
        X: shape ``(n,)`` or ``(n, k)``, predictors (a constant column is added).
        names: k predictor names (default ``x1..xk``).
        groups: shape ``(n,)`` or None. Given, the standard errors are cluster-robust by group
            (statsmodels ``cov_type="cluster"``, with its small-sample correction) and tests use t
            with G − 1 degrees of freedom (G groups): observations of one group (the tokens of one
            context) may depend on each other, groups may not. None: the classical iid errors.
        level: interval level in percent.

    Returns:
        ``params``, ``bse``, ``pvalues``, ``tvalues``, ``ci_low`` and ``ci_high`` (dicts keyed
        ``const`` and the names), ``r2``, ``n``, ``n_groups`` (None without groups), ``cov_type``
        and ``summary`` (statsmodels' text table).
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=float).reshape(-1)
    X = np.asarray(X, dtype=float)
    X = X.reshape(-1, 1) if X.ndim == 1 else X
    if len(y) != len(X):
        raise LaminaError(f"ols: y has {len(y)} rows but X has {len(X)}.")
    if len(y) <= X.shape[1] + 1:
        raise LaminaError(f"ols: {len(y)} observations are too few for {X.shape[1]} predictors and a constant.")
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise LaminaError("ols: the data contain NaN or inf.")
    check_level(level)
    names = list(names or [f"x{i + 1}" for i in range(X.shape[1])])
    model = sm.OLS(y, sm.add_constant(X, has_constant="add"))
    n_groups = None
    if groups is None:
        fit = model.fit()
    else:
        codes = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)[1].reshape(-1)
        if len(codes) != len(y):
            raise LaminaError(f"ols: {len(codes)} groups for {len(y)} observations; give one group per row.")
        n_groups = int(codes.max()) + 1
        if n_groups < 2:
            raise LaminaError("ols: cluster-robust standard errors need at least 2 groups.")
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    keys = ["const"] + names
    ci = np.asarray(fit.conf_int(alpha=1 - level / 100))
    return {
        "params": dict(zip(keys, fit.params.tolist())),
        "bse": dict(zip(keys, fit.bse.tolist())),
        "tvalues": dict(zip(keys, fit.tvalues.tolist())),
        "pvalues": dict(zip(keys, fit.pvalues.tolist())),
        "ci_low": dict(zip(keys, ci[:, 0].tolist())),
        "ci_high": dict(zip(keys, ci[:, 1].tolist())),
        "r2": float(fit.rsquared),
        "n": int(len(y)),
        "n_groups": n_groups,
        "cov_type": "cluster" if groups is not None else "nonrobust",
        "summary": str(fit.summary()),
    }


def lagged_design(y, lags=(1, 2), first: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Autoregressive design: targets ``y[t]`` and predictors ``y[t - lag]`` for t = first..T-1.

    Args:
        y: shape ``(T,)``.
        lags: which earlier steps predict ``y[t]``.
        first: first target index (seed 002 starts at t = 3, though t = 2 already has both lags).

    Returns:
        ``(targets (T - first,), X (T - first, len(lags)))``; no constant column (``ols`` adds it).
    """
    y = np.asarray(y, dtype=float).reshape(-1)
    if first < max(lags):
        raise LaminaError(f"the first target index {first} is smaller than the largest lag {max(lags)}.")
    t = np.arange(first, len(y))
    if len(t) < len(lags) + 2:
        raise LaminaError(f"{len(y)} values give only {len(t)} targets; the regression needs at least "
                          f"{len(lags) + 2}. Use a longer text.")
    return y[t], np.stack([y[t - lag] for lag in lags], axis=1)


def lagged_ols(series, lags=(1, 2), first: int = 3) -> dict[str, np.ndarray]:
    """Autoregression of each row of ``series`` on its own earlier values, one OLS fit per row.

    Per row y (e.g. one layer's log norms), ``y[t] = b0 + sum_j b_j y[t - lags[j]]`` for
    t = first..T-1 (:func:`lagged_design`, :func:`ols`: statsmodels' estimates and two-sided t-tests).

    Args:
        series: shape ``(n_series, T)``.
        lags: which earlier steps predict ``y[t]``.
        first: first target index.

    Returns:
        ``intercept`` ``(n_series,)``; ``beta``, ``se``, ``p`` ``(n_series, len(lags))`` (column j:
        lag ``lags[j]``); ``r2`` ``(n_series,)``.
    """
    series = np.asarray(series, dtype=float)
    if series.ndim != 2:
        raise LaminaError(f"lagged_ols takes series of shape (n_series, T), not {series.shape}.")
    names = [f"lag{lag}" for lag in lags]
    fits = [ols(*lagged_design(y, lags=lags, first=first), names=names) for y in series]
    return {"intercept": np.array([fit["params"]["const"] for fit in fits]),
            "beta": np.array([[fit["params"][n] for n in names] for fit in fits]),
            "se": np.array([[fit["bse"][n] for n in names] for fit in fits]),
            "p": np.array([[fit["pvalues"][n] for n in names] for fit in fits]),
            "r2": np.array([fit["r2"] for fit in fits])}


def fit_logistic(x, y, seed: int = 0):
    """Multinomial logistic regression (sklearn, ``solver='lbfgs'``, defaults otherwise, as seed 000).

    Args:
        x: shape ``(n,)`` or ``(n, k)`` predictors.
        y: shape ``(n,)`` integer classes.

    Returns:
        The fitted ``LogisticRegression``; ``.intercept_`` shape ``(n_classes,)``,
        ``.coef_`` shape ``(n_classes, k)``.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    y = np.asarray(y).reshape(-1)
    if len(np.unique(y)) < 2:
        raise LaminaError("logistic regression needs at least two classes in the training data.")
    return LogisticRegression(solver="lbfgs", random_state=seed).fit(x, y)


def classification(y_true, y_pred, n_classes: int) -> dict:
    """Per-class accuracy and confusion counts.

    Args:
        y_true, y_pred: shape ``(n,)`` integer labels in ``0..n_classes-1``.

    Returns:
        ``accuracy_by_class`` (percent, length n_classes; NaN for a class with no samples),
        ``accuracy`` (percent overall), ``confusion`` (counts, rows = true class, shape
        ``(n_classes, n_classes)``) and ``confusion_pct`` (row-normalised percent).
    """
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = 100 * np.diag(cm) / support
    return {"accuracy_by_class": acc, "accuracy": 100 * float((y_true == y_pred).mean()),
            "confusion": cm, "confusion_pct": confusion_percent(cm)}


def confusion_percent(cm) -> np.ndarray:
    """Row-normalised confusion matrix in percent, shape ``(k, k)`` (NaN in a row with no samples)."""
    cm = np.asarray(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * cm / cm.sum(axis=1)[:, None]


def confusion_table(cm: np.ndarray, label: str = "class") -> pd.DataFrame:
    """A tidy table of a confusion matrix: one row per (true, predicted) cell with its count."""
    k = cm.shape[0]
    true, pred = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return pd.DataFrame({f"true_{label}": true.ravel(), f"predicted_{label}": pred.ravel(), "count": cm.ravel()})
