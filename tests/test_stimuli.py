"""Stimulus builders: parity with the seed notebooks' own code, errors, notes, properties."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.errors import LaminaError
from lamina.stimuli import (SEED_004_CATEGORIES, SEED_004_CONTEXT_WORDS, Stimuli, check_single_tokens,
                            first_tokens, one_long_sequence, passage, read_words, single_token_words, window,
                            word_in_contexts)

# The seed notebooks' own word list (004 part A), verbatim.
SEED_004_WORDS = [
    [1, 'galaxy'], [1, 'asteroid'], [1, 'comet'], [1, 'cosmos'], [1, 'space'], [1, 'sun'], [1, 'planet'],
    [1, 'moon'], [1, 'star'], [1, 'orbit'],
    [2, 'ceiling'], [2, 'sofa'], [2, 'couch'], [2, 'carpet'], [2, 'door'], [2, 'window'], [2, 'lamp'],
    [2, 'chair'], [2, 'table'], [2, 'rug'], [2, 'bed'], [2, 'floor'], [2, 'wall'],
    [3, 'pear'], [3, 'grape'], [3, 'banana'], [3, 'cherry'], [3, 'peach'], [3, 'apple'], [3, 'seed'],
    [3, 'jelly'], [3, 'orange'], [3, 'lime'], [3, 'fruit'],
]

# Seed 002's text, verbatim.
SEED_002_TXT = ('Hungarian rock has been a part of the popular music of Hungary since the early 1960s. The first major '
                'bands were Illés, Metró and Omega. At the time, rock was not approved of by the Hungarian Communist '
                'authorities. In the 1970s, the Communists cracked down on rock, and Illés was banned from recording. '
                'Some members of the other bands formed a supergroup called Locomotiv GT, while the band Omega became '
                'very popular in Germany.')

# A stand-in for seed 003's Wikipedia page (not reachable offline), written for these tests.
COFFEE_TEXT = ("Vietnam is one of the largest producers of coffee in the world. Most of the coffee grown there is "
               "robusta, and coffee farms cover the Central Highlands. French missionaries brought coffee in the "
               "nineteenth century; today coffee exports earn billions of dollars. Farmers dry the coffee beans in "
               "the sun before they sell them, and the price of coffee rises and falls with the weather.")


def _read(path):
    """The file's text as `requests.get(...).text` gives it for UTF-8: BOM and CRLF kept."""
    return path.read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def hellaswag(data_dir):
    with open(data_dir / "hellaswag_validation.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def gatsby(data_dir):
    return _read(data_dir / "great_gatsby_pg64317.txt")


@pytest.fixture(scope="module")
def alice(data_dir):
    return _read(data_dir / "alice_in_wonderland_pg11.txt")


# ---------------------------------------------------------------------------------------------------- seed 000


@pytest.mark.parametrize("offset", [0, 1000])
def test_first_tokens_matches_seed_000(gpt2_tokenizer, hellaswag, offset):
    tokenizer = gpt2_tokenizer
    dataset = [{"ctx_a": row["ctx"]} for row in hellaswag]
    # the seed's code (Part 1 with offset 0, Part 6 with offset 1000)
    seqlen = 6
    nSamples = 500
    batch = torch.zeros((nSamples, seqlen), dtype=torch.long)
    for i in range(nSamples):
        firsttokens = tokenizer.encode(dataset[offset + i]['ctx_a'])[:seqlen]
        batch[i, :] = torch.tensor(firsttokens)

    texts = [row["ctx"] for row in hellaswag[offset:offset + nSamples]]
    labels = [row["activity_label"] for row in hellaswag[offset:offset + nSamples]]
    stim = first_tokens(texts, tokenizer, seqlen, labels=labels)
    np.testing.assert_array_equal(stim.as_array(), batch.numpy())
    assert list(stim.meta.columns) == ["text_index", "label"]
    assert stim.meta["text_index"].tolist() == list(range(nSamples))
    assert stim.meta["label"].tolist() == labels
    expected_next = [tokenizer.encode(t)[seqlen] if len(tokenizer.encode(t)) > seqlen else -1 for t in texts]
    np.testing.assert_array_equal(stim.next_ids, expected_next)
    assert stim.notes == []


def test_first_tokens_model_and_tokenizer_agree(gpt2_tokenizer, tiny_gpt2):
    texts = ["A man is sitting on a roof. he", "A lady walks to a barbell. She bends down"]
    a, b = first_tokens(texts, gpt2_tokenizer, 5), first_tokens(texts, tiny_gpt2, 5)
    assert a.fingerprint() == b.fingerprint()


def test_first_tokens_drops_short_texts_with_a_note(gpt2_tokenizer):
    texts = ["one two three four five six seven", "short", "also far too short", "a b c d e f g h"]
    stim = first_tokens(texts, gpt2_tokenizer, 6, labels=["x", "y", "z", "w"])
    assert stim.meta["text_index"].tolist() == [0, 3]
    assert stim.meta["label"].tolist() == ["x", "w"]
    assert stim.notes == ["dropped 2 of 4 texts with fewer than 6 tokens"]
    np.testing.assert_array_equal(stim.ids[1], gpt2_tokenizer.encode(texts[3])[:6])


def test_first_tokens_next_id_is_minus_one_for_exact_length(gpt2_tokenizer):
    text = "one two three"
    n = len(gpt2_tokenizer.encode(text))
    stim = first_tokens([text], gpt2_tokenizer, n)
    assert stim.next_ids.tolist() == [-1]
    assert first_tokens([text], gpt2_tokenizer, n - 1).next_ids.tolist() == [gpt2_tokenizer.encode(text)[-1]]


def test_first_tokens_errors(gpt2_tokenizer):
    with pytest.raises(LaminaError, match="all 2 texts have fewer than 50 tokens"):
        first_tokens(["short", "also short"], gpt2_tokenizer, 50)
    with pytest.raises(LaminaError, match="n must be at least 1"):
        first_tokens(["text"], gpt2_tokenizer, 0)
    with pytest.raises(LaminaError, match="not one string"):
        first_tokens("a single text", gpt2_tokenizer, 2)
    with pytest.raises(LaminaError, match="labels has 1 entries for 2 texts"):
        first_tokens(["a b", "c d"], gpt2_tokenizer, 1, labels=["x"])
    with pytest.raises(LaminaError, match="texts is empty"):
        first_tokens([], gpt2_tokenizer, 1)
    with pytest.raises(LaminaError, match=r"texts\[1\] must be a string"):
        first_tokens(["a b", 3], gpt2_tokenizer, 1)
    with pytest.raises(LaminaError, match="lamina.load"):
        first_tokens(["a b"], "gpt2", 1)


# ---------------------------------------------------------------------------------------------------- seed 001


def test_window_matches_seed_001(gpt2_tokenizer, alice):
    tokenizer, text = gpt2_tokenizer, alice
    # the seed's code, GPT-2's max_position_embeddings = 1024
    allTokens = tokenizer.encode(text, return_tensors='pt')
    max_seq_len = 1024
    start_idx = len(allTokens[0]) // 2
    end_idx = start_idx + max_seq_len
    tokens = allTokens[:, start_idx:end_idx]
    targets = [allTokens[0, start_idx + toki + 1].item() for toki in range(max_seq_len)]

    stim = window(text, tokenizer, max_seq_len, max_length=1024)
    np.testing.assert_array_equal(stim.as_array(), tokens.numpy())
    # the last position's target comes from the full text, as in the seed
    assert stim.next_ids.tolist() == [targets[-1]]
    np.testing.assert_array_equal(stim.ids[0][1:], targets[:-1])
    assert stim.meta.to_dict("records") == [{"start": start_idx, "length": max_seq_len}]


def test_window_start_and_offset(gpt2_tokenizer, tiny_gpt2):
    text = "The quick brown fox jumps over the lazy dog and runs away into the dark green forest."
    tokens = gpt2_tokenizer.encode(text)
    stim = window(text, tiny_gpt2, 5, where="start", max_length=tiny_gpt2.context_length)
    assert stim.ids[0].tolist() == tokens[:5] and stim.next_ids.tolist() == [tokens[5]]
    stim = window(text, gpt2_tokenizer, 4, where=3)
    assert stim.ids[0].tolist() == tokens[3:7] and stim.meta["start"].tolist() == [3]
    end = window(text, gpt2_tokenizer, 4, where=len(tokens) - 4)
    assert end.ids[0].tolist() == tokens[-4:] and end.next_ids.tolist() == [-1]


def test_window_errors(gpt2_tokenizer):
    text = "one two three four five six seven eight nine ten"  # 10 tokens
    assert len(gpt2_tokenizer.encode(text)) == 10
    with pytest.raises(LaminaError, match=r"has 10 tokens; a window of 6 from the middle \(token 5\) needs 11. "
                                          r"Use length <= 5, or where='start'"):
        window(text, gpt2_tokenizer, 6)
    with pytest.raises(LaminaError, match="has 10 tokens, fewer than the window's 11"):
        window(text, gpt2_tokenizer, 11)
    with pytest.raises(LaminaError, match="from token 8 needs 11"):
        window(text, gpt2_tokenizer, 3, where=8)
    with pytest.raises(LaminaError, match="longer than max_length=4"):
        window(text, gpt2_tokenizer, 5, max_length=4)
    with pytest.raises(LaminaError, match="empty"):
        window("", gpt2_tokenizer, 1)
    with pytest.raises(LaminaError, match="Did you mean 'middle'"):
        window(text, gpt2_tokenizer, 2, where="midle")
    with pytest.raises(LaminaError, match="negative"):
        window(text, gpt2_tokenizer, 2, where=-1)
    with pytest.raises(LaminaError, match="length must be at least 1"):
        window(text, gpt2_tokenizer, 0)
    with pytest.raises(LaminaError, match="integer"):
        window(text, gpt2_tokenizer, 2.5)


# ---------------------------------------------------------------------------------------------------- seed 002


def test_passage_matches_seed_002(gpt2_tokenizer, tiny_gpt2):
    tokens = gpt2_tokenizer.encode(SEED_002_TXT, return_tensors='pt')
    stim = passage(SEED_002_TXT, tiny_gpt2, max_length=tiny_gpt2.context_length)
    np.testing.assert_array_equal(stim.as_array(), tokens.numpy())
    assert stim.next_ids.tolist() == [-1]
    assert stim.meta.to_dict("records") == [{"start": 0, "length": tokens.shape[1]}]


def test_passage_errors(gpt2_tokenizer):
    n = len(gpt2_tokenizer.encode(SEED_002_TXT))
    with pytest.raises(LaminaError, match=f"passage of {n} tokens is longer than max_length=50"):
        passage(SEED_002_TXT, gpt2_tokenizer, max_length=50)
    with pytest.raises(LaminaError, match="empty"):
        passage("", gpt2_tokenizer)
    with pytest.raises(LaminaError, match="must be a string"):
        passage(["a list"], gpt2_tokenizer)


# ---------------------------------------------------------------------------------------------------- seed 003


def _seed_003(tokenizer, text, target_word):
    """Seed 003's own code, with its names."""
    tokens = tokenizer.encode(text)
    coffee_token = tokenizer.encode(target_word)
    assert len(coffee_token) == 1
    coffee_token = coffee_token[0]
    coffee_idx = np.where(np.array(tokens) == coffee_token)[0]
    ntargets = len(coffee_idx)
    oneLongSeq = torch.tensor(tokens[:ntargets + 1]).unsqueeze(0)
    nseq = 10
    batch = torch.zeros((ntargets, nseq), dtype=torch.long)
    for bi in range(ntargets):
        batch[bi, :] = torch.tensor(tokens[coffee_idx[bi] - nseq + 1:coffee_idx[bi] + 1])
    return tokens, coffee_idx, oneLongSeq, batch


@pytest.mark.parametrize("source, word", [("coffee", " coffee"), ("gatsby", " garage")])
def test_seed_003_batches(gpt2_tokenizer, gatsby, source, word):
    text = COFFEE_TEXT if source == "coffee" else gatsby
    tokens, coffee_idx, oneLongSeq, batch = _seed_003(gpt2_tokenizer, text, word)
    assert len(coffee_idx) >= 5 and coffee_idx[0] >= 9

    long = one_long_sequence(text, gpt2_tokenizer, len(coffee_idx) + 1)
    np.testing.assert_array_equal(long.as_array(), oneLongSeq.numpy())
    assert long.next_ids.tolist() == [tokens[len(coffee_idx) + 1]]

    stim = word_in_contexts(text, gpt2_tokenizer, word.strip(), 10)  # leading space added
    np.testing.assert_array_equal(stim.as_array(), batch.numpy())
    assert stim.meta["position"].tolist() == coffee_idx.tolist()
    assert stim.meta["occurrence"].tolist() == list(range(len(coffee_idx)))
    assert set(stim.meta["word"]) == {word.strip()} and set(stim.meta["word_index"]) == {0}
    assert stim.next_ids.tolist() == [tokens[i + 1] if i + 1 < len(tokens) else -1 for i in coffee_idx]
    assert stim.notes == []


def test_word_in_contexts_drops_early_occurrences(gpt2_tokenizer):
    text = "Good coffee is good. " + COFFEE_TEXT  # ' coffee' at token 1, where the seed's slice breaks
    tokens = gpt2_tokenizer.encode(text)
    (coffee,) = gpt2_tokenizer.encode(" coffee")
    idx = np.flatnonzero(np.array(tokens) == coffee)
    assert idx[0] == 1 and idx[1] >= 9
    # the seed's own slice gives a sequence of the wrong length there
    assert len(tokens[idx[0] - 10 + 1:idx[0] + 1]) != 10
    stim = word_in_contexts(text, gpt2_tokenizer, [" coffee"], 10)
    assert stim.meta["position"].tolist() == idx[1:].tolist()
    assert stim.meta["occurrence"].tolist() == list(range(len(idx) - 1))
    assert stim.notes == [f"dropped 1 of {len(idx)} occurrences of ' coffee' with fewer than 9 tokens before them"]


def test_one_long_sequence_errors(gpt2_tokenizer):
    with pytest.raises(LaminaError, match="has 3 tokens, fewer than the 5 asked for"):
        one_long_sequence("one two three", gpt2_tokenizer, 5)
    with pytest.raises(LaminaError, match="empty"):
        one_long_sequence("", gpt2_tokenizer, 1)
    with pytest.raises(LaminaError, match="max_length=2"):
        one_long_sequence("one two three", gpt2_tokenizer, 3, max_length=2)


def test_word_in_contexts_errors(gpt2_tokenizer):
    with pytest.raises(LaminaError, match=r"' xyzzyq' is not a single token: ' xyzzyq' is \d+ tokens, 'xyzzyq' is "
                                          r"\d+ tokens"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, "xyzzyq", 5)
    with pytest.raises(LaminaError, match="' lawn' does not occur in the text"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, ["coffee", "lawn"], 5)
    with pytest.raises(LaminaError, match=r"the only occurrence of ' largest' has fewer than 99 tokens"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, "largest", 100)
    with pytest.raises(LaminaError, match=r"all \d+ occurrences of ' coffee' have fewer than 199 tokens"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, "coffee", 200)
    with pytest.raises(LaminaError, match="length must be at least 1"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, "coffee", 0)
    with pytest.raises(LaminaError, match="same token"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, ["coffee", " coffee"], 5)
    with pytest.raises(LaminaError, match="words is empty"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, [], 5)
    with pytest.raises(LaminaError, match="or leading_space=True"):
        word_in_contexts(COFFEE_TEXT, gpt2_tokenizer, "galaxy", 5, leading_space=False)


def test_word_in_contexts_without_leading_space(gpt2_tokenizer):
    text = "sun and moon.\nsun again, then the sun."
    stim = word_in_contexts(text, gpt2_tokenizer, "sun", 1, leading_space=False)
    assert stim.meta["position"].tolist() == [0, 5]  # ' sun' at the end is another token
    assert stim.ids[0].tolist() == gpt2_tokenizer.encode("sun")


# ---------------------------------------------------------------------------------------------------- seed 004


def test_seed_004_constants_match_the_seed():
    names = {1: "space", 2: "house", 3: "fruit"}
    assert [[cat, w] for cat, ws in SEED_004_CATEGORIES.items() for w in ws] == \
        [[names[c], w] for c, w in SEED_004_WORDS]
    assert [len(v) for v in SEED_004_CATEGORIES.values()] == [10, 13, 11]
    assert SEED_004_CONTEXT_WORDS == (' years', ' garage', ' lawn')


def test_single_token_words_matches_seed_004(gpt2_tokenizer, tiny_gpt2):
    tokenizer, words = gpt2_tokenizer, SEED_004_WORDS
    batch = torch.zeros((len(words), 1), dtype=torch.long)
    for i, w in enumerate(words):
        batch[i, :] = torch.tensor(tokenizer.encode(' ' + w[1]))

    stim = single_token_words(words, tokenizer)
    np.testing.assert_array_equal(stim.as_array(), batch.numpy())
    assert stim.meta["category"].tolist() == [c for c, _ in words]
    assert stim.meta["word"].tolist() == [w for _, w in words]
    assert stim.meta["token"].tolist() == batch[:, 0].tolist()
    assert (stim.next_ids == -1).all() and stim.notes == []
    by_name = single_token_words(SEED_004_CATEGORIES, tiny_gpt2)
    assert by_name.fingerprint() == stim.fingerprint()
    assert by_name.meta["category"].tolist()[:11] == ["space"] * 10 + ["house"]


def test_seed_004_words_need_the_leading_space(gpt2_tokenizer):
    words = [w for _, w in SEED_004_WORDS]
    report = check_single_tokens(words, gpt2_tokenizer)
    assert list(report.columns) == ["word", "n_tokens_with_space", "n_tokens_without_space", "single"]
    assert report["single"].all() and (report["n_tokens_with_space"] == 1).all()
    bare = check_single_tokens(words, gpt2_tokenizer, leading_space=False)
    assert (~bare["single"]).sum() == 15
    assert bare["n_tokens_without_space"].tolist() == [len(gpt2_tokenizer.encode(w)) for w in words]
    offenders = bare.loc[~bare["single"], "word"].tolist()
    with pytest.raises(LaminaError, match="15 words of 34 are not a single token as given") as err:
        single_token_words(SEED_004_WORDS, gpt2_tokenizer, leading_space=False)
    for w in offenders:
        assert f"'{w}' is {len(gpt2_tokenizer.encode(w))} tokens" in str(err.value)
    dropped = single_token_words(SEED_004_WORDS, gpt2_tokenizer, leading_space=False, on_invalid="drop")
    assert len(dropped) == 19 and dropped.notes[0].startswith("dropped 15 of 34 words that are not single tokens")
    assert all(f"'{w}'" in dropped.notes[0] for w in offenders)


def test_single_token_words_errors(gpt2_tokenizer):
    with pytest.raises(LaminaError, match=r"1 word of 2 is not a single token with a leading space: "
                                          r"' xyzzyq' is \d+ tokens, 'xyzzyq' is \d+ tokens"):
        single_token_words({"a": ["sun", "xyzzyq"]}, gpt2_tokenizer)
    with pytest.raises(LaminaError, match="none of the 1 word is a single token"):
        single_token_words({"a": ["xyzzyq"]}, gpt2_tokenizer, on_invalid="drop")
    with pytest.raises(LaminaError, match="Did you mean 'drop'"):
        single_token_words({"a": ["sun"]}, gpt2_tokenizer, on_invalid="dorp")
    with pytest.raises(LaminaError, match="listed twice"):
        single_token_words({"a": ["sun"], "b": [" sun"]}, gpt2_tokenizer)
    with pytest.raises(LaminaError, match="must map to a list of words"):
        single_token_words({"a": "sun"}, gpt2_tokenizer)
    with pytest.raises(LaminaError, match="has no words"):
        single_token_words({"a": []}, gpt2_tokenizer)
    with pytest.raises(LaminaError, match=r"\(category, word\) pair"):
        single_token_words([[1, "sun", "x"]], gpt2_tokenizer)
    with pytest.raises(LaminaError, match="not a word"):
        single_token_words({"a": ["  "]}, gpt2_tokenizer)


@pytest.mark.slow
def test_sofa_is_two_smollm2_tokens(smollm2):
    report = check_single_tokens(["sofa", "galaxy"], smollm2)
    assert report.loc[0, "n_tokens_with_space"] == 2 and not report.loc[0, "single"]
    stim = single_token_words(SEED_004_CATEGORIES, smollm2, on_invalid="drop")
    assert "sofa" not in stim.meta["word"].tolist()
    assert any("' sofa' is 2 tokens" in note for note in stim.notes)


def test_word_in_contexts_matches_seed_004_part_b(gpt2_tokenizer, gatsby):
    tokenizer, text = gpt2_tokenizer, gatsby
    # seed 004 part 4, blanks filled the obvious way: matches stitched one word after another
    tokens = np.array(tokenizer.encode(text))
    targets = [' years', ' garage', ' lawn']
    target_idxs, labels = np.array([], dtype=int), np.array([], dtype=int)
    for i, w in enumerate(targets):
        t = tokenizer.encode(w)
        assert len(t) == 1
        matches = np.where(tokens == t[0])[0]
        target_idxs = np.concatenate((target_idxs, matches))
        labels = np.concatenate((labels, np.full(len(matches), i)))
    contextwin = 50
    batch = torch.zeros((target_idxs.shape[0], contextwin + 1), dtype=torch.long)
    for i in range(target_idxs.shape[0]):
        toks = tokens[target_idxs[i] - contextwin:target_idxs[i] + 1]
        batch[i, :] = torch.tensor(toks)

    stim = word_in_contexts(text, tokenizer, SEED_004_CONTEXT_WORDS, contextwin + 1)
    assert len(stim) == 85
    np.testing.assert_array_equal(stim.as_array(), batch.numpy())
    assert stim.meta["word_index"].tolist() == labels.tolist()
    assert stim.meta["position"].tolist() == target_idxs.tolist()
    assert stim.meta["word"].tolist() == [targets[i] for i in labels]
    assert list(stim.meta.columns) == ["word", "word_index", "token", "occurrence", "position"]


# ---------------------------------------------------------------------------------------------------- read_words


def test_read_words_csv_and_json(tmp_path):
    csv_file = tmp_path / "words.csv"
    csv_file.write_text("# seed 004\ncategory,word\nspace, galaxy\n\nhouse,sofa\nspace,comet  # not a comment\n"
                        "  # indented comment\n")
    assert read_words(csv_file) == {"space": ["galaxy", "comet  # not a comment"], "house": ["sofa"]}
    json_file = tmp_path / "words.json"
    json_file.write_text(json.dumps(SEED_004_CATEGORIES))
    assert read_words(json_file) == SEED_004_CATEGORIES
    lines = "\n".join(f"{c},{w}" for c, ws in SEED_004_CATEGORIES.items() for w in ws)
    (tmp_path / "seed.txt").write_text(lines)
    assert read_words(tmp_path / "seed.txt") == SEED_004_CATEGORIES


@pytest.mark.parametrize("content, match", [
    ("space,galaxy\nhouse\n", "line 2: expected 'category,word'"),
    ("space,galaxy,comet\n", "line 1: expected"),
    ("space,\n", "line 1: expected"),
    ("# only a comment\n", "has no words"),
    ("", "has no words"),
    ('{"space": "galaxy"}', "non-empty list of words"),
    ('{"space": []}', "non-empty list of words"),
    ('{"space": [1, 2]}', "non-empty list of words"),
    ('["galaxy"]', "must be a JSON object"),
    ('{"space": ["galaxy"]', "not valid JSON"),
])
def test_read_words_errors(tmp_path, content, match):
    path = tmp_path / "words.txt"
    path.write_text(content)
    with pytest.raises(LaminaError, match=match):
        read_words(path)


def test_read_words_missing_file(tmp_path):
    with pytest.raises(LaminaError, match="does not exist"):
        read_words(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------------- properties

VOCAB = ["the", "cat", "sat", "on", "mat", "coffee", "years", "garage", "lawn", "and", "a", "dog", "ran",
         "green", "house", ".", ","]
TARGETS = ["cat", "coffee", "years", "garage", "lawn", "dog"]  # single GPT-2 tokens with a leading space
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
texts_st = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=60).map(" ".join)


@PROPS
@given(text=texts_st, words=st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True),
       length=st.integers(1, 12))
