"""lens (issue 27): the streamed softmax equals torch's on full logits; the experiment's metrics equal a direct
computation on full logits; the LM head of every family with its own logit transform reproduces the model's
loss, and a wrong head is refused in one line; the tuned lens fits, is cached and trains on other text."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lamina
from lamina import stimuli
from lamina.errors import LaminaError
from lamina.experiments import get
from lamina.experiments.lens import compute as lens
from lamina.experiments.lens import decode, tuned
from lamina.models.head import Head, lm_head
from lamina.models.tiny import tiny_model
from lamina.stats.softmax import streamed_softmax

SETTINGS = {"window": 16, "replicates": 3}


# ---- the streamed softmax ------------------------------------------------------------------------------------
def _full(z: torch.Tensor, targets: torch.Tensor, ref: int):
    """Per (lens, token): cross-entropy, entropy, KL(ref || lens), argmax, top-1 probability, from full rows."""
    logp = torch.log_softmax(z.double(), -1)
    ce = -logp.gather(-1, targets.clamp(min=0)[None, :, None].expand(len(z), -1, 1))[..., 0]
    ce[:, targets < 0] = torch.nan
    entropy = -(logp.exp() * logp).sum(-1)
    kl = (logp[ref].exp()[None] * (logp[ref][None] - logp)).sum(-1)
    return ce, entropy, kl, z.argmax(-1), logp.max(-1).values.exp()


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(e=st.integers(1, 3), n=st.integers(1, 6), v=st.integers(1, 300), chunk=st.integers(1, 400),
       scale=st.sampled_from([0.1, 3.0, 40.0]), seed=st.integers(0, 2 ** 16), ties=st.booleans())
def test_streamed_softmax_equals_the_full_log_softmax(e, n, v, chunk, scale, seed, ties):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((e, n, v), generator=gen) * scale
    if ties:  # repeated maxima, across chunk boundaries too: the first index wins, as torch.argmax
        z = z.round()
        z[..., v // 2:] = z[..., : v - v // 2].flip(-1) if v > 1 else z[..., v // 2:]
    targets = torch.randint(-1, v, (n,), generator=gen)
    ref = e - 1
    first = streamed_softmax(lambda a, b: z[ref:, :, a:b], v, chunk, targets)
    got = streamed_softmax(lambda a, b: z[:, :, a:b], v, chunk, targets, reference=(ref, first.lse[0]))
    ce, entropy, kl, argmax, top = _full(z, targets, ref)
    np.testing.assert_allclose(got.cross_entropy, ce, rtol=1e-6, atol=1e-5 * scale)
    np.testing.assert_allclose(got.entropy, entropy, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(got.kl, kl, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(torch.exp(got.top - got.lse), top, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.lse, torch.logsumexp(z.double(), -1), rtol=1e-7, atol=1e-5)
    assert torch.equal(got.argmax, argmax)
    assert torch.all(got.kl[ref].abs() < 1e-9)  # the reference against itself


def test_streamed_softmax_is_the_same_for_every_chunk_size():
    z = torch.randn((2, 4, 1000)) * 8
    targets = torch.tensor([0, 999, 500, -1])
    runs = [streamed_softmax(lambda a, b: z[:, :, a:b], 1000, c, targets) for c in (1, 7, 128, 1000, 4096)]
    for other in runs[1:]:
        np.testing.assert_allclose(other.cross_entropy, runs[0].cross_entropy, rtol=1e-6)
        np.testing.assert_allclose(other.entropy, runs[0].entropy, rtol=1e-5, atol=1e-6)
        assert torch.equal(other.argmax, runs[0].argmax)
    assert torch.isnan(runs[0].cross_entropy[:, 3]).all()  # no target: NaN, not a number made up
    with pytest.raises(LaminaError, match="chunk must be a positive"):
        streamed_softmax(lambda a, b: z[:, :, a:b], 1000, 0, targets)


# ---- the experiment against a direct computation on full logits -----------------------------------------------
def _direct(model, settings):
    """Per (metric, entry, window), written directly on lamina.record and the model's own modules."""
    cfg = get("lens").config(settings)
    stim = stimuli.windows(lamina.data.book(cfg.book), model, cfg.window, cfg.replicates,
                           max_length=model.context_length - int(model.prepend_bos))
    rec = lamina.record(model, stim, sites=["hidden"])
    known = rec.tokens["next_id"].to_numpy() >= 0
    win = rec.tokens["sequence"].to_numpy()[known]
    y = torch.as_tensor(rec.tokens["next_id"].to_numpy()[known])
    n = model.n_layers
    with torch.no_grad():
        hs = [torch.as_tensor(rec.flat("hidden", e)[known]) for e in range(n + 1)]
        logits = [model.hf.lm_head(model.hf.transformer.ln_f(h) if e < n else h) for e, h in enumerate(hs)]
        z = torch.stack(logits)
    ce, entropy, kl, argmax, _ = _full(z, y, n)
    agree = (argmax == argmax[n]).double()
    per_token = torch.stack([ce, kl, agree, entropy]).numpy()
    out = np.stack([per_token[..., win == w].mean(-1) for w in range(cfg.replicates)], axis=-1)
    return out, rec


