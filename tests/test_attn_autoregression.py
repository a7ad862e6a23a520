"""Experiment `attn-autoregression` (seed 002): parity with the notebook on tiny GPT-2."""

import json

import numpy as np
import pytest
import statsmodels.api as sm
import torch

import lamina
from lamina.experiments.typed import dump_json
from lamina.stats.regression import lagged_design

SEED_TEXT = ("Hungarian rock has been a part of the popular music of Hungary since the early 1960s. The first major "
             "bands were Illés, Metró and Omega. At the time, rock was not approved of by the Hungarian Communist "
             "authorities. In the 1970s, the Communists cracked down on rock, and Illés was banned from recording. "
             "Some members of the other bands formed a supergroup called Locomotiv GT, while the band Omega became "
             "very popular in Germany.")


def seed_002(gpt2, tokenizer):
    """The notebook's cells: hooks on attn output[0], then per layer OLS on the lagged design."""
    n_layers = gpt2.config.n_layer
    adjustments = {}

    def implant_hook(layer_number):
        def hook(module, input, output):
            adjustments[f"L{layer_number}_attn"] = output[0].detach().numpy()
        return hook

    handles = [gpt2.transformer.h[i].attn.register_forward_hook(implant_hook(i)) for i in range(n_layers)]
    tokens = tokenizer.encode(SEED_TEXT, return_tensors="pt")
    n_tokens = len(tokens[0])
    with torch.no_grad():
        gpt2(tokens)
    for h in handles:
        h.remove()
    design = np.zeros((n_tokens - 3, 3))
    betas, pvals, consts = np.zeros((n_layers, 2)), np.zeros((n_layers, 2)), np.zeros(n_layers)
    lstsq = np.zeros((n_layers, 3))
    for layeri in range(n_layers):
        norms = np.log(np.linalg.norm(adjustments[f"L{layeri}_attn"][0, :, :], axis=-1))
        for t in range(3, n_tokens):
            design[t - 3, :] = [1, norms[t - 1], norms[t - 2]]
        regmodel = sm.OLS(norms[3:], design).fit()
        betas[layeri], pvals[layeri], consts[layeri] = regmodel.params[1:], regmodel.pvalues[1:], regmodel.params[0]
        lstsq[layeri] = np.linalg.lstsq(design, norms[3:], rcond=None)[0]
    return n_tokens, consts, betas, pvals, lstsq


def test_betas_and_pvalues_equal_seed(tiny_gpt2, gpt2_tokenizer, tmp_path):
    run = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, out=tmp_path / "ar", progress=False)
    res = json.loads((run.path / "results.json").read_text())
    n_tokens, consts, betas, pvals, lstsq = seed_002(tiny_gpt2.hf, gpt2_tokenizer)
    assert res["n_tokens"] == n_tokens and len(res["layers"]) == tiny_gpt2.n_layers
    ours = {k: np.array([layer[k] for layer in res["layers"]]) for k in res["layers"][0]}
    np.testing.assert_allclose(ours["intercept"], consts, atol=1e-6)
    np.testing.assert_allclose(np.stack([ours["beta_t1"], ours["beta_t2"]], 1), betas, atol=1e-6)
    np.testing.assert_allclose(np.stack([ours["p_t1"], ours["p_t2"]], 1), pvals, atol=1e-6)
    # numpy's least squares gives the same betas (the seed's own check).
    np.testing.assert_allclose(np.stack([ours["intercept"], ours["beta_t1"], ours["beta_t2"]], 1), lstsq, atol=1e-6)
    # Benjamini-Hochberg never makes a p-value smaller, and is reported beside the raw one.
    assert (ours["p_t1_bh"] >= ours["p_t1"] - 1e-12).all()
    assert res["significant_layers"].keys() == {"t1", "t2", "order_t1", "t1_raw", "t1_bh", "t2_raw", "t2_bh"}
    assert res["replicates"] == 1 and res["correction"] == "holm"  # a given text: one passage, Holm over layers


def test_lagged_design_matches_seed_loop():
    y = np.arange(10.0) ** 1.5
    target, X = lagged_design(y)
    assert target.tolist() == y[3:].tolist()
    np.testing.assert_array_equal(X, np.stack([y[2:9], y[1:8]], 1))
    with pytest.raises(lamina.LaminaError, match="too few|at least"):
        lagged_design(np.arange(5.0))