def test_word_in_contexts_properties(gpt2_tokenizer, text, words, length):
    tokens = np.array(gpt2_tokenizer.encode(text), dtype=np.int64)
    ids = [gpt2_tokenizer.encode(" " + w)[0] for w in words]
    positions = [np.flatnonzero(tokens == t) for t in ids]
    if len(tokens) == 0 or any(len(p) == 0 or p.max() < length - 1 for p in positions):
        with pytest.raises(LaminaError):
            word_in_contexts(text, gpt2_tokenizer, words, length)
        return
    stim = word_in_contexts(text, gpt2_tokenizer, words, length)
    assert (stim.lengths == length).all()
    assert stim.meta["word_index"].is_monotonic_increasing
    for k, row in stim.meta.iterrows():
        seq, pos = stim.ids[k], row["position"]
        assert seq[-1] == ids[row["word_index"]] == row["token"]
        np.testing.assert_array_equal(seq, tokens[pos - length + 1:pos + 1])
        assert stim.next_ids[k] == (tokens[pos + 1] if pos + 1 < len(tokens) else -1)
    for wi, p in enumerate(positions):
        kept = p[p >= length - 1]
        rows = stim.meta[stim.meta["word_index"] == wi]
        assert rows["position"].tolist() == kept.tolist()
        assert rows["occurrence"].tolist() == list(range(len(kept)))
    n_dropped = sum(int((p < length - 1).sum()) for p in positions)
    assert sum(int(note.split()[1]) for note in stim.notes) == n_dropped


