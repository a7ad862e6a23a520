"""Interventions (lamina.edits): writes go through the Tap that reads, so an edited site reads back
its edited value; identity edits change nothing; ablations equal independent hooks on the HF modules."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli, edits
from lamina.models.sites import available, editable, get_module, n_entries
from lamina.models.tiny import tiny_model


def _stimuli(n=3, length=9, seed=0):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, length - (i % 2)) for i in range(n)])  # unequal: padded batches


def _record(model, stimuli, sites, **kw):
    kw.setdefault("batch_size", 2)
    return lamina.record(model, stimuli, sites=sites, progress=False, **kw)


def _same(a, b):
    """Bit-identical recordings: every site and the loss (NaN where no next token)."""
    for site in a.sites:
        np.testing.assert_array_equal(a[site], b[site], err_msg=site)
    np.testing.assert_array_equal(a.tokens["loss"].to_numpy(), b.tokens["loss"].to_numpy())


@pytest.fixture(scope="module")
def granite(gpt2_tokenizer):
    return lamina.wrap(tiny_model("granite", residual_multiplier=0.37), gpt2_tokenizer, name="tiny-granite")


@pytest.fixture(scope="module")
def phi3(gpt2_tokenizer):
    return lamina.wrap(tiny_model("phi3"), gpt2_tokenizer, name="tiny-phi3")


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_llama", "tiny_neox", "tiny_gemma3", "phi3"])
def test_identity_edits_and_self_patching_change_nothing(name, request):
    """scale 1 and add 0 at every editable site and layer, and patching every such site with the stimuli's
    own recording, leave the logits (loss) and every recorded activation (the attention sites too)
    bit-identical."""
    model = request.getfixturevalue(name)
    stimuli = _stimuli()
    sites = editable(model.adapter)
    clean = _record(model, stimuli, available(model.adapter))
    for edit_of in (lambda s: edits.scale(s, None, 1.0),
                    lambda s: edits.add(s, None, np.zeros(model.width(s))),
                    lambda s: edits.patch(s, None, source=clean)):
        _same(_record(model, stimuli, available(model.adapter), edits=[edit_of(s) for s in sites]), clean)
    ids = torch.as_tensor(np.random.default_rng(3).integers(0, 5000, (2, 6)))
    with torch.inference_mode():
        plain = model.hf(input_ids=ids).logits
        with lamina.editing(model, [edits.scale(s, None, 1.0) for s in sites]):
            same = model.hf(input_ids=ids).logits
    assert torch.equal(plain, same)


def _attention(model, layer):
    """The block's module whose output is what attention adds to the residual (independent of the Tap)."""
    block = get_module(model.hf, model.adapter.layers)[layer]
    for name in ("post_attention_layernorm" if model.adapter.family.startswith("gemma") else "", "attn",
                 "self_attn", "attention"):
        if name and hasattr(block, name):
            return getattr(block, name)
    raise AssertionError(type(block))


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_llama", "tiny_neox", "tiny_gemma3", "granite"])
def test_zero_attn_out_equals_a_hook_on_the_hf_module(name, request):
    """Zero-ablating attn.out at layer l gives the same loss, activations and logits as a forward hook
    written directly on that block's attention module (Gemma-3: its post-attention norm) returning zeros."""
    model = request.getfixturevalue(name)
    stimuli, layer = _stimuli(), 1
    module = _attention(model, layer)

    def zeros(_module, _args, output):
        return (torch.zeros_like(output[0]), *output[1:]) if isinstance(output, tuple) else torch.zeros_like(output)

    handle = module.register_forward_hook(zeros)
    try:
        theirs = _record(model, stimuli, ["hidden", "mlp.out"])
        ids = torch.as_tensor(np.random.default_rng(3).integers(0, 5000, (2, 6)))
        with torch.inference_mode():
            their_logits = model.hf(input_ids=ids).logits
    finally:
        handle.remove()
    ours = _record(model, stimuli, ["hidden", "mlp.out"], edits=[edits.zero("attn.out", layer)])
    _same(ours, theirs)
    with lamina.editing(model, [edits.zero("attn.out", layer)]), torch.inference_mode():
        assert torch.equal(model.hf(input_ids=ids).logits, their_logits)
    assert not np.array_equal(ours["hidden"], _record(model, stimuli, ["hidden"])["hidden"])


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_llama"])
def test_hidden_edit_feeds_the_next_block(name, request):
    """An edit of hidden[l] gives hidden[l+1] = block l applied to the edited stream: equal to HF's own
    hidden states with a pre-hook adding the vector to block l's input at the stimulus positions."""
    model = request.getfixturevalue(name)
    stimuli, layer = _stimuli(n=2, length=7), 1
    vector = np.random.default_rng(5).normal(size=model.width("hidden")).astype(np.float32)
    ours = _record(model, stimuli, ["hidden"], edits=[edits.add("hidden", layer, vector)], batch_size=1)
    clean = _record(model, stimuli, ["hidden"], batch_size=1)
    np.testing.assert_allclose(ours["hidden"][layer], clean["hidden"][layer] + vector, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ours["hidden"][:layer], clean["hidden"][:layer])
    block = get_module(model.hf, model.adapter.layers)[layer]
    offset = int(model.prepend_bos)

    def add(_module, args, kwargs):
        x = (args[0] if args else kwargs["hidden_states"]).clone()
        x[:, offset:] += torch.as_tensor(vector)
        return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})

    for s, ids in enumerate(stimuli.ids):
        full = np.concatenate([[model.bos_id], ids]) if offset else ids
        handle = block.register_forward_pre_hook(add, with_kwargs=True)
        try:
            with torch.inference_mode():
                states = model.hf(input_ids=torch.as_tensor(full)[None], output_hidden_states=True).hidden_states
        finally:
            handle.remove()
        np.testing.assert_allclose(ours["hidden"][layer + 1][s, :len(ids)], states[layer + 1][0, offset:].numpy(), rtol=1e-5,
                                   atol=1e-5)


