"""Autoregressions over several passages (stats/autoregression.py): equal to the one-passage OLS, one
intercept per passage, Newey–West errors as statsmodels', Ljung–Box, and the tests' level under
dependent nulls."""

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.diagnostic import acorr_ljungbox

import lamina
from lamina.stats.autoregression import lagged_fits, ljung_box, newey_west_lags
from lamina.stats.regression import lagged_design, lagged_ols

T = 94  # tokens of the default Gatsby passage on SmolLM2


def ar1(rng, n_series, n, phi, errors=None, burn=50):
    e = rng.standard_normal((n_series, n + burn)) if errors is None else errors
    y = np.zeros_like(e)
    for t in range(1, e.shape[1]):
        y[:, t] = phi * y[:, t - 1] + e[:, t]
    return y[:, -n:]


def garch(rng, n_series, n, a=0.5, b=0.3, burn=50):
    """Errors whose variance follows the previous ones (volatility clusters), uncorrelated themselves."""
    e = rng.standard_normal((n_series, n + burn))
    y, var = np.zeros_like(e), np.ones(n_series)
    for t in range(1, n + burn):
        var = 0.2 + a * y[:, t - 1] ** 2 + b * var
        y[:, t] = np.sqrt(var) * e[:, t]
    return y[:, -n:]


def test_one_passage_is_the_seed_ols():
    rng = np.random.default_rng(0)
    y = ar1(rng, 4, 60, 0.4) + 3
    got, want = lagged_fits(y), lagged_ols(y)
    for key in ("intercept", "beta", "se", "p", "r2"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)
    assert got["maxlags"] == 0 and got["resid"].shape == (4, 57)


def test_passage_levels_are_not_read_as_persistence():
    """White noise around a different level per passage: one intercept per passage gives betas near 0;
    one shared intercept would read the level differences as persistence."""
    rng = np.random.default_rng(1)
    passages = [rng.standard_normal((200, 90)) + level for level in (-1.0, 0.0, 1.0, 2.0)]
    fits = lagged_fits(passages)
    # (-0.02: the known O(1/T) bias of an autoregression with its own intercepts, T = 87 rows a passage)
    assert abs(fits["beta"].mean()) < 0.035 and 0.03 < (fits["p"] <= 0.05).mean() < 0.08
    shared = lagged_ols(np.concatenate(passages, axis=1))
    assert shared["beta"][:, 0].mean() > 0.2
    assert fits["r2"].mean() < 0.05  # within passages: the intercepts explain none of it
    np.testing.assert_allclose(fits["intercept"].mean(), np.mean([-1, 0, 1, 2]), atol=0.05)


def test_hac_is_statsmodels_newey_west():
    rng = np.random.default_rng(2)
    y = ar1(rng, 3, T, 0.5)
    fits = lagged_fits(y, se="hac", maxlags=3)
    for row, (beta, se) in enumerate(zip(fits["beta"], fits["se"])):
        target, X = lagged_design(y[row])
        ref = sm.OLS(target, sm.add_constant(X)).fit(cov_type="HAC", cov_kwds={"maxlags": 3, "use_correction": True})
        np.testing.assert_allclose(beta, ref.params[1:], rtol=1e-10)
        np.testing.assert_allclose(se, ref.bse[1:], rtol=1e-10)
    assert fits["maxlags"] == 3 and lagged_fits(y, se="hac")["maxlags"] == newey_west_lags(T - 3) == 3
    assert np.isfinite(fits["p"]).all()
    two = lagged_fits([y, y + 1], se="hac", maxlags=3)  # one passage repeated: same betas, smaller errors
    np.testing.assert_allclose(two["beta"], fits["beta"], rtol=1e-8)
    with pytest.raises(lamina.LaminaError, match="se must be one of"):
        lagged_fits(y, se="hc3")


def test_ljung_box_is_statsmodels_and_sums_passages():
    rng = np.random.default_rng(3)
    e = rng.standard_normal((2, 80))
    want = [acorr_ljungbox(row, lags=[10], return_df=True)["lb_pvalue"].iloc[0] for row in e]
    np.testing.assert_allclose(ljung_box(e), want, rtol=1e-8)
    # two passages: the statistics add, with twice the degrees of freedom
    groups = np.repeat([0, 1], 40)
    q = [sum(acorr_ljungbox(row[groups == g], lags=[10], return_df=True)["lb_stat"].iloc[0] for g in (0, 1))
         for row in e]
    from scipy.stats import chi2
    np.testing.assert_allclose(ljung_box(e, groups), chi2.sf(q, 20), rtol=1e-8)


