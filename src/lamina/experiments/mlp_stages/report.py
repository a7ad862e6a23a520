"""Report text of ``mlp-stages``: method, key numbers, notes, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .result import CI_LEVEL, PAIR_NAMES, SETS, SITES, STAGES, MlpStagesResult

METHOD = ("The text ({source}) is tokenized once. Every occurrence of {word!r} with at least {before} tokens "
          "before it gives one short sequence of {context} tokens that ends with it (more than {max_targets} "
          "are thinned evenly); with n such sequences, the long sequence is the first n + 1 tokens of the same "
          "text. mlp.in, mlp.pre, mlp.post and mlp.out are recorded at every layer, at positions 1..n of the "
          "long sequence and at the last position of each short one, so both sets have n items. Per layer, "
          "stage and set: the items' cosine-similarity matrix; participation ratio and effective "
          "dimensionality (components needed to pass {threshold}% variance) of the mean-centred items via "
          "SVD; RSA (Pearson r between the upper triangles of two stages' cosine matrices) for the six stage "
          "pairs, with a {level}% percentile bootstrap interval from {n_boot} resamples of items, and the "
          "interval of the one-minus-many difference. Detailed figures show layer {focus}.")


def method(config) -> str:
    focus = config.focus_layer if isinstance(config.focus_layer, int) else (
        f"the block at relative depth {config.focus_layer:g}")
    return METHOD.format(source=config.source(), word=config.word, before=config.context - 1, context=config.context,
                         max_targets=config.max_targets, threshold=f"{config.threshold:g}", level=f"{CI_LEVEL:.0f}",
                         n_boot=config.n_boot, focus=focus)


def key_numbers(r: MlpStagesResult) -> tuple[KeyNumber, ...]:
    n, focus = r.n_targets, r.focus_layer
    pr, effdim = ({w: r.dims(m, w) for w in SETS} for m in ("pr", "effdim"))
    rsa = {w: r.rsa(w) for w in SETS}
    ci, diff_ci, differs = {w: r.ci(w) for w in SETS}, r.ci("diff"), r.differs()
    rows = [
        KeyNumber("Items per set", f"{n}: positions 1..{n} of one {n + 1}-token sequence; {n} sequences of "
                                   f"{r.context} tokens ending in {r.word!r}",
                  f"{r.n_dropped} of {r.n_occurrences} occurrences dropped (too little context)"
                  + (f", {r.n_capped} thinned out" if r.n_capped else "")),
        KeyNumber("MLP stages on this model", r.kind_sentence()),
    ]
    for i, s in enumerate(STAGES):
        rows.append(KeyNumber(f"Layer {focus} {SITES[s]}: PR / eff. dim.",
                              f"one {pr['one'][focus, i]:.1f} / {effdim['one'][focus, i]}; "
                              f"many {pr['many'][focus, i]:.1f} / {effdim['many'][focus, i]}"))
    for j, p in enumerate(PAIR_NAMES):
        lo, hi = diff_ci[:, focus, j]
        verdict = "differ" if differs[focus, j] else "no clear difference"
        one, many = (f"{w} {rsa[w][focus, j]:.3f} [{ci[w][0, focus, j]:.3f}, {ci[w][1, focus, j]:.3f}]" for w in SETS)
        rows.append(KeyNumber(f"Layer {focus} RSA {p}", f"{one}; {many}",
                              f"one − many: {CI_LEVEL:.0f}% CI [{lo:.3f}, {hi:.3f}], {verdict}"))
    rows.append(KeyNumber("RSA scores where one and many differ", f"{int(differs.sum())} of {differs.size} "
                          "(layer × pair)", f"{CI_LEVEL:.0f}% bootstrap CI of one − many excludes 0; uncorrected "
                          f"for the {differs.size} comparisons"))
    return tuple(rows)


def notes(r: MlpStagesResult, config) -> tuple[str, ...]:
    out = list(r.data_notes)
    if r.n_capped:
        out.append(f"{r.n_capped} of {r.n_capped + r.n_targets} usable occurrences were left out to keep "
                   f"max_targets={config.max_targets} (evenly spaced through the text); raise max_targets to use "
                   "more (bootstrap time grows with its square).")
    out += [
        "Stages on this model: " + "; ".join(f"{info.site} = {info.meaning}" for info in r.stages.values()) + ".",
        "Effective dimensionality here is the number of components needed to pass the threshold; the seed "
        "returns np.where(cumPctVar > 95)[0][0], a 0-based index, so the seed's value is ours minus one "
        "(tables/dimensionality.csv has both).",
        f"n_targets counts the short sequences kept ({r.n_targets}); the seed's ntargets counts every occurrence, "
        "including those whose slice tokens[idx-9:idx+1] breaks for lack of context. The long sequence has "
        "n_targets + 1 tokens so that both sets hold the same number of items.",
        "As in the seed, the long sequence is the start of the text, unrelated to the word: its items are "
        "different tokens in one context, the short set's are one token in different contexts.",
        "Bootstrap: items are resampled with replacement, the same resample for both stages of a pair; pairs "
        "of copies of one item are left out of the resampled triangle (their cosine is 1 in every stage and "
        "would inflate r). The one-minus-many interval uses independent resamples of the two sets.",
        "Statistics are computed in float64 (the seed works in float32); values agree to about 1e-6.",
        "Histogram x-ranges show the central 99% of the values by default (presentation option coverage; the "
        "seed fixed [-5, 5] for GPT-2), and the stage-vs-stage cosine figure covers both sets (the seed drew "
        "the one-sequence set only).",
    ]
    if r.model.prepend_bos:
        out.append(f"{r.model.name} gets a BOS token before every sequence (its family's policy); it is never "
                   "recorded, and the long sequence's items are still positions 1..n of the text's tokens.")
    return tuple(out)


def report(result: MlpStagesResult, config) -> Report:
    return Report(method=method(config), key_numbers=key_numbers(result), notes=notes(result, config))
