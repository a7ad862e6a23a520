"""What a researcher writing a new question reached for (issue 28): untrained controls as a public call,
loss-only recordings, selection by model layer, token-table arrays torch takes without a warning."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import lamina
from lamina import LaminaError, Stimuli
from lamina.models import control


def ragged(n=5, seed=0, lo=3, hi=9):
    rng = np.random.default_rng(seed)
    next_ids = rng.integers(0, 5000, n)
    next_ids[1] = -1  # the text ends there: no loss at that sequence's last position
    return Stimuli([rng.integers(0, 5000, rng.integers(lo, hi)) for _ in range(n)], next_ids=next_ids)


# ---- 1. random_control is public ----------------------------------------------------------------
def test_random_control_is_public(tiny_gpt2):
    assert lamina.random_control is lamina.models.random_control is control.random_control
    assert "random_control" in lamina.__all__ and "random_control" in lamina.models.__all__
    assert "What is random: every weight" in lamina.random_control.__doc__
    # tiny_gpt2 itself is GPT-2's initialisation under torch seed 0, so the controls use other seeds
    same, again, other = (lamina.random_control(tiny_gpt2, seed=s) for s in (5, 5, 6))
    assert same.name == "tiny-gpt2 (untrained, seed 5)" and same.source["kind"] == "random-init"
    assert same.tokenizer is tiny_gpt2.tokenizer and same.config.to_dict() == tiny_gpt2.config.to_dict()
    trained, a, b, c = (m.hf.state_dict() for m in (tiny_gpt2, same, again, other))
    name = "transformer.h.0.attn.c_attn.weight"
    assert torch.equal(a[name], b[name])  # the seed decides the weights
    assert not torch.equal(a[name], c[name]) and not torch.equal(a[name], trained[name])


# ---- 3. loss-only recordings ---------------------------------------------------------------------
@pytest.mark.parametrize("disk", [False, True])
def test_loss_only_recording(tiny_gpt2, tmp_path, disk):
    stimuli = ragged()
    out = tmp_path / "rec" if disk else None
    rec = lamina.record(tiny_gpt2, stimuli, sites=[], out=out, progress=False)
    full = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    assert rec.sites == [] and rec.layers == {}
    np.testing.assert_array_equal(rec.tokens["loss"].to_numpy(), full.tokens["loss"].to_numpy())
    known = int(np.isfinite(full.tokens["loss"].to_numpy()).sum())
    assert known < len(full.tokens)  # the sequences whose next id is unknown have no loss at the end
    text = repr(rec)
    assert f"loss of {known} tokens" in text and "no activation sites" in text
    assert f"loss of {known} tokens" in rec._repr_html_()
    assert f"sites: hidden[4 layers]; loss of {known} tokens" in repr(full)
    same = lamina.record(tiny_gpt2, stimuli, sites=["loss"], progress=False)  # the older spelling
    assert repr(same).startswith(text.split(", path=")[0].rstrip(")"))


def test_no_sites_without_loss_is_an_error(tiny_gpt2):
    with pytest.raises(LaminaError, match=r"^nothing to record: sites=\[\] with loss=False"):
        lamina.record(tiny_gpt2, ragged(), sites=[], loss=False)
    with pytest.raises(LaminaError, match="come from the LM head"):
        lamina.record(tiny_gpt2, ragged(), sites=["loss"], loss=False)
    no_loss = lamina.record(tiny_gpt2, ragged(), sites=["hidden"], layers=[1], loss=False, progress=False)
    assert "loss" not in repr(no_loss) and "sites: hidden[1 layers]" in repr(no_loss)


# ---- 4. selection by model layer -----------------------------------------------------------------
@pytest.mark.parametrize("disk", [False, True])
def test_sel_takes_model_layers(tiny_gpt2, tmp_path, disk):
    stimuli = ragged()
    out = tmp_path / "rec" if disk else None
    everything = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "attn.out"], progress=False)
    rec = lamina.record(tiny_gpt2, stimuli, sites=["hidden", "attn.out"], layers={"hidden": [1, 3], "attn.out": [2]},
                        out=out, shard_size=2, progress=False)
    assert (rec.path is not None) == disk
    # attn.out has 3 entries (0..2): layer 2 recorded alone sits at index 0 of the layer axis.
    np.testing.assert_array_equal(rec.sel("attn.out", layer=2), rec["attn.out"][0])
    np.testing.assert_array_equal(rec.sel("attn.out", layer=-1), everything["attn.out"][2])
    # hidden has 4 entries: -1 is the final one, 3; a list keeps the order given.
    np.testing.assert_array_equal(rec.sel("hidden", -1), everything["hidden"][3])
    np.testing.assert_array_equal(rec.sel("hidden", [3, 1]), everything["hidden"][[3, 1]])
    np.testing.assert_array_equal(rec.sel("hidden", [-3]), everything["hidden"][[1]])
    np.testing.assert_array_equal(rec.sel("hidden"), rec["hidden"])
    np.testing.assert_array_equal(rec.layer("hidden", -1), everything["hidden"][3])
    with pytest.raises(LaminaError, match=r"^layer 0 of site 'hidden' was not recorded; recorded layers: 1, 3 of 0–3\."):
        rec.sel("hidden", 0)
    with pytest.raises(LaminaError, match=r"^layer -2 \(model layer 1\) of site 'attn.out' was not recorded; "
                                          r"recorded layers: 2 of 0–2\."):
        rec.sel("attn.out", -2)
    with pytest.raises(LaminaError, match="was not recorded"):
        rec.sel("hidden", [1, 2])
    with pytest.raises(LaminaError, match="empty list of layers"):
        rec.sel("hidden", [])
    with pytest.raises(LaminaError, match="a layer is an integer"):
        rec.sel("hidden", 1.0)
    with pytest.raises(LaminaError, match="'mlp.out' was not recorded"):
        rec.sel("mlp.out", 0)


def test_negative_layer_counts_from_the_model_not_the_recording(tiny_gpt2):
    """layers=[0, 1] of hidden's 4 entries: -1 is entry 3, which was not recorded (it used to be 1)."""
    rec = lamina.record(tiny_gpt2, ragged(), sites=["hidden"], layers=[0, 1], progress=False)
    with pytest.raises(LaminaError, match=r"layer -1 \(model layer 3\)"):
        rec.layer("hidden", -1)
    with pytest.raises(LaminaError, match=r"layer -1 \(model layer 3\)"):
        rec.flat("hidden", -1)


