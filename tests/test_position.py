"""Experiment `position` (seed 000): parity with the notebook's own computation on tiny GPT-2."""

import json

import numpy as np
import pytest
import statsmodels.api as sm
import torch
import torch.nn.functional as F
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import confusion_matrix

import lamina
from lamina.experiments.typed import dump_json


def seed_000(model, tokenizer, contexts_train, contexts_test, seqlen=6, n=500):
    """The notebook's cells, verbatim in substance (ctx instead of ctx_a: see the report's notes)."""
    def losses_of(contexts):
        batch = torch.zeros((n, seqlen), dtype=torch.long)
        for i in range(n):
            batch[i, :] = torch.tensor(tokenizer.encode(contexts[i])[:seqlen])
        with torch.no_grad():
            out = model(batch)
        logits_logsm = F.log_softmax(out.logits, dim=-1)
        losses = np.zeros((n, seqlen - 1))
        for seqi in range(n):
            for tokeni in range(seqlen - 1):
                losses[seqi, tokeni] = -logits_logsm[seqi, tokeni, batch[seqi, tokeni + 1]].item()
        return losses

    losses = losses_of(contexts_train)
    ord_position = np.tile(np.arange(seqlen - 1), (n, 1))
    losses_flat = losses.flatten().reshape(-1, 1)
    ord_position_flat = ord_position.flatten().reshape(-1, 1)
    smreg = sm.OLS(ord_position_flat, sm.add_constant(losses_flat)).fit()
    reg = LinearRegression().fit(losses_flat, ord_position_flat.squeeze())
    logreg = LogisticRegression(solver="lbfgs").fit(losses_flat, ord_position_flat.squeeze())
    cm_train = confusion_matrix(ord_position_flat.squeeze(), np.argmax(logreg.predict_proba(losses_flat), axis=1))
    losses_test = losses_of(contexts_test)
    pred_test = np.argmax(logreg.predict_proba(losses_test.flatten().reshape(-1, 1)), axis=1)
    cm_test = confusion_matrix(ord_position_flat.squeeze(), pred_test)
    acc = lambda cm: 100 * np.diag(cm) / cm.sum(axis=1)  # noqa: E731 (the notebook's per-position loop)
    return {"losses": losses, "smreg": smreg, "reg": reg, "logreg": logreg, "cm_train": cm_train,
            "cm_test": cm_test, "acc_train": acc(cm_train), "acc_test": acc(cm_test)}


