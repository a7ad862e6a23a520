"""Granite-MoE with a shared MLP: each block's MLP contribution is the routed experts' output plus
the shared MLP's (both read the same normed residual), times the block's residual multiplier."""

from .base import Adapter, Hook

_MOE = ("its MLP is a mixture of experts (plus a shared MLP): each token's expansion lives in the experts it "
        "is routed to, so there is no single expansion to record; mlp.in and mlp.out are recorded")
_SUM = Hook("shared_mlp", "output", plus="block_sparse_moe", scale="residual_multiplier")

ADAPTER = Adapter(
    family="granitemoeshared",
    model_types=("granitemoeshared", "granitemoe_swa"),
    layers="model.layers",
    final_norm="model.norm",
    attn_out=Hook("self_attn", "output", scale="residual_multiplier"),
    attn_raw=Hook("self_attn", "output"),
    attn="self_attn",
    attn_proj="self_attn.o_proj",
    mlp="block_sparse_moe",  # mlp.in: its input, which the shared MLP reads too
    mlp_out=_SUM,
    mlp_raw=Hook("shared_mlp", "output", plus="block_sparse_moe"),
    mlp_pre=None,
    mlp_post=None,
    mlp_kind="moe",
    unavailable=(("mlp.pre", _MOE), ("mlp.post", _MOE)),
    resid_mid=Hook("post_attention_layernorm", "input"),
    prepend_bos=None,
    examples="ibm-granite/granite-4.0-tiny-preview (shared-expert variants)",
)
