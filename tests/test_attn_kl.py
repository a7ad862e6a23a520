"""Experiment `attn-kl` (seed 001): parity with the notebook's own code on tiny GPT-2, errors, calibration."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon
from scipy.stats import binom

import lamina
from lamina.experiments.typed import dump_json
from lamina.stats.multiple import max_statistic_pvalue, permutation_pvalue
from lamina.stats.permutation import js_permutation_null
from seed_code import symmetric_KL


def seed_001(model, tokenizer, text, layeri):
    """The notebook's parts 1-4 and the observed side of part 6, verbatim in substance (text given, not fetched)."""
    n_layers = model.config.n_layer
    att_projs = {}

    def implant_hook(layer_number):
        def hook(module, input, output):
            att_projs[f'attn_L{layer_number}'] = output.detach()
        return hook

    handles = [model.transformer.h[i].attn.c_proj.register_forward_hook(implant_hook(i)) for i in range(n_layers)]
    allTokens = tokenizer.encode(text, return_tensors='pt')  # noqa: N806
    max_seq_len = model.config.max_position_embeddings
    start_idx = len(allTokens[0]) // 2
    tokens = allTokens[:, start_idx:start_idx + max_seq_len]
    with torch.no_grad():
        outs = model(tokens)
    for h in handles:
        h.remove()

    prediction_acc = np.zeros(max_seq_len, dtype=bool)
    toklens = np.zeros(max_seq_len)
    for toki in range(max_seq_len):
        targettok = allTokens[0, start_idx + toki + 1]
        prediction_acc[toki] = np.argmax(outs.logits[0, toki, :]) == targettok
        toklens[toki] = len(tokenizer.decode(targettok))

    def norms(layer):
        C = att_projs[f'attn_L{layer}'][0, prediction_acc, :]  # noqa: N806
        I = att_projs[f'attn_L{layer}'][0, ~prediction_acc, :]  # noqa: N806,E741
        return torch.norm(C, dim=-1).log(), torch.norm(I, dim=-1).log()

    C_norms, I_norms = norms(layeri)  # noqa: N806
    minmax = [min(min(C_norms), min(I_norms)), max(max(C_norms), max(I_norms))]
    histbins = torch.linspace(minmax[0], minmax[1], 31)
    yC, _ = torch.histogram(C_norms, bins=histbins, density=False)  # noqa: N806
    yI, _ = torch.histogram(I_norms, bins=histbins, density=False)  # noqa: N806
    yC, yI = yC / yC.sum(), yI / yI.sum()  # noqa: N806
    c2i = F.kl_div(torch.log(yC + 1e-15), yI, reduction='batchmean')
    i2c = F.kl_div(torch.log(yI + 1e-15), yC, reduction='batchmean')
    bincounts = np.arange(10, 51)
    kl_divs = np.array([symmetric_KL(C_norms, I_norms, b).item() for b in bincounts])
    layers = []
    for layer in range(n_layers):
        c, i = norms(layer)
        e = torch.linspace(min(min(c), min(i)), max(max(c), max(i)), 31)
        p, q = torch.histogram(c, bins=e)[0], torch.histogram(i, bins=e)[0]
        layers.append({"mean_c": c.mean().item(), "mean_i": i.mean().item(),
                       "kldiv": symmetric_KL(c, i).item(), "p": (p / p.sum()).numpy(), "q": (q / q.sum()).numpy()})
    return {"acc": prediction_acc, "toklens": toklens, "c2i": c2i.item(), "i2c": i2c.item(),
            "symKL": symmetric_KL(C_norms, I_norms).item(), "bincounts": bincounts, "kl_divs": kl_divs,
            "layers": layers}


def biased_gpt2(tokenizer, text: str):
    """Tiny random GPT-2 whose final-norm bias points at the token ``text``, so it predicts that token everywhere."""
    from conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(tokenizer)
    (token,) = tokenizer.encode(text)
    with torch.no_grad():
        direction = hf.transformer.wte.weight[token]
        hf.transformer.ln_f.bias += 50 * direction / direction.norm()
    return lamina.wrap(hf, tokenizer, name=f"tiny-gpt2-{text.strip() or 'newline'}")


@pytest.fixture(scope="module")
def newline_gpt2(gpt2_tokenizer):
    """Predicts '\\n' everywhere: right exactly where the book continues with a line break (25 of the
    256 tokens in the middle of Alice), so both groups exist and the correct one is known."""
    return biased_gpt2(gpt2_tokenizer, "\n")


