"""Report text of ``position``: method, key numbers, notes, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .result import LEVEL, PositionResult, span

METHOD = ("The first {seqlen} tokens of HellaSwag {split} contexts (rows {train_start}-{train_end} for "
          "training, {test_start}-{test_end} held out{more}) go through the model in one recording; the loss at "
          "position t is -log p(token t+1 | tokens up to t). Position is regressed on loss with OLS "
          "(statsmodels; standard errors cluster-robust by context, since the {n_classes} tokens of one context "
          "share it) and decoded with a multinomial logistic regression (scikit-learn, lbfgs) fit on the "
          "training contexts. Only the held-out contexts test the decoder: their accuracy gets a {level:g}% "
          "interval and a one-sided t test against chance (1/{n_classes}) with the context as the unit. "
          "Significant: p ≤ {alpha}.")


def method(config) -> str:
    r = config.replicates
    more = (f"; {r - 1} more disjoint pairs of ranges, each shifted by {span(config)} rows, are replicates "
            "with their own fits, and the pooled result fits all training contexts and tests on all held-out "
            "ones" if r > 1 else "")
    text = METHOD.format(seqlen=config.seqlen, split=config.split, train_start=config.train_start,
                         train_end=config.train_start + config.n_samples - 1, test_start=config.test_start,
                         test_end=config.test_start + config.n_samples - 1, n_classes=config.seqlen - 1,
                         more=more, level=LEVEL, alpha=config.alpha)
    if r > 1:
        text += (" Across replicates, each replicate's held-out accuracy is one observation: their mean is tested "
                 "against chance with a one-sided t test (replicates as the unit).")
    return text


def _across(result: PositionResult) -> tuple[KeyNumber, ...]:
    a = result.across
    if a is None:
        return (KeyNumber("Across replicates", "needs at least 2 replicates",
                          "--set replicates=6 (the default) or at least 2"),)
    acc = a.test_accuracy
    return (
        KeyNumber(f"Held-out accuracy across {a.n} replicates",
                  f"{acc.mean:.1f}% ({a.level:g}% interval {acc.ci_low:.1f}-{acc.ci_high:.1f}%)",
                  f"one-sided t test against chance, replicates as the unit: t = {acc.t:.2f}, p = {acc.p:.2g}"),
        KeyNumber("Replicates that agree with the pooled result", f"{a.n_agree} of {a.n}",
                  "agree: the replicate's own held-out test reaches the pooled decision "
                  f"({'significant' if result.test.significant else 'not significant'} at p ≤ {result.alpha})"),
    )


def report(result: PositionResult, config) -> Report:
    fit, chance, test = result.ols, result.chance_percent, result.test
    train = result.tokens.train_losses.astype(float)
    key_numbers = (
        KeyNumber("OLS slope of position on loss",
                  f"{fit.slope:.3f} positions per nat ({LEVEL:g}% interval {fit.ci_low:.3f} to {fit.ci_high:.3f})",
                  f"cluster-robust by context ({fit.n_contexts} contexts): t = {result.ols_t_slope:.2f}, "
                  f"p = {fit.p_slope:.2g}; R² = {fit.r2:.3f}"),
        KeyNumber("Held-out test accuracy",
                  f"{test.accuracy:.1f}% ({LEVEL:g}% interval {test.ci_low:.1f}-{test.ci_high:.1f}%; chance "
                  f"{chance:.1f}%)",
                  f"one-sided t test over {result.n_test} held-out contexts: p = {test.p_above_chance:.2g}"),
        *_across(result),
        KeyNumber("Train accuracy (logistic, in sample)", f"{result.train.accuracy:.1f}% (chance {chance:.1f}%)",
                  "descriptive: the decoder was fit on these contexts"),
        KeyNumber("Mean loss at position 0 vs last", f"{train[:, 0].mean():.2f} vs {train[:, -1].mean():.2f} nats"),
    )
    notes = list(result.data_notes) + [
        "The seed reads HellaSwag's ctx_a; lamina's local copy holds ctx (ctx_a followed by ctx_b). Their "
        "first tokens agree whenever ctx_a is at least seqlen tokens long.",
        "The seed's test confusion matrix reuses the training position vector; here each split uses its "
        "own (identical when both splits keep every context).",
        "The seed's OLS p-values treat every token as independent, though each context contributes "
        f"{result.seqlen - 1} tokens that share it; lamina's are cluster-robust by context (iid for comparison: "
        f"slope p = {fit.p_slope_iid:.2g}, standard error {fit.se_slope_iid:.4f} vs {fit.se_slope:.4f}). The seed "
        "judges nothing by training accuracy; lamina tests only the held-out accuracy, with the context as the "
        "unit (a binomial test over tokens would treat the positions of one context as independent).",
        "Contexts from neighbouring HellaSwag rows often share an activity (and a source video or article), so "
        "contexts are not fully independent either; the replicates are disjoint row ranges far apart.",
    ]
    if result.model.prepend_bos:
        notes.append(f"{result.model.name} gets a BOS token before each context (its family's policy), so the "
                     "loss at position 0 is conditioned on BOS and the first token.")
    return Report(method=method(config), key_numbers=key_numbers, notes=tuple(notes))
