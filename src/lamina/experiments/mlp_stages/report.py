"""Report text of ``mlp-stages``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ..across import NEEDS_TWO, agreement_sentence, sign_agreement
from ..base import KeyNumber, Report
from .result import ALPHA, CI_LEVEL, PAIR_NAMES, SETS, SITES, STAGES, MlpStagesResult

METHOD = ("The text ({source}) is tokenized once. Every occurrence of {word!r} with at least {before} tokens "
          "before it gives one short sequence of {context} tokens that ends with it (more than {max_targets} "
          "are thinned evenly). {design} mlp.in, mlp.pre, mlp.post and mlp.raw are recorded at every layer, at "
          "positions 1..n of each long sequence and at the last position of each short one, so both sets have "
          "the same number of items. Per layer, stage and set: the items' cosine-similarity matrix; "
          "participation ratio and effective dimensionality (components needed to pass {threshold}% variance) "
          "of the mean-centred items via SVD; RSA (Pearson r between the upper triangles of two stages' cosine "
          "matrices) for the six stage pairs. Intervals ({level}%, percentile, {n_boot} resamples): the "
          "long-sequence tokens are resampled in circular blocks of consecutive tokens (block length per layer "
          "by the Politis–White rule on the items' leading principal components), the short sequences one by "
          "one; pairs of copies of one item are left out of RSA and participation ratio. RSA one − many gets a "
          "two-sided bootstrap p-value, corrected across all layers × pairs by Benjamini–Hochberg (false "
          "discovery rate {alpha:g}; significant: p ≤ {alpha:g}).{across} Detailed figures show layer {focus}.")


def method(config) -> str:
    focus = config.focus_layer if isinstance(config.focus_layer, int) else (
        f"the block at relative depth {config.focus_layer:g}")
    r = config.replicates
    if r > 1:
        design = (f"The kept occurrences are cut into {r} runs of consecutive occurrences, {r} parts of the text "
                  "(replicates); each replicate's long sequence is the n + 1 tokens from the start of its part "
                  "(replicate 0: the start of the text), n being its number of short sequences. The pooled "
                  "statistics use every item of each set.")
        across = (f" Across the {r} replicates (the unit), the one − many differences of RSA, participation ratio "
                  "and effective dimensionality get one-sample t tests, each corrected by Benjamini–Hochberg "
                  "across all its layers × pairs or stages, and every statistic a t interval.")
    else:
        design = "With n such sequences, the long sequence is the first n + 1 tokens of the same text."
        across = ""
    return METHOD.format(source=config.source(), word=config.word, before=config.context - 1, context=config.context,
                         max_targets=config.max_targets, threshold=f"{config.threshold:g}", level=f"{CI_LEVEL:.0f}",
                         n_boot=config.n_boot, focus=focus, design=design, alpha=ALPHA, across=across)


def _agreement(r: MlpStagesResult) -> str:
    per = r.per_replicate
    agreement = sign_agreement(per.rsa_one - per.rsa_many, r.rsa("one") - r.rsa("many"), r.differs())
    return agreement_sentence(agreement, r.replicates, "layer × pair cells (RSA one − many)", "replicate")


def _dims_rows(r: MlpStagesResult) -> list[KeyNumber]:
    focus = r.focus_layer
    pr, effdim = ({w: r.dims(m, w) for w in SETS} for m in ("pr", "effdim"))
    pr_ci = {w: r.pr_ci(w) for w in SETS}
    rows = []
    for i, s in enumerate(STAGES):
        one, many = (f"{w} {pr[w][focus, i]:.1f} [{pr_ci[w][0, focus, i]:.1f}, {pr_ci[w][1, focus, i]:.1f}] / "
                     f"{effdim[w][focus, i]}" for w in SETS)
        rows.append(KeyNumber(f"Layer {focus} {SITES[s]}: PR [{CI_LEVEL:.0f}% CI] / eff. dim.", f"{one}; {many}"))
    lower = (effdim["many"] < effdim["one"]).sum()
    test = (f"pooled sets ({r.n_targets} items each)" if r.replicates < 2 else
            f"across {r.replicates} replicates, t test of one − many, BH: one higher at "
            f"{int((r.across('effdim_diff', 'significant') * (r.across('effdim_diff') > 0)).sum())} of "
            f"{effdim['one'].size} (effective dim.), "
            f"{int((r.across('pr_diff', 'significant') * (r.across('pr_diff') > 0)).sum())} (PR)")
    rows.append(KeyNumber("Layer × stage cells where the many set is lower-dimensional",
                          f"effective dim. {int(lower)} of {effdim['one'].size}, PR "
                          f"{int((pr['many'] < pr['one']).sum())} of {pr['one'].size}", test))
    return rows


def key_numbers(r: MlpStagesResult) -> tuple[KeyNumber, ...]:
    n, focus, many = r.n_targets, r.focus_layer, r.replicates > 1
    rsa = {w: r.rsa(w) for w in SETS}
    ci, diff_ci, differs = {w: r.ci(w) for w in SETS}, r.ci("diff"), r.differs()
    where = (f"{r.replicates} replicates × {r.n_per_replicate}: positions 1..{r.n_per_replicate} of "
             f"{r.replicates} long sequences of {r.long_sequence_tokens} tokens" if many else
             f"positions 1..{n} of one {n + 1}-token sequence")
    blocks = np.array([e.block_one for e in r.layers])
    rows = [
        KeyNumber("Items per set", f"{n}: {where}; {n} sequences of {r.context} tokens ending in {r.word!r}",
                  f"{r.n_dropped} of {r.n_occurrences} occurrences dropped (too little context)"
                  + (f", {r.n_capped} thinned out" if r.n_capped else "")),
        KeyNumber("MLP stages on this model", r.kind_sentence()),
        KeyNumber("Bootstrap block length (one-sequence tokens)",
                  f"median {np.median(blocks):g}, {blocks.min()}–{blocks.max()} across layers",
                  "Politis–White on the items' leading principal components; 1 = no dependence found"),
    ]
    rows += _dims_rows(r)
    for j, p in enumerate(PAIR_NAMES):
        lo, hi = diff_ci[:, focus, j]
        entry = r.layers[focus]
        verdict = "differ" if differs[focus, j] else "no clear difference"
        one, many_ = (f"{w} {rsa[w][focus, j]:.3f} [{ci[w][0, focus, j]:.3f}, {ci[w][1, focus, j]:.3f}]"
                      for w in SETS)
        rows.append(KeyNumber(f"Layer {focus} RSA {p}", f"{one}; {many_}",
                              f"one − many: {CI_LEVEL:.0f}% CI [{lo:.3f}, {hi:.3f}], BH p = "
                              f"{entry.rsa_diff_p_bh[p]:.2g}, {verdict}"))
    across = (f"across {r.replicates} replicates (t test, BH over the {differs.size}): "
              f"{int(r.across('rsa_diff', 'significant').sum())}" if many else f"across replicates: {NEEDS_TWO}")
    rows += [
        KeyNumber("RSA scores where one and many differ", f"{int(differs.sum())} of {differs.size} (layer × pair)",
                  f"pooled bootstrap, Benjamini–Hochberg over the {differs.size} (uncorrected: "
                  f"{int(r.differs_uncorrected().sum())}); {across}"),
        KeyNumber("Replicates agreeing with the pooled result", _agreement(r) if many else NEEDS_TWO),
    ]
    return tuple(rows)


def notes(r: MlpStagesResult, config) -> tuple[str, ...]:
    out = list(r.data_notes)
    if r.n_capped:
        out.append(f"{r.n_capped} of {r.n_capped + r.n_targets} usable occurrences were left out to keep "
                   f"max_targets={config.max_targets} and {r.replicates} equal replicates (evenly spaced through "
                   "the text); raise max_targets to use more (bootstrap time grows with its square).")
    out += [
        "Stages on this model: " + "; ".join(f"{info.site} = {info.meaning}" for info in r.stages.values()) + ".",
        "Effective dimensionality here is the number of components needed to pass the threshold; the seed "
        "returns np.where(cumPctVar > 95)[0][0], a 0-based index, so the seed's value is ours minus one "
        "(tables/dimensionality.csv has both).",
        f"n_targets counts the short sequences kept ({r.n_targets}); the seed's ntargets counts every occurrence, "
        "including those whose slice tokens[idx-9:idx+1] breaks for lack of context. Each long sequence has one "
        "token more than its replicate's short sequences, so both sets hold the same number of items.",
        "As in the seed, the long sequences are unrelated to the word: their items are different tokens in one "
        "context, the short set's are one token in different contexts.",
        "Bootstrap: the long-sequence tokens are consecutive, so they are resampled in blocks (circular, within "
        "each long sequence); resampling them one by one, as if independent, gave 95% intervals that covered the "
        "truth 78% (RSA) and 74% (PR) of the time in an autoregressive simulation (320 tokens, φ = 0.7; blocks: "
        "92%; docs/results.md). Pairs of copies "
        "of one item are left out of RSA and of the participation ratio (their similarity to themselves would "
        "inflate r and deflate PR). The one-minus-many interval uses independent resamples of the two sets.",
        "Effective dimensionality has no bootstrap interval: a resample of n items holds only about 0.63 n "
        "distinct ones, and the component count falls with them (by about a third on SmolLM2's one-sequence "
        "items). Its uncertainty is given across replicates.",
        "The one − many decisions are corrected across all layers × pairs (Benjamini–Hochberg), not per layer: "
        "the report reads them as one laminar profile. The intervals shown are the uncorrected 95% ones.",
        "Statistics are computed in float64 (the seed works in float32); values agree to about 1e-6.",
        "Histogram x-ranges show the central 99% of the values by default (presentation option coverage; the "
        "seed fixed [-5, 5] for GPT-2), and the stage-vs-stage cosine figure covers both sets (the seed drew "
        "the one-sequence set only).",
    ]
    if r.replicates > 1:
        out.append(f"Replicate values are computed on {r.n_per_replicate} items per set; participation ratio and "
                   "effective dimensionality grow with the number of items, so the replicates' (and the profile "
                   "bands') values lie below the pooled ones, while RSA does not depend on it. One − many is "
                   "compared within each replicate, at equal numbers of items.")
    if r.model.prepend_bos:
        out.append(f"{r.model.name} gets a BOS token before every sequence (its family's policy); it is never "
                   "recorded, and the long sequences' items are still positions 1..n of the text's tokens.")
    return tuple(out)


def report(result: MlpStagesResult, config) -> Report:
    return Report(method=method(config), key_numbers=key_numbers(result), notes=notes(result, config))
