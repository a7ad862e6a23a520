"""One Tap per (site, layer): recording, the load-time self-check and the structural resolver read
through the same Tap objects and the one registrar; a Tap's resolution on scaled, fused and summed sites."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli
from lamina.models import tap as tap_module
from lamina.models.sites import available, get_module, n_entries
from lamina.models.tap import Tap, hooks, tap, taps
from lamina.models.tiny import tiny_model


def _stimuli(n=3, length=9, seed=0):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, length - (i % 2)) for i in range(n)])


def _ids():
    return torch.as_tensor(np.random.default_rng(1).integers(0, 5000, (2, 7)))


@pytest.fixture
def spy(monkeypatch):
    """Every call of the one registrar: (its taps, whether it copies)."""
    calls = []
    real = tap_module.hooks

    def spying(root, taps_, on_read, *, copy=False):
        taps_ = list(taps_.values()) if isinstance(taps_, dict) else list(taps_)
        calls.append((taps_, copy))
        return real(root, taps_, on_read, copy=copy)

    monkeypatch.setattr(tap_module, "hooks", spying)
    return calls


def _sites(calls_entry):
    return {(t.site, t.layer): t for t in calls_entry[0] if t.site is not None}


def test_selfcheck_and_recording_read_through_the_one_registrar(spy, gpt2_tokenizer):
    """Loading (the self-check) and recording both hand Taps to ``tap.hooks``, resolved to the same
    modules with the same transforms; the self-check copies, recording does not."""
    hf = tiny_model("granite", residual_multiplier=0.37)  # derived adapter, residual scale on two sites
    model = lamina.wrap(hf, gpt2_tokenizer, name="tiny-granite")
    derive_calls = [c for c in spy if not _sites(c)]
    check_calls = [c for c in spy if _sites(c)]
    assert derive_calls and all(copy for _, copy in derive_calls), "the structural resolver reads bare points"
    assert len(check_calls) == 1 and check_calls[0][1] is True
    checked = _sites(check_calls[0])
    assert set(checked) == {(s, l) for s in available(model.adapter) for l in range(n_entries(s, model.n_layers))}
    spy.clear()

    sites = available(model.adapter)
    lamina.record(model, _stimuli(), sites=sites, batch_size=2, progress=False)
    assert spy and all(copy is False for _, copy in spy)
    recorded = {k: t for call in spy for k, t in _sites(call).items()}
    assert set(recorded) == set(checked)
    for key, t in recorded.items():
        other = checked[key]
        assert type(t) is type(other) is Tap
        assert (t.module, t.which, t.partner, t.scale, t.half, t.bias, t.hook) == \
               (other.module, other.which, other.partner, other.scale, other.half, other.bias, other.hook), key
    assert recorded[("attn.out", 0)].scale == pytest.approx(0.37)


def test_verified_values_are_what_recording_reads(tiny_llama):
    """The registrar's copy (the self-check's and the resolver's) holds the same values as its
    uncopied read (recording's), on one forward pass."""
    found = taps(tiny_llama)
    copied, direct = {}, {}
    ids = _ids()
    with hooks(tiny_llama.hf, found, lambda t, x: copied.__setitem__((t.site, t.layer), x), copy=True), \
            hooks(tiny_llama.hf, found, lambda t, x: direct.__setitem__((t.site, t.layer), x.clone())), \
            torch.inference_mode():
        tiny_llama.hf(input_ids=ids)
    assert set(copied) == set(direct) == set(found)
    for key in found:
        assert torch.equal(copied[key], direct[key]), key
        if key[0] == "attn.pattern":  # (batch, head, query, key)
            assert copied[key].shape[0] == ids.shape[0] and copied[key].shape[2:] == (ids.shape[1],) * 2
        else:
            assert copied[key].shape[:2] == ids.shape


def test_copy_survives_an_in_place_update(tiny_llama):
    """``copy=True`` clones when the module runs: a later in-place update of the model's tensor does not
    reach it (what the resolver and the self-check need); hooks are removed on exit."""
    t = tap(tiny_llama.hf, tiny_llama.adapter, "mlp.raw", 0)
    got = {}

    def clobber(_module, _args, output):
        output.mul_(0)  # registered after the registrar's hook: runs after it has read

    ids = _ids()
    for copy in (True, False):
        with hooks(tiny_llama.hf, [t], lambda _t, x, copy=copy: got.__setitem__(copy, x), copy=copy):
            handle = t.module.register_forward_hook(clobber)
            try:
                with torch.inference_mode():
                    tiny_llama.hf(input_ids=ids)
            finally:
                handle.remove()
    assert got[True].abs().sum() > 0 and got[False].abs().sum() == 0
    assert not t.module._forward_hooks and not tiny_llama.hf._forward_pre_hooks


def test_taps_cover_every_site_at_every_entry(tiny_gpt2):
    found = taps(tiny_gpt2)
    assert set(found) == {(s, l) for s in available(tiny_gpt2.adapter) for l in range(n_entries(s, 3))}
    blocks = get_module(tiny_gpt2.hf, "transformer.h")
    assert found[("hidden", 1)].module is blocks[1] and found[("hidden", 1)].which == "input"
    assert found[("hidden", 3)].module is tiny_gpt2.hf.transformer.ln_f and found[("hidden", 3)].which == "output"
    assert found[("mlp.post", 2)].path == "transformer.h.2.mlp.c_proj" and found[("mlp.post", 2)].which == "input"
    assert all(t.identity and t.exact_write for t in found.values())
    assert found[("attn.raw", 0)].key == found[("attn.out", 0)].key  # one tensor: one edit would be both
    with pytest.raises(lamina.LaminaError, match="unknown site"):
        tap(tiny_gpt2.hf, tiny_gpt2.adapter, "mlp.mid", 0)


def test_granite_residual_multiplier_tap(gpt2_tokenizer):
    """Granite scales each sublayer's output by the block's residual multiplier before adding it: the
    Tap of attn.out / mlp.out holds the scale (read once), attn.raw / mlp.raw do not; recording reads
    attn.out = scale * attn.raw."""
    model = lamina.wrap(tiny_model("granite", residual_multiplier=0.37), gpt2_tokenizer, name="tiny-granite")
    found = taps(model)
    for part in ("attn", "mlp"):
        out, raw = found[(f"{part}.out", 1)], found[(f"{part}.raw", 1)]
        assert out.scale == pytest.approx(0.37) and raw.scale is None
        assert out.module is raw.module and out.key == raw.key
        assert not out.exact_write and raw.exact_write and not out.identity
        x = torch.randn(2, 3, 64)
        assert torch.equal(out.read(x), x * out.scale) and raw.read(x) is x
        assert "x 0.37" in repr(out)
    rec = lamina.record(model, _stimuli(), sites=["attn.raw", "attn.out", "mlp.raw", "mlp.out"], progress=False)
    np.testing.assert_allclose(rec["attn.out"], rec["attn.raw"] * np.float32(0.37), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rec["mlp.out"], rec["mlp.raw"] * np.float32(0.37), rtol=1e-6, atol=1e-7)


def test_fused_gate_up_tap(gpt2_tokenizer):
    """Phi-3's MLP computes [gate, up] in one projection: mlp.pre's Tap reads half 0 of it (writing it
    would replace that half only), and the recording equals the gate half of gate_up_proj(mlp.in)."""
    model = lamina.wrap(tiny_model("phi3"), gpt2_tokenizer, name="tiny-phi3")
    pre = tap(model.hf, model.adapter, "mlp.pre", 1)
    block = get_module(model.hf, model.adapter.layers)[1]
    assert pre.module is block.mlp.gate_up_proj and pre.half == 0 and pre.exact_write and not pre.identity
    assert model.adapter.mlp_up.half == 1
    x = torch.arange(8.0).view(1, 1, 8)
    assert torch.equal(pre.read(x), x[..., :4])
    rec = lamina.record(model, _stimuli(), sites=["mlp.in", "mlp.pre"], progress=False)
    with torch.inference_mode():
        fused = block.mlp.gate_up_proj(torch.as_tensor(np.nan_to_num(rec["mlp.in"][1])))
    np.testing.assert_allclose(rec["mlp.pre"][1][~np.isnan(rec["mlp.pre"][1])],
                               fused[..., :fused.shape[-1] // 2].numpy()[~np.isnan(rec["mlp.pre"][1])], atol=1e-5)


def test_summed_sublayers_tap(gpt2_tokenizer):
    """Granite-MoE-Shared adds the routed experts' output to the shared MLP's: mlp.out's Tap has the
    experts as partner and the residual scale; the registrar adds the partner's output it kept."""
    model = lamina.wrap(tiny_model("granitemoeshared", residual_multiplier=0.37), gpt2_tokenizer, name="tiny-gms")
    out = tap(model.hf, model.adapter, "mlp.out", 0)
    block = get_module(model.hf, model.adapter.layers)[0]
    assert out.module is block.shared_mlp and out.partner is block.block_sparse_moe
    assert out.scale == pytest.approx(0.37) and not out.exact_write
    x, y = torch.randn(1, 2, 64), torch.randn(1, 2, 64)
    assert torch.equal(out.read(x, y), (x + y) * out.scale)
    seen = {}
    ids = _ids()
    points = {"moe": Tap.point(block.block_sparse_moe, "output"), "shared": Tap.point(block.shared_mlp, "output")}
    with hooks(model.hf, [out, *points.values()], lambda t, v: seen.__setitem__(t, v), copy=True), \
            torch.inference_mode():
        model.hf(input_ids=ids)
    assert torch.equal(seen[out], (seen[points["shared"]] + seen[points["moe"]]) * out.scale)
