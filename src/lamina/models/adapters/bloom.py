"""BLOOM: its attention and MLP modules add the residual themselves, so each sublayer's
contribution is read at its output projection (the module outputs are ``residual + contribution``)."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="bloom",
    model_types=("bloom",),
    layers="transformer.h",
    final_norm="transformer.ln_f",
    attn_out=Hook("self_attention.dense", "output"),
    attn="self_attention",
    attn_proj="self_attention.dense",
    mlp="mlp",  # mlp.in: the input of BloomMLP (its second argument is the residual)
    mlp_out=Hook("mlp.dense_4h_to_h", "output"),
    mlp_pre=Hook("mlp.dense_h_to_4h", "output"),
    mlp_post=Hook("mlp.dense_4h_to_h", "input"),
    mlp_kind="gelu",
    mlp_act="mlp.gelu_impl",
    resid_mid=Hook("post_attention_layernorm", "input"),
    prepend_bos=None,  # the tokenizer's convention (BLOOM's adds none)
    examples="bigscience/bloom-560m, bigscience/bloomz-1b1, ...",
)