# ---- 5. token-table arrays for torch -------------------------------------------------------------
def test_token_array_is_a_writable_copy(tiny_gpt2):
    rec = lamina.record(tiny_gpt2, ragged(), sites=["hidden"], layers=[0], progress=False)
    before = rec.tokens.copy()
    for column in ("loss", "token_id", "position", "next_id", "predicted_id"):
        values = rec.token_array(column)
        assert values.flags.writeable and values.shape == (len(rec.tokens),)
        np.testing.assert_array_equal(values, rec.tokens[column].to_numpy())
        torch.from_numpy(values).zero_()  # writing through a tensor ...
    correct = rec.token_array("correct")
    assert correct.dtype == np.float32 and np.isnan(correct).sum() == rec.tokens["correct"].isna().sum()
    assert rec.token_array("token").dtype == object
    import pandas as pd
    pd.testing.assert_frame_equal(rec.tokens, before)  # ... never changes the recording
    with pytest.raises(LaminaError, match="no column 'los'.*Did you mean 'loss'"):
        rec.token_array("los")


def test_token_columns_reach_torch_without_a_warning(tiny_gpt2):
    """torch warns once per process, so the check runs in a fresh one."""
    code = (
        "import warnings, numpy as np, torch, lamina\n"
        "from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer\n"
        "tok = GPT2Tokenizer(vocab=%r, merges=%r)\n"
        "torch.manual_seed(0)\n"
        "hf = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=len(tok))).eval()\n"
        "model = lamina.wrap(hf, tok, name='t')\n"
        "rec = lamina.record(model, lamina.Stimuli([np.arange(4) + 100]), sites=[], progress=False)\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('error')\n"
        "    torch.as_tensor(rec.tokens['loss']); torch.as_tensor(rec.tokens['token_id'])\n"
        "    torch.as_tensor(rec.token_array('loss')); torch.from_numpy(rec.token_array('token_id'))\n"
        "    torch.as_tensor(rec.token_array('correct'))\n"
        "print('clean')\n")
    from conftest import _gpt2_files

    done = subprocess.run([sys.executable, "-c", code % _gpt2_files()], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "clean" in done.stdout, done.stderr[-3000:]
