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
from .multiple import holm
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


def ljung_box(resid, groups=None, lags: int = 10, fitted: int = 0) -> np.ndarray:
    """Ljung–Box test of residual autocorrelation up to ``lags``, per series, passages summed.

    Each passage's statistic ``Q = n (n + 2) sum_k r_k² / (n − k)`` is chi-square with
    ``lags − fitted`` degrees of freedom under no autocorrelation when the residuals are those of
    ``fitted`` estimated autoregressive coefficients (Ljung and Box 1978; statsmodels' ``model_df``);
    the passages are independent, so their sum is chi-square with ``(lags − fitted) × passages``.

    Args:
        resid: shape ``(n_series, rows)``; groups: ``(rows,)`` passage of each row (None: one).
        fitted: the lag coefficients estimated per passage (2 for y[t − 1] and y[t − 2]).

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
        if h - fitted < 1:
            continue
        e = e - e.mean(axis=1, keepdims=True)
        denominator = (e ** 2).sum(axis=1)
        r = np.stack([(e[:, k:] * e[:, :-k]).sum(axis=1) for k in range(1, h + 1)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = r / denominator[:, None]
        q += n * (n + 2) * np.sum(r ** 2 / (n - np.arange(1, h + 1)), axis=1)
        df += h - fitted
    return sps.chi2.sf(q, df) if df else np.full(len(resid), np.nan)


# ---- position-adjusted autoregressions (issue 25) ------------------------------------------------------------
POSITION_TERMS = ("intercept", "log t", "1/t")
FLOAT32_ULPS = 64  # a series whose SD is at most this many float32 epsilons of its mean level is constant


def position_terms(positions) -> np.ndarray:
    """The trend over position every position-adjusted fit removes: ``(n, 3)`` = [1, log t, 1/t].

    Args:
        positions: shape ``(n,)``, token positions counted from 1 at the passage's first token.
    """
    t = np.asarray(positions, dtype=np.float64)
    if (t < 1).any():
        raise LaminaError("positions are counted from 1 (log t and 1/t need t >= 1).")
    return np.stack([np.ones_like(t), np.log(t), 1 / t], axis=1)


def _residualise(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``values`` ``(..., n)`` minus their projection on the orthonormal columns ``q`` ``(n, k)``.

    Column by column (matrix-vector products): as fast as one matrix product on one core, and not slowed
    down by a threaded BLAS on a busy machine.
    """
    flat = values.reshape(-1, values.shape[-1])
    out = flat.copy()
    for column in q.T:
        out -= np.outer(flat @ column, column)
    return out.reshape(values.shape)


