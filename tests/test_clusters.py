"""Cluster-aware inference: OLS with cluster-robust standard errors (stats/regression.py) and means over
clustered items (stats/clusters.py)."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps

import lamina
from lamina.stats.clusters import cluster_mean
from lamina.stats.regression import ols


def test_ols_with_groups_is_statsmodels_cluster_robust():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 5)
    x = rng.normal(size=200) + rng.normal(size=40)[groups]
    y = 0.3 * x + rng.normal(size=200) + rng.normal(size=40)[groups]
    fit = ols(y, x, names=["x"], groups=groups, level=90)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    assert fit["cov_type"] == "cluster" and fit["n_groups"] == 40
    np.testing.assert_allclose([fit["bse"]["const"], fit["bse"]["x"]], ref.bse, rtol=1e-12)
    np.testing.assert_allclose([fit["pvalues"]["const"], fit["pvalues"]["x"]], ref.pvalues, rtol=1e-12)
    np.testing.assert_allclose([fit["ci_low"]["x"], fit["ci_high"]["x"]], ref.conf_int(0.1)[1], rtol=1e-12)
    plain = ols(y, x, names=["x"])  # without groups: unchanged, the classical errors
    assert plain["cov_type"] == "nonrobust" and plain["n_groups"] is None
    np.testing.assert_allclose(plain["bse"]["x"], sm.OLS(y, sm.add_constant(x)).fit().bse[1], rtol=1e-12)
    assert plain["params"] == fit["params"]
    with pytest.raises(lamina.LaminaError, match="one group per row"):
        ols(y, x, groups=groups[:10])
    with pytest.raises(lamina.LaminaError, match="at least 2 groups"):
        ols(y, x, groups=np.zeros(200))


def test_cluster_mean_is_a_t_test_over_cluster_means():
    rng = np.random.default_rng(1)
    values = (rng.random((60, 5)) < 0.25 + 0.1 * rng.random((60, 1))).astype(float)
    res = cluster_mean(values, null=0.2, alternative="greater", level=95)
    means = values.mean(axis=1)
    ref = sps.ttest_1samp(means, 0.2, alternative="greater")
    assert res.mean == pytest.approx(values.mean()) and res.p == pytest.approx(ref.pvalue, rel=1e-12)
    low, high = sps.ttest_1samp(means, 0.2).confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((low, high), rel=1e-12)
    assert res.n_clusters == 60 and res.n_items == 300
    same = cluster_mean(np.full((10, 5), 0.2), null=0.2, alternative="greater")  # no spread: t = 0, p = 0.5
    assert same.t == 0 and same.p == 0.5
    with pytest.raises(lamina.LaminaError, match="at least 2 clusters"):
        cluster_mean(np.ones((1, 5)))
