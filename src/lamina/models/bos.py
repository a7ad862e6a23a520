"""The BOS policy: whether lamina puts a token before every sequence, and which one.

One rule for every model, so that the same checkpoint gets the same policy however it is
loaded (an embedded name, a hub id, a local directory or a ``.gguf`` file):

**Whether** (``prepend_bos``): what the caller says; else the family's declared default
(GPT-2, GPT-NeoX: off, trained on raw text; Llama family, Gemma: on); else the tokenizer's own
convention: on when it puts a BOS token in front of text by itself (``add_special_tokens``),
which is how the checkpoint saw text in training.

**Which** (``bos_token``): what the caller says; else the tokenizer's BOS token, unless that
token is a chat-turn marker (the chat template puts a role name right after it, as ChatML's
``<|im_start|>``), in which case the document separator ``<|endoftext|>`` when the vocabulary
has one; else the EOS token. A chat-turn marker tells the model a role name comes next, not that
a document starts: SmolLM2-135M-Instruct's GGUF declares ``<|im_start|>`` as BOS, and with it the
mean loss at position 0 of 300 HellaSwag contexts is 11.04 nats, against 7.24 with
``<|endoftext|>`` (11.78 with no BOS; ln V = 10.80).
"""

from __future__ import annotations

import re

# Families whose BOS convention is declared rather than read from the tokenizer (hand-written
# adapters declare theirs in the adapter). Gemma is trained with <bos> first; without it the
# first positions' losses are meaningless.
FAMILY_BOS: dict[str, bool] = {
    **dict.fromkeys(("gemma", "gemma2", "gemma3", "gemma3_text", "gemma3n_text", "gemma4_text", "vaultgemma"), True),
    **dict.fromkeys(("gptj", "gpt_neo", "codegen", "gpt_bigcode", "gpt-sw3"), False),
}
DOCUMENT_SEPARATOR = "<|endoftext|>"


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS token in front of text when adding special tokens."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    try:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    except Exception:  # a tokenizer that cannot encode plain text: keep it off
        return False
    return bool(ids) and ids[0] == bos


def is_chat_marker(tokenizer, token: str | None) -> bool:
    """Whether ``token`` opens a chat turn in the tokenizer's chat template (a role name follows it)."""
    template = getattr(tokenizer, "chat_template", None)
    if not token or not isinstance(template, str):
        return False
    # '<|im_start|>system' or '<|im_start|>' + message['role']: a role name follows the token directly.
    after = r"""(['"]\s*\+\s*(\w+\[['"])?|\{\{\s*(\w+\[['"])?)?(system|user|assistant|model|role)\b"""
    return re.search(re.escape(token) + after, template) is not None


def default_prepend(family: str, declared: bool | None, tokenizer) -> bool:
    """The family's BOS default (see the module docstring)."""
    if declared is not None:
        return declared
    if family in FAMILY_BOS:
        return FAMILY_BOS[family]
    return tokenizer_adds_bos(tokenizer)


def default_token(tokenizer) -> str | None:
    """The token lamina prepends when no ``bos_token`` is given (None: the tokenizer has neither BOS nor EOS)."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos is not None and not is_chat_marker(tokenizer, bos):
        return bos
    if _in_vocab(tokenizer, DOCUMENT_SEPARATOR):
        return DOCUMENT_SEPARATOR
    return getattr(tokenizer, "eos_token", None) or bos


def _in_vocab(tokenizer, token: str) -> bool:
    try:
        tid = tokenizer.convert_tokens_to_ids(token)
    except Exception:
        return False
    return tid is not None and (tid != tokenizer.unk_token_id or token == tokenizer.unk_token)
