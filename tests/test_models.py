"""Loading: embedded model, adapters, BOS policy, and clear errors for bad input."""


import pytest
import torch

import lamina
from lamina import LaminaError
from lamina.models import adapter_for


@pytest.mark.slow
def test_embedded_smollm2(smollm2):
    assert smollm2.adapter.family == "llama" and smollm2.n_layers == 30
    assert (smollm2.d_model, smollm2.d_mlp, smollm2.vocab_size) == (576, 1536, 49152)
    assert smollm2.prepend_bos and smollm2.bos_id is not None
    # Its tokenizer adds no BOS; lamina encodes without special tokens either way.
    assert smollm2.encode("Hello world") == list(smollm2.tokenizer("Hello world").input_ids)
    assert smollm2.source["kind"] == "embedded" and len(smollm2.source["sha256"]) == 64
    table = smollm2.sites()
    assert table.set_index("site").loc["hidden", "entries"] == 31
    assert table.set_index("site").loc["mlp.pre", "width"] == 1536
    # A second load reads the cached conversion: it never converts the GGUF again (speed is measured in
    # benchmarks, not here).
    from lamina.models import embedded

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded, "_convert", lambda *a, **k: pytest.fail("converted the GGUF again"))
        assert lamina.load("smollm2-135m").n_layers == 30


def test_family_bos_defaults_and_override(tiny_gpt2, tiny_llama, tiny_neox, gpt2_tokenizer):
    assert (tiny_gpt2.prepend_bos, tiny_llama.prepend_bos, tiny_neox.prepend_bos) == (False, True, False)
    forced = lamina.wrap(tiny_gpt2.hf, gpt2_tokenizer, prepend_bos=True)
    assert forced.prepend_bos and forced.bos_id == gpt2_tokenizer.bos_token_id


def test_refused_architectures_say_why(gpt2_tokenizer):
    from lamina.models.tiny import tiny_model

    with pytest.raises(LaminaError, match=r"layer 0 of 'mamba'.* has no attention sublayer .*state-space"):
        lamina.wrap(tiny_model("mamba"), gpt2_tokenizer)
    with pytest.raises(LaminaError, match=r"unsupported architecture 'rwkv': RWKV blocks mix tokens with a linear"):
        lamina.wrap(tiny_model("rwkv"), gpt2_tokenizer)
    with pytest.raises(LaminaError, match="unsupported architecture 'bert': an encoder"):
        adapter_for("bert")


def test_local_directory_and_bad_names(tiny_gpt2, gpt2_tokenizer, tmp_path):
    tiny_gpt2.hf.save_pretrained(tmp_path / "m")
    gpt2_tokenizer.save_pretrained(tmp_path / "m")
    model = lamina.load(str(tmp_path / "m"))
    assert model.source["kind"] == "local" and model.n_layers == tiny_gpt2.n_layers
    torch.testing.assert_close(model.hf.transformer.wte.weight, tiny_gpt2.hf.transformer.wte.weight)
    with pytest.raises(LaminaError, match="no model directory or file"):
        lamina.load(str(tmp_path / "missing"))
    with pytest.raises(LaminaError, match="could not load model 'no-such-org/no-such-model'"):
        lamina.load("no-such-org/no-such-model")  # offline: the hub is unreachable, nothing cached
    with pytest.raises(LaminaError, match="model name or path is needed"):
        lamina.load("")
    with pytest.raises(LaminaError, match="unknown dtype"):
        lamina.load(str(tmp_path / "m"), dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(LaminaError, match="no CUDA GPU"):
            lamina.load(str(tmp_path / "m"), device="cuda")


def test_bfloat16_model_records(tiny_gpt2, gpt2_tokenizer, tmp_path):
    tiny_gpt2.hf.save_pretrained(tmp_path / "m")
    gpt2_tokenizer.save_pretrained(tmp_path / "m")
    model = lamina.load(str(tmp_path / "m"), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    rec = lamina.record(model, lamina.Stimuli([[1, 2, 3, 4]]), sites=["hidden"], progress=False)
    assert rec["hidden"].dtype.name == "float32"
