"""Half precision as users meet it (issue 24): models in bfloat16 and float16, storage in bfloat16 and
float16, overflow named, nothing non-finite ever stored.

Tolerances (docs/recordings.md, "Precision"): an activation vector's error is measured relative to
its largest absolute value. Within one model dtype, padded vs unpadded batches and batch size 1 vs 16
differ by at most 5 units of that dtype's relative precision (bfloat16 2^-7, float16 2^-10);
a bfloat16 or float16 model differs from the same weights in float32 by at most that much too
(measured on the random Llama below: bfloat16 2.0%, float16 0.27%).
"""

import copy

import numpy as np
import pytest
import torch

import lamina
from lamina import LaminaError, Recording

EPS = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
LOSS_TOL = {torch.bfloat16: 0.02, torch.float16: 0.003}  # nats
SITES = ["hidden", "attn.out", "mlp.post"]


@pytest.fixture(scope="module")
def ragged():
    rng = np.random.default_rng(0)
    return lamina.Stimuli([rng.integers(0, 5000, int(n)) for n in rng.integers(5, 40, 16)])


def _as(model, dtype, name):
    return lamina.wrap(copy.deepcopy(model.hf).to(dtype), model.tokenizer, name=name)


def _relative(a: np.ndarray, b: np.ndarray, reference: np.ndarray) -> float:
    """Largest |a − b| relative to each reference vector's largest |value| (padding ignored)."""
    scale = np.abs(reference).max(axis=-1, keepdims=True)
    valid = np.isfinite(scale[..., 0])
    return float((np.abs(a - b) / scale)[valid].max())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_half_precision_models_agree_across_batching_and_with_float32(tiny_llama, ragged, dtype):
    reference = lamina.record(tiny_llama, ragged, sites=SITES, batch_size=16, progress=False)
    model = _as(tiny_llama, dtype, f"tiny-llama-{dtype}")
    alone = lamina.record(model, ragged, sites=SITES, batch_size=1, progress=False)  # never padded
    batched = lamina.record(model, ragged, sites=SITES, batch_size=16, progress=False)  # padded
    for site in SITES:
        assert _relative(alone[site], batched[site], reference[site]) <= 5 * EPS[dtype], site
        assert _relative(batched[site], reference[site], reference[site]) <= 5 * EPS[dtype], site
        assert np.isfinite(batched[site][:, batched.valid]).all()
    loss = batched.tokens["loss"].to_numpy()
    assert np.nanmax(np.abs(loss - alone.tokens["loss"].to_numpy())) <= LOSS_TOL[dtype]
    assert np.nanmax(np.abs(loss - reference.tokens["loss"].to_numpy())) <= LOSS_TOL[dtype]


def test_bfloat16_storage_is_float32_rounded_and_reads_back_as_float32(tiny_gpt2, ragged, tmp_path):
    for out in (None, tmp_path / "bf16"):
        # The same batches as the bfloat16 recording (shards of 5 on disk), so the same float32 values.
        full = lamina.record(tiny_gpt2, ragged, sites=SITES, out=None if out is None else tmp_path / "f32",
                             shard_size=5, progress=False)
        half = lamina.record(tiny_gpt2, ragged, sites=SITES, dtype="bfloat16", out=out, shard_size=5, progress=False)
        for site in SITES:
            values = half[site]
            assert values.dtype == np.float32
            rounded = torch.from_numpy(full[site]).to(torch.bfloat16).float().numpy()
            np.testing.assert_array_equal(values, rounded)  # NaN padding included
            np.testing.assert_array_equal(half.layer(site, 1), rounded[1])
            np.testing.assert_array_equal(half.flat(site, 0), rounded[0][half.valid])
        assert half.info["dtype"] == "bfloat16"
    assert Recording.load(tmp_path / "bf16", verify=True).info["dtype"] == "bfloat16"


@pytest.fixture()
def huge_embeddings(gpt2_tokenizer):
    """A float32 GPT-2 whose residual stream reaches ~2e5 (like Gemma-3's outlier dimensions, above
    float16's 65,504)."""
    from conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(gpt2_tokenizer)
    with torch.no_grad():
        hf.transformer.wte.weight.mul_(1e7)
    return lamina.wrap(hf, gpt2_tokenizer, name="huge")


def test_float16_storage_overflow_is_named_and_bfloat16_holds_it(huge_embeddings, tmp_path):
    stimuli = lamina.Stimuli([np.arange(6) + 100, np.arange(9) + 300])
    with pytest.raises(LaminaError) as err:
        lamina.record(huge_embeddings, stimuli, sites=["hidden"], dtype="float16", progress=False)
    message = str(err.value)
    assert "exceeds float16 storage's range" in message and "'hidden', layer 0" in message
    assert "position" in message and "torch.float32" in message and "dtype='bfloat16'" in message
    assert "load the model in float32" not in message  # it already is: the overflow is in lamina's storage
    with pytest.raises(LaminaError, match="exceeds float16 storage's range"):
        lamina.record(huge_embeddings, stimuli, sites=["hidden"], dtype="float16", out=tmp_path / "r", progress=False)
    half = lamina.record(huge_embeddings, stimuli, sites=["hidden"], dtype="bfloat16", progress=False)
    full = lamina.record(huge_embeddings, stimuli, sites=["hidden"], progress=False)
    assert np.nanmax(np.abs(full["hidden"][0])) > 65504
    assert _relative(half["hidden"], full["hidden"], full["hidden"]) <= EPS[torch.bfloat16]


def test_non_finite_model_values_are_named_with_position(gpt2_tokenizer):
    from conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(gpt2_tokenizer).half()
    model = lamina.wrap(hf, gpt2_tokenizer, name="inf")  # verified while finite
    with torch.no_grad():
        hf.transformer.wte.weight[305].fill_(float("inf"))  # token 305 at position 5 of sequence 1
    stimuli = lamina.Stimuli([np.arange(6) + 100, np.arange(9) + 300])
    with pytest.raises(LaminaError, match=r"own torch.float16 activations at site 'hidden', layer 0, sequence 1, "
                                          r"position 5; with float16 this is usually overflow"):
        lamina.record(model, stimuli, sites=["hidden"], progress=False)


def test_storage_dtype_is_checked_and_listed():
    with pytest.raises(LaminaError, match="float32, float16, bfloat16"):
        lamina.record(object.__new__(type("M", (), {"adapter": None})), lamina.Stimuli([np.arange(3)]),
                      dtype="float64")
