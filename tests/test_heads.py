"""The heads experiment: its scores on hand-made attention patterns, massive activations on a planted value,
the local/global layer kinds, the correct/incorrect split, and bad settings."""

import types

import numpy as np
import pytest

import lamina
from lamina.experiments.heads.compute import attention_kinds, split_differences
from lamina.stats.attention import (induction_mask, induction_score, massive_activations, pattern_entropy,
                                    previous_score, sink_score)

P = 7


def _causal_uniform(p=P):
    a = np.tril(np.ones((p, p)))
    return a / a.sum(axis=1, keepdims=True)


def _to_key(keys):
    """A pattern with each query q's row all on key ``keys[q]``."""
    a = np.zeros((len(keys), len(keys)))
    a[np.arange(len(keys)), keys] = 1.0
    return a


def test_sink_pattern_gives_sink_one_and_entropy_zero():
    a = _to_key([0] * P)
    assert sink_score(a) == 1.0 and pattern_entropy(a) == 0.0
    assert previous_score(a) == pytest.approx(1 / (P - 1))  # only query 1's previous token is position 0


def test_previous_token_pattern():
    a = _to_key([0] + list(range(P - 1)))
    assert previous_score(a) == 1.0 and sink_score(a) == pytest.approx(1 / (P - 1))


def test_uniform_pattern_entropy_is_log_of_keys_seen():
    a = _causal_uniform()
    expected = np.mean([np.log(q + 1) for q in range(1, P)])
    assert pattern_entropy(a) == pytest.approx(expected)
    assert pattern_entropy(np.stack([a, _to_key([0] * P)])).shape == (2,)  # leading axes kept


def test_entropy_of_the_last_query_alone_is_log_t_plus_one():
    # a pattern of 2 positions has one scored query (q = 1), uniform over its 2 keys
    assert pattern_entropy(_causal_uniform(2)) == pytest.approx(np.log(2))


def test_induction_pattern_gives_one_and_the_mask_is_the_definition():
    tokens = np.array([5, 1, 2, 3, 1, 2, 3])  # 1 2 3 repeats: queries 4, 5, 6 have earlier occurrences
    mask = induction_mask(tokens)
    assert np.argwhere(mask).tolist() == [[4, 2], [5, 3], [6, 4]]  # key j + 1 after the earlier j
    a = _to_key([0, 0, 0, 0, 2, 3, 4])
    assert induction_score(a, tokens) == 1.0
    assert induction_score(_to_key([0] * P), tokens) == 0.0  # a sink head is no induction head
    # leading axes are kept: (layer, head, P, P)
    stacked = np.stack([np.stack([a, _to_key([0] * P)])] * 3)
    assert induction_score(stacked, tokens).shape == (3, 2)
    assert np.isnan(induction_score(a, np.arange(P)))  # no repeated token: no query qualifies


def test_induction_counts_several_earlier_occurrences():
    tokens = np.array([1, 9, 1, 8, 1])  # query 4 (token 1) has earlier 1s at 0 and 2: keys 1 and 3
    mask = induction_mask(tokens)
    assert np.flatnonzero(mask[4]).tolist() == [1, 3]
    a = _to_key([0, 0, 0, 0, 0])
    a[4] = [0, 0.25, 0, 0.25, 0.5]
    # queries 2 (key 1) and 4 (keys 1, 3) qualify: (0 + 0.5) / 2
    assert induction_score(a, tokens) == pytest.approx(0.25)


def test_massive_activation_finds_a_planted_value():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 10, 16))
    x[1, 2, 0, 5] = -500.0
    x[2, 3, 7, 11] = 300.0
    m = massive_activations(x)
    assert m["position"].tolist()[1:] == [0, 7] and m["dim"].tolist()[1:] == [5, 11]
    assert m["sequence"].tolist()[1:] == [2, 3]
    assert m["ratio"][1] == pytest.approx(500.0 / np.median(np.abs(x[1])))
    assert m["ratio"][1] > 100 > m["ratio"][0]
    assert m["per_sequence_position"].shape == (3, 4) and m["per_sequence_position"][1, 2] == 0


def test_split_differences_means_per_window():
    norms = np.arange(2 * 2 * 3 * 1, dtype=float).reshape(1, 2, 3, 2)[..., :1]  # (L=1, R=2, P=3, H=1)
    correct = np.array([[True, False, True], [False, False, False]])
    use = np.array([[True, True, True], [True, True, False]])
    c, i = split_differences(norms, correct, use)
    assert c.shape == (1, 1, 2)
    assert c[0, 0, 0] == pytest.approx((0 + 4) / 2) and i[0, 0, 0] == 2
    assert np.isnan(c[0, 0, 1]) and i[0, 0, 1] == pytest.approx((6 + 8) / 2)


