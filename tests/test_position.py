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
    return lamina.run("position", model=tiny_gpt2, out=out, seed=0, progress=False)


def test_results_equal_seed_computation(position_run, tiny_gpt2, gpt2_tokenizer):
    table = lamina.data.hellaswag()
    ref = seed_000(tiny_gpt2.hf, gpt2_tokenizer, table.ctx.iloc[:500].tolist(), table.ctx.iloc[1000:1500].tolist())
    res = json.loads((position_run.path / "results.json").read_text())
    assert res["n_train"] == res["n_test"] == 500
    np.testing.assert_allclose(res["loss_by_position"], ref["losses"].mean(axis=0), atol=1e-6)
    ols = res["ols"]
    np.testing.assert_allclose([ols["const"], ols["slope"]], ref["smreg"].params, atol=1e-6)
    np.testing.assert_allclose([ols["const"], ols["slope"]], [ref["reg"].intercept_, ref["reg"].coef_[0]], atol=1e-6)
    np.testing.assert_allclose([ols["p_const"], ols["p_slope"]], ref["smreg"].pvalues, atol=1e-6)
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
    again = lamina.run("position", model=tiny_gpt2, seed=0, progress=False)  # in memory: the results.json text
    assert dump_json(again.summary) == (position_run.path / "results.json").read_text()
    forced = lamina.run("position", model=tiny_gpt2, out=tmp_path / "again", force=True, n_samples=20,
                        test_start=500, progress=False)
    assert forced.summary["n_train"] == 20


def test_settings_errors(tiny_gpt2):
    with pytest.raises(lamina.LaminaError, match="Did you mean 'seqlen'"):
        lamina.run("position", model=tiny_gpt2, seqln=5)
    with pytest.raises(lamina.LaminaError, match="needs an integer"):
        lamina.run("position", model=tiny_gpt2, seqlen="six")
    with pytest.raises(lamina.LaminaError, match="overlap"):
        lamina.run("position", model=tiny_gpt2, test_start=100)
    with pytest.raises(lamina.LaminaError, match="unknown experiment 'positon'. Did you mean 'position'"):
        lamina.run("positon", model=tiny_gpt2)
