"""Block bootstrap (stats/blocks.py), copy-aware participation-ratio bootstrap, bootstrap p-values:
properties, and calibration under an autoregressive (dependent) null."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import lamina
from lamina.stats.blocks import (block_length, circular_block_counts, optimal_block_length, principal_scores,
                                 rsa_item_series)
from lamina.stats.bootstrap import bootstrap_pvalue, percentile_ci, resample_counts, rsa_bootstrap
from lamina.stats.dimensionality import participation_ratio, participation_ratio_bootstrap
from lamina.stats.similarity import cosine_matrix, rsa_pairs


def ar1(rng, shape, phi):
    """AR(1) series along axis 1 with unit stationary variance: shape (reps, n, ...)."""
    e = rng.standard_normal(shape)
    z = np.empty_like(e)
    z[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        z[:, t] = phi * z[:, t - 1] + np.sqrt(1 - phi ** 2) * e[:, t]
    return z


def two_stages(rng, reps, n, phi, d=8, width=12):
    """Two 'stages' of n items (reps, n, width) read out of one AR(1) latent sequence: a linear one and a
    rectified one, each with its own noise, as an MLP's input and its expansion after the nonlinearity."""
    z = ar1(rng, (reps, n, d), phi) + np.random.default_rng(1).standard_normal(d)
    W = np.random.default_rng(0).standard_normal((2, d, width))
    a = z @ W[0] + 0.5 * rng.standard_normal((reps, n, width))
    b = np.maximum(z @ W[1], 0) + 0.5 * rng.standard_normal((reps, n, width))
    return a, b


# ---- resampling counts -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), block=st.integers(1, 50), n_groups=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_counts_keep_every_group_size(n, block, n_groups, seed):
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, n_groups, n))
    counts = circular_block_counts(rng, n, 7, block, groups=groups)
    assert counts.shape == (7, n) and counts.dtype == np.int64 and (counts >= 0).all()
    for value in np.unique(groups):
        assert (counts[:, groups == value].sum(axis=1) == (groups == value).sum()).all()


def test_a_block_as_long_as_the_sequence_draws_every_item_once():
    rng = np.random.default_rng(0)
    assert (circular_block_counts(rng, 12, 20, 12) == 1).all()
    assert (circular_block_counts(rng, 12, 20, 99, groups=np.repeat([0, 1, 2], 4)) == 1).all()


def test_blocks_draw_runs_of_neighbours():
    """With blocks of 5 of 100 items, a drawn item's neighbour is drawn far more often than with blocks of 1."""
    rng = np.random.default_rng(0)
    for block, low, high in ((1, 0.55, 0.72), (5, 0.84, 0.95)):
        counts = circular_block_counts(rng, 100, 2000, block)
        drawn = counts > 0
        together = (drawn[:, :-1] & drawn[:, 1:]).sum() / drawn[:, :-1].sum()
        assert low < together < high, (block, together)


def test_block_one_is_the_item_bootstrap_distribution():
    rng = np.random.default_rng(0)
    blocks, items = circular_block_counts(rng, 30, 4000, 1), resample_counts(rng, 30, 4000)
    assert abs(blocks.var() - items.var()) < 0.05 and blocks.max() >= 5


def test_count_errors():
    rng = np.random.default_rng(0)
    for block in (0, 2.5, True):
        with pytest.raises(lamina.LaminaError, match="block length"):
            circular_block_counts(rng, 10, 5, block)
    with pytest.raises(lamina.LaminaError, match="groups must have shape"):
        circular_block_counts(rng, 10, 5, 2, groups=np.zeros(3))


# ---- block length ------------------------------------------------------------------------------------
def test_block_length_follows_ar1_theory():
    """Politis–White on long AR(1) series tends to (6 phi² / (1 - phi²)²)^(1/3) n^(1/3); none for white noise."""
    rng = np.random.default_rng(0)
    n = 4000
    for phi in (0.3, 0.6):
        theory = (6 * phi ** 2 / (1 - phi ** 2) ** 2) ** (1 / 3) * n ** (1 / 3)
        got = np.median(optimal_block_length(ar1(rng, (40, n), phi)))
        assert 0.75 * theory < got < 1.15 * theory, (phi, got, theory)
    assert np.median(optimal_block_length(rng.standard_normal((40, n)))) == 1.0
    assert optimal_block_length(np.ones((1, 50)))[0] == 1.0  # constant: nothing to resample in blocks
    with pytest.raises(lamina.LaminaError, match="at least 8"):
        optimal_block_length(np.arange(5.0))