def test_granite_reads_back_its_edits(granite):
    """Granite's attn.out is attn.raw x 0.37: an edit writes v / 0.37, so attn.out reads back v (zero
    exactly; an added vector to rounding), and attn.raw, the same tensor, reads the unscaled value."""
    stimuli, layer = _stimuli(), 1
    vector = np.linspace(-1, 1, 64).astype(np.float32)
    clean = _record(granite, stimuli, ["attn.raw", "attn.out", "mlp.out"])
    zeroed = _record(granite, stimuli, ["attn.raw", "attn.out"], edits=[edits.zero("attn.out", layer)])
    valid = clean.valid
    assert (zeroed["attn.out"][layer][valid] == 0).all() and (zeroed["attn.raw"][layer][valid] == 0).all()
    added = _record(granite, stimuli, ["attn.raw", "attn.out"], edits=[edits.add("attn.out", layer, vector)])
    np.testing.assert_allclose(added["attn.out"][layer], clean["attn.out"][layer] + vector, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(added["attn.raw"][layer], (clean["attn.out"][layer] + vector) / np.float32(0.37),
                               rtol=1e-5, atol=1e-5)
    other = _stimuli(seed=9)
    source = _record(granite, other, ["mlp.out"])
    patched = _record(granite, stimuli, ["mlp.out"], edits=[edits.patch("mlp.out", 0, source=source)])
    np.testing.assert_allclose(patched["mlp.out"][0], source["mlp.out"][0], rtol=1e-6, atol=1e-7)


def test_partner_sum_reads_back_zero(gpt2_tokenizer):
    """Granite-MoE-Shared's mlp.out is (shared MLP + experts) x scale: zeroing it writes -experts to the
    shared MLP's output, so the site reads back zero."""
    model = lamina.wrap(tiny_model("granitemoeshared", residual_multiplier=0.37), gpt2_tokenizer, name="tiny-gms")
    rec = _record(model, _stimuli(), ["mlp.out"], edits=[edits.zero("mlp.out", 0)])
    assert np.abs(rec["mlp.out"][0][rec.valid]).max() < 1e-6
    assert np.abs(rec["mlp.out"][1][rec.valid]).max() > 0


def test_phi3_fused_half_patch(phi3):
    """Phi-3's mlp.pre is the gate half of gate_up_proj: patching it from paired stimuli reads back the
    source's gate values, and the up half stays as computed (mlp.post = act(patched gate) * own up)."""
    stimuli, layer = _stimuli(), 1
    source = _record(phi3, _stimuli(seed=7), ["mlp.pre"])
    rec = _record(phi3, stimuli, ["mlp.in", "mlp.pre", "mlp.post"], edits=[edits.patch("mlp.pre", layer, source=source)])
    np.testing.assert_array_equal(rec["mlp.pre"][layer], source["mlp.pre"][layer])
    mlp = get_module(phi3.hf, phi3.adapter.layers)[layer].mlp
    with torch.inference_mode():
        up = mlp.gate_up_proj(torch.as_tensor(np.nan_to_num(rec["mlp.in"][layer]))).chunk(2, -1)[1]
        post = mlp.activation_fn(torch.as_tensor(np.nan_to_num(source["mlp.pre"][layer]))) * up
    np.testing.assert_allclose(rec["mlp.post"][layer][rec.valid], post.numpy()[rec.valid], rtol=1e-5, atol=1e-6)


def test_positions_padding_and_early_stop(tiny_llama):
    """An edit at kept positions changes only those (the padded and the BOS positions are never
    written): zeroing attn.out at the last position leaves earlier positions of that layer as they
    were; batching (padding) does not change an edited run; loss=False stops early with the same values."""
    stimuli, layer = _stimuli(n=4), 0
    clean = _record(tiny_llama, stimuli, ["attn.out", "hidden"])
    last = [edits.zero("attn.out", layer, positions="last")]
    rec = _record(tiny_llama, stimuli, ["attn.out", "hidden"], edits=last, batch_size=3)
    for s, n in enumerate(stimuli.lengths):
        assert (rec["attn.out"][layer, s, n - 1] == 0).all()
        np.testing.assert_array_equal(rec["attn.out"][:, s, :n - 1], clean["attn.out"][:, s, :n - 1])
        assert not np.array_equal(rec["hidden"][layer + 1, s, n - 1], clean["hidden"][layer + 1, s, n - 1])
    _same(_record(tiny_llama, stimuli, ["attn.out", "hidden"], edits=last, batch_size=1), rec)
    quick = _record(tiny_llama, stimuli, ["attn.out", "hidden"], edits=last, loss=False)
    for site in ("attn.out", "hidden"):
        np.testing.assert_array_equal(quick[site], rec[site])
    assert rec.info["edits"][0]["kind"] == "zero" and "edits" not in clean.info


def test_mean_and_resample(tiny_gpt2):
    stimuli, layer = _stimuli(n=4), 2
    reference = _record(tiny_gpt2, _stimuli(n=5, seed=4), ["mlp.out"])
    rec = _record(tiny_gpt2, stimuli, ["mlp.out"], edits=[edits.mean("mlp.out", layer, reference=reference)])
    want = reference.flat("mlp.out", layer).astype(np.float64).mean(0)
    np.testing.assert_allclose(rec.flat("mlp.out", layer), np.broadcast_to(want, (rec.valid.sum(), 64)), atol=1e-6)
    source = _record(tiny_gpt2, stimuli, ["mlp.out"])
    drawn = [_record(tiny_gpt2, stimuli, ["mlp.out"], batch_size=b,
                     edits=[edits.resample("mlp.out", layer, source=source, seed=1)]) for b in (1, 4)]
    np.testing.assert_array_equal(drawn[0]["mlp.out"], drawn[1]["mlp.out"])  # independent of batching
    pool, owner = source.flat("mlp.out", layer), source.tokens["sequence"].to_numpy()
    for row, s in zip(drawn[0].flat("mlp.out", layer), rec.tokens["sequence"].to_numpy()):
        match = np.flatnonzero((pool == row).all(1))
        assert len(match) and (owner[match] != s).all()  # a token of another sequence


def test_bad_edits_are_one_line_errors(tiny_gpt2, gpt2_tokenizer):
    stimuli = _stimuli()
    clean = _record(tiny_gpt2, stimuli, ["hidden"])
    cases = [
        (lambda: edits.zero("attn.outt", 0), "unknown site"),
        (lambda: _record(tiny_gpt2, stimuli, ["hidden"], edits=[edits.zero("attn.out", 3)]), "out of range"),
        (lambda: _record(tiny_gpt2, stimuli, ["hidden"], edits=[edits.add("hidden", 0, np.ones(7))]),
         "must be 64 finite values"),
        (lambda: _record(tiny_gpt2, stimuli, ["hidden"], edits=[edits.patch("attn.out", 0, source=clean)]),
         "was not recorded"),
        (lambda: _record(tiny_gpt2, _stimuli(n=4), ["hidden"], edits=[edits.patch("hidden", 0, source=clean)]),
         "3 sequences, the stimuli 4"),
        (lambda: _record(tiny_gpt2, _stimuli(length=10), ["hidden"], edits=[edits.patch("hidden", 0, source=clean)]),
         "other stimuli lengths"),
        (lambda: _record(tiny_gpt2, stimuli, ["hidden"], edits=["zero"]), "lamina.edits objects"),
        (lambda: edits.scale("hidden", 0, float("nan")), "finite number"),
    ]
    zero_scale = lamina.wrap(tiny_model("granite", residual_multiplier=0.0), gpt2_tokenizer, name="tiny-granite-0")
    cases.append((lambda: _record(zero_scale, stimuli, ["hidden"], edits=[edits.zero("attn.out", 0)]),
                  "cannot edit 'attn.out' at layer 0 on granite"))
    for make, words in cases:
        with pytest.raises(lamina.LaminaError, match=words) as err:
            make()
        assert "\n" not in str(err.value), str(err.value)
    with pytest.raises(lamina.LaminaError, match="use it with lamina.record"):
        with lamina.editing(tiny_gpt2, [edits.patch("hidden", 0, source=clean)]):
            pass



def test_early_stop_reads_the_edits_before_it(tiny_gpt2):
    """Without loss, a recording of hidden[1] alone runs block 0 only: an edit in block 0 gives the
    edited values (those of the full edited pass), an edit of hidden[1] itself reads back, and an edit
    after the last read changes nothing; blocks 1, 2 and the LM head never run."""
    stimuli = _stimuli(n=4)
    blocks = get_module(tiny_gpt2.hf, tiny_gpt2.adapter.layers)
    ran = {"block1": 0, "block2": 0, "head": 0}
    handles = [m.register_forward_hook(lambda *_, k=k: ran.__setitem__(k, ran[k] + 1))
               for k, m in (("block1", blocks[1]), ("block2", blocks[2]), ("head", tiny_gpt2.hf.lm_head))]
    vector = np.random.default_rng(2).normal(size=64).astype(np.float32)
    before = [edits.zero("attn.out", 0), edits.add("hidden", 1, vector)]
    try:
        clean = _record(tiny_gpt2, stimuli, ["hidden"], layers=1, loss=False)
        early = _record(tiny_gpt2, stimuli, ["hidden"], layers=1, loss=False, edits=before)
        after = _record(tiny_gpt2, stimuli, ["hidden"], layers=1, loss=False, edits=[edits.zero("mlp.out", 1)])
        assert ran == {"block1": 0, "block2": 0, "head": 0}
        full = _record(tiny_gpt2, stimuli, ["hidden", "attn.out"], edits=before)
    finally:
        for h in handles:
            h.remove()
    assert ran["head"] == 2  # the counters can fail: with loss everything runs
    np.testing.assert_array_equal(early.layer("hidden", 1), full.layer("hidden", 1))
    assert (full.flat("attn.out", 0) == 0).all()
    zeroed = _record(tiny_gpt2, stimuli, ["hidden"], layers=1, loss=False, edits=before[:1])
    np.testing.assert_allclose(early.flat("hidden", 1), zeroed.flat("hidden", 1) + vector, rtol=1e-6, atol=1e-6)
    assert not np.allclose(zeroed.flat("hidden", 1), clean.flat("hidden", 1))
    np.testing.assert_array_equal(after.layer("hidden", 1), clean.layer("hidden", 1))