def test_passage_sources_and_errors(tiny_gpt2, tmp_path, data_dir):
    default = lamina.run("attn-autoregression", model=tiny_gpt2, progress=False)
    assert default.summary["n_tokens"] >= 90 and "gatsby" in default.summary["source"]
    path = tmp_path / "passage.txt"
    path.write_text(SEED_TEXT, encoding="utf-8")
    from_file = lamina.run("attn-autoregression", model=tiny_gpt2, text_file=str(path), progress=False)
    from_text = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, progress=False)
    assert from_file.summary["layers"] == from_text.summary["layers"]
    with pytest.raises(lamina.LaminaError, match="'text' is empty"):
        lamina.run("attn-autoregression", model=tiny_gpt2, text="   ")
    with pytest.raises(lamina.LaminaError, match="targets"):
        lamina.run("attn-autoregression", model=tiny_gpt2, text="Too short a text.")
    with pytest.raises(lamina.LaminaError, match="does not exist"):
        lamina.run("attn-autoregression", model=tiny_gpt2, text_file=str(tmp_path / "missing.txt"))
    with pytest.raises(lamina.LaminaError, match="no passage starting"):
        lamina.run("attn-autoregression", model=tiny_gpt2, start="Call me Ishmael")


def test_same_seed_same_results(tiny_gpt2, tmp_path):
    a = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, out=tmp_path / "a", progress=False)
    b = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, progress=False)
    assert (a.path / "results.json").read_text() == dump_json(b.summary)


# ---- issue 16: replicates (passages), the one significance rule, the BH family, HAC -----------------------
def words(run) -> str:
    """Everything the report says: method, key numbers with their tests, notes."""
    report = run.text
    return " ".join([report.method, *(" ".join(row) for row in report.key_numbers), *report.notes])


@pytest.fixture(scope="module")
def passages_run(tiny_gpt2, tmp_path_factory, data_dir):
    return lamina.run("attn-autoregression", model=tiny_gpt2, out=tmp_path_factory.mktemp("ar") / "run",
                      progress=False, replicates=4)


def test_p_equal_to_alpha_is_significant(tiny_gpt2):
    """Defect 7 (issue 16): one rule everywhere, p <= alpha. A layer whose p-value equals alpha counts."""
    first = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, progress=False)
    p = np.array([layer["p_t1"] for layer in first.summary["layers"]])
    alpha = float(p[np.argsort(p)[1]])  # the second smallest p: at least two layers have p <= alpha
    run = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, alpha=alpha, progress=False)
    assert run.summary["significant_layers"]["t1_raw"] == int((p <= alpha).sum()) >= 2
    assert "p ≤" in words(run) and "p < " not in words(run)


def test_report_says_the_default_passage_is_not_the_seeds(passages_run, tiny_gpt2):
    """Defect 6 (issue 16): the default passage (Gatsby) differs from the seed's (Hungarian rock), and the
    report says so; the BH family and the standard errors are stated."""
    text = words(passages_run)
    assert "Hungarian rock" in text and "Great Gatsby" in text
    assert "each lag and the order difference its own family" in text and "Its Benjamini-Hochberg runs per lag" in text
    given = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, progress=False)
    assert "Hungarian rock" not in words(given)  # a given passage needs no such note


def test_families(passages_run):
    """The seed's pooled fit: BH per lag. The headline: max-|t| over layers by sign flips of passages, per lag."""
    from lamina.stats.multiple import benjamini_hochberg
    from lamina.stats.replicates import sign_flip_max_t

    layers, adjusted = passages_run.summary["layers"], passages_run.summary["adjusted"]
    per = passages_run.result.per_passage
    assert passages_run.summary["correction"] == "max"
    for lag in ("t1", "t2"):
        p = np.array([layer[f"p_{lag}"] for layer in layers])
        np.testing.assert_allclose([layer[f"p_{lag}_bh"] for layer in layers], benjamini_hochberg(p))
        across = [layer[lag] for layer in adjusted]
        np.testing.assert_allclose([a["p_corrected"] for a in across], sign_flip_max_t(getattr(per, f"adjusted_{lag}")))
        assert [a["significant"] for a in across] == [a["p_corrected"] <= 0.05 for a in across]
        assert passages_run.summary["significant_layers"][lag] == sum(a["significant"] for a in across)


