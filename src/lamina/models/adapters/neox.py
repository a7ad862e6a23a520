"""GPT-NeoX (Pythia)."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="neox",
    model_types=("gpt_neox",),
    layers="gpt_neox.layers",
    final_norm="gpt_neox.final_layer_norm",
    attn_out=Hook("attention.dense", "output"),
    attn="attention",
    attn_proj="attention.dense",
    mlp="mlp",
    mlp_pre=Hook("mlp.dense_h_to_4h", "output"),
    mlp_post=Hook("mlp.dense_4h_to_h", "input"),
    mlp_kind="gelu",
    mlp_act="mlp.act",
    # Pythia was trained on documents separated by <|endoftext|>, with no BOS.
    prepend_bos=False,
    parallel_residual="use_parallel_residual",
    examples="EleutherAI/pythia-70m, EleutherAI/pythia-160m, ...",
)
