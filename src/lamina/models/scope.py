"""Which model types lamina's sites describe, and why the others are refused.

lamina records decoder-only causal LMs whose blocks are attention + MLP sublayers over a
residual stream. Most of that is read off the model (:mod:`lamina.models.derive` refuses a
block without attention, a hybrid stack, ...). This module holds what the structure alone
cannot say: model types that are not decoder-only (encoders, the decoder halves of
encoder-decoder models, multimodal wrappers), and the few decoder-only types whose blocks look
like attention + MLP but are not a residual sum of them.
"""

from __future__ import annotations

# Decoder-only in transformers' causal-LM mapping, but not attention + MLP over a residual stream
# in a way the module tree shows. Each reason is what a user is told when loading one.
REFUSED: dict[str, str] = {
    "rwkv": "RWKV blocks mix tokens with a linear recurrence (its 'attention' is a time-mixing RNN), not attention",
    "blt": "the Byte Latent Transformer runs a local byte encoder, a global patch transformer and a local "
           "decoder, not one stack of blocks over a residual stream",
    "hrm_text": "the Hierarchical Reasoning Model iterates two recurrent modules over several cycles, so the "
                "hidden states are not one stack of blocks",
    "deepseek_v4": "DeepSeek-V4 blocks use hyper-connections: several residual streams mixed by learned weights, "
                   "so no block adds attn.out + mlp.out to one residual stream",
    "beam": "Beam blocks rescale the residual stream itself at every add (depth-scaled residual: "
            "sqrt((k-1)/k) * residual + sublayer / sqrt(k)), so no block adds attn.out + mlp.out to it",
    "cpmant": "CPM-Ant prepends learned prompt positions inside the model and slices them off its hidden states, "
              "so its blocks see other positions than the input",
    **dict.fromkeys(("gemma4", "gemma4_unified", "gemma4_assistant", "gemma4_unified_assistant"),
                    "Gemma-4 blocks multiply the whole residual stream by a learned layer scalar (and may add a "
                    "per-layer-input branch), so no block adds attn.out + mlp.out to one residual stream"),
    "gemma3n": "Gemma-3n blocks use AltUp (several predicted residual streams) and per-layer inputs, so no "
               "block adds attn.out + mlp.out to one residual stream",
    "gemma4_text": "Gemma-4 blocks add a third branch (per-layer inputs) and multiply the whole residual stream by "
                   "a learned layer scalar, so no block adds attn.out + mlp.out to one residual stream",
    "longcat_flash": "each LongCat-Flash layer holds two attention and two MLP sublayers plus a shortcut "
                     "mixture of experts, not one attention + one MLP",
    "minimax": "MiniMax mixes linear ('lightning') and softmax attention layers and scales the residual stream "
               "itself (alpha * residual + beta * sublayer)",
    "openai-gpt": "GPT-1 is post-LN: every sublayer's sum with the residual is re-normalised, so there is no "
                  "residual stream that attn.out and mlp.out add to",
    "zaya": "ZAYA scales and shifts the residual stream itself at every add (learned residual scaling), so no "
            "block adds attn.out + mlp.out to it",
    "doge": "Doge blocks scale the residual stream itself by learned weights (input_residual * residual + "
            "sublayer), so no block adds attn.out + mlp.out to it",
    "gemma4_unified_text": "Gemma-4 blocks multiply the whole residual stream by a learned layer scalar (and may add "
                           "a per-layer-input branch), so no block adds attn.out + mlp.out to one residual stream",
    "git": "GIT's text decoder is a BERT-style post-LN stack (the sum with the residual is re-normalised after "
           "each sublayer), so there is no residual stream that attn.out and mlp.out add to",
    "gemma3n_text": "Gemma-3n blocks use AltUp (several predicted residual streams) and per-layer inputs, so no "
                    "block adds attn.out + mlp.out to one residual stream",
}

# Not decoder-only, though transformers can build them as causal LMs.
NOT_DECODER_ONLY: dict[str, str] = {
    "bert-generation": "an encoder (BERT) architecture run as a decoder",
    "xlnet": "a permutation language model (two-stream attention), not a decoder-only LM",
    "trocr": "the text decoder of a vision encoder-decoder model (it cross-attends to image features)",
    "xlm": "a cross-lingual encoder (masked LM)",
}

_MULTIMODAL_KEYS = ("vision", "audio", "vq", "speech", "image", "depth_decoder")


def multimodal(model_type: str) -> list[str]:
    """The non-text parts of a multimodal model type's config (empty for a text-only model). lamina
    records such a model on text-only input: its language model's sites."""
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type] if model_type in CONFIG_MAPPING else None  # (the lazy mapping has no .get)
    parts = [key for key in (getattr(cls, "sub_configs", None) or {}) if any(tag in key for tag in _MULTIMODAL_KEYS)]
    fields = getattr(cls, "__dataclass_fields__", {})
    if not parts and ("image_token_id" in fields or {"image_size", "patch_size"} <= set(fields)):
        parts = ["image inputs"]  # Fuyu: image patches enter through a linear layer, no vision config
    return parts


def out_of_scope(model_type: str) -> str | None:
    """Why ``model_type`` is not a decoder-only text LM (None: it is one, or transformers does not know it)."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto import modeling_auto as auto

    if model_type in NOT_DECODER_ONLY:
        return NOT_DECODER_ONLY[model_type]
    if model_type not in CONFIG_MAPPING:
        return None  # remote code or a newer transformers: the module tree decides
    seq2seq = set(auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES) | set(auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES)
    cls = CONFIG_MAPPING[model_type]
    if model_type in seq2seq or getattr(cls, "is_encoder_decoder", False) is True or _default_encoder_decoder(cls):
        return "an encoder-decoder model, or the decoder half of one (it cross-attends to an encoder)"
    if model_type in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "an encoder (masked LM) architecture run as a decoder"
    return None


def _default_encoder_decoder(cls) -> bool:
    """Whether the config class's defaults describe an encoder-decoder model (MusicGen sets it in __init__)."""
    try:
        return getattr(cls(), "is_encoder_decoder", False) is True
    except Exception:  # a config that needs arguments: not decidable here, the module tree decides
        return False


def refusal(model_type: str) -> str | None:
    """The one-line reason lamina refuses ``model_type`` before looking at its modules (None: not refused)."""
    reason = out_of_scope(model_type)
    if reason is not None:
        return f"unsupported architecture {model_type!r}: {reason}; lamina records decoder-only causal LMs " \
               f"(gpt2, llama, gemma3_text, ...; see `lamina architectures`)"
    if model_type in REFUSED:
        return f"unsupported architecture {model_type!r}: {REFUSED[model_type]}; lamina's sites need blocks of " \
               f"attention + MLP over one residual stream (see `lamina architectures`)"
    return None
