"""GPT-NeoX-Japanese: the attention returns its output projection's bias separately (the block adds
it with the residual), so ``attn.out`` is the attention output plus that bias where a layer has one."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="gpt_neox_japanese",
    model_types=("gpt_neox_japanese",),
    layers="gpt_neox_japanese.layers",
    final_norm="gpt_neox_japanese.final_layer_norm",
    attn_out=Hook("attention", "output", bias="attention.dense_bias"),
    attn="attention",
    attn_proj="attention.dense",
    mlp="mlp",
    mlp_pre=Hook("mlp.dense_h_to_4h", "output"),
    mlp_post=Hook("mlp.dense_4h_to_h", "input"),
    mlp_kind="gelu",
    mlp_act="mlp.act",
    resid_mid=Hook("post_attention_layernorm", "input"),
    prepend_bos=None,
    examples="abeja/gpt-neox-japanese-2.7b",
)
