"""Report text of ``categories``: method, key numbers, notes, from the result."""

from __future__ import annotations

import json

import numpy as np

from ..across import NEEDS_TWO, agreement_sentence, sign_agreement
from ..base import KeyNumber, Report
from .result import CategoriesResult


def method(config) -> str:
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
            f"(family-wise, α = {config.alpha}) and by Benjamini–Hochberg; significant means p ≤ {config.alpha}.")
    if config.contexts:
        words = ", ".join(w.strip() for w in config.context_words)
        text += (f" Part B: every occurrence of {words} in {config.book} with the {config.context_length} "
                 "tokens before it; the last-token hidden states give one similarity matrix per layer, split "
                 "into within-word pairs, first word vs the others, and pairs among the others, with the same "
                 "permutation test (word labels shuffled across contexts).")
        if config.replicates > 1:
            text += (f" Replicates: each word's contexts, in text order, are dealt out in turn to {config.replicates} "
                     f"replicates (occurrence k to replicate k mod {config.replicates}); per replicate and layer Δ "
                     "is recomputed, and across replicates (the unit) a one-sided t test of Δ > 0 per layer is "
                     "corrected across layers family-wise by the maximum t over sign flips of whole replicates "
                     "(the pooled test's family), with its 95% t interval.")
    return text


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


def key_numbers(r: CategoriesResult) -> list[KeyNumber]:
    w, layer, n_perm = r.words, r.layer, r.words.n_permutations
    rows, at = w.layers, w.layers[r.layer]
    best = rows[int(np.argmax([row.delta for row in rows]))]
    dropped = [word for ws in w.dropped.values() for word in ws]
    sig, sig_bh = list(w.significant_layers), list(w.significant_layers_bh)
    out = [
        KeyNumber("Words used", f"{w.n_used} of {w.n_used + w.n_dropped} in {len(w.used)} categories"
                  + (f"; dropped (not one token): {', '.join(dropped)}" if dropped else "")),
        KeyNumber(f"Layer {layer}: within vs across mean similarity",
                  f"{at.within_mean:.3f} vs {at.across_mean:.3f} (Δ = {at.delta:.3f})",
                  f"Welch t = {at.t:.2f}; permutation p = {_p(at.p_perm, n_perm)}, corrected "
                  f"{_p(at.p_maxstat, n_perm)}"),
        KeyNumber("Largest Δ", f"{best.delta:.3f} at layer {best.layer}",
                  f"Welch t = {best.t:.2f}; permutation p = {_p(best.p_perm, n_perm)}"),
        KeyNumber("Layers with within > across", f"{len(sig)} of {len(rows)}: {_ranges(sig)}",
                  f"label permutation ({n_perm}), max-statistic FWER, α = {w.alpha}; "
                  f"Benjamini–Hochberg: {len(sig_bh)} layers"),
    ]
    for cat, words in w.used.items():
        out.append(KeyNumber(f"Predicted next token, {cat}",
                             "; ".join(f"{word} → {_quoted(r.next_tokens[word])}" for word in words)))
    if r.contexts is not None:
        c, n_words = r.contexts, len(r.contexts.words)
        sb, sig_b = c.layers[layer], list(c.significant_layers)
        out += [
            KeyNumber("Part B contexts", ", ".join(f"{word}: {n}" for word, n in c.counts.items())
                      + f" ({c.context_length} tokens before each)"),
            *_part_b_lead(c, layer, w.alpha),
            KeyNumber(f"Part B, layer {layer}: within-word vs {c.words[0]}-others"
                      + (" vs others-others" if n_words > 2 else "") + " (pooled, descriptive)",
                      f"{sb.within_mean:.3f} vs {sb.across_word_vs_places:.3f}"
                      + (f" vs {sb.across_places:.3f}" if n_words > 2 else ""),
                      f"Welch t (within vs all across) = {sb.t:.2f}; permutation p = {_p(sb.p_perm, n_perm)}"),
            KeyNumber("Part B layers with within-word > across-word, pooled (descriptive)",
                      f"{len(sig_b)} of {len(rows)}: {_ranges(sig_b)}",
                      f"word-label permutation ({n_perm}) of all contexts pooled, max-statistic FWER, α = {w.alpha}: "
                      "descriptive only, it rejects far above α when the text drifts between a word's contexts "
                      "(docs/calibration.md)"),
            KeyNumber("Part B replicates agreeing with the pooled result", _agreement(c) if c.replicates > 1
                      else NEEDS_TWO),
        ]
    return out