def test_metrics_equal_a_direct_computation_on_full_logits(tiny_gpt2, data_dir):
    run = lamina.run("lens", model=tiny_gpt2, progress=False, settings={**SETTINGS, "vocab_chunk": 1000})
    expected, rec = _direct(tiny_gpt2, SETTINGS)
    np.testing.assert_allclose(run.result.windows.values[0], expected, rtol=1e-5, atol=1e-6)
    lens0 = run.result.lenses[0]
    np.testing.assert_allclose(lens0.kl.mean, expected[1].mean(-1), rtol=1e-5, atol=1e-6)
    assert lens0.kl.mean[-1] == pytest.approx(0, abs=1e-6) and lens0.top1_agreement.mean[-1] == 1
    assert run.result.check.max_abs_difference < 1e-4
    # the predictions grid's last entry is the model's own prediction (the recording's predicted_id)
    g = run.result.grid
    window0 = rec.tokens[rec.tokens["sequence"] == 0].set_index("position")
    assert (g.top1_id[0, -1] == window0.loc[g.position, "predicted_id"].to_numpy()).all()
    # a second vocabulary chunking gives the same numbers
    other = lamina.run("lens", model=tiny_gpt2, progress=False, settings={**SETTINGS, "vocab_chunk": 50257})
    np.testing.assert_allclose(other.result.windows.values, run.result.windows.values, rtol=1e-5, atol=1e-7)


