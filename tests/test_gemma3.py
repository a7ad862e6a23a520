"""The embedded Gemma 3 270M with real weights: every site equals an independent recomputation
from Gemma-3's own modules (post-sublayer norms, gated GELU MLP, scaled embeddings), BOS is <bos>."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli

pytestmark = pytest.mark.slow
ALL = ["hidden", "resid", "attn.raw", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.raw", "mlp.out"]


def test_embedded_gemma3(gemma3):
    assert gemma3.adapter.family == "gemma3_text" and gemma3.n_layers == 18
    assert (gemma3.d_model, gemma3.d_mlp, gemma3.vocab_size) == (640, 2048, 262144)
    assert gemma3.source["kind"] == "embedded" and len(gemma3.source["sha256"]) == 64
    # Gemma is trained with <bos> first; its tokenizer adds it, and so does lamina.
    assert gemma3.prepend_bos and gemma3.tokenizer.convert_ids_to_tokens(gemma3.bos_id) == "<bos>"
    table = gemma3.sites().set_index("site")
    assert table.loc["attn.out", "hook (layer 0)"] == "output of model.layers.0.post_attention_layernorm"
    assert table.loc["mlp.out", "hook (layer 0)"] == "output of model.layers.0.post_feedforward_layernorm"


def test_gemma3_sites_equal_its_own_modules(gemma3, data_dir):
    ids = gemma3.encode(lamina.data.book("alice"))[5000:5024]
    stimuli = Stimuli([ids[:12], ids[12:]])
    rec = lamina.record(gemma3, stimuli, sites=ALL, batch_size=2, progress=False)
    x = torch.as_tensor(np.stack(stimuli.ids))
    x = torch.cat([torch.full((2, 1), gemma3.bos_id), x], 1)
    with torch.inference_mode():
        out = gemma3.hf(x, output_hidden_states=True)
    hs = np.stack([h[:, 1:].numpy() for h in out.hidden_states])
    np.testing.assert_allclose(rec["hidden"], hs, rtol=1e-4, atol=1e-3 * np.abs(hs).max())
    # hidden[0] is the embedding scaled by sqrt(d_model), as Gemma computes it.
    emb = gemma3.hf.model.embed_tokens.weight.detach()[x[:, 1:]] * torch.tensor(640 ** 0.5)
    np.testing.assert_allclose(rec["hidden"][0], emb.numpy(), rtol=1e-5, atol=1e-5)
    for layer, block in enumerate(gemma3.hf.model.layers):
        with torch.inference_mode():
            mlp_in = torch.as_tensor(rec["mlp.in"][layer])
            gate, up = block.mlp.gate_proj(mlp_in), block.mlp.up_proj(mlp_in)
            post = torch.nn.functional.gelu(gate, approximate="tanh") * up
            raw = block.mlp.down_proj(post)
            attn_out = block.post_attention_layernorm(torch.as_tensor(rec["attn.raw"][layer]))
            mlp_out = block.post_feedforward_layernorm(raw)
            resid = torch.as_tensor(rec["hidden"][layer]) + attn_out
            mlp_in_again = block.pre_feedforward_layernorm(resid)
        for site, ref in [("mlp.pre", gate), ("mlp.post", post), ("mlp.raw", raw), ("attn.out", attn_out),
                          ("mlp.out", mlp_out), ("mlp.in", mlp_in_again)]:
            scale = float(ref.abs().max())
            np.testing.assert_allclose(rec[site][layer], ref.numpy(), rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=f"{site} at layer {layer}")
        nxt = rec["hidden"][layer + 1] if layer < 17 else None
        if nxt is not None:
            np.testing.assert_allclose(rec["hidden"][layer] + rec["attn.out"][layer] + rec["mlp.out"][layer], nxt,
                                       rtol=1e-4, atol=1e-4 * np.abs(nxt).max())
    # Token losses from the model's own logits (Gemma-3 270M has no final soft-capping).
    logp = torch.log_softmax(out.logits[:, 1:].float(), -1)
    want = -logp[0, torch.arange(11), x[0, 2:13]]
    got = rec.tokens[rec.tokens.sequence == 0].sort_values("position").loss.to_numpy()[:11]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