@PROPS
@given(texts=st.lists(texts_st, min_size=1, max_size=8), n=st.integers(1, 10))
def test_first_tokens_properties(gpt2_tokenizer, texts, n):
    encoded = [gpt2_tokenizer.encode(t) for t in texts]
    long_enough = [i for i, e in enumerate(encoded) if len(e) >= n]
    if not long_enough:
        with pytest.raises(LaminaError, match="fewer than"):
            first_tokens(texts, gpt2_tokenizer, n)
        return
    stim = first_tokens(texts, gpt2_tokenizer, n, labels=[f"t{i}" for i in range(len(texts))])
    assert stim.meta["text_index"].tolist() == long_enough
    assert stim.meta["label"].tolist() == [f"t{i}" for i in long_enough]
    for seq, i, nxt in zip(stim.ids, long_enough, stim.next_ids):
        assert len(seq) == n and seq.tolist() == encoded[i][:n]
        assert nxt == (encoded[i][n] if len(encoded[i]) > n else -1)
    dropped = len(texts) - len(long_enough)
    assert stim.notes == ([f"dropped {dropped} of {len(texts)} texts with fewer than "
                           f"{n} token{'s' if n > 1 else ''}"] if dropped else [])


@PROPS
@given(text=texts_st, length=st.integers(1, 40), where=st.one_of(st.sampled_from(["middle", "start"]),
                                                                   st.integers(0, 50)))