def test_passages_are_consecutive_and_passage_zero_is_the_single_run(passages_run, tiny_gpt2):
    s = passages_run.summary
    assert s["replicates"] == 4 and len(s["passage_tokens"]) == 4 and s["n_tokens"] == sum(s["passage_tokens"])
    assert all(n >= 90 for n in s["passage_tokens"])
    single = lamina.run("attn-autoregression", model=tiny_gpt2, replicates=1, progress=False)
    assert single.summary["n_tokens"] == s["passage_tokens"][0]
    per = passages_run.result.per_passage
    np.testing.assert_allclose(per.beta_t1[0], single.result.column("beta_t1"), atol=1e-5)
    # the across test works on each passage's own position-adjusted, bias-corrected betas
    for lag in ("t1", "t2"):
        betas = getattr(per, f"adjusted_{lag}")
        np.testing.assert_allclose([layer[lag]["mean"] for layer in s["adjusted"]], betas.mean(axis=0))
    tokens = passages_run.tables["log_norms"].query("layer == 0")
    assert list(tokens.groupby("passage").size()) == list(s["passage_tokens"])
    page = (passages_run.path / "report.html").read_text()
    assert "Passages agreeing with the mean" in page and "of 4 passages agree" in page
    assert "needs at least 2 replicates" in words(single)


def test_profiles_use_the_passages(passages_run):
    """Profiled metrics have one null value at every layer: position-adjusted betas (0), the lags' adjusted
    partial R² beyond position (about 0), real − shuffled β₁ (0)."""
    table = passages_run.profiles
    assert set(table["metric"]) == {"beta_t1", "beta_t2", "partial_r2_adj", "order_t1"}
    per = passages_run.result.per_passage
    for metric, values in (("beta_t1", per.adjusted_t1), ("beta_t2", per.adjusted_t2),
                           ("partial_r2_adj", per.partial_r2_adj), ("order_t1", per.adjusted_t1 - per.shuffled_t1)):
        rows = table.query("metric == @metric")
        np.testing.assert_allclose(rows["value"], values.mean(axis=0))
        assert (rows["ci_low"] < rows["value"]).all() and (rows["value"] < rows["ci_high"]).all()


def test_hac_standard_errors(tiny_gpt2):
    import statsmodels.api as sm

    ols = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, progress=False)
    hac = lamina.run("attn-autoregression", model=tiny_gpt2, text=SEED_TEXT, se="hac", progress=False)
    assert hac.summary["se"] == "hac" and hac.summary["hac_lags"] == 3 and ols.summary["hac_lags"] is None
    y = ols.result.norms.log_norms[1]
    target, X = lagged_design(y)
    ref = sm.OLS(target, sm.add_constant(X)).fit(cov_type="HAC", cov_kwds={"maxlags": 3, "use_correction": True})
    np.testing.assert_allclose([hac.result.layers[1].se_t1, hac.result.layers[1].se_t2], ref.bse[1:], rtol=1e-8)
    assert [layer["beta_t1"] for layer in hac.summary["layers"]] == [layer["beta_t1"] for layer in
                                                                    ols.summary["layers"]]
    assert "Newey–West" in words(hac)


def test_replicate_settings(tiny_gpt2, tmp_path):
    exp = lamina.experiments.get("attn-autoregression")
    assert exp.config().replicates == 8 and exp.config({"text": "A passage."}).replicates == 1
    with pytest.raises(lamina.LaminaError, match="a given text is one passage"):
        exp.config({"text": "A passage.", "replicates": "3"})
    with pytest.raises(lamina.LaminaError, match="'replicates' must be at least 1"):
        exp.config({"replicates": "0"})
    with pytest.raises(lamina.LaminaError, match="'se' must be one of ols, hac"):
        exp.config({"se": "hc3"})
    with pytest.raises(lamina.LaminaError, match="holds only"):
        lamina.run("attn-autoregression", model=tiny_gpt2, start="Gatsby, pale as death", replicates=500,
                   progress=False)


