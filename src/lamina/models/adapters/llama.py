"""The Llama family: Llama, SmolLM2, Qwen2, Mistral (same module names)."""

from .base import Adapter, Hook

ADAPTER = Adapter(
    family="llama",
    model_types=("llama", "qwen2", "mistral", "qwen3"),
    layers="model.layers",
    final_norm="model.norm",
    attn_out=Hook("self_attn.o_proj", "output"),
    attn="self_attn",
    attn_proj="self_attn.o_proj",
    mlp="mlp",
    # Gated MLP: down(act(gate(x)) * up(x)). "pre" is gate(x), "post" is what enters down_proj.
    mlp_pre=Hook("mlp.gate_proj", "output"),
    mlp_post=Hook("mlp.down_proj", "input"),
    mlp_kind="gated",
    mlp_up=Hook("mlp.up_proj", "output"),
    mlp_act="mlp.act_fn",
    resid_mid=Hook("post_attention_layernorm", "input"),
    # These tokenizers either add BOS themselves or (SmolLM2) not at all; lamina always
    # tokenizes without special tokens and prepends BOS itself, so the first real token
    # is not the attention sink.
    prepend_bos=True,
    examples="HuggingFaceTB/SmolLM2-135M, meta-llama/Llama-3.2-1B, Qwen/Qwen2.5-0.5B, mistralai/Mistral-7B-v0.1",
)
