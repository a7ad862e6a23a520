"""Report text of ``position``: method, key numbers, notes, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .result import PositionResult

METHOD = ("The first {seqlen} tokens of HellaSwag {split} contexts (rows {train_start}-{train_end} for "
          "training, {test_start}-{test_end} held out) go through the model; the loss at position t is "
          "-log p(token t+1 | tokens up to t). Position is regressed on loss with OLS (statsmodels) and "
          "decoded with a multinomial logistic regression (scikit-learn, lbfgs) fit on the training "
          "contexts and evaluated on both sets. Chance is 1/{n_classes} positions.")


def method(config) -> str:
    return METHOD.format(seqlen=config.seqlen, split=config.split, train_start=config.train_start,
                         train_end=config.train_start + config.n_samples - 1, test_start=config.test_start,
                         test_end=config.test_start + config.n_samples - 1, n_classes=config.seqlen - 1)


def report(result: PositionResult, config) -> Report:
    fit, chance = result.ols, result.chance_percent
    train = result.tokens.train_losses.astype(float)
    key_numbers = (
        KeyNumber("OLS slope of position on loss", f"{fit.slope:.3f} positions per nat",
                  f"t = {result.ols_t_slope:.2f}, p = {fit.p_slope:.2g}, R² = {fit.r2:.3f}"),
        KeyNumber("Train accuracy (logistic)", f"{result.train.accuracy:.1f}% (chance {chance:.1f}%)",
                  f"binomial test vs chance: p = {result.train.p_above_chance:.2g}"),
        KeyNumber("Held-out test accuracy", f"{result.test.accuracy:.1f}% (chance {chance:.1f}%)",
                  f"binomial test vs chance: p = {result.test.p_above_chance:.2g}"),
        KeyNumber("Mean loss at position 0 vs last", f"{train[:, 0].mean():.2f} vs {train[:, -1].mean():.2f} nats"),
    )
    notes = list(result.data_notes) + [
        "The seed reads HellaSwag's ctx_a; lamina's local copy holds ctx (ctx_a followed by ctx_b). Their "
        "first tokens agree whenever ctx_a is at least seqlen tokens long.",
        "The seed's test confusion matrix reuses the training position vector; here each split uses its "
        "own (identical when both splits keep every context).",
    ]
    if result.model.prepend_bos:
        notes.append(f"{result.model.name} gets a BOS token before each context (its family's policy), so the "
                     "loss at position 0 is conditioned on BOS and the first token.")
    return Report(method=method(config), key_numbers=key_numbers, notes=tuple(notes))