@pytest.fixture(scope="module")
def attn_run(newline_gpt2, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "attn-kl"
    return lamina.run("attn-kl", model=newline_gpt2, out=out, seed=0, focus_layer=1, progress=False)


def test_results_equal_seed_computation(attn_run, newline_gpt2, gpt2_tokenizer):
    ref = seed_001(newline_gpt2.hf, gpt2_tokenizer, lamina.data.book("alice"), layeri=1)
    res = json.loads((attn_run.path / "results.json").read_text())
    acc = ref["acc"]
    assert res["n_tokens"] == res["window"] == 256 and 10 < acc.sum() < 246
    assert res["accuracy"] == acc.mean()
    tokens = pd.read_csv(attn_run.path / "tables" / "tokens.csv", keep_default_na=False)
    np.testing.assert_array_equal(tokens["correct"].to_numpy(), acc)
    assert res["token_length"]["correct_mean"] == pytest.approx(ref["toklens"][acc].mean(), abs=1e-12)
    assert res["token_length"]["incorrect_mean"] == pytest.approx(ref["toklens"][~acc].mean(), abs=1e-12)

    assert len(res["layers"]) == 3
    for mine, seed in zip(res["layers"], ref["layers"]):
        assert mine["mean_log_norm_correct"] == pytest.approx(seed["mean_c"], abs=1e-5)
        assert mine["mean_log_norm_incorrect"] == pytest.approx(seed["mean_i"], abs=1e-5)
        assert mine["seed_symmetric_kl"] == pytest.approx(seed["kldiv"], rel=1e-4)
        # the true JS divergence of the seed's own histograms, computed independently by scipy
        assert mine["js"] == pytest.approx(jensenshannon(seed["p"], seed["q"], base=np.e) ** 2, abs=1e-6)
        assert 0 <= mine["js"] <= np.log(2)

    # focus layer: the seed divides every sum over bins by the 30 bins (reduction='batchmean')
    assert res["focus_layer"] == 1 and res["bins"] == 30
    assert res["js"] == res["layers"][1]["js"]
    assert res["seed_symmetric_kl"] == pytest.approx(ref["symKL"], rel=1e-4)
    assert res["kl_incorrect_to_correct"] == pytest.approx(30 * ref["c2i"], rel=1e-4)  # the seed's "c2i"
    assert res["kl_correct_to_incorrect"] == pytest.approx(30 * ref["i2c"], rel=1e-4)
    sweep = res["bins_sweep"]
    assert [s["edges"] for s in sweep] == ref["bincounts"].tolist()
    assert all(s["bins"] == s["edges"] - 1 for s in sweep)
    np.testing.assert_allclose([s["seed_symmetric_kl"] for s in sweep], ref["kl_divs"], rtol=1e-4)
    assert sweep[30 - 9]["js"] == pytest.approx(res["js"], abs=1e-12)


def test_p_values_and_null_summaries(attn_run):
    res = attn_run.summary
    n = res["n_permutations"]
    for layer in res["layers"]:
        assert 1 / (n + 1) <= layer["p_value"] <= 1
        assert layer["p_corrected"] == layer["p_max"] >= layer["p_value"]
        assert layer["p_bh"] >= layer["p_value"]
        assert layer["null_min"] <= layer["null_mean"] <= layer["null_max"] <= np.log(2)
        assert layer["significant"] == (layer["p_corrected"] < 0.05)
        assert layer["difference"] == pytest.approx(layer["mean_log_norm_correct"] - layer["mean_log_norm_incorrect"])
    null = attn_run.tables["null_focus_layer"]["js"].to_numpy()
    focus = res["layers"][1]
    assert len(null) == n and null.mean() == pytest.approx(focus["null_mean"])
    assert focus["p_value"] == (1 + (null >= focus["js"]).sum()) / (1 + n)


def test_run_directory_and_report(attn_run):
    path = attn_run.path
    figures = {p.name for p in (path / "figures").iterdir()}
    for stem in ["accuracy_by_position", "token_lengths", "focus_histograms", "bins_sweep", "focus_null",
                 "laminar_profile"]:
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    assert {"tokens.csv", "layers.csv", "bins_sweep.csv", "null_focus_layer.csv"} <= {
        p.name for p in (path / "tables").iterdir()}
    res = json.loads((path / "results.json").read_text())
    for key in ["n_tokens", "accuracy", "token_length", "focus_layer", "kl_correct_to_incorrect",
                "kl_incorrect_to_correct", "js", "bins_sweep", "layers"]:
        assert key in res
    for key in ["mean_log_norm_correct", "mean_log_norm_incorrect", "js", "p_value", "p_corrected", "null_mean",
                "null_min", "null_max"]:
        assert key in res["layers"][0]
    page = (path / "report.html").read_text()
    assert "JS divergence of log norms, layer 1" in page and "batchmean" in page
    assert {"record", "stats", "figures"} <= set(json.loads((path / "manifest.json").read_text())["timings"])


def test_same_seed_same_results(attn_run, newline_gpt2, tmp_path):
    again = lamina.run("attn-kl", model=newline_gpt2, seed=0, focus_layer=1, progress=False)
    assert dump_json(again.summary) == (attn_run.path / "results.json").read_text()
    other = lamina.run("attn-kl", model=newline_gpt2, seed=1, focus_layer=1, n_permutations=200, progress=False)
    assert [x["js"] for x in other.summary["layers"]] == [x["js"] for x in attn_run.summary["layers"]]
    assert [x["null_mean"] for x in other.summary["layers"]] != [x["null_mean"] for x in attn_run.summary["layers"]]


def test_empty_group_is_a_clear_error(gpt2_tokenizer, data_dir):
    """A model that always predicts ' quantum' gets none of the window right: no 'correct' group to compare."""
    model = biased_gpt2(gpt2_tokenizer, " quantum")
    with pytest.raises(lamina.LaminaError, match=r"the 'correct' group has 0 of 256 tokens \(correct: 0, "
                                                 r"incorrect: 256\); .* at least 2 tokens in each group"):
        lamina.run("attn-kl", model=model, focus_layer=1, progress=False)


def test_window_at_the_end_of_a_text_file(newline_gpt2, gpt2_tokenizer, tmp_path):
    """A window that ends with the text: its last token has no next token and is left out, with a note."""
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"Line {i} of a short book\n" for i in range(40)))
    n = len(gpt2_tokenizer.encode(path.read_text()))
    run = lamina.run("attn-kl", model=newline_gpt2, book=str(path), window=n - n // 2, focus_layer=0,
                     bins_sweep="5,8", n_permutations=50, progress=False)
    assert run.summary["n_tokens"] == n - n // 2 - 1 and run.summary["window_start"] == n // 2
    assert run.summary["n_correct"] > 10  # every '\n' is predicted
    assert any("last token has no next token" in note for note in run.notes)


