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
    assert set(res["significant_layers"]) == {"t1_raw", "t1_bh", "t2_raw", "t2_bh"}


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
    with pytest.raises(lamina.LaminaError, match="text is empty"):
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
