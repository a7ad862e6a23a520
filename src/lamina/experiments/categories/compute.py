"""Seed 004: category selectivity via cosine similarity, and one word in many contexts (compute).

Part A: one-token sequences, one per word; per hidden layer, the cosine-similarity matrix of the
words and the within- vs across-category similarities (Welch t, and a label-permutation test
corrected across layers). Part B: every occurrence of a few words in a book with its preceding
context; per layer, the similarity of the last-token hidden states within and across words.

Replicates (part B): each word's contexts, in text order, are dealt out to R replicates in turn
(occurrence k to replicate k mod R), so a replicate holds every word and a word's neighbouring
occurrences, which share their surroundings, land in different replicates. Part A has none: a word
alone has no text sample, and its hidden state is the same every time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import data
from ...errors import LaminaError
from ...models.depth import layer_at
from ...recording import record
from ...stats.multiple import benjamini_hochberg, significant
from ...stats.permutation import selectivity_permutation_test
from ...stats.selectivity import between_mask, common_edges, label_codes, layer_histograms, pair_masks, selectivity
from ...stats.similarity import cosine_matrix
from ...stimuli import SEED_004_CATEGORIES, check_single_tokens, read_words, single_token_words, word_in_contexts
from ..across import across_tests, column, intervals
from ..base import Context, ModelFacts
from .config import CategoriesConfig
from .result import (GROUPS, CategoriesResult, ContextAcross, ContextArrays, ContextLayer, ContextReplicates, Contexts,
                     WordArrays, WordLayer, Words)


def _words(model, config):
    categories = read_words(config.words_file) if config.words_file else SEED_004_CATEGORIES
    pairs = [(cat, word) for cat, ws in categories.items() for word in ws]
    checks = check_single_tokens([w for _, w in pairs], model, config.leading_space)
    checks.insert(0, "category", [cat for cat, _ in pairs])
    stim = single_token_words(categories, model, leading_space=config.leading_space, on_invalid="drop")
    kept = stim.meta["category"].value_counts()
    if len(kept) < 2 or kept.max() < 2:
        left = ", ".join(f"{cat}: {n}" for cat, n in kept.items())
        raise LaminaError(f"after dropping words that are not single tokens, {left} remain; within vs across "
                          "needs at least two categories and one with two or more words. Add single-token words.")
    return categories, stim, checks


def _contexts(model, config, ctx):
    text = data.book(config.book)
    length = config.context_length + 1
    room = model.context_length - int(model.prepend_bos)
    if length > room:
        raise LaminaError(f"context_length {config.context_length} + the word is more than {model.name} "
                          f"takes ({room} tokens); use context_length <= {room - 1}.")
    words = [w.strip() for w in config.context_words]
    stim = word_in_contexts(text, model, words, length, leading_space=config.leading_space)
    keep = []
    for index, word in enumerate(words):
        rows = np.flatnonzero(stim.meta["word_index"].to_numpy() == index)
        if len(rows) > config.max_contexts_per_word:
            stim.notes.append(f"{word!r} occurs {len(rows)} times with enough context; a random "
                              f"{config.max_contexts_per_word} of them were used (max_contexts_per_word)")
            rows = np.sort(ctx.rng.choice(rows, config.max_contexts_per_word, replace=False))
        keep.extend(rows.tolist())
    stim = stim.subset(np.asarray(keep)) if len(keep) < len(stim) else stim
    # Occurrence k of each word (in text order) goes to replicate k mod R.
    rank = stim.meta.groupby("word_index").cumcount().to_numpy()
    stim.meta["replicate"] = rank % config.replicates
    counts = stim.meta["word_index"].value_counts()
    if config.replicates > 1 and (counts.min() < config.replicates or counts.max() < 2 * config.replicates):
        shown = ", ".join(f"{words[i]} {counts.get(i, 0)}" for i in range(len(words)))
        raise LaminaError(f"part B's {config.replicates} replicates need every word in each and one word twice in "
                          f"each (contexts: {shown}); use replicates <= "
                          f"{max(1, min(counts.min(), counts.max() // 2))} or more frequent words.")
    return stim


def _hidden(model, stim, config, ctx) -> tuple[np.ndarray, pd.DataFrame]:
    """Last-position hidden states ``(n_layers + 1, n_sequences, width)`` and the token table."""
    rec = record(model, stim, sites=["hidden"], positions="last", batch_size=config.batch_size, progress=ctx.progress)
    return rec["hidden"][:, :, 0, :].astype(np.float64), rec.tokens.sort_values("sequence").reset_index(drop=True)


def _cosines(hidden: np.ndarray) -> np.ndarray:
    """Shape ``(n_layers, n, n)``: one cosine-similarity matrix per layer."""
    return np.stack([cosine_matrix(h) for h in hidden])


def _figure_layer(model, config) -> int:
    return layer_at(config.layer, "hidden", model.n_layers, setting="layer", model=model.name)


def _part_a(categories, stim, checks, hidden, tokens, layer, config, ctx) -> tuple[Words, dict, WordArrays]:
    S = _cosines(hidden)
    codes = label_codes(stim.meta["category"].tolist())
    stats = selectivity(S, codes)
    perm = selectivity_permutation_test(S, codes, config.n_permutations, ctx.rng)
    # Summaries of the null are stored, not recomputed by the table: a reduction over arrays of another
    # memory layout (read back from arrays.npz) may differ in the last digit.
    null_mean, null_sd = perm["null"].mean(axis=0), perm["null"].std(axis=0)
    word_list = stim.meta["word"].tolist()
    next_tokens = dict(zip(word_list, tokens["predicted"].tolist()))
    ids = dict(zip(word_list, stim.meta["token"]))
    used = {cat: [w for w, c in zip(stim.meta["word"], stim.meta["category"]) if c == cat] for cat in categories}
    dropped = {cat: [w for w in ws if w not in next_tokens] for cat, ws in categories.items()}
    layers = tuple(WordLayer(layer=i, within_mean=stats["within_mean"][i], across_mean=stats["across_mean"][i],
                             delta=stats["delta"][i], t=stats["t"][i], t_student=stats["t_student"][i],
                             p_perm=perm["p"][i], p_maxstat=perm["p_maxstat"][i], p_bh=perm["p_bh"][i],
                             null_mean=null_mean[i], null_sd=null_sd[i])
                   for i in range(len(S)))
    words = Words(used={c: ws for c, ws in used.items() if ws}, dropped={c: ws for c, ws in dropped.items() if ws},
                  n_used=len(stim), n_dropped=sum(len(ws) for ws in categories.values()) - len(stim),
                  n_within_pairs=stats["n_within"], n_across_pairs=stats["n_across"],
                  n_permutations=config.n_permutations, alpha=config.alpha,
                  significant_layers=np.flatnonzero(significant(perm["p_maxstat"], config.alpha)),
                  significant_layers_bh=np.flatnonzero(significant(perm["p_bh"], config.alpha)), layers=layers)
    in_list = checks["word"].isin(word_list).to_numpy()
    arrays = WordArrays(
        codes=codes, variance=hidden.var(axis=1), similarity=S[layer], null=perm["null"],
        category=checks["category"].to_numpy(dtype=str), word=checks["word"].to_numpy(dtype=str),
        n_tokens_with_space=checks["n_tokens_with_space"].to_numpy(),
        n_tokens_without_space=checks["n_tokens_without_space"].to_numpy(), single=checks["single"].to_numpy(),
        used=in_list, next_token=np.array([next_tokens.get(w, "") for w in checks["word"]], dtype=str),
        token_id=np.array([int(ids[w]) if w in ids else -1 for w in checks["word"]], dtype=np.int64))
    return words, next_tokens, arrays


def _replicates(S, codes, replicate, config, ctx) -> tuple[ContextReplicates, tuple | None]:
    """Each replicate's within/across means and Δ per layer, and the across-replicate tests of Δ > 0."""
    n_words, r = int(codes.max()) + 1, config.replicates
    stats = [selectivity(S[:, replicate == k][:, :, replicate == k], codes[replicate == k]) for k in range(r)]
    per = ContextReplicates(counts=np.array([np.bincount(codes[replicate == k], minlength=n_words) for k in range(r)]),
                            **{key: np.stack([st[key] for st in stats]) for key in ("within_mean", "across_mean",
                                                                                   "delta")})
    if r < 2:
        return per, None
    # One-sided, family-wise across layers by sign flips of whole replicates: the pooled test's family.
    delta = across_tests(per.delta, alpha=config.alpha, alternative="greater", correction="max", rng=ctx.rng)
    p_bh = benjamini_hochberg(column(delta, "p"))
    within, across = intervals(per.within_mean), intervals(per.across_mean)
    return per, tuple(ContextAcross(delta=delta[i], delta_p_bh=p_bh[i], within_mean=within[i], across_mean=across[i])
                      for i in range(len(delta)))