@pytest.fixture(scope="module")
def position_run(tiny_gpt2, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "position"
    return lamina.run("position", model=tiny_gpt2, out=out, seed=0, replicates=1, progress=False)


def test_results_equal_seed_computation(position_run, tiny_gpt2, gpt2_tokenizer):
    table = lamina.data.hellaswag()
    ref = seed_000(tiny_gpt2.hf, gpt2_tokenizer, table.ctx.iloc[:500].tolist(), table.ctx.iloc[1000:1500].tolist())
    res = json.loads((position_run.path / "results.json").read_text())
    assert res["n_train"] == res["n_test"] == 500
    np.testing.assert_allclose(res["loss_by_position"], ref["losses"].mean(axis=0), atol=1e-6)
    ols = res["ols"]
    np.testing.assert_allclose([ols["const"], ols["slope"]], ref["smreg"].params, atol=1e-6)
    np.testing.assert_allclose([ols["const"], ols["slope"]], [ref["reg"].intercept_, ref["reg"].coef_[0]], atol=1e-6)
    np.testing.assert_allclose([ols["p_const_iid"], ols["p_slope_iid"]], ref["smreg"].pvalues, atol=1e-6)
    assert ols["se_slope_iid"] == pytest.approx(ref["smreg"].bse[1], rel=1e-6)
    np.testing.assert_allclose(ols["r2"], ref["smreg"].rsquared, atol=1e-6)
    np.testing.assert_allclose(res["logistic"]["intercepts"], ref["logreg"].intercept_, atol=1e-4)
    np.testing.assert_allclose(res["logistic"]["coefs"], ref["logreg"].coef_[:, 0], atol=1e-4)
    np.testing.assert_array_equal(res["train"]["confusion"], ref["cm_train"])
    np.testing.assert_array_equal(res["test"]["confusion"], ref["cm_test"])
    np.testing.assert_allclose(res["train"]["accuracy_by_position"], ref["acc_train"], atol=1e-9)
    np.testing.assert_allclose(res["test"]["accuracy_by_position"], ref["acc_test"], atol=1e-9)


def test_run_directory(position_run):
    path = position_run.path
    for name in ["config.json", "results.json", "manifest.json", "report.html"]:
        assert (path / name).is_file()
    figures = {p.name for p in (path / "figures").iterdir()}
    for stem in ["loss_by_position", "linear_predictions", "logistic_coefficients", "train_performance",
                 "test_performance"]:
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    assert {"losses.csv", "confusion_train.csv", "confusion_test.csv"} <= {p.name for p in (path / "tables").iterdir()}
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["device"] == "cpu"
    assert len(manifest["model"]["weights_sha256"]) == 64
    assert {"lamina", "torch", "transformers"} <= set(manifest["versions"])
    assert {"record", "stats", "figures", "write"} <= set(manifest["timings"])
    assert not list(path.parent.glob(".*partial*"))


def test_same_seed_same_results_and_no_overwrite(position_run, tiny_gpt2, tmp_path):
    with pytest.raises(lamina.LaminaError, match="already exists"):
        lamina.run("position", model=tiny_gpt2, out=position_run.path)
    again = lamina.run("position", model=tiny_gpt2, seed=0, replicates=1, progress=False)  # in memory
    assert dump_json(again.summary) == (position_run.path / "results.json").read_text()
    forced = lamina.run("position", model=tiny_gpt2, out=tmp_path / "again", force=True, n_samples=20,
                        test_start=500, progress=False)
    assert forced.summary["n_train"] == 6 * 20  # six replicates by default


def test_settings_errors(tiny_gpt2):
    with pytest.raises(lamina.LaminaError, match="Did you mean 'seqlen'"):
        lamina.run("position", model=tiny_gpt2, seqln=5)
    with pytest.raises(lamina.LaminaError, match="needs an integer"):
        lamina.run("position", model=tiny_gpt2, seqlen="six")
    with pytest.raises(lamina.LaminaError, match="overlap"):
        lamina.run("position", model=tiny_gpt2, test_start=100)
    with pytest.raises(lamina.LaminaError, match="position: setting 'replicates' must be at least 1"):
        lamina.run("position", model=tiny_gpt2, replicates=0)
    with pytest.raises(lamina.LaminaError, match=r"has 10042 rows; 7 replicates .* need 10500. Use --set replicates=6"):
        lamina.run("position", model=tiny_gpt2, replicates=7)
    with pytest.raises(lamina.LaminaError, match="unknown experiment 'positon'. Did you mean 'position'"):
        lamina.run("positon", model=tiny_gpt2)


def test_defect4_held_out_test_with_the_context_as_the_unit(position_run):
    """Issue 16, defect 4: significance comes from the held-out split only, with the context (five tokens) as
    the unit: OLS standard errors cluster-robust by context, held-out accuracy with an interval and a test
    over contexts; training accuracy is descriptive (no test)."""
    from scipy import stats as sps

    res = position_run.summary
    losses = position_run.result.tokens.train_losses.astype(float)
    k = losses.shape[1]
    positions = np.tile(np.arange(k), (len(losses), 1)).ravel()
    clustered = sm.OLS(positions, sm.add_constant(losses.ravel())).fit(
        cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(len(losses)), k)}, use_t=True)
    assert res["ols"]["p_slope"] == pytest.approx(clustered.pvalues[1], rel=1e-9)
    assert res["ols"]["se_slope"] == pytest.approx(clustered.bse[1], rel=1e-9)
    assert res["ols"]["ci_low"] < res["ols"]["slope"] < res["ols"]["ci_high"] and res["ols"]["n_contexts"] == 500
    assert "p_above_chance" not in res["train"]
    # held out: each context's accuracy is one observation
    cm = np.array(res["test"]["confusion"])
    assert 100 * np.trace(cm) / cm.sum() == pytest.approx(res["test"]["accuracy"])
    logistic = position_run.result.logistic
    test = position_run.result.tokens.test_losses.astype(float)
    scores = logistic.intercepts[None, None] + logistic.coefs[None, None] * test[..., None]
    per_context = 100 * (scores.argmax(-1) == np.arange(k)[None]).mean(axis=1)
    ref = sps.ttest_1samp(per_context, 100 / k, alternative="greater")
    assert res["test"]["p_above_chance"] == pytest.approx(ref.pvalue, rel=1e-9)
    low, high = sps.ttest_1samp(per_context, 100 / k).confidence_interval(0.95)
    assert (res["test"]["ci_low"], res["test"]["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert res["test"]["significant"] == (res["test"]["p_above_chance"] <= 0.05)
    text = " ".join(f"{k.label} {k.value} {k.test}" for k in position_run.key_numbers)
    assert "binomial" not in text and "cluster-robust by context (500 contexts)" in text


def test_replicates_are_disjoint_row_ranges_in_one_recording(tiny_gpt2, data_dir):
    run = lamina.run("position", model=tiny_gpt2, seed=0, n_samples=100, test_start=200, replicates=3,
                     progress=False)
    s, t = run.summary, run.result.tokens
    assert [(r["train_start"], r["test_start"]) for r in s["replicates"]] == [(0, 200), (300, 500), (600, 800)]
    rows = np.concatenate([t.train_text_index, t.test_text_index])
    assert len(np.unique(rows)) == len(rows) == s["n_train"] + s["n_test"]
    assert set(t.test_text_index[t.test_replicate == 1]) <= set(range(500, 600))
    a = s["across"]
    assert a["n"] == 3 and a["n_agree"] == sum(r["agrees"] for r in s["replicates"])
    accs = [r["test_accuracy"] for r in s["replicates"]]
    assert a["test_accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert a["test_accuracy"]["ci_low"] < a["test_accuracy"]["mean"] < a["test_accuracy"]["ci_high"]
    one_run = lamina.run("position", model=tiny_gpt2, seed=0, n_samples=100, test_start=200, replicates=1,
                         progress=False)
    one = one_run.summary
    assert s["replicates"][0]["test_accuracy"] == pytest.approx(one["test"]["accuracy"])  # replicate 0 = the seed's
    assert one["across"] is None and any("needs at least 2 replicates" in k.value for k in one_run.key_numbers)
    assert {"replicates"} <= set(run.figures())
    assert "replicates" in run.tables and len(run.tables["replicates"]) == 3


def test_calibration_with_clustered_contexts():
    """Rejection rates at alpha = 0.05 under nulls where the five tokens of a context depend on each other.

    OLS: each context has its own level and its own slope on position, zero on average (no linear relation
    of position and loss): cluster-robust standard errors keep about 5%, the seed's iid ones reject far more.
    Held-out accuracy: losses exchangeable within a context (its own level, no position information) and a
    decoder fixed in advance: the one-sided t test over contexts keeps about 5%; a binomial test over tokens
    is conservative here (the positions of one context are decoded alike, and only one of them can be right).
    """
    from scipy import stats as sps

    from lamina.stats.clusters import cluster_mean
    from lamina.stats.regression import ols

    rng = np.random.default_rng(0)
    k, n = 5, 100
    offsets = np.arange(k) - (k - 1) / 2
    positions = np.tile(np.arange(k), n)
    contexts = np.repeat(np.arange(n), k)
    reject = {"ols_cluster": [], "ols_iid": [], "accuracy_contexts": [], "accuracy_binomial": []}
    for _ in range(400):
        level = rng.normal(5, 1, size=(n, 1))
        losses = level + rng.normal(0, 1, size=(n, 1)) * offsets + rng.normal(0, 1, size=(n, k))
        reject["ols_cluster"].append(ols(positions, losses.ravel(), groups=contexts)["pvalues"]["x1"] <= 0.05)
        reject["ols_iid"].append(ols(positions, losses.ravel())["pvalues"]["x1"] <= 0.05)
        exchangeable = level + rng.normal(0, 1, size=(n, k))
        predicted = np.clip(np.floor((exchangeable - 5) / 0.6 + 2.5), 0, k - 1)
        correct = predicted == np.arange(k)[None]
        reject["accuracy_contexts"].append(cluster_mean(correct, null=1 / k, alternative="greater").p <= 0.05)
        reject["accuracy_binomial"].append(
            sps.binomtest(int(correct.sum()), correct.size, 1 / k, alternative="greater").pvalue <= 0.05)
    rates = {name: float(np.mean(v)) for name, v in reject.items()}
    assert 0.03 <= rates["ols_cluster"] <= 0.07, rates
    assert 0.03 <= rates["accuracy_contexts"] <= 0.07, rates
    assert rates["ols_iid"] > 0.15 and rates["accuracy_binomial"] < 0.03, rates
