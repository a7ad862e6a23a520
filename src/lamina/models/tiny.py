"""Tiny random configs of every causal-LM model type, for proving the site vocabulary offline.

:func:`tiny_config` shrinks a ``transformers`` config class to a few layers of width 64: the
architecture (norm placement, parallel residual, gating, experts, sliding windows, ...) stays
what the class builds by default, only the sizes shrink. A handful of model types need a few
more fields set so the shrunken sizes stay consistent; they are listed in ``_OVERRIDES``.
Nothing is downloaded: configs and models are built from code.
"""

from __future__ import annotations

import dataclasses

WIDTH, FFN, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 64, 128, 2, 4, 2, 16
VOCAB = 50257  # the GPT-2 tokenizer's vocabulary: any tokenizer works, the weights are random

_SIZES = {
    **dict.fromkeys(("hidden_size", "n_embd", "d_model", "n_embed", "dim", "embed_dim"), WIDTH),
    **dict.fromkeys(("intermediate_size", "ffn_dim", "n_inner", "d_ff", "ffn_hidden_size", "dim_ff",
                     "ffn_size", "inner_hidden_size"), FFN),
    **dict.fromkeys(("moe_intermediate_size", "shared_expert_intermediate_size", "expert_intermediate_size",
                     "moe_ffn_hidden_size", "shared_intermediate_size", "expert_dim"), 32),
    **dict.fromkeys(("num_hidden_layers", "n_layer", "n_layers", "num_layers"), LAYERS),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "num_heads"), HEADS),
    **dict.fromkeys(("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num"), KV_HEADS),
    "head_dim": HEAD_DIM,
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"), 4),
    **dict.fromkeys(("num_experts_per_tok", "moe_k", "moe_topk", "num_experts_per_token"), 2),
    # Multi-head latent attention (DeepSeek-V2/V3 and relatives).
    "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 16,
    "rotary_dim": 8,  # GPT-J, CodeGen: rotary part of each 16-wide head
    **dict.fromkeys(("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"), 256),
    "sliding_window": 8, "max_window_layers": LAYERS,
    "vocab_size": VOCAB,
}
# Set only where the class's default is not None (None means "feature off").
_IF_SET = {"q_lora_rank": 16, "n_shared_experts": 1, "moe_num_shared_experts": 1, "first_k_dense_replace": 1,
           "n_group": 1, "topk_group": 1, "num_dense_layers": 1, "moe_layer_start_index": 1}

# Model types whose fields must agree with the shrunken sizes in ways the generic rule cannot know.
_OVERRIDES: dict[str, dict] = {
    "gpt_neo": {"attention_types": [[["global", "local"], 1]]},
    "ernie4_5_moe": {"moe_layer_start_index": 1},
    "dots1": {"n_shared_experts": 1, "n_routed_experts": 4, "num_experts_per_tok": 2},
    "mamba2": {"num_heads": 8, "head_dim": 16, "n_groups": 1, "expand": 2},
    "gpt_bigcode": {"multi_query": True},
    "deepseek_v2": {"num_key_value_heads": HEADS},
    "deepseek_v3": {"num_key_value_heads": HEADS},
    "deepseek_v32": {"num_key_value_heads": HEADS},
    "glm_moe_dsa": {"num_key_value_heads": HEADS},
    "axk1": {"num_key_value_heads": HEADS},
    "axk2": {"num_key_value_heads": HEADS},
    "minicpm3": {"num_key_value_heads": HEADS},
    "youtu": {"num_key_value_heads": HEADS},
    "dots3_note_text": {"num_key_value_heads": HEADS},
    "xglm": {"pad_token_id": 1},  # its sinusoidal positions start after the padding index
    "longcat_flash": {"num_key_value_heads": HEADS, "head_dim": 8},
    "zaya": {"num_experts_per_tok": 1},
    "dbrx": {"attn_config": {"kv_n_heads": KV_HEADS, "rope_theta": 10000.0, "clip_qkv": 8.0},
             "ffn_config": {"ffn_hidden_size": FFN, "moe_num_experts": 4, "moe_top_k": 2}},
    "cohere_compass_text": {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e4}}},
    "lfm2": {"layer_types": ["conv", "full_attention"]},  # checkpoints mix conv and attention layers
    "mllama": {"text_config": {"cross_attention_layers": [1]}},  # checkpoints interleave cross-attention layers
    "dots3_note": {"text_config": {"num_key_value_heads": HEADS, "per_layer_config": {}}},
    "lfm2_moe": {"layer_types": ["conv", "full_attention"]},
    "zamba": {"n_mamba_heads": 2, "num_hidden_layers": 3, "layers_block_type": ["mamba", "hybrid", "hybrid"]},
    "zamba2": {"n_mamba_heads": 2, "layers_block_type": ["mamba", "hybrid"]},
    "gemma3n_text": {"num_kv_shared_layers": 0, "layer_types": ["sliding_attention", "full_attention"],
                     "laurel_rank": 8, "hidden_size_per_layer_input": 8, "vocab_size_per_layer_input": VOCAB,
                     "activation_sparsity_pattern": [0.0, 0.0]},
}


