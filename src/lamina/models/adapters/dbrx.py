"""DBRX: attention sits inside a ``norm_attn_norm`` module that returns (residual, normed residual);
the MLP is a mixture of experts."""

from .base import Adapter, Hook

_MOE = ("DBRX's MLP is a mixture of experts: each token's expansion lives in the experts it is routed to, so "
        "there is no single expansion to record; mlp.in and mlp.out (the whole MoE layer) are recorded")

ADAPTER = Adapter(
    family="dbrx",
    model_types=("dbrx",),
    layers="transformer.blocks",
    final_norm="transformer.norm_f",
    attn_out=Hook("norm_attn_norm.attn", "output"),
    attn="norm_attn_norm.attn",
    attn_proj="norm_attn_norm.attn.out_proj",
    mlp="ffn",
    mlp_pre=None,
    mlp_post=None,
    mlp_kind="moe",
    unavailable=(("mlp.pre", _MOE), ("mlp.post", _MOE)),
    resid_mid=Hook("norm_attn_norm.norm_2", "input"),
    prepend_bos=None,
    examples="databricks/dbrx-base, ...",
)
