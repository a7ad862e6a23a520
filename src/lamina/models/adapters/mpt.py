"""MPT: its MLP module adds the residual itself (``ffn(x, residual)``), so the MLP's contribution is
read at the down projection's output."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="mpt",
    model_types=("mpt",),
    layers="transformer.blocks",
    final_norm="transformer.norm_f",
    attn_out=Hook("attn", "output"),
    attn="attn",
    attn_proj="attn.out_proj",
    mlp="ffn",
    mlp_out=Hook("ffn.down_proj", "output"),
    mlp_pre=Hook("ffn.up_proj", "output"),
    mlp_post=Hook("ffn.down_proj", "input"),
    mlp_kind="gelu",
    mlp_act="ffn.act",
    resid_mid=Hook("norm_2", "input"),
    prepend_bos=None,
    examples="mosaicml/mpt-7b, ...",
)
