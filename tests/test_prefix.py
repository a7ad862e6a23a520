"""Clean-prefix reuse (lamina.recording.prefix): an edited pass that replays the clean blocks before its
first edit gives exactly the loss of the full edited pass (lamina.record with edits), on every family,
and really skips those blocks."""

import numpy as np
import pytest
import torch

import lamina
from lamina import Stimuli, edits
from lamina.errors import LaminaError
from lamina.models import architectures as arch
from lamina.models.sites import get_module
from lamina.models.tiny import tiny_model
from lamina.recording.prefix import Prefix, sweep
from lamina.recording.edits import Editor


def _stimuli(n=5, length=9, seed=0):
    rng = np.random.default_rng(seed)
    return Stimuli([rng.integers(0, 5000, length - (i % 2)) for i in range(n)])  # unequal: padded batches


def _edit_sets(model, stim):
    """One edit of every kind of start: attn.out/mlp.out at each block, hidden at each entry (the last is
    the final norm's output: every block replayed), an edit at two layers, and no edit."""
    reference = lamina.record(model, stim, sites=["mlp.out"], loss=False, progress=False)
    n = model.n_layers
    sets = [[edits.zero("attn.out", layer)] for layer in range(n)]
    sets += [[edits.mean("mlp.out", layer, reference=reference)] for layer in range(n)]
    sets += [[edits.add("hidden", layer, np.full(model.width("hidden"), 0.5))] for layer in range(n + 1)]
    sets += [[edits.scale("mlp.out", n - 1, 2.0), edits.zero("attn.out", 0)], []]
    return sets


def _equal_to_record(model, stim, sets, batch_size=2):
    out = sweep(model, stim, sets, batch_size=batch_size, progress=False)
    for edit_set, cols in zip([None, *sets], out):
        rec = lamina.record(model, stim, sites=["loss"], batch_size=batch_size, progress=False, edits=edit_set or None)
        t = rec.tokens
        for key in ("sequence", "position", "next_id", "predicted_id"):
            np.testing.assert_array_equal(cols[key], t[key].to_numpy(), err_msg=key)
        np.testing.assert_array_equal(cols["loss"], t["loss"].to_numpy(dtype=np.float32), err_msg=repr(edit_set))
        np.testing.assert_array_equal(cols["correct"], t["correct"].to_numpy(dtype=bool, na_value=False))
    return out


@pytest.fixture(scope="module")
def opt(gpt2_tokenizer):
    return lamina.wrap(tiny_model("opt"), gpt2_tokenizer, name="tiny-opt")  # flattens tokens around its MLP


@pytest.fixture(scope="module")
def granite(gpt2_tokenizer):
    return lamina.wrap(tiny_model("granite", residual_multiplier=0.37), gpt2_tokenizer, name="tiny-granite")


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_llama", "tiny_neox", "tiny_gemma3", "opt", "granite"])
def test_sweep_equals_record_with_edits(name, request):
    """Bit-identical losses and predictions, with padded batches, for every start block."""
    model = request.getfixturevalue(name)
    stim = _stimuli()
    out = _equal_to_record(model, stim, _edit_sets(model, stim))
    assert not np.array_equal(out[1]["loss"], out[0]["loss"])  # the edits do change the loss


def test_replayed_blocks_compute_nothing(tiny_gpt2):
    """Each edited pass runs the children of blocks first_block.. only; the clean pass runs all."""
    stim = _stimuli(n=4)
    blocks = get_module(tiny_gpt2.hf, tiny_gpt2.adapter.layers)
    calls = [0] * len(blocks)
    handles = [child.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, block in enumerate(blocks) for child in block.children()]
    try:
        with torch.inference_mode():
            tiny_gpt2.hf(input_ids=torch.as_tensor(np.asarray(stim.ids[0])[None]))
        per_block, calls[:] = list(calls), [0] * len(blocks)
        sets = [[edits.zero("mlp.out", layer)] for layer in range(tiny_gpt2.n_layers)]
        sweep(tiny_gpt2, stim, sets, batch_size=2, progress=False)
    finally:
        for h in handles:
            h.remove()
    n_batches, n = 2, tiny_gpt2.n_layers
    expected = [n_batches * per_block[i] * (1 + sum(1 for start in range(n) if start <= i)) for i in range(n)]
    assert calls == expected  # block 0 runs in every pass, the last block's edit replays all the others
    prefix = Prefix(tiny_gpt2)
    with torch.inference_mode(), prefix.caching():
        tiny_gpt2.hf(input_ids=torch.as_tensor(np.asarray(stim.ids[0])[None]))
    assert [prefix.first_block(Editor(tiny_gpt2, s)) for s in sets] == list(range(n))
    assert prefix.first_block(Editor(tiny_gpt2, [edits.add("hidden", n, np.ones(64))])) == n
    assert prefix.first_block(Editor(tiny_gpt2, [])) == n