def test_attention_kinds_from_the_config():
    gemma = types.SimpleNamespace(layer_types=["sliding_attention"] * 5 + ["full_attention"], sliding_window=512)
    assert attention_kinds(gemma, 6) == (("local",) * 5 + ("global",), 512)
    older = types.SimpleNamespace(sliding_window_pattern=3, sliding_window=4)
    assert attention_kinds(older, 6) == (("local", "local", "global") * 2, 4)
    assert attention_kinds(types.SimpleNamespace(), 2) == (("global", "global"), None)


@pytest.mark.parametrize("pattern", [np.ones((3, 4)), np.ones(3), np.ones((1, 1))])
def test_bad_patterns_are_one_line_errors(pattern):
    with pytest.raises(lamina.LaminaError, match="square") as err:
        sink_score(pattern)
    assert "\n" not in str(err.value)


def test_bad_massive_input_is_a_one_line_error():
    with pytest.raises(lamina.LaminaError, match=r"\(entry, sequence, position, dim\)"):
        massive_activations(np.ones((2, 3)))
    with pytest.raises(lamina.LaminaError, match="NaN"):
        massive_activations(np.full((1, 1, 2, 2), np.nan))


@pytest.mark.parametrize("setting, match", [
    ({"window": 2}, "'window' must be at least 4"), ({"replicates": 1}, "'replicates' must be at least 2"),
    ({"correction": "bh"}, "'correction' must be one of max, holm"), ({"alpha": 1.5}, "'alpha' must be between"),
    ({"skip_first": 200}, r"'skip_first' must be at most window - 2 \(126\), not 200"),
])
def test_bad_settings_are_one_line_errors(setting, match):
    exp = lamina.experiments.get("heads")
    with pytest.raises(lamina.LaminaError, match=match) as err:
        exp.config(setting)
    assert "\n" not in str(err.value)


def test_run_with_a_bos_keeps_it_as_position_zero(tiny_llama, data_dir):
    """A model that gets a BOS: it is position 0 of the patterns, so its sink is the BOS and every score is a
    mean over the window's own tokens as queries; the result says which layers are local."""
    from lamina.experiments.base import Context
    from lamina.experiments.heads.compute import compute

    exp = lamina.experiments.get("heads")
    config = exp.config({"window": 24, "replicates": 3, "skip_first": 1})
    result = compute(tiny_llama, config, Context(0, progress=False))
    assert result.first_is_bos and result.n_tokens == 72
    assert result.attention_kind == ("global",) * tiny_llama.n_layers
    shape = (tiny_llama.n_layers, tiny_llama.n_heads)
    for name in ("sink", "previous", "induction", "entropy"):
        score = getattr(result, name)
        assert score.mean.shape == shape and (score.ci_low <= score.mean + 1e-12).all(), name
    assert ((result.sink.mean >= 0) & (result.sink.mean <= 1)).all()
    assert (result.entropy.mean <= np.log(25) + 1e-9).all()  # at most uniform over the 25 positions
    assert result.windows.sink.shape == (*shape, 3) and len(result.massive.ratio) == tiny_llama.n_layers + 1


@pytest.mark.parametrize("correction", ["max", "holm"])
def test_head_tests_find_a_planted_head_family_wise(correction):
    from lamina.experiments.heads.compute import head_tests

    rng = np.random.default_rng(1)
    diff = rng.normal(size=(3, 4, 8))  # (layer, head, window): no effect
    diff[2, 1] += 10.0  # one head with a large effect in every window
    test = head_tests(diff, correction, 0.05, np.random.default_rng(0))
    assert test.mean.shape == (3, 4) and test.significant[2, 1]
    assert test.significant.sum() == 1
    assert (test.p_corrected >= test.p - 1e-12).all()


def test_labels_from_another_run_split_this_models_tokens(tiny_llama, tmp_path, data_dir):
    """labels_from: a control's split takes the labelling run's labels token for token (tables/tokens.csv), says
    so in a note, and a run with other windows is refused in one line."""
    quick = {"window": 24, "replicates": 3, "skip_first": 1}
    trained = lamina.run("heads", tiny_llama, out=tmp_path / "trained", progress=False, **quick)
    control = lamina.random_control(tiny_llama, seed=3)
    settings = lamina.experiments.get("heads").control_settings(trained.path)
    assert settings == {"labels_from": str((tmp_path / "trained").resolve())}
    labelled = lamina.run("heads", control, progress=False, **quick, **settings)
    t = labelled.result.tokens
    np.testing.assert_array_equal(t.split_correct, trained.result.tokens.correct)
    np.testing.assert_array_equal(trained.result.tokens.split_correct, trained.result.tokens.correct)
    assert labelled.result.labels_from == settings["labels_from"]
    assert any("labels_from" in note for note in labelled.result.data_notes)
    assert list(trained.tables["tokens"].columns) == ["window", "position", "next_id", "correct", "split_correct"]
    with pytest.raises(lamina.LaminaError, match="other windows") as err:
        lamina.run("heads", control, progress=False, **{**quick, "replicates": 2}, **settings)
    assert "\n" not in str(err.value)
    with pytest.raises(lamina.LaminaError, match="is not a heads run directory"):
        lamina.experiments.get("heads").config({"labels_from": str(tmp_path)})
