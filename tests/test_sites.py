"""Every site equals an independent reference, on tiny random GPT-2 / Llama / NeoX and real SmolLM2."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli
from lamina.models.sites import get_module

MODELS = ["tiny_gpt2", "tiny_llama", "tiny_neox"]
ALL_SITES = ["hidden", "resid", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.out"]


def _stimuli(model, n=3, length=12, seed=0):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, length) for _ in range(n)])


def _input(model, stimuli):
    ids = torch.as_tensor(np.stack(stimuli.ids))
    if model.prepend_bos:
        ids = torch.cat([torch.full((len(ids), 1), model.bos_id), ids], 1)
    return ids


def _check_all(model, stimuli, atol=1e-5):
    rec = lamina.record(model, stimuli, sites=ALL_SITES, batch_size=2, progress=False)
    off = int(model.prepend_bos)
    with torch.inference_mode():
        ref = model.hf(_input(model, stimuli), output_hidden_states=True)
    # hidden == HF output_hidden_states, all n_layers + 1 entries.
    hs = np.stack([h[:, off:].numpy() for h in ref.hidden_states])
    np.testing.assert_allclose(rec["hidden"], hs, atol=atol, rtol=1e-4)
    # mlp.pre / mlp.post == recomputing the MLP from mlp.in (seed 003's way).
    blocks = get_module(model.hf, model.adapter.layers)
    x = torch.as_tensor(rec["mlp.in"])
    for layer, block in enumerate(blocks):
        mlp = block.mlp
        with torch.inference_mode():
            if model.adapter.family == "gpt2":
                pre = mlp.c_fc(x[layer]); post = mlp.act(pre)
            elif model.adapter.family == "llama":
                pre = mlp.gate_proj(x[layer]); post = mlp.act_fn(pre) * mlp.up_proj(x[layer])
            else:
                pre = mlp.dense_h_to_4h(x[layer]); post = mlp.act(pre)
            out = mlp(x[layer])
        np.testing.assert_allclose(rec["mlp.pre"][layer], pre.numpy(), atol=atol, rtol=1e-4)
        np.testing.assert_allclose(rec["mlp.post"][layer], post.numpy(), atol=atol, rtol=1e-4)
        np.testing.assert_allclose(rec["mlp.out"][layer], out.numpy(), atol=atol, rtol=1e-4)
    # Residual bookkeeping: hidden[l] + attn.out[l] + mlp.out[l] == hidden[l+1], except the last
    # block, whose hidden entry is after the final norm.
    h, a, m = rec["hidden"], rec["attn.out"], rec["mlp.out"]
    for layer in range(model.n_layers - 1):
        np.testing.assert_allclose(h[layer] + a[layer] + m[layer], h[layer + 1], atol=10 * atol, rtol=1e-4)
    # And the last block's output, through the final norm, is hidden[n].
    final_norm = get_module(model.hf, model.adapter.final_norm)
    with torch.inference_mode():
        last = final_norm(torch.as_tensor(h[-2] + a[-1] + m[-1]))
    np.testing.assert_allclose(last.numpy(), h[-1], atol=10 * atol, rtol=1e-4)
    # resid: hidden's entries but the last, which is that block output itself (the final norm's input).
    np.testing.assert_array_equal(rec["resid"][:-1], h[:-1])
    np.testing.assert_allclose(rec["resid"][-1], h[-2] + a[-1] + m[-1], atol=10 * atol, rtol=1e-4)
    return rec


@pytest.mark.parametrize("name", MODELS)
def test_sites_equal_references(name, request):
    _check_all(request.getfixturevalue(name), _stimuli(None))


def test_gpt2_attn_out_is_attn_output0(tiny_gpt2):
    """Seed 001 hooks attn.c_proj, seed 002 attn output[0]: the same tensor in eval mode."""
    stimuli = _stimuli(tiny_gpt2)
    rec = lamina.record(tiny_gpt2, stimuli, sites=["attn.out"], progress=False)
    outs = []
    handles = [blk.attn.register_forward_hook(lambda m, i, o: outs.append(o[0].detach().clone()))
               for blk in tiny_gpt2.hf.transformer.h]
    try:
        with torch.inference_mode():
            tiny_gpt2.hf(_input(tiny_gpt2, stimuli))
    finally:
        for h in handles:
            h.remove()
    np.testing.assert_allclose(rec["attn.out"], np.stack([o.numpy() for o in outs]), atol=1e-6)


def test_loss_equals_seed_000_loop(tiny_gpt2):
    """Seed 000: losses[s, t] = -log_softmax(logits)[s, t, batch[s, t+1]] for t < seqlen-1."""
    stimuli = _stimuli(tiny_gpt2, n=5, length=6)
    batch = torch.as_tensor(np.stack(stimuli.ids))
    with torch.no_grad():
        logsm = torch.nn.functional.log_softmax(tiny_gpt2.hf(batch).logits, dim=-1)
    seed = np.zeros((5, 5))
    for s in range(5):
        for t in range(5):
            seed[s, t] = -logsm[s, t, batch[s, t + 1]].item()
    rec = lamina.record(tiny_gpt2, stimuli, progress=False)
    tokens = rec.tokens
    ours = tokens[tokens.position < 5].loss.to_numpy().reshape(5, 5)
    np.testing.assert_allclose(ours, seed, atol=1e-5)
    # The last position has no known next token: missing, not a number.
    last = tokens[tokens.position == 5]
    assert last.loss.isna().all() and last.correct.isna().all() and (last.next_id == -1).all()
    argmax = logsm.argmax(-1).numpy()
    np.testing.assert_array_equal(tokens.predicted_id.to_numpy().reshape(5, 6), argmax)
    known = tokens[tokens.position < 5]
    np.testing.assert_array_equal(known.correct.to_numpy(dtype=bool),
                                  argmax[:, :5].reshape(-1) == batch[:, 1:].numpy().reshape(-1))


@pytest.mark.slow
def test_sites_on_smollm2(smollm2):
    text = lamina.data.book("alice")
    ids = smollm2.encode(text)[5000:5040]
    stimuli = Stimuli([ids[:20], ids[20:40]])
    _check_all(smollm2, stimuli, atol=2e-4)


def test_resid_last_entry_is_what_the_final_norm_reads(tiny_llama):
    """Editing resid[n] is editing the final norm's input: patching it from another run gives that run's logits."""
    model = tiny_llama
    a, b = _stimuli(model, n=2, seed=1), _stimuli(model, n=2, seed=2)
    rec_b = lamina.record(model, b, sites=["resid"], layers=-1, progress=False)
    patched = lamina.record(model, a, sites=["hidden"], layers=-1, progress=False,
                            edits=[lamina.edits.patch("resid", layers=model.n_layers, source=rec_b)])
    plain_b = lamina.record(model, b, sites=["hidden"], layers=-1, progress=False)
    np.testing.assert_allclose(patched["hidden"], plain_b["hidden"], atol=1e-5)
    # the LM head reads it too: the patched run predicts what b's run predicts (its loss is on a's next tokens)
    np.testing.assert_array_equal(patched.tokens["predicted"].to_numpy(), plain_b.tokens["predicted"].to_numpy())
    from lamina.models.depth import relative_depth

    assert relative_depth("resid", model.n_layers, model.n_layers) == 1.0