def test_window_properties(gpt2_tokenizer, text, length, where):
    tokens = gpt2_tokenizer.encode(text)
    start = len(tokens) // 2 if where == "middle" else 0 if where == "start" else where
    if not tokens or start + length > len(tokens):
        with pytest.raises(LaminaError):
            window(text, gpt2_tokenizer, length, where=where)
        return
    stim = window(text, gpt2_tokenizer, length, where=where)
    assert stim.ids[0].tolist() == tokens[start:start + length]
    assert stim.meta.to_dict("records") == [{"start": start, "length": length}]
    assert stim.next_ids.tolist() == [tokens[start + length] if start + length < len(tokens) else -1]


@PROPS
@given(words=st.lists(st.sampled_from(VOCAB[:-2]), min_size=1, max_size=8, unique=True),
       leading_space=st.booleans())
def test_single_token_words_properties(gpt2_tokenizer, words, leading_space):
    forms = [(" " + w) if leading_space else w for w in words]
    single = [len(gpt2_tokenizer.encode(f)) == 1 for f in forms]
    report = check_single_tokens(words, gpt2_tokenizer, leading_space=leading_space)
    assert report["single"].tolist() == single
    if not any(single):
        with pytest.raises(LaminaError):
            single_token_words({"c": words}, gpt2_tokenizer, leading_space=leading_space, on_invalid="drop")
        return
    stim = single_token_words({"c": words}, gpt2_tokenizer, leading_space=leading_space, on_invalid="drop")
    kept = [w for w, s in zip(words, single) if s]
    assert stim.meta["word"].tolist() == kept
    assert [gpt2_tokenizer.decode(seq) for seq in stim.ids] == [(" " + w) if leading_space else w for w in kept]
    assert len(stim.notes) == (0 if all(single) else 1)
    if not all(single):
        with pytest.raises(LaminaError, match="not a single token"):
            single_token_words({"c": words}, gpt2_tokenizer, leading_space=leading_space)


def test_builders_return_stimuli(gpt2_tokenizer):
    for stim in (first_tokens(["a b c"], gpt2_tokenizer, 2), passage("a b", gpt2_tokenizer),
                 single_token_words({"x": ["sun"]}, gpt2_tokenizer)):
        assert isinstance(stim, Stimuli) and isinstance(stim.meta, pd.DataFrame)
        assert all(seq.dtype == np.int64 for seq in stim.ids)