def _position_fit(series: np.ndarray, lags: tuple[int, ...], first: int, beta_only: bool = False) -> dict:
    """One passage, many series ``(..., T)``: the fit with position terms and lags, and the position-only fit.

    By Frisch–Waugh–Lovell: the targets and the lags are residualised on the position terms (one
    shared design), then the lags' coefficients, their covariance and the sums of squares come from the
    small regression of residuals on residuals.
    """
    series = np.ascontiguousarray(series, dtype=np.float64)
    t = np.arange(first, series.shape[-1])
    q, r = np.linalg.qr(position_terms(t + 1))  # (n, k0), (k0, k0)
    y = series[..., first:]
    lagged = [series[..., first - lag:series.shape[-1] - lag] for lag in lags]
    y_r = _residualise(y, q)
    lag_r = [_residualise(x, q) for x in lagged]
    xtx = np.empty((*y.shape[:-1], len(lags), len(lags)))
    for i, a in enumerate(lag_r):
        for j in range(i + 1):
            xtx[..., i, j] = xtx[..., j, i] = (a * lag_r[j]).sum(axis=-1)
    xty = np.stack([(a * y_r).sum(axis=-1) for a in lag_r], axis=-1)
    try:
        inverse = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:  # a constant series: callers refuse it before trusting the numbers
        inverse = np.linalg.pinv(xtx, hermitian=True)
    beta = (inverse @ xty[..., None])[..., 0]
    if beta_only:
        return {"beta": beta}
    fitted_lags = sum(beta[..., j, None] * x for j, x in enumerate(lagged))
    resid = y_r - sum(beta[..., j, None] * x for j, x in enumerate(lag_r))
    n, k0 = y.shape[-1], len(POSITION_TERMS)
    k = k0 + len(lags)
    ssr, ssr_position = (resid ** 2).sum(axis=-1), (y_r ** 2).sum(axis=-1)
    # the position terms' coefficients given the lags: R⁻¹ Qᵀ (y − lags β)
    trend = ((y - fitted_lags) @ q) @ np.linalg.inv(r).T
    sigma2 = ssr / (n - k)
    se = np.sqrt(np.clip(np.diagonal(inverse, axis1=-2, axis2=-1), 0, None) * sigma2[..., None])
    sst = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"coef": np.concatenate([trend, beta], axis=-1), "beta": beta, "se": se, "sigma": np.sqrt(sigma2),
                "ssr": ssr, "r2": 1 - ssr / sst, "r2_position": 1 - ssr_position / sst,
                "partial_r2": 1 - ssr / ssr_position,
                "partial_r2_adj": 1 - (ssr / (n - k)) / (ssr_position / (n - k0)), "df": n - k, "resid": resid}


def constant_series(passages, first: int = 3, lags=(1, 2), ulps: float = FLOAT32_ULPS) -> np.ndarray:
    """Which series are constant to float32 precision over the tokens the fits use.

    A series is constant when the SD of its values (every passage's tokens from ``first − max(lags)``
    on, pooled) is at most ``ulps × eps(float32) × |mean|``. The log norms are computed in float32,
    and the float32 L2 norm of a d-wide vector carries a relative rounding error of order √d eps
    (64 eps at d = 4096); a post-norm that fixes the norm leaves only that rounding, which no
    regression should describe. Real variation of log norms is 4–5 orders of magnitude larger.

    Args:
        passages: a list of ``(n_series, T_p)`` arrays (or one).

    Returns:
        Shape ``(n_series,)`` bool.
    """
    passages = _check(passages)
    start = first - max(int(lag) for lag in lags)
    values = np.concatenate([p[:, start:] for p in passages], axis=1)
    eps = float(np.finfo(np.float32).eps)
    return values.std(axis=1) <= ulps * eps * np.abs(values.mean(axis=1))


