"""Seed 004: category selectivity via cosine similarity, and one word in many contexts.

Part A: one-token sequences, one per word; per hidden layer, the cosine-similarity matrix of the
words and the within- vs across-category similarities (Welch t, and a label-permutation test
corrected across layers). Part B: every occurrence of a few words in a book with its preceding
context; per layer, the similarity of the last-token hidden states within and across words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import data
from ..errors import LaminaError
from ..plots import figure
from ..plots.matrices import matrix_image
from ..plots.selectivity import (category_lines, delta_with_null, group_densities, laminar_panels,
                                 pair_mask_image, pvalue_profile, tornado, variance_strips)
from ..record import record
from ..stats.selectivity import (between_mask, common_edges, label_codes, layer_histograms, pair_masks,
                                 permutation_test, selectivity)
from ..stats.similarity import cosine_matrix, upper
from ..stimuli import (SEED_004_CATEGORIES, check_single_tokens, read_words, single_token_words,
                       word_in_contexts)
from .base import Context, Experiment, Result


@dataclass
class CategoriesConfig:
    words_file: str | None = None  # 'category,word' lines or JSON {category: [words]}; None: the seed's 34 words
    leading_space: bool = True  # encode ' galaxy', not 'galaxy' (both parts); words are given without it
    layer: int | None = None  # hidden layer of the single-layer figures; None: the seed's 4 (or the last, if fewer)
    n_permutations: int = 1000  # label shuffles per permutation test
    alpha: float = 0.05  # significance level for the corrected p-values
    contexts: bool = True  # run part B (one word, many contexts)
    context_words: tuple[str, ...] = ("years", "garage", "lawn")  # first word vs the others (seed's order)
    book: str = "gatsby"  # a book name, Gutenberg id or text file for part B
    context_length: int = 50  # tokens of context before each occurrence (seed: contextwin = 50)
    max_contexts_per_word: int = 200  # more occurrences than this: a random subset (bounds the n x n matrices)
    tornado_bins: int = 34  # bins of the tornado plots (seed: 35 edges)
    tornado_range: tuple[float, ...] | None = None  # (low, high); None: the observed range (seed: .4, 1)
    batch_size: int = 32

    def check(self):
        if self.n_permutations < 1:
            raise LaminaError("n_permutations must be at least 1 (1000 gives p-values down to 0.001).")
        if not 0 < self.alpha < 1:
            raise LaminaError(f"alpha must be between 0 and 1, not {self.alpha}.")
        if self.context_length < 0:
            raise LaminaError("context_length must be 0 or more tokens.")
        if self.max_contexts_per_word < 2:
            raise LaminaError("max_contexts_per_word must be at least 2 (within-word pairs need two contexts).")
        if self.tornado_bins < 2:
            raise LaminaError("tornado_bins must be at least 2.")
        if self.tornado_range is not None and (len(self.tornado_range) != 2
                                               or not self.tornado_range[0] < self.tornado_range[1]):
            raise LaminaError(f"tornado_range takes two numbers low,high with low < high (e.g. 0.4,1), "
                              f"not {','.join(map(str, self.tornado_range))}.")
        if self.batch_size < 1:
            raise LaminaError("batch_size must be at least 1.")
        if self.contexts:
            words = [w.strip() for w in self.context_words]
            if len(words) < 2:
                raise LaminaError("context_words needs at least two words, e.g. --set context_words=years,garage,lawn.")
            if not all(words):
                raise LaminaError(f"context_words has an empty word: {','.join(self.context_words)!r}.")
            if len(set(words)) != len(words):
                raise LaminaError(f"context_words lists a word twice: {','.join(words)}.")
        if self.words_file is not None and not self.words_file.strip():
            raise LaminaError("words_file is empty; give a path, or leave it out for the seed's words.")


def _ranges(layers) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0–2, 5, 7–8' ('none' when empty)."""
    layers = list(layers)
    if not layers:
        return "none"
    runs, start = [], layers[0]
    for prev, cur in zip(layers, layers[1:] + [None]):
        if cur != prev + 1:
            runs.append(f"{start}" if start == prev else f"{start}–{prev}")
            start = cur
    return ", ".join(runs)


