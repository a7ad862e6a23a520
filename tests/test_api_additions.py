"""What a researcher writing a new question reached for (issue 28): untrained controls as a public call,
repeated random tokens, concatenated and prefixed stimuli, loss-only recordings, selection by model layer,
token-table arrays torch takes without a warning, recordings as xarray."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lamina
from lamina import LaminaError, Stimuli
from lamina.models import control
from lamina.stimuli import concat, prefixed, repeated_random


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


# ---- 2. stimuli: repeated random tokens, concatenation, prefixes ---------------------------------


_settings = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(n=st.integers(1, 4), length=st.integers(1, 12), repeats=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_repeated_random_is_a_repeated_block(gpt2_tokenizer, n, length, repeats, seed):
    stim = repeated_random(gpt2_tokenizer, n, length, repeats=repeats, seed=seed)
    assert len(stim) == n and set(stim.lengths.tolist()) == {length * repeats}
    assert stim.tokenizer == "GPT2Tokenizer (vocab 50257)"
    for seq, rep, off in zip(stim.ids, stim.token_columns["repeat"], stim.token_columns["offset"]):
        block = seq[:length]
        assert len(set(block.tolist())) == length  # distinct within a block: the repeat is determined
        np.testing.assert_array_equal(seq, np.tile(block, repeats))
        np.testing.assert_array_equal(np.arange(len(seq)), rep * length + off)
        assert seq.min() >= 0 and seq.max() < len(gpt2_tokenizer) and 50256 not in seq  # <|endoftext|> is special
    assert (stim.next_ids == -1).all()
    assert stim.meta.to_dict("list") == {"block_length": [length] * n, "repeats": [repeats] * n, "seed": [seed] * n}
    again = repeated_random(gpt2_tokenizer, n, length, repeats=repeats, seed=seed)
    assert again.fingerprint() == stim.fingerprint()


def test_repeated_random_seeds_and_errors(tiny_gpt2):
    a, b = (repeated_random(tiny_gpt2, 3, 20, seed=s) for s in (0, 1))
    assert a.fingerprint() != b.fingerprint() and not np.array_equal(a.ids[0], a.ids[1])
    bad = [(dict(n_sequences=0), "n_sequences must be at least 1"), (dict(length=0), "length must be at least 1"),
           (dict(repeats=True), "repeats must be an integer"), (dict(seed=-1), "seed must be a non-negative"),
           (dict(seed=1.5), "seed must be a non-negative"),
           (dict(length=100, repeats=3, max_length=256), r"a sequence \(3 x 100\) of 300 tokens is longer"),
           (dict(length=60000), "distinct tokens needs more than the vocabulary's 50256 ordinary tokens")]
    for kwargs, message in bad:
        args = dict(n_sequences=2, length=4, repeats=2, seed=0) | kwargs
        with pytest.raises(LaminaError, match=message):
            repeated_random(tiny_gpt2, **args)
    with pytest.raises(LaminaError, match="lamina.load\\('gpt2'\\)"):
        repeated_random("gpt2", 2, 4)


@pytest.mark.parametrize("disk", [False, True])
def test_token_columns_reach_the_token_table(tiny_llama, tmp_path, disk):
    """A builder's per-token columns land in rec.tokens at the kept positions, in memory and on disk; the
    BOS row of keep_bos gets -1 (tiny_llama is fed a BOS)."""
    stim = repeated_random(tiny_llama, 3, 5, repeats=2, seed=3)
    out = tmp_path / "rec" if disk else None
    rec = lamina.record(tiny_llama, stim, sites=["hidden"], layers=[1], keep_bos=True, out=out, shard_size=2,
                        progress=False)
    tokens = rec.tokens
    assert list(tokens.columns[-2:]) == ["offset", "repeat"]
    real = tokens[tokens["position"] >= 0]
    np.testing.assert_array_equal(real["position"], real["repeat"] * 5 + real["offset"])
    assert (tokens.loc[tokens["bos"], ["repeat", "offset"]] == -1).all().all()
    last = lamina.record(tiny_llama, stim, sites=["hidden"], layers=[1], positions="last", progress=False).tokens
    assert last["repeat"].tolist() == [1, 1, 1] and last["offset"].tolist() == [4, 4, 4]


def _stimuli(draw_lengths, seed, columns=True):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(0, 1000, k) for k in draw_lengths]
    cols = {"weight": [rng.random(k) for k in draw_lengths]} if columns else None
    return Stimuli(ids, pd.DataFrame({"n": list(draw_lengths)}), rng.integers(-1, 1000, len(ids)), ["a note"], cols)


lengths = st.lists(st.integers(1, 6), min_size=1, max_size=4)


@_settings
@given(a=lengths, b=lengths, c=lengths, with_cols=st.booleans())
def test_concat_stacks_sequences_and_keeps_the_parts_apart(a, b, c, with_cols):
    x, y, z = _stimuli(a, 0, with_cols), _stimuli(b, 1, False), _stimuli(c, 2)
    joined = concat(x, y, z)
    assert len(joined) == len(a) + len(b) + len(c)
    for got, want in zip(joined.ids, x.ids + y.ids + z.ids):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(joined.next_ids, np.concatenate([x.next_ids, y.next_ids, z.next_ids]))
    assert joined.meta["part"].tolist() == [0] * len(a) + [1] * len(b) + [2] * len(c)
    assert joined.meta["n"].tolist() == a + b + c
    assert joined.notes == ["part 0: a note", "part 1: a note", "part 2: a note"]
    weights = joined.token_columns["weight"]  # y lacks the column: NaN there; x has it only with_cols
    for i, part in enumerate([0] * len(a) + [1] * len(b) + [2] * len(c)):
        source = {0: x, 1: y, 2: z}[part]
        if "weight" in source.token_columns:
            first = joined.meta["part"].tolist().index(part)
            np.testing.assert_array_equal(weights[i], source.token_columns["weight"][i - first])
        else:
            assert np.isnan(weights[i]).all()
    nested = (x + y) + z
    assert nested.fingerprint() == joined.fingerprint() and nested.meta.equals(joined.meta)
    assert (x + (y + z)).meta["part"].tolist() == joined.meta["part"].tolist()


def test_concat_refuses_what_it_cannot_join(gpt2_tokenizer):
    one = repeated_random(gpt2_tokenizer, 2, 3)
    other = Stimuli([[1, 2]], tokenizer="SomeOtherTokenizer (vocab 32000)")
    with pytest.raises(LaminaError, match="^the parts come from different tokenizers"):
        one + other
    assert (one + Stimuli([[1, 2]])).tokenizer == one.tokenizer  # an unknown tokenizer joins any
    with pytest.raises(LaminaError, match="at least two Stimuli, got 1"):
        concat(one)
    with pytest.raises(LaminaError, match="part 1 is a list"):
        concat(one, [[1, 2]])
    with pytest.raises(TypeError):
        one + [[1, 2]]
    named = concat([one, one], names=["first", "second"])
    assert named.meta["part_name"].tolist() == ["first", "first", "second", "second"]
    with pytest.raises(LaminaError, match="one label per part"):
        concat(one, one, names=["only one"])
    with pytest.raises(LaminaError, match="'part' column that concat did not make"):
        concat(Stimuli([[1]], pd.DataFrame({"part": ["x"]})), one)


@_settings
@given(seqs=lengths, prefix=st.lists(st.integers(0, 999), min_size=1, max_size=5))
def test_prefixed_prepends_and_marks_the_original_positions(seqs, prefix):
    stim = _stimuli(seqs, 4)
    out = stim.prefixed(prefix)
    k = len(prefix)
    for got, seq, orig, weight, own in zip(out.ids, stim.ids, out.token_columns["original_position"],
                                           out.token_columns["weight"], stim.token_columns["weight"]):
        np.testing.assert_array_equal(got, np.concatenate([prefix, seq]))
        np.testing.assert_array_equal(orig, np.concatenate([np.full(k, -1), np.arange(len(seq))]))
        assert np.isnan(weight[:k]).all() and np.array_equal(weight[k:], own)
    assert out.meta["prefix_length"].tolist() == [k] * len(seqs)
    np.testing.assert_array_equal(out.next_ids, stim.next_ids)
    twice = prefixed(out, [7])  # original_position still counts from the unprefixed sequence
    assert twice.meta["prefix_length"].tolist() == [k + 1] * len(seqs)
    np.testing.assert_array_equal(twice.token_columns["original_position"][0][k + 1:], np.arange(seqs[0]))


def test_prefixed_text_and_errors(tiny_gpt2, gpt2_tokenizer):
    stim = lamina.stimuli.first_tokens(["It was a dark and stormy night, and the rain fell."], tiny_gpt2, 6)
    out = stim.prefixed(" Once upon a time", tiny_gpt2)
    prefix = gpt2_tokenizer(" Once upon a time", add_special_tokens=False)["input_ids"]
    np.testing.assert_array_equal(out.ids[0], prefix + stim.ids[0].tolist())
    assert out.notes[-1] == "every sequence prefixed with ' Once upon a time' (4 tokens)"
    rec = lamina.record(tiny_gpt2, out, sites=[], progress=False)
    assert rec.tokens["original_position"].tolist() == [-1] * 4 + list(range(6))
    for prefix, tokenizer, message in [
            ("text", None, "a text prefix needs the tokenizer"), ([], None, "the prefix is empty"),
            ("", tiny_gpt2, "the prefix is empty"), ([1, -2], None, "non-negative integers, not -2"),
            ([1, True], None, "not True"), ([60000], tiny_gpt2, "outside the tokenizer's vocabulary"),
            (3, None, "prefix must be a text or a list of token ids")]:
        with pytest.raises(LaminaError, match=message):
            stim.prefixed(prefix, tokenizer)
    other = Stimuli([[1, 2]], tokenizer="SomeOtherTokenizer (vocab 32000)")
    with pytest.raises(LaminaError, match="the stimuli come from SomeOtherTokenizer"):
        other.prefixed("text", tiny_gpt2)


def test_token_columns_are_checked():
    for columns, message in [({"loss": [[1.0]]}, "token column 'loss' would hide the token table's own column"),
                             ({"w": [[1.0], [2.0]]}, "has 2 entries for 1 sequences"),
                             ({"w": [[1.0, 2.0, 3.0]]}, "has 3 values for sequence 0's 2 tokens"),
                             ({"w": [["a", "b"]]}, "token columns hold numbers or bools"),
                             ({1: [[1, 2]]}, "non-empty strings"), ([1], "must be a dict")]:
        with pytest.raises(LaminaError, match=message):
            Stimuli([[5, 6]], token_columns=columns)
    plain, marked = Stimuli([[5, 6]]), Stimuli([[5, 6]], token_columns={"w": [[0, 1]]})
    assert plain.fingerprint() != marked.fingerprint()  # a resumed recording never mixes them
    assert marked.subset([0]).token_columns["w"][0].tolist() == [0, 1]


# ---- 6. to_xarray ----------------------------------------------------------------------------------
@pytest.mark.parametrize("disk", [False, True])
def test_to_xarray_labels_every_axis(tiny_gpt2, tmp_path, disk):
    xr = pytest.importorskip("xarray")
    stim = lamina.stimuli.word_in_contexts("a big cat sat on the mat, and the cat ran off with the dog", tiny_gpt2,
                                           ["cat", "dog"], 3)
    out = tmp_path / "rec" if disk else None
    rec = lamina.record(tiny_gpt2, stim, sites=["hidden", "attn.out", "mlp.pre", "attn.pattern"],
                        layers={"hidden": [1, 3], "attn.out": [2], "mlp.pre": [0], "attn.pattern": [2]},
                        positions=[[1, 2], [2], [0, 1, 2]], out=out, progress=False)
    da = rec.to_xarray("hidden")
    assert isinstance(da, xr.DataArray) and da.dims == ("layer", "sequence", "slot", "d_model")
    assert da.layer.values.tolist() == [1, 3] and da.attrs["site"] == "hidden" and da.attrs["n_layers"] == 3
    np.testing.assert_array_equal(da.sel(layer=3).values, rec.sel("hidden", 3))
    # the token table on (sequence, slot): padded slots -1 / NaN / None, valid marks the real ones
    np.testing.assert_array_equal(da.valid.values, rec.valid)
    assert da.position.values.tolist() == [[1, 2, -1], [2, -1, -1], [0, 1, 2]]
    rows = rec.tokens
    np.testing.assert_array_equal(da.loss.values[rec.valid], rows["loss"].to_numpy())
    assert np.isnan(da.loss.values[~rec.valid]).all() and pd.isna(da.token.values[1, 1])
    assert da.token.values[0, 1] == rows["token"].iloc[1]
    # the stimuli metadata on (sequence,); names the token table has too get meta_
    assert da.word.values.tolist() == ["cat", "cat", "dog"] and "meta_position" in da.coords
    assert rec.to_xarray("mlp.pre").dims == ("layer", "sequence", "slot", "d_mlp")
    assert rec.to_xarray("attn.pattern").dims == ("layer", "sequence", "head", "slot", "key")
    assert rec.to_xarray("hidden", layer=-1).layer.values.tolist() == [3]
    with pytest.raises(LaminaError, match="layer 2 of site 'hidden' was not recorded"):
        rec.to_xarray("hidden", layer=[2])
    ds = rec.to_xarray()
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"hidden", "attn.out", "mlp.pre", "attn.pattern"}
    assert ds.layer.values.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds["attn.out"].sel(layer=2).values, rec.sel("attn.out", 2))
    assert np.isnan(ds["attn.out"].sel(layer=1).values).all()  # not recorded there
    da.values[:] = 0  # a copy: the recording is untouched
    assert not (rec.sel("hidden", 3)[rec.valid] == 0).all()


def test_to_xarray_of_a_loss_only_recording_and_without_xarray(tiny_gpt2, monkeypatch):
    pytest.importorskip("xarray")
    rec = lamina.record(tiny_gpt2, ragged(), sites=[], progress=False)
    ds = rec.to_xarray()
    assert not ds.data_vars and ds.loss.dims == ("sequence", "slot")
    np.testing.assert_array_equal(ds.loss.values[rec.valid], rec.tokens["loss"].to_numpy())
    monkeypatch.setitem(sys.modules, "xarray", None)  # as if not installed
    with pytest.raises(LaminaError, match=r"^to_xarray needs xarray, which is not installed; pip install 'lamina\[xarray\]'"):
        rec.to_xarray()


def test_a_runs_numbers_as_labelled_arrays(tiny_gpt2, data_dir):
    """Run.to_xarray: the profiles on (site, metric, layer) and the arrays behind figures with named axes."""
    pytest.importorskip("xarray")
    run = lamina.run("lesion", tiny_gpt2, window=16, replicates=3, progress=False)
    ds = run.to_xarray()
    assert ds.attrs["experiment"] == "lesion" and ds.attrs["model"] == tiny_gpt2.name
    assert ds["value"].dims == ("site", "metric", "layer") and set(ds.site.values) == {"attn.out", "mlp.out"}
    for row in run.profiles.itertuples():
        got = ds["value"].sel(site=row.site, metric=row.metric, layer=row.layer).item()
        assert got == row.value or (np.isnan(got) and np.isnan(row.value))
    delta = ds["windows.delta_loss"]
    assert delta.dims == ("ablated_site", "block", "window") and delta.shape == (2, tiny_gpt2.n_layers, 3)
    np.testing.assert_array_equal(delta.values, run.result.windows.delta_loss)
    assert ds["tokens.loss"].dims == ("tokens_dim0",) == ds["tokens.correct"].dims  # undeclared: shared by group