def test_no_tensor_holds_a_whole_vocabulary_row(tiny_gpt2):
    """The memory bound: while the lens runs, no tensor is ever as large as a block's full logits."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor) and not t._is_view():
                    Largest.numel = max(Largest.numel, t.numel())
            return out

    head = lm_head(tiny_gpt2)
    n_entries, n, chunk = tiny_gpt2.n_layers + 1, 40, 1000
    hidden = np.random.default_rng(0).normal(size=(n_entries, n, tiny_gpt2.d_model)).astype(np.float32)
    targets = np.arange(n)
    step = decode.token_block(n_entries, chunk)
    with Largest():
        decode.token_metrics(head, hidden, targets, chunk)
    bound = max(n_entries * min(step, n) * chunk, chunk * tiny_gpt2.d_model)
    assert Largest.numel <= bound < n_entries * min(step, n) * head.vocab_size


# ---- the LM head of each family, and the built-in check ------------------------------------------------------
# Model types whose forward transforms the logits (models/head.py), with values that make the transform matter
# on a tiny random model: a soft-cap well below its logits, a scale far from 1.
FAMILIES = {
    "gemma2": {"final_logit_softcapping": 0.5},
    "nanochat": {"final_logit_softcapping": 0.5},
    "cohere": {"logit_scale": 4.0},
    "granite": {"logits_scaling": 0.25},
    "hyperclovax": {"logits_scaling": 4.0},
    "minicpm3": {"dim_model_base": 16},  # logits_scaling = hidden_size / dim_model_base = 4
    "modernbert-decoder": {},
    "gptj": {},  # an LM head with a bias
    "gpt_neox": {},
}


def _tiny(model_type, gpt2_tokenizer, **overrides):
    from transformers.utils import logging

    logging.set_verbosity_error()
    return lamina.wrap(tiny_model(model_type, **overrides), gpt2_tokenizer, name=f"tiny-{model_type}")


def _last_entry_gap(model, head) -> float:
    stim = stimuli.windows(lamina.data.book("alice"), model, 12, 2)
    rec = lamina.record(model, stim, sites=["hidden"], layers=[-1])
    known = rec.tokens["next_id"].to_numpy() >= 0
    ce = decode.final_cross_entropy(head, torch.as_tensor(rec.flat("hidden", -1)[known]),
                                    torch.as_tensor(rec.tokens["next_id"].to_numpy()[known]), 4096)
    return lens.check_last_entry(model, head, ce, rec.tokens["loss"].to_numpy(dtype=float)[known])


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_last_entry_reproduces_the_models_loss(model_type, gpt2_tokenizer, data_dir):
    model = _tiny(model_type, gpt2_tokenizer, **FAMILIES[model_type])
    head = lm_head(model)
    assert _last_entry_gap(model, head) < 1e-4
    transformed = dict(softcap=None, logit_scale=1.0, hidden_scale=1.0, pre=None)
    changed = {k: v for k, v in transformed.items() if getattr(head, k) != v}
    if changed:  # without its family's transform the check must fail, in one line naming the model
        bare = Head(**{**head.__dict__, **transformed})
        with pytest.raises(LaminaError, match=f"tiny-{model_type}: decoding the last hidden entry") as err:
            _last_entry_gap(model, bare)
        assert "\n" not in str(err.value)


def test_embedded_structure_heads(tiny_gemma3, tiny_llama, tiny_neox, data_dir):
    for model in (tiny_gemma3, tiny_llama, tiny_neox):
        assert _last_entry_gap(model, lm_head(model)) < 1e-4


def test_a_wrong_head_stops_the_run(tiny_gpt2, data_dir, monkeypatch):
    real = lm_head(tiny_gpt2)
    monkeypatch.setattr(lens, "lm_head", lambda model: Head(**{**real.__dict__, "softcap": 1.0}))
    with pytest.raises(LaminaError, match=r"tiny-gpt2: decoding the last hidden entry .*largest difference") as err:
        lamina.run("lens", model=tiny_gpt2, progress=False, settings=SETTINGS)
    assert "\n" not in str(err.value) and "soft-cap 1.0" in str(err.value)


# ---- the tuned lens ------------------------------------------------------------------------------------------
def test_identity_translators_are_the_logit_lens(tiny_gpt2):
    head = lm_head(tiny_gpt2)
    e, d = tiny_gpt2.n_layers + 1, tiny_gpt2.d_model
    hidden = np.random.default_rng(1).normal(size=(e, 20, d)).astype(np.float32)
    targets = np.arange(20) * 7
    identity = tuned.translator(torch.zeros((e - 1, d, d)), torch.zeros((e - 1, d)))
    # (a constant shift would vanish in GPT-2's LayerNorm, which subtracts each vector's mean)
    shift = torch.randn((e - 1, d), generator=torch.Generator().manual_seed(0))
    shifted = tuned.translator(torch.zeros((e - 1, d, d)), shift)
    plain = decode.token_metrics(head, hidden, targets, 997)
    np.testing.assert_array_equal(decode.token_metrics(head, hidden, targets, 997, identity)[0], plain[0])
    moved = decode.token_metrics(head, hidden, targets, 997, shifted)[0]
    assert not np.allclose(moved[:, :-1], plain[0][:, :-1]) and np.array_equal(moved[:, -1], plain[0][:, -1])


def test_training_windows_avoid_the_evaluated_ones(tiny_gpt2, data_dir):
    text = lamina.data.book("alice")
    evaluated = stimuli.windows(text, tiny_gpt2, 16, 3)
    train = tuned.training_windows(text, tiny_gpt2, 16, evaluated, 40)
    used = np.zeros(10 ** 6, int)
    for start in evaluated.meta["start"]:
        used[start:start + 17] += 1  # the window and its next token
    for start in train.meta["start"]:
        used[start:start + 17] += 1
    assert used.max() == 1 and len(set(train.meta["start"])) == 40
    tokens = np.asarray(stimuli.encode(tiny_gpt2, text))
    for ids, start, nxt in zip(train.ids, train.meta["start"], train.next_ids):
        assert (ids == tokens[start:start + 16]).all() and nxt == tokens[start + 16]
    with pytest.raises(LaminaError, match="room for .* training windows") as err:
        tuned.training_windows(text, tiny_gpt2, 16, evaluated, 10 ** 5)
    assert "\n" not in str(err.value)


def test_tuned_lens_fits_is_cached_and_reported(tiny_gpt2, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LAMINA_CACHE", str(tmp_path / "cache"))
    settings = {**SETTINGS, "lens": "tuned", "tuned_steps": 30, "tuned_windows": 8, "tuned_lr": 3e-3}
    run = lamina.run("lens", model=tiny_gpt2, progress=False, settings=settings)
    kinds = [lens_.kind for lens_ in run.result.lenses]
    assert kinds == ["logit", "tuned"] and run.result.training.steps == 30
    t = run.result.training
    assert (t.kl_last < t.kl_first).all()  # each translator lowers its training KL
    assert run.result.tuned_cache and (tmp_path / "cache" / "tuned-lens" / run.result.tuned_cache).is_file()
    prof = run.experiment.profiles(run.result)
    assert {"kl", "tuned_kl", "tuned_top1_agreement"} <= set(prof.metric)
    # the last entry has no translator: both lenses decode it identically; below it the fitted translators
    # bring the lens closer to the final distribution on the evaluated windows, which they were not fitted on
    logit, tuned_ = run.result.lenses
    assert tuned_.cross_entropy.mean[-1] == logit.cross_entropy.mean[-1]
    assert (tuned_.kl.mean[:-1] < logit.kl.mean[:-1]).all()
    monkeypatch.setattr(tuned, "fit", lambda *a, **k: pytest.fail("fitted again instead of reading the cache"))
    again = lamina.run("lens", model=tiny_gpt2, progress=False, settings=settings)
    assert again.result == run.result
    assert any("tuned-lens/" in note for note in again.notes)


# ---- settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    ({"lens": "tuned-lens"}, "'lens' must be one of logit, tuned"),
    ({"replicates": 1}, "'replicates' must be at least 2"),
    ({"window": 1}, "'window' must be at least 2"),
    ({"vocab_chunk": 0}, "'vocab_chunk' must be at least 1"),
    ({"tuned_steps": 0}, "'tuned_steps' must be"),
    ({"tuned_batch": 0}, "'tuned_batch' must be"),
    ({"tuned_windows": 0}, "'tuned_windows' must be"),
    ({"tuned_lr": 0.0}, r"'tuned_lr' must be more than 0 and at most 1 \(a learning rate\)"),
    ({"tuned_lr": float("nan")}, "tuned_lr.* finite"),
    ({"tuned_lr": 2.0}, r"'tuned_lr' must be more than 0 and at most 1 \(a learning rate\), not 2.0"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(LaminaError, match=message) as err:
        get("lens").config(settings)
    assert "\n" not in str(err.value)


def test_window_longer_than_the_context_is_refused(tiny_gpt2, data_dir):
    with pytest.raises(LaminaError, match="does not fit") as err:
        lamina.run("lens", model=tiny_gpt2, progress=False, settings={"window": 1000, "replicates": 2})
    assert "\n" not in str(err.value)


def test_windows_are_recorded_in_groups_with_the_same_numbers(tiny_gpt2, data_dir, monkeypatch):
    """Hidden states held group by group (RECORD_BYTES) give the numbers of one group."""
    whole = lamina.run("lens", model=tiny_gpt2, progress=False, settings=SETTINGS)
    per_window = 4 * (tiny_gpt2.n_layers + 1) * 16 * tiny_gpt2.d_model
    monkeypatch.setattr(lens, "RECORD_BYTES", per_window)  # one window per group
    assert len(lens.window_groups(tiny_gpt2, 3, 16)) == 3
    grouped = lamina.run("lens", model=tiny_gpt2, progress=False, settings=SETTINGS)
    np.testing.assert_allclose(grouped.result.windows.values, whole.result.windows.values, rtol=1e-6, atol=1e-7)
    assert grouped.result.grid == whole.result.grid