def test_block_length_of_items_sees_their_dependence():
    rng = np.random.default_rng(1)
    a, b = two_stages(rng, 1, 300, 0.8)
    iid_a, iid_b = two_stages(rng, 1, 300, 0.0)
    assert block_length([a[0], b[0]]) >= 5
    assert block_length([iid_a[0], iid_b[0]]) <= 2


def test_principal_scores_are_the_svd_scores():
    rng = np.random.default_rng(0)
    for shape in ((40, 90), (90, 40)):
        X = rng.standard_normal(shape) * np.linspace(1, 3, shape[1])
        U, S, _ = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        np.testing.assert_allclose(np.abs(principal_scores(X, 3)), np.abs((U[:, :3] * S[:3]).T), atol=1e-8)


def test_rsa_is_the_mean_of_the_item_series():
    rng = np.random.default_rng(0)
    M = np.stack([cosine_matrix(rng.standard_normal((25, 6)) + 1) for _ in range(3)])
    pairs = [(0, 1), (1, 2)]
    np.testing.assert_allclose(rsa_item_series(M, pairs).mean(axis=1), rsa_pairs(M, pairs), atol=1e-12)


# ---- participation ratio on resamples ----------------------------------------------------------------
def _copy_aware_pr(X, row):
    """The definition, on the expanded resample: pairs of copies of one item left out, pairs rescaled."""
    idx = np.repeat(np.arange(len(X)), row)
    Y = X[idx] - X[idx].mean(axis=0)
    A = Y @ Y.T
    copies = idx[:, None] == idx[None, :]
    off = ~copies
    n = len(X)
    with np.errstate(invalid="ignore", divide="ignore"):  # one item drawn n times: no pairs, NaN
        squares = (np.diag(A) ** 2).sum() + (A[off] ** 2).sum() * n * (n - 1) / off.sum()
        return np.trace(A) ** 2 / squares if squares > 0 else np.nan


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 25), d=st.integers(1, 30), seed=st.integers(0, 2 ** 16))
def test_pr_bootstrap_equals_its_definition(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.standard_normal(d)
    counts = resample_counts(rng, n, 4)
    got = participation_ratio_bootstrap(X, counts, dtype=np.float64)
    want = [_copy_aware_pr(X, row) for row in counts]
    # Tiny samples (3 items, 2 distinct drawn) lose a few digits: most of the sum of squares is diagonal.
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ones = np.ones((1, n), dtype=np.int64)
    np.testing.assert_allclose(participation_ratio_bootstrap(X, ones, dtype=np.float64)[0], participation_ratio(X),
                               rtol=1e-10)


def test_pr_bootstrap_is_centred_where_the_naive_one_is_not():
    """In high dimensions a resample's copies pull the ordinary bootstrap's PR far down; leaving their pairs
    out keeps the bootstrap distribution on the estimate."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 400)) * np.linspace(1, 2, 400)
    counts = resample_counts(rng, 120, 300)
    pr = participation_ratio(X)
    naive = np.mean([participation_ratio(X[np.repeat(np.arange(120), row)]) for row in counts[:40]])
    # PR is 90 of at most 119 here, the hardest case (on SmolLM2's items the two agree to 0.5%)
    assert abs(participation_ratio_bootstrap(X, counts).mean() / pr - 1) < 0.04
    assert naive / pr < 0.7


# ---- bootstrap p-values ------------------------------------------------------------------------------
def test_bootstrap_pvalue_inverts_the_percentile_interval():
    rng = np.random.default_rng(0)
    values = rng.normal([[0.0, 0.3, 1.0, -0.5]], 0.25, size=(999, 4))
    p = bootstrap_pvalue(values)
    low, high = percentile_ci(values, 95)
    excludes = (low > 0) | (high < 0)
    assert ((p <= 0.05) == excludes).all()
    assert p.min() >= 2 / 1000 and p.max() <= 1
    assert np.isnan(bootstrap_pvalue(np.full((10, 1), np.nan)))[0]


# ---- calibration under dependence ----------------------------------------------------------------------
def _coverage(phi, n, reps, n_boot, seed):
    """Share of 95% percentile intervals (blocks by block_length; items one by one) that cover the
    expected RSA and participation ratio of an n-item sequence from the AR(1) design."""
    rng = np.random.default_rng(seed)
    with threadpool_limits(1, user_api="blas"):
        a, b = two_stages(rng, 1000, n, phi)
        truth_rsa = np.mean([rsa_pairs(np.stack([cosine_matrix(x), cosine_matrix(y)]), [(0, 1)])[0]
                             for x, y in zip(a, b)])
        truth_pr = np.mean([participation_ratio(y) for y in b])
        a, b = two_stages(rng, reps, n, phi)
        hits = {"rsa_block": 0, "pr_block": 0, "rsa_item": 0, "pr_item": 0}
        for x, y in zip(a, b):
            M = np.stack([cosine_matrix(x), cosine_matrix(y)])
            for kind, block in (("block", block_length([x, y])), ("item", 1)):
                counts = circular_block_counts(rng, n, n_boot, block)
                low, high = percentile_ci(rsa_bootstrap(M, [(0, 1)], counts)[:, 0])
                hits[f"rsa_{kind}"] += low <= truth_rsa <= high
                low, high = percentile_ci(participation_ratio_bootstrap(y, counts))
                hits[f"pr_{kind}"] += low <= truth_pr <= high
    return {k: v / reps for k, v in hits.items()}


def test_block_bootstrap_coverage_under_ar1():
    """Calibration (issue 16): tokens of one sequence as an AR(1) series, phi = 0.5, 160 items, 400
    sequences. The block bootstrap covers the expected RSA and PR 92% and 91% of the time (95% nominal:
    1-2 points short, docs/results.md says why), the item bootstrap 87% and 84%. Independent items (phi = 0)
    are covered at the nominal rate by both."""
    got = _coverage(0.5, 160, 400, 250, seed=0)
    assert got["rsa_block"] >= 0.90 and got["pr_block"] >= 0.89, got
    assert got["rsa_item"] <= 0.89 and got["pr_item"] <= 0.87, got
    assert got["rsa_block"] - got["rsa_item"] >= 0.03 and got["pr_block"] - got["pr_item"] >= 0.04, got
    iid = _coverage(0.0, 160, 200, 250, seed=1)
    assert min(iid.values()) >= 0.91, iid


def test_a_gram_computed_once_gives_the_same_numbers():
    from lamina.stats.dimensionality import centred_gram, variance_spectrum

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 50)) + 3
    G = centred_gram(X)
    counts = resample_counts(rng, 30, 5)
    np.testing.assert_array_equal(variance_spectrum(X, gram=G), variance_spectrum(X))
    np.testing.assert_array_equal(participation_ratio_bootstrap(X, counts, gram=G),
                                  participation_ratio_bootstrap(X, counts))
    np.testing.assert_array_equal(principal_scores(X, gram=G), principal_scores(X))
    wide = rng.standard_normal((30, 10))  # n > d: the Gram is not the smaller matrix and is not used
    np.testing.assert_array_equal(variance_spectrum(wide, gram=centred_gram(wide)), variance_spectrum(wide))


def test_one_minus_many_bootstrap_p_holds_its_level():
    """The one − many RSA decision's p-value (independent resamples of two sets, the percentile interval
    inverted) under a true null: two sets of 80 independent items from one distribution, 300 pairs of
    sets. p <= 0.05 about 5% of the time before any correction across layers and pairs (4.9% and 4.1%
    with 1500 pairs of sets of 80 and 200 items; 2.3% in this smaller run)."""
    rng = np.random.default_rng(11)
    rejected, reps = 0, 300
    with threadpool_limits(1, user_api="blas"):
        for _ in range(reps):
            sets = [two_stages(rng, 1, 80, 0.0) for _ in range(2)]
            boots = []
            for a, b in sets:
                M = np.stack([cosine_matrix(a[0]), cosine_matrix(b[0])])
                boots.append(rsa_bootstrap(M, [(0, 1)], resample_counts(rng, 80, 300))[:, 0])
            rejected += bootstrap_pvalue(boots[0] - boots[1]) <= 0.05
    assert 0.02 <= rejected / reps <= 0.08, rejected / reps