def _fields(cls) -> dict:
    try:
        return {f.name: f.default for f in dataclasses.fields(cls)}
    except TypeError:  # an older, non-dataclass config class
        import inspect

        return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}


def tiny_kwargs(model_type: str) -> dict:
    """The keyword arguments that shrink ``model_type``'s config class (see the module docstring)."""
    from transformers import CONFIG_MAPPING

    kwargs = _shrink(CONFIG_MAPPING[model_type])
    for key, value in _OVERRIDES.get(model_type, {}).items():
        merge = isinstance(value, dict) and isinstance(kwargs.get(key), dict)
        kwargs[key] = {**kwargs[key], **value} if merge else value
    return kwargs


def _shrink(cls) -> dict:
    """Shrinking keyword arguments for one config class; composite configs (a multimodal model's text,
    vision and audio parts) shrink each part the same way."""
    fields = _fields(cls)
    kwargs = {k: v for k, v in _SIZES.items() if k in fields}
    kwargs.update({k: v for k, v in _IF_SET.items() if k in fields and fields[k] not in (None, 0)})
    # Token ids must lie inside the shrunken vocabulary (some models index embeddings with them).
    kwargs.update({k: VOCAB - 1 for k in ("pad_token_id", "bos_token_id", "eos_token_id") if k in fields})
    subs = {k: v for k, v in (getattr(cls, "sub_configs", None) or {}).items() if k in fields}
    if subs:
        defaults = None
        for key, sub in subs.items():
            if not hasattr(sub, "model_type") or sub.__name__ == "AutoConfig":
                # A sub-config of any type (e.g. Fuyu's text_config): shrink the type it defaults to.
                defaults = defaults or cls()
                default = getattr(defaults, key, None)
                if default is None:
                    continue
                kwargs[key] = {**_shrink(type(default)), "model_type": default.model_type}
            else:
                kwargs[key] = _shrink(sub)
    return kwargs


def tiny_config(model_type: str, **overrides):
    """A config of ``model_type`` with a few layers of width 64 and the GPT-2 vocabulary."""
    from transformers import CONFIG_MAPPING

    return CONFIG_MAPPING[model_type](**{**tiny_kwargs(model_type), **overrides})


def tiny_model(model_type: str, seed: int = 0, **overrides):
    """A randomly initialised causal LM of ``model_type`` (eval mode, float32).

    Initialisers set norm weights, biases and scalars to 0 or 1, where a block's structure can
    hide: a learned scalar of 1 on the residual stream looks like no scalar at all. Every vector
    and scalar parameter, and every one-element buffer, is therefore drawn from U(0.5, 1.5).
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(model_type, **overrides)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for tensor in [*model.parameters(), *(b for b in model.buffers() if b.numel() == 1)]:
            if tensor.is_floating_point() and tensor.dim() <= 1:
                tensor.uniform_(0.5, 1.5)
    return model


# The embedded models' real configs (config.json of their GGUF conversions), without the sizes.
# The survey also builds tiny versions of them: their structure (GQA ratio, tied head, RoPE bases,
# Gemma-3's five sliding-window layers per global one, query scaling) at width 48-64.
EMBEDDED_CONFIGS: dict[str, dict] = {
    "smollm2-135m": {
        "model_type": "llama", "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "rms_norm_eps": 1e-5, "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
        "tie_word_embeddings": True, "num_attention_heads": 3, "num_key_value_heads": 1, "head_dim": 16,
        "hidden_size": 48, "num_hidden_layers": 3,  # real: 30 layers of width 576, 9 heads (3 key/value) of 64
    },
    "gemma3-270m": {
        "model_type": "gemma3_text", "hidden_activation": "gelu_pytorch_tanh", "attention_bias": False,
        "rms_norm_eps": 1e-6, "query_pre_attn_scalar": 256, "sliding_window": 4, "tie_word_embeddings": True,
        "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
        "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
        "num_hidden_layers": 6,  # real: 18 layers (3 x [5 sliding + 1 global]), 4 heads of 256, 1 kv head
    },
}


def tiny_embedded(name: str, seed: int = 0):
    """A tiny random model with the structure of embedded model ``name`` (see ``EMBEDDED_CONFIGS``)."""
    spec = dict(EMBEDDED_CONFIGS[name])
    model_type = spec.pop("model_type")
    return tiny_model(model_type, seed=seed, **spec)
