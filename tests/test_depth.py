"""Relative depth: one setting means the same place in models of different depths."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import LaminaError
from lamina.models.depth import check_layer_setting, layer_at, relative_depth


def test_seed_layers_as_depths():
    assert layer_at(0.125, "attn.out", 36) == 4  # seed 001: block 4 of gpt2-large
    assert layer_at(0.33, "hidden", 12) == 4  # seed 004: hidden entry 4 of GPT-2
    assert layer_at(0.5, "mlp.out", 12) == 12 // 2 and layer_at(0.5, "mlp.out", 30) == 30 // 2  # seed 003
    assert layer_at(0.0, "hidden", 30) == 0 and layer_at(1.0, "hidden", 30) == 30
    assert layer_at(0.0, "attn.out", 30) == 0 and layer_at(1.0, "attn.out", 30) == 29


def test_indices_pass_through_and_count_from_the_end():
    assert layer_at(4, "attn.out", 30) == 4 and layer_at(-1, "attn.out", 30) == 29 and layer_at(-1, "hidden", 30) == 30


@pytest.mark.parametrize("value, match", [(30, "focus_layer=30 is not a layer of m: attn.out has entries 0..29"),
                                          (-31, "not a layer of m"), (1.5, "neither a layer index"),
                                          (float("nan"), "neither"), (-0.1, "neither"), ("4", "must be a layer index"),
                                          (True, "must be a layer index")])
def test_bad_values(value, match):
    with pytest.raises(LaminaError, match=match):
        layer_at(value, "attn.out", 30, setting="focus_layer", model="m")


def test_check_before_loading():
    check_layer_setting(99)  # an index is checked against the model later
    with pytest.raises(LaminaError, match="neither"):
        check_layer_setting(2.0)


@given(st.integers(1, 200), st.floats(0, 1), st.sampled_from(["hidden", "attn.out", "mlp.pre"]))
def test_depth_picks_the_nearest_entry(n_layers, depth, site):
    """The chosen entry's relative depth is the nearest to the asked one (within half a layer)."""
    layer = layer_at(depth, site, n_layers)
    entries = n_layers + 1 if site == "hidden" else n_layers
    assert 0 <= layer < entries
    got = relative_depth(site, layer, n_layers)
    slack = 0.5 / n_layers + 1e-12
    assert abs(got - depth) <= slack or (site != "hidden" and depth > got and layer == n_layers - 1)
    # and it is an index: relative_depth maps it back into [0, 1]
    assert 0 <= got <= 1 and not math.isnan(got)