def _part_b(stim, hidden, tokens, layer, model, config, ctx) -> tuple[Contexts, dict, ContextArrays]:
    S = _cosines(hidden)
    codes = stim.meta["word_index"].to_numpy()
    words = [w.strip() for w in config.context_words]
    within_mask, across_mask = pair_masks(codes)
    first_vs_others = between_mask(codes, [0], range(1, len(words)))
    # Across-word pairs are either the first word vs another, or two different other words.
    masks = dict(zip(GROUPS, (within_mask, first_vs_others, across_mask & ~first_vs_others)))
    values = {name: S[:, mask] for name, mask in masks.items()}  # each (n_layers, n_pairs)
    means = {name: (v.mean(axis=1) if v.shape[1] else np.full(len(S), np.nan)) for name, v in values.items()}
    stats = selectivity(S, codes)
    perm = selectivity_permutation_test(S, codes, config.n_permutations, ctx.rng)
    per, across = _replicates(S, codes, stim.meta["replicate"].to_numpy(), config, ctx)
    edges = common_edges(list(values.values()), config.tornado_bins, value_range=config.tornado_range)
    # Groups without pairs (across_places with two words) have no distribution to draw.
    hist = {name: layer_histograms(v, edges) if v.shape[1] else None for name, v in values.items()}
    outside = {name: float(np.mean((v < edges[0]) | (v > edges[-1]))) if v.size else 0.0
               for name, v in values.items()}
    layers = tuple(ContextLayer(
        layer=i, within_mean=means["within"][i], across_word_vs_places=means["across_word_vs_places"][i],
        across_places=means["across_places"][i], across_mean=stats["across_mean"][i], delta=stats["delta"][i],
        t=stats["t"][i], p_perm=perm["p"][i], p_maxstat=perm["p_maxstat"][i], p_bh=perm["p_bh"][i],
        across=None if across is None else across[i])
        for i in range(len(S)))
    contexts = Contexts(words=words, counts={w: int((codes == i).sum()) for i, w in enumerate(words)},
                        context_length=config.context_length, book=config.book,
                        significant_layers=np.flatnonzero(significant(perm["p_maxstat"], config.alpha)),
                        replicates=config.replicates,
                        significant_layers_across=None if across is None else np.flatnonzero(
                            [a.delta.significant for a in across]),
                        bin_edges=edges, layers=layers, per_replicate=per)
    arrays = ContextArrays(
        codes=codes, similarity=S[layer], null=perm["null"], hist_within=hist["within"],
        hist_across_word_vs_places=hist["across_word_vs_places"], hist_across_places=hist["across_places"],
        occurrence=stim.meta["occurrence"].to_numpy(), position=stim.meta["position"].to_numpy(),
        replicate=stim.meta["replicate"].to_numpy(),
        last_tokens=np.array([model.decode(ids[-5:]) for ids in stim.ids], dtype=str),  # the seed prints 5
        next_token=tokens["predicted"].to_numpy(dtype=str))
    return contexts, outside, arrays


def compute(model, config: CategoriesConfig, ctx: Context) -> CategoriesResult:
    layer = _figure_layer(model, config)
    with ctx.stage("data"):
        categories, stim, checks = _words(model, config)
        contexts = _contexts(model, config, ctx) if config.contexts else None
    with ctx.stage("record"):
        hidden, tokens = _hidden(model, stim, config, ctx)
        if contexts is not None:
            c_hidden, c_tokens = _hidden(model, contexts, config, ctx)
    with ctx.stage("stats"):
        words, next_tokens, word_arrays = _part_a(categories, stim, checks, hidden, tokens, layer, config, ctx)
        part_b = _part_b(contexts, c_hidden, c_tokens, layer, model, config, ctx) if contexts is not None else None
    return CategoriesResult(
        words=words, next_tokens=next_tokens, contexts=part_b[0] if part_b else None, layer=layer,
        model=ModelFacts.of(model), data_notes=tuple(stim.notes),
        contexts_notes=tuple(contexts.notes) if contexts is not None else (),
        tornado_outside=part_b[1] if part_b else {}, word_arrays=word_arrays,
        context_arrays=part_b[2] if part_b else None)
