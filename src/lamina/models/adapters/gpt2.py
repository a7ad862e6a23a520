"""GPT-2 (and anything with ``model_type == "gpt2"``)."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="gpt2",
    model_types=("gpt2",),
    layers="transformer.h",
    final_norm="transformer.ln_f",
    attn_out=Hook("attn.c_proj", "output"),  # == attn output[0] in eval mode (seed 002)
    attn="attn",
    attn_proj="attn.c_proj",
    mlp="mlp",
    mlp_pre=Hook("mlp.c_fc", "output"),  # seed 003 stage 2: c_fc(x)
    mlp_post=Hook("mlp.c_proj", "input"),  # seed 003 stage 3: act(c_fc(x))
    mlp_kind="gelu",
    mlp_act="mlp.act",
    resid_mid=Hook("ln_2", "input"),
    # The seeds feed GPT-2 raw text with no <|endoftext|> in front; keep that.
    prepend_bos=False,
    examples="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2",
)