def _part_b_lead(c, layer: int, alpha: float) -> list[KeyNumber]:
    """Part B's test: the replicates (interleaved subsets of each word's contexts) as the unit, estimate first."""
    if c.significant_layers_across is None:
        return [KeyNumber("Part B across replicates", NEEDS_TWO, "--set replicates=2 or more")]
    at = c.layers[layer].across.delta
    across = list(c.significant_layers_across)
    deltas = [c.layers[i].across.delta.mean for i in across]
    effect = f"; Δ there {min(deltas):.3f} to {max(deltas):.3f}" if deltas else ""
    return [
        KeyNumber(f"Part B, layer {layer}: Δ within-word − across-word, mean of {c.replicates} replicates",
                  f"{at.mean:.3f} (95% interval {at.ci_low:.3f} to {at.ci_high:.3f})",
                  f"one-sided t across replicates = {at.t:.2f}, p = {at.p:.2g}"),
        KeyNumber("Part B layers with within-word > across-word across replicates",
                  f"{len(across)} of {len(c.layers)}: {_ranges(across)}{effect}",
                  f"one-sided t with replicates as the unit, sign-flip max-t FWER, α = {alpha}"),
    ]


def _agreement(c) -> str:
    pooled = np.array([row.delta for row in c.layers])
    cells = np.isin(np.arange(len(c.layers)), c.significant_layers)  # significant in the pooled test
    return agreement_sentence(sign_agreement(c.per_replicate.delta, pooled, cells), c.replicates,
                              "layers (Δ)", "replicate")


def notes(r: CategoriesResult, config) -> list[str]:
    out = list(r.data_notes)
    if r.words.dropped:
        out.append(f"The analysis ran on the {r.words.n_used} remaining words; the dropped words appear in "
                   "tables/words.csv with used = false.")
    out += [
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
    if r.contexts is not None:
        out.append("Part B's test takes the replicates (each word's contexts dealt out in turn) as the unit; it "
                   "holds its level when the hidden states drift with the text, but the replicates share one book: "
                   "when a word's occurrences come in scenes and the states drift, it rejects above α (the rate is in "
                   "docs/calibration.md). The pooled permutation of part B treats contexts as exchangeable and is "
                   "descriptive only: under drift it rejects far above α.")
    if config.leading_space:
        out.append("Words are encoded with a leading space (' galaxy'), as seed 004 needs for single GPT-2 "
                   "tokens; give them without it (in word files and --set context_words=years,garage,lawn).")
    if r.model.prepend_bos:
        out.append(f"{r.model.name} gets a BOS token before every sequence (its family's policy): the "
                   "one-token sequences are BOS + word, and the recorded position is the word itself.")
    out.append("Part A has no replicates: a word alone is no text sample (its hidden state is the same every time), "
               "and the words themselves are the unit its label permutation already shuffles. Carrier sentences "
               "would make replicates, but they would change the question (words in context is part B's).")
    if r.contexts is not None:
        out += list(r.contexts_notes) + _notes_b(r)
    return out


def _notes_b(r: CategoriesResult) -> list[str]:
    words = r.contexts.words
    first, others = words[0], ", ".join(words[1:])
    out = [f"Part B names follow the seed: across_word_vs_places = pairs of a {first!r} context with a "
           f"context of another word ({others}); across_places = pairs of contexts of two different words "
           f"among {others}; within = pairs of contexts of the same word (any word). Δ and t compare within "
           "against all across-word pairs."]
    if r.contexts.layers[0].within_mean > 1 - 1e-9:
        out.append("At layer 0 every context of a word has the same hidden state (the word's embedding; every "
                   "occurrence sits at the same position, so a position embedding adds the same vector), "
                   "so within-word similarity is 1 there by construction.")
    if len(words) == 2:
        out.append("With two context words there are no pairs among the others: across_places is null.")
    out.append("The pooled label permutation treats contexts as exchangeable. A word's occurrences come in bursts "
               "(one scene, overlapping contexts), so when hidden states drift with the text its contexts are more "
               "alike for that reason alone: in simulations with drift and no word effect, on Gatsby's own "
               "occurrence positions, the permutation test rejected 28–83% of the time at α = 0.05. Dealing each "
               "word's contexts out to the replicates in turn puts a burst's occurrences into different replicates: "
               "the test across replicates then rejected 2–5% there, but 21% with strongly bursty synthetic "
               "placements, because the replicates share the same bursts (contiguous runs: 84–100%). Only "
               "independent texts would make fully independent replicates (docs/results.md).")
    outside = {g: f for g, f in r.tornado_outside.items() if f > 0}
    if outside:
        out.append("Outside the tornado range (not counted): "
                   + ", ".join(f"{g} {100 * f:.1f}%" for g, f in outside.items()) + ".")
    return out


def report(result: CategoriesResult, config) -> Report:
    return Report(method=method(config), key_numbers=tuple(key_numbers(result)), notes=tuple(notes(result, config)))