@pytest.mark.parametrize("name", ["tiny_gpt2", "tiny_gemma3"])
def test_reference_recorded_in_the_clean_passes(name, request):
    """sweep(reference_sites=): the reference the edits draw on is record()'s bit for bit, the runs are
    those of a sweep given that reference, and with one batch the sweep runs one clean pass."""
    model = request.getfixturevalue(name)
    stim = _stimuli()
    sites, n = ["attn.out", "mlp.out"], model.n_layers
    seen = []

    def sets_of(reference):
        seen.append(reference)
        return [[edits.mean(site, layer, reference=reference)] for site in sites for layer in range(n)]

    for batch_size in (2, 8):  # three batches (the last one's clean pass reused), then one
        seen.clear()
        out = sweep(model, stim, sets_of, batch_size=batch_size, progress=False, reference_sites=sites)
        ref = lamina.record(model, stim, sites=sites, loss=False, batch_size=batch_size, progress=False)
        for site in sites:
            np.testing.assert_array_equal(seen[0][site], ref[site])
        np.testing.assert_array_equal(seen[0].tokens["loss"].to_numpy(np.float32), out[0]["loss"])
        expected = sweep(model, stim, sets_of(ref), batch_size=batch_size, progress=False)
        for got, want in zip(out, expected):
            for key in want:
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    blocks = get_module(model.hf, model.adapter.layers)
    calls = [0]
    first = next(blocks[0].children())  # a replayed block's children do not run
    handle = first.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:  # block 0 computes in the clean pass and in the edits of block 0 only
        sweep(model, stim, sets_of, batch_size=8, progress=False, reference_sites=sites)
    finally:
        handle.remove()
    assert calls[0] == 1 + len(sites)
    with pytest.raises(LaminaError, match="give both or neither"):
        sweep(model, stim, sets_of, progress=False)
    with pytest.raises(LaminaError, match="give both or neither"):
        sweep(model, stim, [], progress=False, reference_sites=sites)


def test_another_batch_is_refused_and_forward_restored(tiny_gpt2):
    prefix = Prefix(tiny_gpt2)
    ids = torch.as_tensor(np.arange(100, 112)[None])
    with torch.inference_mode():
        with prefix.caching():
            clean = tiny_gpt2.hf(input_ids=ids).logits
        assert prefix.usable
        with prefix.resumed(2):
            assert torch.equal(tiny_gpt2.hf(input_ids=ids).logits, clean)
            with pytest.raises(LaminaError, match="other inputs") as err:
                tiny_gpt2.hf(input_ids=ids + 1)
        assert "\n" not in str(err.value)
        assert all("forward" not in vars(b) for b in prefix.blocks)  # the class's forward again
        assert not torch.equal(tiny_gpt2.hf(input_ids=ids + 1).logits, clean)
        with pytest.raises(LaminaError, match="resumes at a block"):
            with prefix.resumed(tiny_gpt2.n_layers + 1):
                pass


def test_nothing_kept_runs_the_full_pass(tiny_gpt2):
    """A block called twice in one pass (or not at all) is not replayed: the pass runs in full."""
    prefix = Prefix(tiny_gpt2)
    ids = torch.as_tensor(np.arange(100, 110)[None])
    with torch.inference_mode():
        with prefix.caching():
            tiny_gpt2.hf(input_ids=ids)
            prefix.blocks[1](prefix.blocks[0](tiny_gpt2.hf.transformer.wte(ids)))  # a second call of each block
        assert not prefix.usable
        with lamina.editing(tiny_gpt2, [edits.zero("attn.out", 2)]):
            full = tiny_gpt2.hf(input_ids=ids).logits
            with prefix.resumed(2):
                assert torch.equal(tiny_gpt2.hf(input_ids=ids).logits, full)


def test_sweep_refuses_what_record_refuses(tiny_gpt2):
    for call, message in [(lambda: sweep("gpt2", _stimuli(), []), "needs a lamina Model"),
                          (lambda: sweep(tiny_gpt2, _stimuli(), [], batch_size=0), "batch_size"),
                          (lambda: sweep(tiny_gpt2, Stimuli([np.arange(300)]), []), "context length"),
                          (lambda: sweep(tiny_gpt2, _stimuli(), [[edits.zero("attn.out", 7)]]), "layer")]:
        with pytest.raises(LaminaError, match=message) as err:
            call()
        assert "\n" not in str(err.value)


VERIFIED = sorted(s.model_type for s in arch.load_table()[1] if s.status == "verified")


def _prefix_check(model):
    """The survey's record_check: the sweep equals record with edits on this model, at every start block."""
    n = model.n_layers
    sets = [[edits.zero("mlp.out", layer)] for layer in range(n)]
    sets += [[edits.zero("attn.out", n - 1)], [edits.scale("hidden", n, 0.5)]]
    _equal_to_record(model, _stimuli(n=3, length=7), sets)


@pytest.mark.parametrize("model_type", VERIFIED)
def test_every_verified_family(model_type, one_thread):
    """Every verified model type of transformers' causal-LM mapping, on its tiny random model."""
    status = arch.survey_one(model_type, record_check=_prefix_check)
    assert status.status == "verified", status.reason
