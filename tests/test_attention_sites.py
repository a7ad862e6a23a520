"""The two attention sites (issue 27): ``attn.pattern`` equals HF's ``output_attentions`` under eager attention
on every family tried (GQA, sliding windows, soft-capping, sinks, ALiBi, latent attention), padding and kept
positions included; ``attn.heads`` are the output projection's per-head products and sum to ``attn.raw``; a
recording without them runs as before; a site the self-check cannot verify is refused with the reason."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli, edits
from lamina.models import attention
from lamina.models.tiny import tiny_embedded, tiny_model

# model type -> config overrides: what each adds to the plain case
FAMILIES = {
    "gpt2": {},  # hand-written adapter, Conv1D projections (weight is (in, out))
    "llama": {},  # GQA 4:2, BOS fed
    "gpt_neox": {},  # parallel residual, partial rotary
    "mistral": {},  # sliding window of 8 (tiny config), shorter than the sequences below
    "qwen2": {"use_sliding_window": True, "max_window_layers": 0},  # sliding window of 8 on every layer
    "gemma3_text": {},  # sliding + global layers, query scaling, GQA
    "gemma2": {},  # runs eager: soft-capped logits, HF's own probabilities
    "gpt_oss": {},  # runs eager: attention sinks (rows sum to less than 1)
    "bloom": {},  # runs eager: ALiBi, its own attention code
    "deepseek_v2": {},  # multi-head latent attention (value width differs from query width)
    "opt": {},
}
TWINS = ("smollm2-135m", "gemma3-270m")  # the embedded models' structure (GQA 3:1; 5 sliding + 1 global)


pytestmark = pytest.mark.usefixtures("one_thread", "quiet_transformers")  # fixtures in conftest.py


def _stimuli(lengths=(14, 11, 14, 9), seed=0):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, n) for n in lengths])


def _wrap(name, tokenizer):
    hf = tiny_embedded(name) if name in TWINS else tiny_model(name, **FAMILIES[name])
    return lamina.wrap(hf, tokenizer, name=f"tiny-{name}")


def _record(model, stimuli, sites, **kw):
    return lamina.record(model, stimuli, sites=sites, progress=False, **{"batch_size": 3, **kw})


def _eager_attentions(model, seq):
    """HF's output_attentions for one sequence alone (BOS first where the model's policy feeds one), the
    model switched to eager attention for this pass only."""
    off = int(model.prepend_bos)
    ids = torch.as_tensor(np.concatenate([[model.bos_id] * off, seq]).astype(np.int64))[None]
    before = model.text_config._attn_implementation
    model.hf.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            return [a[0].float().numpy() for a in model.hf(input_ids=ids, output_attentions=True,
                                                           use_cache=False).attentions]
    finally:
        model.hf.set_attn_implementation(before)


@pytest.mark.parametrize("name", [*FAMILIES, *TWINS])
def test_pattern_equals_hf_eager_output_attentions(name, gpt2_tokenizer):
    """Recorded in padded batches with the model's own implementation (sdpa where it has one): queries at
    the stimulus positions, every model position as a key, 0 on keys a sequence lacks, NaN on padded slots."""
    model = _wrap(name, gpt2_tokenizer)
    assert "attn.pattern" in lamina.models.sites.available(model.adapter)
    stimuli = _stimuli()
    pattern = _record(model, stimuli, ["attn.pattern"])["attn.pattern"]
    off = int(model.prepend_bos)
    assert pattern.shape == (model.n_layers, 4, model.n_heads, 14, 14 + off)
    for i, seq in enumerate(stimuli.ids):
        k = len(seq)
        for layer, reference in enumerate(_eager_attentions(model, seq)):
            np.testing.assert_allclose(pattern[layer, i, :, :k, :k + off], reference[:, off:], atol=2e-6,
                                       err_msg=f"{name} layer {layer} sequence {i}")
            assert (pattern[layer, i, :, :k, k + off:] == 0).all() and np.isnan(pattern[layer, i, :, k:]).all()


@pytest.mark.parametrize("name", ["mistral", "qwen2"])
def test_sliding_windows_and_sinks_are_in_the_pattern(name, gpt2_tokenizer):
    """The families above exercise what they claim: a window of 8 leaves 0 on keys further back, so the
    rows differ from plain causal attention."""
    model = _wrap(name, gpt2_tokenizer)
    assert model.config.sliding_window == 8
    pattern = _record(model, _stimuli((14,)), ["attn.pattern"])["attn.pattern"]
    late = pattern[:, 0, :, 13]  # the last query (model position 14, BOS first) sees keys 7..14 only
    assert (late[..., :7] == 0).all() and (late[..., 7:] > 0).all()


def test_attention_sinks_take_probability_off_the_rows(gpt2_tokenizer):
    oss = _record(_wrap("gpt_oss", gpt2_tokenizer), _stimuli((14,)), ["attn.pattern"])["attn.pattern"]
    assert (oss.sum(-1) < 1 - 1e-3).any() and (oss.sum(-1) <= 1 + 1e-6).all()


def _projection_input(model, layer, ids):
    """The output projection's input at ``layer``, from a hook of the test's own (not lamina's)."""
    from lamina.models.sites import get_module

    proj = get_module(get_module(model.hf, model.adapter.layers)[layer], model.adapter.attn_proj)
    got = {}
    handle = proj.register_forward_pre_hook(lambda _m, args: got.setdefault("z", args[0].clone()))
    try:
        with torch.inference_mode():
            model.hf(input_ids=ids)
    finally:
        handle.remove()
    return proj, got["z"][0]


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_heads_are_each_heads_slice_times_its_projection_columns(name, gpt2_tokenizer):
    """GPT-2's Conv1D keeps its weight as (in, out), Llama's Linear as (out, in): head h is z[h*d:(h+1)*d]
    times the matching rows (Conv1D) or columns (Linear) of the weight."""
    model = _wrap(name, gpt2_tokenizer)
    stimuli = _stimuli((10,))
    heads = _record(model, stimuli, ["attn.heads"], layers=1)["attn.heads"][0, 0]
    off = int(model.prepend_bos)
    ids = torch.as_tensor(np.concatenate([[model.bos_id] * off, stimuli.ids[0]]).astype(np.int64))[None]
    proj, z = _projection_input(model, 1, ids)
    d = z.shape[-1] // model.n_heads
    weight = proj.weight.detach() if name == "gpt2" else proj.weight.detach().T  # as (in, out)
    for h in range(model.n_heads):
        expected = z[off:, h * d:(h + 1) * d] @ weight[h * d:(h + 1) * d]
        np.testing.assert_allclose(heads[:, h], expected.numpy(), atol=1e-5, err_msg=f"head {h}")


@pytest.mark.parametrize("name", [*FAMILIES, *TWINS])
def test_heads_plus_bias_sum_to_attn_raw(name, gpt2_tokenizer):
    model = _wrap(name, gpt2_tokenizer)
    rec = _record(model, _stimuli(), ["attn.heads", "attn.raw"])
    from lamina.models.sites import get_module

    for layer, block in enumerate(get_module(model.hf, model.adapter.layers)):
        bias = getattr(get_module(block, model.adapter.attn_proj), "bias", None)
        total = rec["attn.heads"][layer].sum(-2) + (0 if bias is None else bias.detach().numpy())
        np.testing.assert_allclose(total, rec["attn.raw"][layer], atol=1e-5, err_msg=f"{name} layer {layer}")
    assert rec["attn.heads"].shape[-2:] == (model.n_heads, model.d_model)


def test_padding_changes_nothing_but_the_padded_slots(tiny_llama):
    """Batched with padding (unequal lengths) or one sequence at a time: the same probabilities and heads."""
    stimuli = _stimuli()
    sites = ["attn.pattern", "attn.heads"]
    batched, alone = _record(tiny_llama, stimuli, sites, batch_size=4), _record(tiny_llama, stimuli, sites, batch_size=1)
    for site in sites:
        np.testing.assert_allclose(batched[site], alone[site], atol=1e-6, err_msg=site)  # NaN where NaN
    assert (batched["attn.pattern"][:, 1, :, :11, 12:] == 0).all()  # 11 tokens + BOS: keys 12, 13, 14 padded


def test_a_recording_without_attention_sites_keeps_the_fast_path(tiny_llama, monkeypatch):
    """Without attn.pattern nothing wraps the attention interface; with it, every other site is recorded
    bit for bit as without it (the model goes on with sdpa's own output)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = ALL_ATTENTION_FUNCTIONS["sdpa"]
    seen = []
    watch = attention.watch
    monkeypatch.setattr(attention, "watch", lambda *a, **k: seen.append(a[0]) or watch(*a, **k))
    entries = []
    hook = tiny_llama.hf.model.layers[0].register_forward_pre_hook(
        lambda *_: entries.append(ALL_ATTENTION_FUNCTIONS["sdpa"]))
    try:
        stimuli = _stimuli()
        plain = _record(tiny_llama, stimuli, ["hidden", "attn.out", "mlp.post"])
        assert not seen and entries and all(e is original for e in entries)
        entries.clear()
        both = _record(tiny_llama, stimuli, ["hidden", "attn.out", "mlp.post", "attn.pattern"])
        assert seen and entries and all(e is not original for e in entries)
    finally:
        hook.remove()
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is original  # put back when the pass is over
    for site in plain.sites:
        np.testing.assert_array_equal(plain[site], both[site], err_msg=site)
    np.testing.assert_array_equal(plain.tokens.loss.to_numpy(), both.tokens.loss.to_numpy())


def test_kept_positions_loss_early_stop_and_disk(tiny_gemma3, tmp_path):
    """positions= keeps query rows (every key stays); loss=False stops after the last recorded layer with
    the same values; out=DIR stores the same arrays, shapes in the manifest, flat rows aligned with tokens."""
    stimuli = _stimuli()
    sites = ["attn.pattern", "attn.heads"]
    full = _record(tiny_gemma3, stimuli, sites, layers=[1, 3])
    last = _record(tiny_gemma3, stimuli, sites, layers=[1, 3], positions="last", loss=False)
    for i, n in enumerate(stimuli.lengths):
        np.testing.assert_array_equal(last["attn.pattern"][:, i, :, 0], full["attn.pattern"][:, i, :, n - 1])
        # split from one kept row instead of all: another matmul blocking, the same values to rounding
        np.testing.assert_allclose(last["attn.heads"][:, i, 0], full["attn.heads"][:, i, n - 1], atol=1e-7)
    disk = _record(tiny_gemma3, stimuli, sites, layers=[1, 3], out=tmp_path / "r", shard_size=2)
    again = lamina.Recording.load(tmp_path / "r")
    for site in sites:
        np.testing.assert_array_equal(disk[site], full[site])
        assert again.shape(site) == full[site].shape
        np.testing.assert_array_equal(again.layer(site, 3), full[site][1])
    flat = again.flat("attn.pattern", 1)
    assert flat.shape == (len(again.tokens), tiny_gemma3.n_heads, 15)
    row = int(np.flatnonzero((again.tokens.sequence == 1) & (again.tokens.position == 4))[0])
    np.testing.assert_array_equal(flat[row], full["attn.pattern"][0, 1, :, 4])


def test_the_memory_plan_counts_the_square_of_the_length(tiny_llama, monkeypatch):
    from lamina.recording import memory

    seen = {}
    real = memory.check_fits
    monkeypatch.setattr("lamina.recording.engine.check_fits", lambda **kw: seen.update(kw) or real(**kw))
    rec = _record(tiny_llama, _stimuli(), ["attn.pattern", "attn.heads"])
    assert seen["stored"] == {site: rec[site].nbytes for site in rec.sites}
    assert seen["attention"] == 3 * 3 * 4 * 15 * 15 * 4 + 3 * 15 * 4 * 64 * 4  # batch 3, 4 heads, 15 positions
    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    with pytest.raises(lamina.LaminaError, match="attn.pattern"):
        _record(tiny_llama, _stimuli(), ["attn.pattern"])


def test_edits_of_the_attention_sites_are_refused_with_the_reason():
    for site in ("attn.pattern", "attn.heads"):
        with pytest.raises(lamina.LaminaError, match=f"edits of '{site}' are refused: .*edit attn.raw or attn.out"):
            edits.zero(site, layers=0)


def test_refused_sites_say_why(gpt2_tokenizer):
    """Falcon computes sdpa in its own code (no probabilities): attn.pattern is refused at load and by
    record, with the reason, and every other site stays; an implementation lamina cannot read is named."""
    falcon = lamina.wrap(tiny_model("falcon"), gpt2_tokenizer, name="tiny-falcon")
    assert "attn.heads" in lamina.models.sites.available(falcon.adapter)
    with pytest.raises(lamina.LaminaError, match="'attn.pattern' is not recorded on falcon models: .*FalconAttention"):
        _record(falcon, _stimuli(), ["hidden", "attn.pattern"])
    llama = _wrap("llama", gpt2_tokenizer)
    llama.hf.config._attn_implementation = "flex_attention"
    with pytest.raises(lamina.LaminaError, match="this model runs 'flex_attention'; load it with"):
        _record(llama, _stimuli(), ["attn.pattern"])


def test_the_self_check_refuses_a_site_whose_identity_fails(gpt2_tokenizer, monkeypatch):
    """A projection with something added after it breaks 'heads + bias == attn.raw'; an eager function that
    ignores the mask breaks 'eager output == the model's output': each refuses that site alone."""
    hf = tiny_model("llama")
    hf.model.layers[1].self_attn.o_proj.register_forward_hook(lambda _m, _a, out: out + 1)
    model = lamina.wrap(hf, gpt2_tokenizer)
    assert model.adapter.why_unavailable("attn.heads").startswith(
        "self-check 'attn.heads summed over heads + the projection's bias == attn.raw' fails at layer 1")
    assert "attn.pattern" in lamina.models.sites.available(model.adapter)

    import transformers.models.llama.modeling_llama as llama

    real = llama.eager_attention_forward
    monkeypatch.setattr(llama, "eager_attention_forward", lambda m, q, k, v, _mask, *a, **kw: real(m, q, k, v, None, *a, **kw))
    model = lamina.wrap(tiny_model("llama"), gpt2_tokenizer)
    reason = model.adapter.why_unavailable("attn.pattern")
    assert reason.startswith("self-check 'attn.pattern gives 0 to every later key' fails at layer 0"), reason
    assert "attn.heads" in lamina.models.sites.available(model.adapter)


def test_device_path_splits_heads_like_the_cpu_path(tiny_llama):
    """The accelerator path (gather the kept positions, split, convert, one transfer) gives what the CPU
    path gives; exercised on CPU tensors."""
    from lamina.models.tap import tap
    from lamina.recording.capture import Capture
    from lamina.recording.engine import _Chunk

    stimuli = _stimuli()
    kept = [np.array([0, n - 1]) for n in stimuli.lengths]
    plan = {"attn.heads": [1]}
    split = tap(tiny_llama.hf, tiny_llama.adapter, "attn.heads", 1).split_heads
    z = torch.randn(4, 15, 64)
    filled = []
    for path in ("cpu", "device"):
        chunk = _Chunk(tiny_llama, plan, np.arange(4), np.full(4, 2), 2, np.dtype("float32"))
        capture = Capture(chunk.acts, plan, np.arange(4), list(range(4)), kept, offset=1,
                          expand={"attn.heads": [split]})
        with torch.inference_mode():  # as recording runs it
            if path == "cpu":
                capture("attn.heads", 0, z)
            else:
                capture._from_device("attn.heads", 0, z, chunk.acts["attn.heads"][0], split)
        filled.append(chunk.acts["attn.heads"][0])
    np.testing.assert_array_equal(filled[0], filled[1])
    with torch.inference_mode():
        np.testing.assert_allclose(filled[0][2, 1], split(z[2, stimuli.lengths[2]]).numpy(), atol=1e-6)


def test_a_disk_offloaded_model_records_them_like_a_plain_load(tiny_gpt2, gpt2_tokenizer, tmp_path):
    """With a device map that offloads blocks to disk, the projection's weight sits on the meta device
    between passes: the split (and the self-check) load it as the forward pass does."""
    path = tmp_path / "tiny-gpt2"
    tiny_gpt2.hf.save_pretrained(path)
    gpt2_tokenizer.save_pretrained(path)
    device_map = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.drop": "cpu",
                  "transformer.h.0": "cpu", "transformer.h.1": "disk", "transformer.h.2": "disk",
                  "transformer.ln_f": "cpu", "lm_head": "cpu"}
    offloaded = lamina.load(str(path), device_map=device_map, offload_folder=str(tmp_path / "offload"))
    assert offloaded.hf.transformer.h[1].attn.c_proj.weight.is_meta
    sites = ["attn.heads", "attn.pattern"]
    a, b = _record(lamina.load(str(path)), _stimuli(), sites), _record(offloaded, _stimuli(), sites)
    for site in sites:
        np.testing.assert_allclose(a[site], b[site], atol=1e-6, err_msg=site)


def test_keep_bos_adds_the_bos_query_row(tiny_llama):
    """With keep_bos=True the BOS is slot 0 of the queries as of every site: it can attend only to itself."""
    stimuli = _stimuli()
    kept = _record(tiny_llama, stimuli, ["attn.pattern", "attn.heads"], keep_bos=True)
    plain = _record(tiny_llama, stimuli, ["attn.pattern", "attn.heads"])
    assert (kept["attn.pattern"][:, :, :, 0, 0] == 1).all() and (kept["attn.pattern"][:, :, :, 0, 1:] == 0).all()
    np.testing.assert_array_equal(kept["attn.pattern"][:, :, :, 1:], plain["attn.pattern"])
    np.testing.assert_allclose(kept["attn.heads"][:, :, 1:], plain["attn.heads"], atol=1e-6)