def position_fits(passages, lags=(1, 2), first: int = 3) -> dict[str, np.ndarray]:
    """Each passage's own autoregression with the trend over position: ``y[t] = a + b log t + c / t + sum_j
    beta_j y[t - lag_j] + e[t]`` for t = first..T-1 (t counts a passage's tokens from 1), and the same
    fit without the lags.

    A trend over position (the norms of early tokens differ from later ones) makes y[t − 1] predict
    y[t] with no token-to-token dependence at all: a pure log-position trend gives an autoregression
    without position terms an R² of 0.99. With them, ``beta`` is the dependence beyond the trend, and
    the lags' partial R² (the share of the position-only fit's residual sum of squares the lags
    explain) says how much they add.

    Args:
        passages: a list of arrays ``(n_series, T_p)`` (or one).
        lags: which earlier steps predict ``y[t]``.
        first: first target index within each passage (at least ``max(lags)``).

    Returns:
        Per passage and series: ``beta``, ``se``, ``p`` ``(n_passages, n_series, len(lags))`` (OLS, two-sided
        t tests on the passage's residual degrees of freedom ``df`` ``(n_passages,)``); ``coef``
        ``(n_passages, n_series, 3 + len(lags))`` (intercept, log t, 1/t, lags); ``sigma`` (residual SD),
        ``r2`` (full fit), ``r2_position`` (position terms alone), ``partial_r2`` (1 − SSR_full / SSR_position)
        and ``partial_r2_adj`` (the same with each sum of squares over its degrees of freedom, whose
        expectation without serial dependence is about 0 whatever T), each ``(n_passages, n_series)``;
        ``resid`` ``(n_series, rows)`` and ``groups`` ``(rows,)``, the passages' residuals one after another
        (for :func:`ljung_box`).
    """
    passages = _check(passages)
    lags = tuple(int(lag) for lag in lags)
    if first < max(lags):
        raise LaminaError(f"the first target index {first} is smaller than the largest lag {max(lags)}.")
    k = len(POSITION_TERMS) + len(lags)
    short = [p.shape[1] for p in passages if p.shape[1] - first < k + 2]
    if short:
        raise LaminaError(f"a passage of {min(short)} tokens gives too few targets for {k} coefficients; "
                          "use longer passages.")
    lengths = np.array([p.shape[1] for p in passages])
    fits = [None] * len(passages)
    for length in np.unique(lengths):  # passages of one length are fitted together
        index = np.flatnonzero(lengths == length)
        together = _position_fit(np.stack([passages[i] for i in index]), lags, first)
        for g, i in enumerate(index):
            fits[i] = {key: value if key == "df" else value[g] for key, value in together.items()}
    out = {key: np.stack([f[key] for f in fits]) for key in fits[0] if key not in ("df", "resid")}
    out["df"] = np.array([f["df"] for f in fits])
    out["resid"] = np.concatenate([f["resid"] for f in fits], axis=1)
    out["groups"] = np.concatenate([np.full(f["resid"].shape[1], i) for i, f in enumerate(fits)])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["p"] = 2 * sps.t.sf(np.abs(out["beta"] / out["se"]), out["df"][:, None, None])
    return out