# ---- issue 25: position terms, bias correction, the token-order control, constant layers --------------------
def test_token_order_control(passages_run, tiny_gpt2):
    """Every passage is recorded again with its tokens in a seeded random order (the same tokens), in the same
    recording; its β₁ is reported beside the real one and their paired difference is tested."""
    result = passages_run.result
    norms, tokens = result.norms, result.norms.tokens
    assert norms.shuffled_log_norms.shape == norms.log_norms.shape
    for p in range(result.replicates):
        own = norms.passage == p
        assert sorted(norms.shuffled_tokens[own]) == sorted(tokens[own])
        assert list(norms.shuffled_tokens[own]) != list(tokens[own])
    per = result.per_passage
    np.testing.assert_allclose(result.adjusted_column("order_t1"), (per.adjusted_t1 - per.shuffled_t1).mean(axis=0))
    np.testing.assert_allclose(result.adjusted_column("shuffled_t1"), per.shuffled_t1.mean(axis=0))
    table = passages_run.tables["log_norms"]
    assert {"shuffled_token", "shuffled_log_norm"} <= set(table.columns)
    again = lamina.run("attn-autoregression", model=tiny_gpt2, progress=False, replicates=4)  # same seed: same
    np.testing.assert_array_equal(again.result.norms.shuffled_tokens, norms.shuffled_tokens)
    assert "Word order: β₁ real − shuffled" in words(passages_run)


def test_headline_leads_with_estimates_and_names_its_correction(passages_run):
    rows = {row.label: row for row in passages_run.text.key_numbers}
    beta = rows["β₁ beyond position (t-1 predicts t)"]
    assert beta.value.startswith("mean over 3 tested layers") and "95% CI" in beta.value
    assert "max-|t| of sign flips of whole passages" in beta.test
    assert "Lags' partial R² beyond position" in rows and "Seed's fit (no position terms, pooled)" in rows
    assert "one intercept per passage" in passages_run.text.method and "one intercept)" not in words(passages_run)
    # 4 passages: 16 sign patterns, the smallest family-wise p is 2/16: the report says no layer can reach alpha
    assert "smallest family-wise p-value is 0.125" in words(passages_run)
    assert passages_run.summary["significant_layers"]["t1"] == 0


@pytest.fixture(scope="module")
def post_norm_model(gpt2_tokenizer):
    """An untrained tiny Gemma-3 as Hugging Face initialises it: zero norm weights, so each post-attention norm
    fixes the norm of attn.out at √64 (eps 1e-12 keeps the tiny outputs from reaching the norm's epsilon)."""
    from transformers import AutoModelForCausalLM

    from lamina.models.tiny import EMBEDDED_CONFIGS, tiny_config

    spec = dict(EMBEDDED_CONFIGS["gemma3-270m"])
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(tiny_config(spec.pop("model_type"), **{**spec, "rms_norm_eps": 1e-12}))
    return lamina.wrap(hf.eval(), gpt2_tokenizer, name="untrained-tiny-gemma3")


def test_constant_layers_are_not_tested(post_norm_model, data_dir, recwarn):
    """Issue 25, item 2: log norms a post-norm fixes (ln 8 here, ln √640 = 3.2307 in Gemma-3 270M) vary only by
    float32 rounding: the layer is marked constant, gets NaN, counts nowhere, and the report says why."""
    run = lamina.run("attn-autoregression", model=post_norm_model, progress=False, replicates=2)
    result, n = run.result, post_norm_model.n_layers
    np.testing.assert_allclose(result.norms.log_norms, np.log(8), atol=1e-6)
    assert result.constant_layers == tuple(range(n))
    assert all(layer.constant and np.isnan(layer.t1.p) and not layer.t1.significant for layer in result.adjusted)
    assert np.isnan(result.column("beta_t1")).all()  # the seed's fit is not run on rounding either
    assert all(v == 0 for v in run.summary["significant_layers"].values())
    assert run.profiles["value"].isna().all()
    rows = {row.label: row for row in run.text.key_numbers}
    assert rows["Layers not tested (constant)"].value == f"{n} of {n}: 0–{n - 1}"
    assert "float32" in rows["Layers not tested (constant)"].test
    assert rows["β₁ beyond position (t-1 predicts t)"].value.startswith("not tested")
    assert not [w for w in recwarn if "rank-deficient" in str(w.message) or "divide" in str(w.message)]