def _p(p: float, n_permutations: int) -> str:
    """A permutation p-value, saying when it is the smallest the test can give."""
    return f"1/{n_permutations + 1} (the smallest possible)" if p <= 1 / (n_permutations + 1) + 1e-15 else f"{p:.3g}"


def _quoted(text: str) -> str:
    """A token's text with its spaces and control characters visible: ' cluster' -> \" cluster\"."""
    return json.dumps(text, ensure_ascii=False)


def _hidden(model, stim, config, ctx) -> tuple[np.ndarray, pd.DataFrame]:
    """Last-position hidden states ``(n_layers + 1, n_sequences, width)`` and the token table."""
    rec = record(model, stim, sites=["hidden"], positions="last", batch_size=config.batch_size,
                 progress=ctx.progress)
    tokens = rec.tokens.sort_values("sequence").reset_index(drop=True)
    return rec["hidden"][:, :, 0, :].astype(np.float64), tokens


def _cosines(hidden: np.ndarray) -> np.ndarray:
    """Shape ``(n_layers, n, n)``: one cosine-similarity matrix per layer."""
    return np.stack([cosine_matrix(h) for h in hidden])


def _layer_rows(stats: dict, perm: dict, names: dict) -> list[dict]:
    """One dict per layer: the per-layer arrays under their results.json names."""
    n = len(perm["p"])
    columns = {**{out: stats[key] for key, out in names.items()}, "p_perm": perm["p"],
               "p_maxstat": perm["p_maxstat"], "p_bh": perm["p_bh"]}
    return [{"layer": layer, **{k: float(v[layer]) for k, v in columns.items()}} for layer in range(n)]