def test_settings_errors(newline_gpt2, data_dir):
    run = lambda **kw: lamina.run("attn-kl", model=newline_gpt2, progress=False, **kw)  # noqa: E731
    with pytest.raises(lamina.LaminaError, match="focus_layer=4 is not a layer of tiny-gpt2-newline"):
        run(focus_layer=4)
    with pytest.raises(lamina.LaminaError, match="focus_layer=1.5 is neither a layer index"):
        run(focus_layer=1.5)
    with pytest.raises(lamina.LaminaError, match=r"window=300 does not fit .* 256 tokens; use --set window=256"):
        run(focus_layer=0, window=300)
    with pytest.raises(lamina.LaminaError, match="correction must be 'max'"):
        run(correction="holm")
    with pytest.raises(lamina.LaminaError, match="bins_sweep"):
        run(bins_sweep="20,10")
    with pytest.raises(lamina.LaminaError, match="unknown book"):
        run(focus_layer=0, book="looking-glass")


def _random_label_pvalues(n_seeds=300, n_tokens=200, n_permutations=199):
    """p-values of 10 layers of label-independent data (normal, heavy-tailed, tied) under random labels."""
    raw, corrected = [], []
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        values = np.vstack([rng.normal(size=(4, n_tokens)), rng.standard_t(2, size=(3, n_tokens)),
                            np.round(rng.gamma(2.0, size=(3, n_tokens)), 1)])
        labels = rng.random(n_tokens) < 0.3
        res = js_permutation_null(values, labels, n_permutations, rng)
        raw.append(permutation_pvalue(res.observed, res.null))
        corrected.append(max_statistic_pvalue(res.observed, res.null))
    return np.array(raw), np.array(corrected)


def test_p_values_are_calibrated_under_random_labels():
    """About 5% of layers fall below 0.05 across many seeds (exactly 9/200 for 199 shuffles), and the
    max-statistic keeps the chance of any false positive among 10 layers at that level too."""
    raw, corrected = _random_label_pvalues()
    for alpha in (0.05, 0.2, 0.5):
        expected = (np.ceil(alpha * 200 - 1)) / 200  # P((1 + k)/200 < alpha), k uniform on 0..199
        lo, hi = binom.interval(0.999, raw.size, expected)
        assert lo <= (raw < alpha).sum() <= hi, (alpha, (raw < alpha).mean())
    n_seeds = len(raw)
    lo, hi = binom.interval(0.999, n_seeds, 0.045)
    assert lo <= (corrected.min(axis=1) < 0.05).sum() <= hi
    assert (raw.min(axis=1) < 0.05).mean() > 0.25  # uncorrected, some layer is "significant" far more often


@pytest.mark.slow
def test_smollm2_short_window(smollm2, data_dir):
    run = lamina.run("attn-kl", model=smollm2, window=256, n_permutations=200, progress=False)
    s = run.summary
    assert len(s["layers"]) == 30 and s["n_tokens"] == 256
    assert 0.2 < s["accuracy"] < 0.8
    assert s["focus_layer"] == 3  # depth 0.125 of 30 blocks
    assert 0 < s["js"] < np.log(2) and s["layers"][3]["js"] == s["js"]
    assert any("BOS" in note for note in run.notes)