def _stationary(beta: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """Whether each AR polynomial (``beta`` ``(..., len(lags))``) has all roots outside the unit circle."""
    order = max(lags)
    companion = np.zeros((*beta.shape[:-1], order, order))
    for j, lag in enumerate(lags):
        companion[..., 0, lag - 1] = beta[..., j]
    companion[..., np.arange(1, order), np.arange(order - 1)] = 1
    return np.abs(np.linalg.eigvals(companion)).max(axis=-1) < 1


def ar_bias(passages, fits: dict, lags=(1, 2), first: int = 3, *, n_boot: int = 50,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bias of each passage's position-adjusted lag coefficients, by parametric bootstrap (Kilian 1998).

    Least squares of an autoregression on a short series is biased (towards −(k + …)/T: −0.035 with
    three position terms and no dependence at T ≈ 90), and averaging passages does not remove a
    bias: a t test across passages then rejects too often. Per passage and series, ``n_boot``
    series are simulated from the fitted model (position terms, lags and Gaussian errors of the
    fitted SD, started from the observed first ``first`` values), refitted, and the bias is the mean
    of their betas minus the fitted beta. Where the fitted lags are not stationary no correction is
    made; where the corrected ones would not be, the bias is shrunk until they are (Kilian's rule).

    Args:
        passages: as for :func:`position_fits`; fits: its result for them.
        n_boot: simulated series per passage and series.
        rng: the generator of the simulated errors.

    Returns:
        ``bias`` and ``beta`` (bias-corrected: fitted − bias), ``(n_passages, n_series, len(lags))``;
        ``corrected`` ``(n_passages, n_series)`` bool: False where the fitted lags were not stationary.
    """
    passages = _check(passages)
    lags = tuple(int(lag) for lag in lags)
    if n_boot < 1:
        raise LaminaError(f"n_boot must be at least 1, not {n_boot}.")
    k0 = len(POSITION_TERMS)
    lengths = np.array([p.shape[1] for p in passages])
    bias = np.empty(fits["beta"].shape)
    for length in np.unique(lengths):  # passages of one length are simulated together
        index = np.flatnonzero(lengths == length)
        series = np.stack([passages[i] for i in index])  # (G, S, T)
        coef, sigma = fits["coef"][index], fits["sigma"][index]  # (G, S, k), (G, S)
        trend = coef[..., :k0] @ position_terms(np.arange(first, length) + 1).T  # (G, S, n)
        # time first, so that each step writes one contiguous slice
        sim = np.empty((length, *series.shape[:2], n_boot))
        sim[:first] = np.moveaxis(series[..., :first], -1, 0)[..., None]
        noise = rng.standard_normal((length - first, *series.shape[:2], n_boot)) * sigma[..., None]
        trend = np.moveaxis(trend, -1, 0)[..., None]
        slopes = [coef[..., k0 + j, None] for j in range(len(lags))]
        with np.errstate(over="ignore", invalid="ignore"):
            for i, t in enumerate(range(first, length)):
                value = trend[i] + noise[i]
                for slope, lag in zip(slopes, lags):
                    value += slope * sim[t - lag]
                sim[t] = value
            boot = _position_fit(np.moveaxis(sim, 0, -1), lags, first, beta_only=True)["beta"]  # (G, S, B, L)
        bias[index] = boot.mean(axis=2) - coef[..., k0:]
    beta = fits["beta"]
    corrected = _stationary(beta, lags) & np.isfinite(bias).all(axis=-1)
    bias = np.where(corrected[..., None], bias, 0.0)
    shrink = np.ones(corrected.shape)
    for _ in range(100):  # Kilian: shrink the correction until the corrected lags are stationary
        bad = ~_stationary(beta - shrink[..., None] * bias, lags) & corrected
        if not bad.any():
            break
        shrink = np.where(bad, shrink - 0.01, shrink)
    bias = np.clip(shrink, 0, 1)[..., None] * bias
    return {"bias": bias, "beta": beta - bias, "corrected": corrected}


def _layer_tests(values, se, df, tested, level, rng) -> dict[str, np.ndarray]:
    """Per series: mean, t interval, t, p and family-wise p over the tested series (NaN elsewhere).

    ``values`` ``(R, S)``. R >= 2: passages are the unit (one-sample t test, max-t over the tested
    series by sign flips of whole passages). R = 1: the fit's own t test from ``se`` ``(1, S)`` on
    ``df`` degrees of freedom, Holm over the tested series.
    """
    from .replicates import across_replicates

    n_series = values.shape[1]
    out = {key: np.full(n_series, np.nan) for key in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected")}
    out["mean"] = np.where(tested, values.mean(axis=0), np.nan)
    if not tested.any():
        return out
    if len(values) >= 2:
        summary = across_replicates(values[:, tested], level=level, correction="max", rng=rng)
        for key in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected"):
            out[key][tested] = getattr(summary, key)
        out["t"][~np.isfinite(out["t"])] = np.nan
        return out
    beta, error = values[0, tested], se[0, tested]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = beta / error
    half = sps.t.ppf(0.5 + level / 200, df) * error
    out["ci_low"][tested], out["ci_high"][tested] = beta - half, beta + half
    out["t"][tested], out["p"][tested] = t, 2 * sps.t.sf(np.abs(t), df)
    out["p_corrected"][tested] = holm(out["p"][tested])
    return out


def _intervals(values, tested, level) -> dict[str, np.ndarray]:
    """Mean and t interval across passages per series (no test; NaN interval with one passage or untested)."""
    from .replicates import t_interval

    out = {"mean": values.mean(axis=0), "ci_low": np.full(values.shape[1], np.nan),
           "ci_high": np.full(values.shape[1], np.nan)}
    out["mean"] = np.where(tested, out["mean"], np.nan)
    if len(values) >= 2 and tested.any():
        _, out["ci_low"][tested], out["ci_high"][tested] = t_interval(values[:, tested], level)
    return out


def passage_autoregressions(passages, shuffled=None, lags=(1, 2), first: int = 3, *, n_boot: int = 50,
                            rng: np.random.Generator, level: float = 95.0) -> dict:
    """Position-adjusted, bias-corrected autoregressions of every series over passages, tested across layers.

    The pipeline of ``attn-autoregression`` (and of its calibration): per passage and series,
    :func:`position_fits` (lags beyond the trend over position), :func:`ar_bias` (each passage's
    betas bias-corrected), then per series the passages' corrected betas tested against 0 and, with
    ``shuffled`` (the same passages' tokens in another order through the model), the paired
    difference real − shuffled. Series constant to float32 precision (:func:`constant_series`) are
    not tested: NaN, and outside every family.

    Tests: with R >= 2 passages, passages are the unit: one-sample t per series, 95% t interval,
    family-wise p over the tested series by the max-|t| of sign flips of whole passages
    (:func:`lamina.stats.replicates.sign_flip_max_t`). With one passage, the fit's own OLS t test of
    the corrected beta (the shuffle difference with the two fits' errors added), Holm over series.

    Args:
        passages: a list of ``(n_series, T_p)`` arrays, one per passage.
        shuffled: None, or the same shapes: each passage with its tokens in a shuffled order.
        lags, first: as :func:`position_fits`; n_boot, rng: as :func:`ar_bias`.
        level: interval level in percent.

    Returns:
        ``constant`` ``(S,)``; ``fits`` (:func:`position_fits`), ``bias`` (:func:`ar_bias`), and with
        ``shuffled`` ``shuffled_fits``, ``shuffled_bias``; ``beta`` ``(R, S, L)`` corrected betas; ``lags``:
        one dict per lag of ``mean``, ``ci_low``, ``ci_high``, ``t``, ``p``, ``p_corrected`` ``(S,)``;
        ``partial_r2``, ``partial_r2_adj``: ``mean``, ``ci_low``, ``ci_high`` ``(S,)``; with ``shuffled``,
        ``order``: one dict per lag as ``lags`` for real − shuffled, and ``shuffled_beta`` ``(R, S, L)``;
        ``correction``: ``"max"`` or ``"holm"``.
    """
    passages = _check(passages)
    lags = tuple(int(lag) for lag in lags)
    constant = constant_series(passages, first, lags)
    tested = ~constant
    fits = position_fits(passages, lags, first)
    bias = ar_bias(passages, fits, lags, first, n_boot=n_boot, rng=rng)
    df = int(fits["df"][0])
    out = {"constant": constant, "fits": fits, "bias": bias, "beta": bias["beta"],
           "correction": "max" if len(passages) >= 2 else "holm",
           "lags": [_layer_tests(bias["beta"][:, :, j], fits["se"][:, :, j], df, tested, level, rng)
                    for j in range(len(lags))],
           "partial_r2": _intervals(fits["partial_r2"], tested, level),
           "partial_r2_adj": _intervals(fits["partial_r2_adj"], tested, level)}
    if shuffled is not None:
        shuffled = _check(shuffled)
        if [p.shape for p in shuffled] != [p.shape for p in passages]:
            raise LaminaError("the shuffled passages must have the shapes of the passages.")
        tested_both = tested & ~constant_series(shuffled, first, lags)
        out["constant_shuffled"] = ~tested_both & tested
        shuffled_fits = position_fits(shuffled, lags, first)
        shuffled_bias = ar_bias(shuffled, shuffled_fits, lags, first, n_boot=n_boot, rng=rng)
        difference = bias["beta"] - shuffled_bias["beta"]
        se = np.sqrt(fits["se"] ** 2 + shuffled_fits["se"] ** 2)
        out.update(shuffled_fits=shuffled_fits, shuffled_bias=shuffled_bias, shuffled_beta=shuffled_bias["beta"],
                   order=[_layer_tests(difference[:, :, j], se[:, :, j], df, tested_both, level, rng)
                          for j in range(len(lags))])
    return out
