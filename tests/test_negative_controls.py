"""Negative controls for every comparative claim (issue 25), through `lamina compare` end to end.

* An untrained model passed as the "trained" one stays inside its own controls' band: the claim
  "leaves its controls' band" is about the architecture at initialisation, so another
  initialisation must not make it (family-wise over layers and metrics of a panel).
* A model compared with itself on disjoint halves of the same kind of replicates shows no difference
  of profiles (family-wise over depth).

Tiny random models (an 8-layer Llama); the level of both rules over many simulated comparisons is in
docs/calibration.md (calibration/comparison.py).
"""

import numpy as np
import pandas as pd
import pytest
import torch

import lamina
from lamina.comparison import tables
from lamina.comparison.plan import Member
from lamina.models.control import random_control
from test_experiments import FAST


@pytest.fixture(scope="module")
def llama8(gpt2_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(num_hidden_layers=8, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(gpt2_tokenizer), max_position_embeddings=256,
                         bos_token_id=gpt2_tokenizer.bos_token_id, eos_token_id=gpt2_tokenizer.eos_token_id)
    return lamina.wrap(LlamaForCausalLM(config).eval(), gpt2_tokenizer, name="llama8")


@pytest.mark.parametrize("experiment", ["mlp-stages", "categories", "attn-autoregression", "lesion", "heads"])
def test_an_untrained_model_passed_as_trained_stays_in_its_controls_band(llama8, experiment, tmp_path, data_dir):
    impostor = random_control(llama8, seed=7)  # untrained; its controls are seeds 0, 1, 2 of the same architecture
    impostor.name = "llama8-untrained-s7"
    cmp = lamina.compare(experiment, [impostor], controls="random:3", out=tmp_path / "c", progress=False,
                         settings=FAST[experiment])
    bands = cmp.bands
    assert len(bands) and bands["tested"].any()
    outside = bands[bands["outside"].astype(bool)]
    assert outside.empty, outside[["metric", "layer", "value", "band_low", "band_high"]].to_string()


def _member(run, name):
    member = Member(model=name, control=False, label=name, spec=name, status="new", run=run)
    member.facts = {"family": run.manifest["model"]["family"], "n_layers": run.manifest["model"]["n_layers"]}
    return member


def test_a_model_against_itself_on_disjoint_passages_does_not_differ(llama8, data_dir):
    """attn-autoregression on two disjoint sets of eight Gatsby passages (from the opening, and from a
    sentence some 700 lines later): the same model, other texts of the same kind, no difference of
    profiles anywhere (family-wise over depth, every metric with intervals)."""
    runs = [lamina.run("attn-autoregression", model=llama8, progress=False,
                       settings={**FAST["attn-autoregression"], **({"start": start} if start else {})})
            for start in (None, "Of course I knew what they were referring to")]
    table = tables.tidy([_member(runs[0], "opening"), _member(runs[1], "later")])
    diffs = tables.differences(table)
    assert len(diffs) and diffs["ci_low"].notna().any()
    hits = diffs[diffs["excludes_zero"].astype(bool)]
    assert hits.empty, hits.to_string()