def test_levels_under_dependent_nulls():
    """Calibration of the t tests at alpha = 0.05, 94-token passages, 1000 series each (docs/results.md):
    OLS holds its level when the AR model is right (lag 2 of an AR(1)); with volatility clusters in the
    errors (GARCH) it rejects far too often and Newey–West only partly repairs that on passages this short."""
    rng = np.random.default_rng(0)
    right = ar1(rng, 1000, T, 0.5)
    ols, hac = lagged_fits(right)["p"][:, 1], lagged_fits(right, se="hac")["p"][:, 1]
    assert 0.035 <= (ols <= 0.05).mean() <= 0.065
    assert 0.045 <= (hac <= 0.05).mean() <= 0.085
    clustered = garch(rng, 1000, T)
    ols, hac = lagged_fits(clustered)["p"], lagged_fits(clustered, se="hac")["p"]
    assert (ols <= 0.05).mean() > 0.12 and (hac <= 0.05).mean() < (ols <= 0.05).mean() - 0.03


# ---- issue 25: position terms, bias correction, Ljung–Box df, constant series -------------------------------
def test_position_fits_are_statsmodels():
    from lamina.stats.autoregression import position_fits, position_terms

    rng = np.random.default_rng(4)
    passages = [ar1(rng, 3, n, 0.4) + np.log(np.arange(1, n + 1)) for n in (60, 75, 60)]
    fits = position_fits(passages)
    assert fits["beta"].shape == (3, 3, 2) and fits["resid"].shape == (3, 57 + 72 + 57)
    for p, y in enumerate(passages):
        for row in range(3):
            t = np.arange(3, y.shape[1])
            X = np.column_stack([position_terms(t + 1), y[row, t - 1], y[row, t - 2]])
            full, trend = sm.OLS(y[row, t], X).fit(), sm.OLS(y[row, t], X[:, :3]).fit()
            np.testing.assert_allclose(fits["coef"][p, row], full.params, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(fits["se"][p, row], full.bse[3:], rtol=1e-8)
            np.testing.assert_allclose(fits["p"][p, row], full.pvalues[3:], rtol=1e-6)
            np.testing.assert_allclose(fits["r2"][p, row], full.rsquared, rtol=1e-8)
            np.testing.assert_allclose(fits["r2_position"][p, row], trend.rsquared, rtol=1e-8)
            np.testing.assert_allclose(fits["partial_r2"][p, row], 1 - full.ssr / trend.ssr, rtol=1e-8)
            np.testing.assert_allclose(fits["partial_r2_adj"][p, row],
                                       1 - (full.ssr / full.df_resid) / (trend.ssr / trend.df_resid), rtol=1e-8)
    with pytest.raises(lamina.LaminaError, match="too few targets"):
        position_fits([np.ones((2, 9))])


def test_a_trend_over_position_is_not_dependence_and_the_bias_is_corrected():
    """Issue 25, item 2 and 4: a pure log-position trend with white noise gives the seed's fit R² near 1 and a
    large β₁; with position terms β₁ is only OLS's small-sample bias (−0.035), which the bootstrap removes."""
    from lamina.stats.autoregression import ar_bias, position_fits

    rng = np.random.default_rng(5)
    t = np.arange(1, T + 1)
    passages = [rng.standard_normal((100, T)) * 0.1 + 3 + 0.8 * np.log(t) - 2 / t for _ in range(8)]
    seed = lagged_fits(passages[0])
    assert seed["r2"].mean() > 0.9 and (seed["p"][:, 0] <= 0.05).all()
    fits = position_fits(passages)
    assert -0.05 < fits["beta"][..., 0].mean() < -0.02  # the bias of least squares at T = 94
    assert fits["partial_r2_adj"].mean() == pytest.approx(0, abs=0.01)
    corrected = ar_bias(passages, fits, n_boot=50, rng=rng)
    assert abs(corrected["beta"][..., 0].mean()) < 0.008 and corrected["corrected"].all()
    np.testing.assert_allclose(corrected["beta"], fits["beta"] - corrected["bias"])


def test_bias_correction_is_skipped_where_the_fit_is_not_stationary():
    from lamina.stats.autoregression import ar_bias, position_fits

    rng = np.random.default_rng(6)
    walk = rng.standard_normal((2, 8, T)).cumsum(axis=2) * 3
    walk[1] = np.cumsum(np.cumsum(rng.standard_normal((8, T)), axis=1), axis=1)  # integrated twice: β₁ near 2
    fits = position_fits(list(walk))
    out = ar_bias(list(walk), fits, n_boot=20, rng=rng)
    assert np.isfinite(out["beta"]).all()
    assert (out["bias"][~out["corrected"]] == 0).all() and not out["corrected"][1].all()


def test_ljung_box_subtracts_the_fitted_lags():
    """Issue 25, item 7: residuals of p fitted lags have h − p degrees of freedom (statsmodels' model_df)."""
    rng = np.random.default_rng(7)
    e = rng.standard_normal((2, 80))
    want = [acorr_ljungbox(row, lags=[10], model_df=2, return_df=True)["lb_pvalue"].iloc[0] for row in e]
    np.testing.assert_allclose(ljung_box(e, fitted=2), want, rtol=1e-8)
    assert (ljung_box(e, fitted=2) < ljung_box(e)).all()


def test_constant_series_are_float32_rounding():
    """Issue 25, item 2: a post-norm fixes Gemma-3's untrained log norms at ln √640 = 3.2307, varying by a few
    float32 ulps; such a series is constant, real variation is not."""
    from lamina.stats.autoregression import constant_series

    rng = np.random.default_rng(8)
    level = np.float32(np.log(np.sqrt(640.0)))
    ulp = np.spacing(level)
    rounding = (level + ulp * rng.integers(-6, 7, (3, T))).astype(np.float32).astype(np.float64)
    varying = rounding + np.array([[1e-3], [1e-4], [0.0]]) * rng.standard_normal((3, T))
    assert constant_series([rounding]).all()
    assert constant_series([varying]).tolist() == [False, False, True]
    assert not constant_series([np.zeros((1, T)) + rng.standard_normal((1, T)) * 1e-9])  # level 0: scale by |mean|


def test_constant_series_are_outside_the_family():
    """A constant series gets NaN and is not in the max-|t| family; the others' family-wise p-values are the
    sign-flip max-t of the tested series alone."""
    from lamina.stats.autoregression import passage_autoregressions
    from lamina.stats.replicates import sign_flip_max_t

    rng = np.random.default_rng(10)
    passages = [np.vstack([ar1(rng, 3, T, 0.3), np.full((1, T), np.float32(3.2307))]) for _ in range(8)]
    shuffled = [np.vstack([ar1(rng, 3, T, 0.3), np.full((1, T), np.float32(3.2307))]) for _ in range(8)]
    out = passage_autoregressions(passages, shuffled, n_boot=20, rng=rng)
    assert out["constant"].tolist() == [False, False, False, True] and out["correction"] == "max"
    for lag in (0, 1):
        test = out["lags"][lag]
        assert np.isnan([test[k][3] for k in ("mean", "ci_low", "t", "p", "p_corrected")]).all()
        np.testing.assert_allclose(test["p_corrected"][:3], sign_flip_max_t(out["beta"][:, :3, lag]))
        np.testing.assert_allclose(test["mean"][:3], out["beta"][:, :3, lag].mean(axis=0))
    order = out["order"][0]
    np.testing.assert_allclose(order["mean"][:3], (out["beta"] - out["shuffled_beta"])[:, :3, 0].mean(axis=0))
    assert np.isnan(order["p"][3]) and np.isnan(out["partial_r2_adj"]["mean"][3])
    one = passage_autoregressions(passages[:1], shuffled[:1], n_boot=20, rng=rng)  # one passage: the fit's own t
    assert one["correction"] == "holm" and np.isfinite(one["lags"][0]["p"][:3]).all()
    assert (one["lags"][0]["ci_low"][:3] < one["lags"][0]["mean"][:3]).all()
