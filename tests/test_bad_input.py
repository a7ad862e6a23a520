"""The catalogue of user mistakes: each gets a clear LaminaError (CLI: one line, exit 2), never a
traceback, a NaN or a silently wrong number. Experiment-specific cases live beside each experiment
and are listed in docs/reliability.md."""

import numpy as np
import pytest
import torch

import lamina
from lamina import LaminaError, Stimuli
from lamina.cli import main


# ---- models --------------------------------------------------------------------------------
def test_unknown_model_name():
    with pytest.raises(LaminaError, match="could not load model 'no-such-org/no-such-model'"):
        lamina.load("no-such-org/no-such-model")


def test_missing_local_directory(tmp_path):
    with pytest.raises(LaminaError, match="no model directory or file"):
        lamina.load(str(tmp_path / "absent"))


def test_unsupported_architecture():
    from lamina.models import adapter_for

    with pytest.raises(LaminaError, match="unsupported architecture 't5'.*gpt2"):
        adapter_for("t5")


def test_trust_remote_code_is_off_unless_asked(monkeypatch, tiny_gpt2, gpt2_tokenizer, tmp_path):
    import transformers

    tiny_gpt2.hf.save_pretrained(tmp_path / "m")
    gpt2_tokenizer.save_pretrained(tmp_path / "m")
    seen = []
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    lamina.load(str(tmp_path / "m"))
    assert seen and set(seen) == {False}
    seen.clear()
    lamina.load(str(tmp_path / "m"), trust_remote_code=True)
    assert seen and set(seen) == {True}


# ---- sites and layers ----------------------------------------------------------------------
def test_unknown_site_suggests_closest(tiny_gpt2):
    with pytest.raises(LaminaError, match="unknown site 'mlp.post_'. Did you mean 'mlp.post'"):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, 3]]), sites=["mlp.post_"])


def test_layer_out_of_range(tiny_gpt2):
    with pytest.raises(LaminaError, match="layer 7 is out of range for site 'attn.out': it has entries 0..2"):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, 3]]), sites=["attn.out"], layers=[7])


# ---- texts and stimuli ---------------------------------------------------------------------
def test_empty_text(tiny_gpt2):
    with pytest.raises(LaminaError, match="empty"):
        lamina.stimuli.passage("", tiny_gpt2)


def test_text_shorter_than_window(tiny_gpt2):
    with pytest.raises(LaminaError, match="tokens"):
        lamina.stimuli.window("Just a few words here.", tiny_gpt2, 100)


def test_window_longer_than_context(tiny_gpt2):
    text = "word " * 2000
    with pytest.raises(LaminaError, match="context|max"):
        lamina.stimuli.window(text, tiny_gpt2, 1000, where="start", max_length=tiny_gpt2.context_length)
    with pytest.raises(LaminaError, match="context length"):
        lamina.record(tiny_gpt2, Stimuli([np.ones(tiny_gpt2.context_length + 1, dtype=int)]))


def test_target_word_absent_or_too_rare(tiny_gpt2):
    with pytest.raises(LaminaError, match="does not occur"):
        lamina.stimuli.word_in_contexts("the cat sat on the mat. " * 5, tiny_gpt2, " dog", 4)
    with pytest.raises(LaminaError):
        lamina.stimuli.word_in_contexts("cat and more words follow here", tiny_gpt2, " cat", 20)


def test_words_that_are_not_single_tokens(tiny_gpt2):
    with pytest.raises(LaminaError, match="antidisestablishmentarianism"):
        lamina.stimuli.single_token_words({"long": ["antidisestablishmentarianism", "cat"]}, tiny_gpt2)
    kept = lamina.stimuli.single_token_words({"long": ["antidisestablishmentarianism", "cat"]}, tiny_gpt2,
                                             on_invalid="drop")
    assert len(kept) == 1 and any("antidisestablishmentarianism" in note for note in kept.notes)


def test_token_ids_from_another_tokenizer(tiny_gpt2):
    with pytest.raises(LaminaError, match="vocabulary"):
        lamina.record(tiny_gpt2, Stimuli([[1, 2, tiny_gpt2.vocab_size + 5]]))


# ---- values --------------------------------------------------------------------------------
def test_zero_norm_before_a_log():
    from lamina.stats.norms import log_norms

    with pytest.raises(LaminaError, match="zero norm"):
        log_norms(np.zeros((2, 3)))


def test_non_finite_activations_named_with_site_and_layer(gpt2_tokenizer):
    from conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(gpt2_tokenizer, seed=4)
    with torch.no_grad():
        hf.transformer.h[2].attn.c_proj.bias[3] = float("inf")
    with pytest.raises(LaminaError, match=r"site 'attn.out', layer 2"):
        lamina.record(lamina.wrap(hf, gpt2_tokenizer), Stimuli([[1, 2, 3, 4]]), sites=["attn.out"], progress=False)


# ---- experiment settings and the CLI -------------------------------------------------------
def test_unknown_set_key_lists_valid_ones(capsys, data_dir):
    assert main(["run", "position", "--set", "sequence_length=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'sequence_length'" in err and "Valid settings: seqlen" in err and err.count("\n") == 1


def test_set_value_of_wrong_type(capsys):
    assert main(["run", "position", "--set", "n_samples=many"]) == 2
    assert "setting 'n_samples' needs an integer, not 'many'" in capsys.readouterr().err


def test_set_without_equals(capsys):
    assert main(["run", "position", "--set", "seqlen"]) == 2
    assert "--set takes key=value" in capsys.readouterr().err


def test_unknown_experiment(capsys):
    assert main(["run", "posiiton"]) == 2
    assert "Did you mean 'position'" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    with pytest.raises(LaminaError):
        main(["--debug", "run", "posiiton"])
