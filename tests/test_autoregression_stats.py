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
