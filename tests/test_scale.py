"""Scale: models spread over devices (accelerate device maps, disk offload) record exactly as a plain load."""

import numpy as np
import pytest

import lamina
from lamina import Stimuli

SITES = ["hidden", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.out"]


@pytest.fixture(scope="module")
def saved_gpt2(tiny_gpt2, gpt2_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny-gpt2"
    tiny_gpt2.hf.save_pretrained(path)
    gpt2_tokenizer.save_pretrained(path)
    return path


def test_disk_offloaded_model_records_like_plain(saved_gpt2, tmp_path):
    device_map = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.drop": "cpu",
                  "transformer.h.0": "cpu", "transformer.h.1": "disk", "transformer.h.2": "disk",
                  "transformer.ln_f": "cpu", "lm_head": "cpu"}
    offloaded = lamina.load(str(saved_gpt2), device_map=device_map, offload_folder=str(tmp_path / "offload"))
    assert offloaded.hf.hf_device_map["transformer.h.1"] == "disk"
    plain = lamina.load(str(saved_gpt2))
    rng = np.random.default_rng(0)
    stimuli = Stimuli([rng.integers(0, 5000, n) for n in (9, 5, 12)])
    a = lamina.record(plain, stimuli, sites=SITES, positions="all", batch_size=2, progress=False)
    b = lamina.record(offloaded, stimuli, sites=SITES, positions="all", batch_size=2, progress=False)
    for site in SITES:
        np.testing.assert_allclose(b[site], a[site], atol=1e-6)
    np.testing.assert_allclose(b.tokens.loss.to_numpy(), a.tokens.loss.to_numpy(), atol=1e-6)
    last = lamina.record(offloaded, stimuli, sites=["hidden"], positions="last", progress=False)
    np.testing.assert_allclose(last["hidden"][:, :, 0], a["hidden"][:, [0, 1, 2], [8, 4, 11]], atol=1e-6)


def test_device_map_errors(saved_gpt2):
    with pytest.raises(lamina.LaminaError, match="either device or device_map"):
        lamina.load(str(saved_gpt2), device="cpu", device_map="auto")
    with pytest.raises(lamina.LaminaError, match="could not place"):
        lamina.load(str(saved_gpt2), device_map={"no.such.module": "cpu"})


def test_early_stop_on_an_offloaded_model(saved_gpt2, tmp_path):
    """Without loss the forward pass stops inside or before blocks that accelerate loads from disk;
    the activations equal the full pass's bit for bit, and the model records as before afterwards."""
    device_map = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.drop": "cpu",
                  "transformer.h.0": "cpu", "transformer.h.1": "disk", "transformer.h.2": "disk",
                  "transformer.ln_f": "cpu", "lm_head": "cpu"}
    model = lamina.load(str(saved_gpt2), device_map=device_map, offload_folder=str(tmp_path / "offload"))
    rng = np.random.default_rng(1)
    stimuli = Stimuli([rng.integers(0, 5000, n) for n in (9, 5, 12, 7)])
    full = lamina.record(model, stimuli, sites=SITES, batch_size=3, progress=False)
    # Stops before block 2 (on disk), inside block 1 (on disk) before its down projection, and after the final norm.
    for sites, layers in [(["hidden"], 2), (["mlp.post"], 1), (SITES, None)]:
        fast = lamina.record(model, stimuli, sites=sites, layers=layers, batch_size=3, loss=False, progress=False)
        for site in fast.sites:
            for layer in fast.layers[site]:
                np.testing.assert_array_equal(fast.layer(site, layer), full.layer(site, layer))
        # Every module with weights finished (accelerate's post-forward ran): none is left loaded.
        assert all(p.device.type == "meta" for n, p in model.hf.named_parameters() if ".h.1." in n or ".h.2." in n)
    again = lamina.record(model, stimuli, sites=SITES, batch_size=3, progress=False)
    for site in SITES:
        np.testing.assert_array_equal(again[site], full[site])
    np.testing.assert_array_equal(again.tokens.loss.to_numpy(), full.tokens.loss.to_numpy())


def test_derived_adapter_and_self_check_with_disk_offload(gpt2_tokenizer, tmp_path):
    """A derived adapter (Gemma-3: post-norms, gated MLP) is derived and self-checked on a model whose
    second block lives on disk, and records every site like the plain load."""
    from lamina.models.tiny import tiny_embedded

    path = tmp_path / "tiny-gemma3"
    tiny_embedded("gemma3-270m").save_pretrained(path)
    gpt2_tokenizer.save_pretrained(path)
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
                  **{f"model.layers.{i}": "disk" if i % 2 else "cpu" for i in range(6)}}
    offloaded = lamina.load(str(path), device_map=device_map, offload_folder=str(tmp_path / "offload"))
    assert offloaded.adapter.derived and offloaded.hf.hf_device_map["model.layers.1"] == "disk"
    plain = lamina.load(str(path))
    sites = ["hidden", "resid", "attn.raw", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.raw", "mlp.out"]
    stimuli = Stimuli([np.arange(1, 8), np.arange(20, 25)])
    a = lamina.record(plain, stimuli, sites=sites, batch_size=2, progress=False)
    b = lamina.record(offloaded, stimuli, sites=sites, batch_size=2, progress=False)
    for site in sites:
        np.testing.assert_allclose(b[site], a[site], atol=1e-5, rtol=1e-5)