class CategoriesExperiment(Experiment):
    name = "categories"
    title = "Category selectivity via cosine similarity"
    description = "within- vs across-category cosine similarity of word hidden states, layer by layer"
    seed_notebook = "004"
    question = ("Are the hidden states of words from the same category (space, furniture, fruit) more similar to "
                "each other than to words of other categories, and at which layers? And does one word, met in "
                "many contexts, stay more similar to itself than to other words?")
    Config = CategoriesConfig

    def method_text(self, config: CategoriesConfig) -> str:
        source = f"the word list {config.words_file}" if config.words_file else "seed 004's 34 words in 3 categories"
        space = "with a leading space" if config.leading_space else "as given"
        text = (f"Part A: each word of {source} is encoded {space} as a one-token sequence (words that are not one "
                "token are dropped and named). The hidden state of every layer (0 = embeddings, last = final norm "
                "output) at the word goes into a cosine-similarity matrix per layer. Pairs above the diagonal are "
                "within-category (same category) or across-category; per layer lamina reports their means, the "
                "difference Δ = within − across and Welch's t. Pair similarities share words, so t is "
                f"descriptive; the test is a permutation test: category labels are shuffled across words "
                f"({config.n_permutations} times, the same shuffles at every layer), Δ recomputed, and the one-sided "
                "p-value (1 + #{null ≥ Δ}) / (1 + n) corrected across layers by the maximum statistic "
                f"(family-wise, α = {config.alpha}) and by Benjamini–Hochberg.")
        if config.contexts:
            words = ", ".join(w.strip() for w in config.context_words)
            text += (f" Part B: every occurrence of {words} in {config.book} with the {config.context_length} "
                     "tokens before it; the last-token hidden states give one similarity matrix per layer, split "
                     "into within-word pairs, first word vs the others, and pairs among the others, with the same "
                     "permutation test (word labels shuffled across contexts).")
        return text

    # ---- run -------------------------------------------------------------------------
    def run(self, model, config: CategoriesConfig, ctx: Context) -> Result:
        n_entries = model.n_layers + 1
        if config.layer is not None and not -n_entries <= config.layer < n_entries:
            raise LaminaError(f"layer {config.layer} does not exist: {model.name} has hidden layers "
                              f"0..{model.n_layers} (negative values count from the end).")
        layer = min(4, model.n_layers) if config.layer is None else config.layer % n_entries
        with ctx.stage("data"):
            words, stim, checks = self._words(model, config)
            contexts = self._contexts(model, config, ctx) if config.contexts else None
        with ctx.stage("record"):
            hidden, tokens = _hidden(model, stim, config, ctx)
            if contexts is not None:
                c_hidden, c_tokens = _hidden(model, contexts, config, ctx)
        with ctx.stage("stats"):
            part_a = self._part_a(hidden, stim, tokens, checks, config, ctx)
            part_b = (self._part_b(c_hidden, contexts, c_tokens, model, config, ctx)
                      if contexts is not None else None)
        with ctx.stage("figures"):
            figures = self._figures_a(part_a, layer, config.alpha, ctx)
            if part_b is not None:
                figures.update(self._figures_b(part_b, layer, config))
        return self._result(model, config, words, stim, part_a, part_b, layer, figures)

    # ---- data ------------------------------------------------------------------------
    def _words(self, model, config):
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

    def _contexts(self, model, config, ctx):
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
        return stim.subset(np.asarray(keep)) if len(keep) < len(stim) else stim

    # ---- statistics --------------------------------------------------------------------
    def _part_a(self, hidden, stim, tokens, checks, config, ctx) -> dict:
        S = _cosines(hidden)
        categories = stim.meta["category"].tolist()
        codes = label_codes(categories)
        stats = selectivity(S, codes)
        perm = permutation_test(S, codes, config.n_permutations, ctx.rng)
        significant = perm["p_maxstat"] <= config.alpha
        word_list = stim.meta["word"].tolist()
        predicted = tokens["predicted"].tolist()
        next_tokens = dict(zip(word_list, predicted))
        checks = checks.assign(used=checks["word"].isin(word_list).to_numpy(),
                               next_token=checks["word"].map(next_tokens),
                               token_id=checks["word"].map(dict(zip(word_list, stim.meta["token"]))).astype("Int64"))
        layers = pd.DataFrame(_layer_rows(stats, perm, {"within_mean": "within_mean", "across_mean": "across_mean",
                                                        "delta": "delta", "t": "t", "t_student": "t_student"}))
        layers["null_mean"], layers["null_sd"] = perm["null"].mean(axis=0), perm["null"].std(axis=0)
        layers["significant"] = significant
        return {"S": S, "codes": codes, "names": list(dict.fromkeys(categories)), "stats": stats, "perm": perm,
                "significant": significant, "variance": hidden.var(axis=1), "next_tokens": next_tokens,
                "words": checks, "layers": layers}

    def _part_b(self, hidden, stim, tokens, model, config, ctx) -> dict:
        S = _cosines(hidden)
        codes = stim.meta["word_index"].to_numpy()
        words = [w.strip() for w in config.context_words]
        others = range(1, len(words))
        within_mask, across_mask = pair_masks(codes)
        first_vs_others = between_mask(codes, [0], others)
        # Across-word pairs are either the first word vs another, or two different other words.
        masks = {"within": within_mask, "across_word_vs_places": first_vs_others,
                 "across_places": across_mask & ~first_vs_others}
        values = {name: S[:, mask] for name, mask in masks.items()}  # each (n_layers, n_pairs)
        stats = selectivity(S, codes)
        stats.update({name: (v.mean(axis=1) if v.shape[1] else np.full(len(S), np.nan))
                      for name, v in values.items()})
        perm = permutation_test(S, codes, config.n_permutations, ctx.rng)
        edges = common_edges(list(values.values()), config.tornado_bins, value_range=config.tornado_range)
        # Groups without pairs (across_places with two words) have no distribution to draw.
        hist = {name: layer_histograms(v, edges) for name, v in values.items() if v.shape[1]}
        outside = {name: float(np.mean((v < edges[0]) | (v > edges[-1]))) if v.size else 0.0
                   for name, v in values.items()}
        layers = pd.DataFrame(_layer_rows(stats, perm, {"within": "within_mean",
                                                        "across_word_vs_places": "across_word_vs_places",
                                                        "across_places": "across_places",
                                                        "across_mean": "across_mean", "delta": "delta", "t": "t"}))
        layers["significant"] = perm["p_maxstat"] <= config.alpha
        meta = stim.meta.assign(word=[words[i] for i in codes])
        ends = [model.decode(ids[-5:]) for ids in stim.ids]  # the seed prints the last 5 tokens of each context
        table = meta[["word", "occurrence", "position"]].assign(last_tokens=ends,
                                                               next_token=tokens["predicted"].to_numpy())
        tornado_rows = [{"group": name, "layer": layer, "bin_low": edges[b], "bin_high": edges[b + 1],
                         "probability": h[layer, b]}
                        for name, h in hist.items() for layer in range(h.shape[0]) for b in range(h.shape[1])]
        return {"S": S, "codes": codes, "words": words, "values": values, "stats": stats, "perm": perm,
                "edges": edges, "hist": hist, "outside": outside, "layers": layers, "table": table,
                "tornado": pd.DataFrame(tornado_rows), "notes": list(stim.notes),
                "counts": {w: int((codes == i).sum()) for i, w in enumerate(words)}}

    # ---- figures ----------------------------------------------------------------------
    def _figures_a(self, a, layer, alpha, ctx) -> dict:
        figures = {}
        fig, ax = figure(1, size=(11, 3.8))
        variance_strips(ax, a["variance"], ctx.rng)
        ax.set(xlabel="Hidden state layer (0 = embeddings)", ylabel="Variance across words",
               title="Variance of each hidden dimension across the words")
        figures["hidden_variance"] = (fig, "Part 1 (the seed's blanks filled): for every hidden layer, each "
                                           "dimension's variance across the words, one point per dimension "
                                           "(jittered; red: median), on a log axis.")
        fig, ax = figure(1, size=(7.5, 5.5))
        pair_mask_image(ax, a["codes"], a["names"])
        category_lines(ax, a["codes"], color="k")
        ax.set(xlabel="Word index", ylabel="Word index", title="Category-pair mask")
        figures["category_mask"] = (fig, "Which similarity-matrix cells count, and as what: each pair above the "
                                         "diagonal coloured by its two categories. Same-category pairs are the "
                                         "within values, the rest the across values (the seed's codes 1, 4, 9 vs "
                                         "2, 3, 6).")
        S, stats = a["S"][layer], a["stats"]
        within_mask, across_mask = pair_masks(a["codes"])
        lo, hi = np.percentile(upper(S), [2, 98])
        fig, (m, d) = figure(2, size=(12, 4.8))
        matrix_image(m, S, vmin=lo, vmax=hi, cmap="viridis", label="cosine similarity")
        category_lines(m, a["codes"])
        m.set(xlabel="Word index", ylabel="Word index", title=f"A) Cosine similarity, layer {layer}")
        group_densities(d, {"Within-category": S[within_mask], "Across-category": S[across_mask]})
        d.set(xlabel="Cosine similarity", ylabel="Density",
              title=f"B) Layer {layer}: Δ = {stats['delta'][layer]:.3f}, t = {stats['t'][layer]:.2f}")
        figures["layer_similarity"] = (fig, f"Layer {layer}: the words' cosine-similarity matrix (A; white lines "
                                            "separate categories, colours clipped to the 2nd-98th percentile) and "
                                            "the distributions of within- and across-category similarities (B; "
                                            "Welch t).")
        fig, axs = figure(2, 2, size=(11, 8))
        laminar_panels(axs, stats["within_mean"], stats["across_mean"], stats["delta"], stats["t"],
                       significant=a["significant"])
        figures["laminar_profile"] = (fig, "Laminar profile: mean within- and across-category similarity with "
                                           "their difference as dotted lines (A), the difference Δ (B; rings: "
                                           "significant after correction across layers), Welch t (C) and Δ "
                                           "against t (D), one point per hidden layer.")
        figures["selectivity_permutation"] = self._permutation_figure(a["stats"]["delta"], a["perm"],
                                                                      a["significant"], "category labels", alpha)
        return figures

    def _permutation_figure(self, delta, perm, significant, what, alpha):
        fig, (a, b) = figure(2, size=(12, 4))
        n = perm["null"].shape[0]
        delta_with_null(a, delta, perm["null"], significant)
        a.set(ylabel="Δ (within − across)", title="A) Δ and its permutation null")
        pvalue_profile(b, {"raw": perm["p"], "max-statistic (FWER)": perm["p_maxstat"],
                           "Benjamini–Hochberg": perm["p_bh"]}, alpha, n)
        b.set_title("B) Permutation p-values")
        caption = (f"Permutation test of Δ per layer ({what} shuffled {n} times): observed Δ (filled: significant "
                   "after max-statistic correction; hollow: not) against the null's range and mean (A), and the "
                   f"raw and corrected p-values (B). The smallest possible p is 1/{n + 1}.")
        return fig, caption

    def _figures_b(self, b, layer, config) -> dict:
        figures = {}
        names = {"within": "Within-word", "across_word_vs_places": f"<{b['words'][0]}, others>",
                 "across_places": "<others, others>"}
        if len(b["words"]) == 3:
            names.update(across_word_vs_places=f"<{b['words'][0]}, {b['words'][1]}/{b['words'][2]}>",
                         across_places=f"<{b['words'][1]}, {b['words'][2]}>")
        S = b["S"][layer]
        lo, hi = np.percentile(upper(S), [2, 98])
        fig, (k, m, d) = figure(3, size=(12, 4.2), width_ratios=[1, 1, 1.1])
        pair_mask_image(k, b["codes"], b["words"])
        k.set(xlabel="Context index", ylabel="Context index", title="A) Word-pair mask")
        matrix_image(m, S, vmin=lo, vmax=hi, cmap="viridis")
        category_lines(m, b["codes"])
        m.set(xlabel="Context index", ylabel="Context index", title=f"B) Cosine similarity, layer {layer}")
        group_densities(d, {names[g]: b["values"][g][layer] for g in b["hist"]}, bins=30)
        d.set(xlabel="Cosine similarity", ylabel="Density", title=f"C) Layer {layer} distributions")
        counts = ", ".join(f"{w} {n}" for w, n in b["counts"].items())
        figures["contexts_similarity"] = (fig, f"Part B, layer {layer}: which pairs belong to which words (A), the "
                                               f"similarity of the last-token hidden states of every context ({counts};"
                                               " B, colours clipped to the 2nd-98th percentile) and the distributions "
                                               "of within-word pairs, first word vs the others, and pairs among the "
                                               "others (C).")
        # One colour scale for the three panels; the 99th percentile of the filled bins, so that a layer
        # where all similarities share one bin (layer 0 within-word: identical embeddings) does not
        # darken every other layer.
        filled = np.concatenate([h[np.isfinite(h) & (h > 0)] for h in b["hist"].values()])
        vmax = float(np.quantile(filled, 0.99)) if len(filled) else 1.0
        fig, axs = figure(len(b["hist"]), size=(4 * len(b["hist"]), 4.2))
        for ax, group in zip(axs, b["hist"]):
            tornado(ax, b["hist"][group], b["edges"], vmax=vmax)
            ax.set_title(names[group])
            ax.title.set_parse_math(False)
        how = ("a fixed range" if config.tornado_range is not None else
               "the observed range rounded out to 0.05 (seed: 0.4 to 1, fitted to GPT-2)")
        figures["tornado"] = (fig, f"Tornado plots: the distribution of each pair group's similarities at every "
                                   f"layer (rows), as probability per bin, {len(b['edges']) - 1} common bins over "
                                   f"{how}; one colour scale, saturating at {vmax:.2f} (the 99th percentile of "
                                   "filled bins).")
        fig, (p, q) = figure(2, size=(12, 4))
        for group, color in zip(b["hist"], ("C2", "C0", "C1")):
            p.plot(b["stats"][group], "o-", color=color, markersize=4, linewidth=1, label=names[group])
        p.set(xlabel="Layer", ylabel="Mean cosine similarity", title="A) Mean similarity by pair group")
        legend = p.legend(fontsize=8)
        for text in legend.get_texts():
            text.set_parse_math(False)
        delta_with_null(q, b["stats"]["delta"], b["perm"]["null"], b["perm"]["p_maxstat"] <= config.alpha)
        q.set(ylabel="Δ (within − across word)", title="B) Within-word minus across-word, with permutation null")
        figures["contexts_profile"] = (fig, "Part B across layers: mean similarity of each pair group (A), and the "
                                            "within-word minus across-word difference against its permutation "
                                            f"null (word labels shuffled {config.n_permutations} times; filled: "
                                            "significant after max-statistic correction) (B).")
        return figures

    # ---- result ----------------------------------------------------------------------
    def _result(self, model, config, categories, stim, a, b, layer, figures) -> Result:
        used = {cat: [w for w, c in zip(stim.meta["word"], stim.meta["category"]) if c == cat]
                for cat in categories}
        dropped = {cat: [w for w in ws if w not in a["next_tokens"]] for cat, ws in categories.items()}
        n_total = sum(len(ws) for ws in categories.values())
        n_used = len(stim)
        sig = np.flatnonzero(a["significant"]).tolist()
        sig_bh = np.flatnonzero(a["perm"]["p_bh"] <= config.alpha).tolist()
        summary = {
            "words": {
                "used": {c: ws for c, ws in used.items() if ws}, "dropped": {c: ws for c, ws in dropped.items() if ws},
                "n_used": n_used, "n_dropped": n_total - n_used,
                "n_within_pairs": a["stats"]["n_within"], "n_across_pairs": a["stats"]["n_across"],
                "n_permutations": config.n_permutations, "alpha": config.alpha,
                "significant_layers": sig, "significant_layers_bh": sig_bh,
                "layers": a["layers"].drop(columns=["null_mean", "null_sd", "significant"]).to_dict("records"),
            },
            "next_tokens": a["next_tokens"],
            "contexts": None,
        }
        stats, n_layers, n_perm = a["stats"], len(a["stats"]["delta"]), config.n_permutations
        best = int(np.argmax(stats["delta"]))
        flat_dropped = [w for ws in dropped.values() for w in ws]
        key_numbers = [
            ("Words used", f"{n_used} of {n_total} in {len(summary['words']['used'])} categories"
             + (f"; dropped (not one token): {', '.join(flat_dropped)}" if flat_dropped else ""), ""),
            (f"Layer {layer}: within vs across mean similarity",
             f"{stats['within_mean'][layer]:.3f} vs {stats['across_mean'][layer]:.3f} "
             f"(Δ = {stats['delta'][layer]:.3f})",
             f"Welch t = {stats['t'][layer]:.2f}; permutation p = {_p(a['perm']['p'][layer], n_perm)}, "
             f"corrected {_p(a['perm']['p_maxstat'][layer], n_perm)}"),
            ("Largest Δ", f"{stats['delta'][best]:.3f} at layer {best}",
             f"Welch t = {stats['t'][best]:.2f}; permutation p = {_p(a['perm']['p'][best], n_perm)}"),
            ("Layers with within > across", f"{len(sig)} of {n_layers}: {_ranges(sig)}",
             f"label permutation ({config.n_permutations}), max-statistic FWER, α = {config.alpha}; "
             f"Benjamini–Hochberg: {len(sig_bh)} layers"),
        ]
        for cat in used:
            if used[cat]:
                key_numbers.append((f"Predicted next token, {cat}",
                                    "; ".join(f"{w} → {_quoted(a['next_tokens'][w])}" for w in used[cat]), ""))
        tables = {"words": a["words"], "selectivity_by_layer": a["layers"]}
        notes = list(stim.notes)
        if flat_dropped:
            notes.append(f"The analysis ran on the {n_used} remaining words; the dropped words appear in "
                         "tables/words.csv with used = false.")
        notes += self._notes(model, config)
        if b is not None:
            summary["contexts"] = self._summary_b(b, config)
            sig_b = np.flatnonzero(b["perm"]["p_maxstat"] <= config.alpha).tolist()
            sb = b["stats"]
            key_numbers += [
                ("Part B contexts", ", ".join(f"{w}: {n}" for w, n in b["counts"].items())
                 + f" ({config.context_length} tokens before each)", ""),
                (f"Part B, layer {layer}: within-word vs {b['words'][0]}-others"
                 + (" vs others-others" if len(b["words"]) > 2 else ""),
                 f"{sb['within'][layer]:.3f} vs {sb['across_word_vs_places'][layer]:.3f}"
                 + (f" vs {sb['across_places'][layer]:.3f}" if len(b["words"]) > 2 else ""),
                 f"Welch t (within vs all across) = {sb['t'][layer]:.2f}; permutation p = "
                 f"{_p(b['perm']['p'][layer], n_perm)}"),
                ("Part B layers with within-word > across-word", f"{len(sig_b)} of {n_layers}: {_ranges(sig_b)}",
                 f"word-label permutation ({config.n_permutations}), max-statistic FWER, α = {config.alpha}"),
            ]
            tables.update(contexts=b["table"], contexts_by_layer=b["layers"], tornado=b["tornado"])
            notes += b["notes"] + self._notes_b(b, config)
        return Result(summary=summary, tables=tables, figures=figures, key_numbers=key_numbers, notes=notes)

    def _summary_b(self, b, config) -> dict:
        layers = b["layers"].drop(columns=["significant"]).to_dict("records")
        return {"words": b["words"], "counts": b["counts"], "context_length": config.context_length,
                "book": config.book, "significant_layers": np.flatnonzero(b["perm"]["p_maxstat"] <= config.alpha),
                "bin_edges": b["edges"], "layers": layers}

    def _notes(self, model, config) -> list[str]:
        notes = [
            "Within and across pairs come from explicit masks (same category, i < j; different categories, "
            "i < j). For three categories labelled 1, 2, 3 they are exactly the seed's np.triu(labels × labels, 1) "
            "codes 1, 4, 9 (within) and 2, 3, 6 (across); with four or more categories the products collide "
            "(1 × 4 = 2 × 2), so lamina does not use them.",
            "t is Welch's (unequal variances). The seed's ttest_ind(within, across) is Student's t (pooled "
            "variance); it is in tables/selectivity_by_layer.csv as t_student. Either way the pair similarities "
            "are not independent (each word enters many pairs), so t is descriptive; the permutation test of "
            "category labels is the test.",
            "The max-statistic correction standardises each layer's Δ by its permutation null's mean and sd "
            "before taking the maximum across layers, because the spread of Δ differs a lot between layers.",
            "The seed's part 1 plot has blanks; lamina plots, for every layer, each hidden dimension's variance "
            "across the words.",
            "Hidden layer 0 is the embedding output and the last entry is the final norm's output, as in Hugging "
            "Face's output_hidden_states.",
        ]
        if config.leading_space:
            notes.append("Words are encoded with a leading space (' galaxy'), as seed 004 needs for single GPT-2 "
                         "tokens; give them without it (in word files and --set context_words=years,garage,lawn).")
        if model.prepend_bos:
            notes.append(f"{model.name} gets a BOS token before every sequence (its family's policy): the "
                         "one-token sequences are BOS + word, and the recorded position is the word itself.")
        return notes

    def _notes_b(self, b, config) -> list[str]:
        first, others = b["words"][0], ", ".join(b["words"][1:])
        notes = [f"Part B names follow the seed: across_word_vs_places = pairs of a {first!r} context with a "
                 f"context of another word ({others}); across_places = pairs of contexts of two different words "
                 f"among {others}; within = pairs of contexts of the same word (any word). Δ and t compare within "
                 "against all across-word pairs."]
        if b["stats"]["within"][0] > 1 - 1e-9:
            notes.append("At layer 0 every context of a word has the same hidden state (the word's embedding; every "
                         "occurrence sits at the same position, so a position embedding adds the same vector), "
                         "so within-word similarity is 1 there by construction.")
        if len(b["words"]) == 2:
            notes.append("With two context words there are no pairs among the others: across_places is null.")
        out = {g: f for g, f in b["outside"].items() if f > 0}
        if out:
            notes.append("Outside the tornado range (not counted): "
                         + ", ".join(f"{g} {100 * f:.1f}%" for g, f in out.items()) + ".")
        return notes


EXPERIMENT = CategoriesExperiment()
