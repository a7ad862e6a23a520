"""Report text of ``attn-autoregression``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ...stats.multiple import significant
from ..across import NEEDS_TWO, agreement_sentence, sign_agreement
from ..base import KeyNumber, Report
from ...stats.autoregression import FLOAT32_ULPS
from .result import GATSBY_OPENING, LAGS, AutoregressionResult

SEED_PASSAGE = ("Seed 002 fits a Wikipedia passage on Hungarian rock (its text is in the notebook); lamina's default "
                "is the opening of The Great Gatsby, which lamina reads offline, and the passages after it. Run the "
                "seed's passage with --set text=\"...\" (one passage).")
SE_TEXT = {"ols": "ordinary least-squares standard errors (independent errors of one variance, as the seed)",
           "hac": "Newey–West (HAC) standard errors within each passage, {lags} lags (robust to residual "
                  "autocorrelation and unequal variances)"}


CORRECTION = {"max": "family-wise over the tested layers by the max-|t| of sign flips of whole passages",
              "holm": "family-wise over the tested layers by Holm"}


def method(result: AutoregressionResult, config) -> str:
    r, alpha = result.replicates, config.alpha
    se = SE_TEXT[result.se].format(lags=result.hac_lags)
    passages = (f"{r} consecutive passages ({result.source}; each cut at the first sentence end after "
                f"{config.min_tokens} tokens; {result.n_tokens} tokens in all) go" if r > 1 else
                f"A passage ({result.source}; {result.n_tokens} tokens) goes")
    text = (f"{passages} through the model, and so does each passage with its tokens in a seeded random order (the "
            "same tokens: the token-order control), all in one recording; at every layer the attention output after "
            "its projection (site attn.out) gives one vector per token, and its log L2 norm y. Per layer and passage, "
            "least squares fits y[t] = a + b log t + c/t + β₁ y[t-1] + β₂ y[t-2] over "
            f"t = {config.first_target}..T-1 "
            "(t counts the passage's tokens from 1): the position terms take the trend over position out, so the "
            "betas are dependence beyond it, and the lags' partial R² beyond position is 1 − SSR(full) / "
            "SSR(position terms only). Each passage's betas are corrected for the downward bias of least squares "
            f"on short series by a parametric bootstrap ({result.n_boot} series simulated from the passage's fit). ")
    if r > 1:
        text += (f"Per layer, the {r} passages' corrected betas get a one-sample t test against 0 (passages as the "
                 "unit, 95% t interval), and the paired differences real − shuffled β₁ a t test against 0; "
                 "p-values "
                 f"are {CORRECTION['max']}, each lag and the order difference its own family. ")
    else:
        text += ("With one passage, the corrected betas are tested by the fit's own t test (OLS errors; the order "
                 "difference with the two fits' errors added), "
                 f"{CORRECTION['holm']}. ")
    text += (f"Significant means p ≤ {alpha}. Layers whose log norms are constant to float32 precision (SD at most "
             f"{FLOAT32_ULPS} float32 epsilons of their mean) are not tested. The position-adjusted residuals are "
             "tested for autocorrelation (Ljung–Box, 10 lags, 10 − 2 degrees of freedom per passage). For parity "
             f"with the seed, its fit is kept: y[t] = b0 + b1 y[t-1] + b2 y[t-2] without position terms, "
             + ("every passage pooled (lags never cross a passage boundary; one intercept per passage)" if r > 1
                else "the passage")
             + f", with {se}, Benjamini-Hochberg across layers per lag.")
    return text


def _agreement(r: AutoregressionResult) -> str:
    tested = ~np.array([layer.constant for layer in r.adjusted])
    means = np.stack([r.adjusted_column(lag)[tested] for lag in LAGS], axis=1)  # (layers, 2)
    cells = np.stack([[getattr(layer, lag).significant for layer in r.adjusted] for lag in LAGS], axis=1)[tested]
    per = np.stack([getattr(r.per_passage, f"adjusted_{lag}")[:, tested] for lag in LAGS], axis=2)
    return agreement_sentence(sign_agreement(per, means, cells), r.replicates, "(layer, lag) cells", "passage")


def _layers(indices) -> str:
    """Layer numbers as runs: 1–17, 20, 22."""
    runs, out = [], []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        out.append(f"{run[0]}–{run[-1]}" if len(run) > 2 else ", ".join(str(i) for i in run))
    return ", ".join(out)


def _estimate(result: AutoregressionResult, name: str, what: str, digits: int = 3) -> KeyNumber:
    """A tested estimate per layer: mean over the tested layers, their range, the largest layer with its
    interval; then the count significant family-wise with the range of their estimates."""
    tested = ~np.array([layer.constant for layer in result.adjusted])
    n = int(tested.sum())
    if not n:
        return KeyNumber(what, "not tested: every layer is constant to float32 precision")
    mean, low, high = (result.adjusted_column(name, f) for f in ("mean", "ci_low", "ci_high"))
    sig = np.array([getattr(layer, name).significant for layer in result.adjusted])
    best = int(np.nanargmax(np.abs(mean)))
    f = f"{{:+.{digits}f}}"
    value = (f"mean over {n} tested layer{'s' if n > 1 else ''} {f.format(np.nanmean(mean))} (layers "
             f"{f.format(np.nanmin(mean))} to {f.format(np.nanmax(mean))}); largest at layer {best}: "
             f"{f.format(mean[best])} "
             f"(95% CI {f.format(low[best])} to {f.format(high[best])})")
    k = int(sig.sum())
    correction = CORRECTION[result.correction]
    test = f"{k} of {n} layers ≠ 0 ({correction}, p ≤ {result.alpha})"
    if k:
        test += (f": {_layers(np.flatnonzero(sig))}, estimates {f.format(mean[sig].min())} to "
                 f"{f.format(mean[sig].max())}")
    return KeyNumber(what, value, test)


def key_numbers(result: AutoregressionResult) -> tuple[KeyNumber, ...]:
    alpha, n, sig = result.alpha, len(result.layers), result.significant_layers
    rows = []
    if result.replicates > 1:
        lengths = result.passage_tokens
        rows.append(KeyNumber("Passages", f"{result.replicates}, {min(lengths)}–{max(lengths)} tokens each, and "
                              "each again with its tokens shuffled",
                              f"{result.n_tokens} tokens, {result.n_targets} regression rows per layer in all"))
    constant = result.constant_layers
    if constant:
        sd = result.adjusted_column("log_norm_sd", None)[list(constant)]
        level = np.array([result.norms.log_norms[i].mean() for i in constant])
        ulps = sd / (np.spacing(np.abs(level).astype(np.float32)).astype(float))
        rows.append(KeyNumber("Layers not tested (constant)", f"{len(constant)} of {n}: {_layers(constant)}",
                              "log norms constant to float32 precision "
                              f"(SD {ulps.min():.1f}–{ulps.max():.1f} ulps of "
                              f"their level, at most {FLOAT32_ULPS} float32 epsilons): a fit would describe rounding"))
    rows += [
        _estimate(result, "t1", "β₁ beyond position (t-1 predicts t)"),
        _estimate(result, "t2", "β₂ beyond position (t-2 predicts t)"),
        _estimate(result, "order_t1", "Word order: β₁ real − shuffled"),
    ]
    tested = ~np.array([layer.constant for layer in result.adjusted])
    if tested.any():
        partial = result.adjusted_column("partial_r2")[tested]
        adjusted = result.adjusted_column("partial_r2_adj")[tested]
        shuffled = result.adjusted_column("shuffled_t1")[tested]
        real = result.adjusted_column("t1")[tested]
        rows += [
            KeyNumber("Lags' partial R² beyond position", f"mean over tested layers {partial.mean():.3f} (layers "
                      f"{partial.min():.3f} to {partial.max():.3f})",
                      f"adjusted for degrees of freedom (null about 0): {adjusted.mean():.3f} ({adjusted.min():.3f} to "
                      f"{adjusted.max():.3f}); R² of the position terms alone "
                      f"{np.nanmean(result.adjusted_column('r2_position', None)):.3f}"),
            KeyNumber("β₁ real vs shuffled order",
                      f"{real.mean():+.3f} vs {shuffled.mean():+.3f} (means over tested layers)",
                      "the same tokens in a random order: what is left of β₁ without word order"),
            KeyNumber("Layers with autocorrelated residuals",
                      f"{int(significant(result.adjusted_column('p_ljung_box', None), alpha).sum())} of "
                      f"{int(tested.sum())}",
                      f"position-adjusted fits; Ljung–Box, 10 lags, df 10 − 2 per passage, p ≤ {alpha} "
                      "(uncorrected)"),
        ]
    rows += [
        KeyNumber("Seed's fit (no position terms, pooled)",
                  f"t-1 at {sig.t1_raw} of {int(tested.sum())} tested layers, t-2 at {sig.t2_raw} (p ≤ {alpha}, "
                  f"uncorrected); mean R² {np.nanmean(result.column('r2')) if tested.any() else np.nan:.3f}",
                  f"after Benjamini-Hochberg {sig.t1_bh} and {sig.t2_bh}; {result.se.upper()} errors. Descriptive: a "
                  "trend over position or smoothness alone gives such fits"),
        KeyNumber("Passages agreeing with the mean",
                  _agreement(result) if result.replicates > 1 and tested.any() else NEEDS_TWO),
    ]
    return tuple(rows)


def notes(result: AutoregressionResult, config) -> tuple[str, ...]:
    out = list(result.data_notes)
    if config.text is None and config.text_file is None:
        out.append(SEED_PASSAGE if config.start == GATSBY_OPENING and config.book == "gatsby" else
                   "Seed 002 fits a Wikipedia passage on Hungarian rock (its text is in the notebook); this run "
                   "uses the passages named above.")
    out += [
        "Seed 002 regresses t = 3..T-1 although t = 2 already has both predictors; lamina keeps that "
        "(setting first_target).",
        "Seed 002 hooks the attention module's output[0]; lamina's attn.out is the output of the projection "
        "inside it, the same tensor in eval mode (docs/sites.md).",
        "Why position terms: a trend of the log norms over position (early tokens' updates differ from later "
        "ones) makes y[t-1] predict y[t] with no token-to-token dependence at all; a pure log-position trend gives "
        "the seed's fit R² 0.99 and a significant β₁ in every passage (simulation). With log t and 1/t in each "
        "passage's fit, the betas are dependence beyond the trend.",
        "Why the bias correction: least squares of an autoregression on ~90 tokens underestimates its betas (about "
        "−0.035 for β₁ without dependence, with the three position terms), and averaging passages keeps the bias, "
        "so an uncorrected test across passages rejects too often (β₂ under AR(1) φ = 0.5, family-wise over 5 "
        "layers of 8 passages: 20% at α = 0.05). With each passage's betas bias-corrected, the family-wise tests "
        "hold their level: 3.9–5.4% under a log-position trend, a trend of another shape, drift across the text, "
        "AR(1) for β₂ and the shuffle control (1000 simulations each; calibration/autoregression.py, "
        "docs/results.md).",
        "The token-order control feeds the model the same tokens in a random order. An autoregression that the "
        "shuffled passages show as well is smoothness of the attention output (each token's update averages over "
        "its prefix, so consecutive updates are similar), not dependence on word order; the real − shuffled "
        "difference of β₁ is the evidence for word order. One shuffle per passage, paired with it.",
        "The seed's fit (no position terms) is reported for parity, descriptively: its betas and R² mix the trend "
        "over position, smoothness and dependence. Its Benjamini-Hochberg runs per lag, two families of one test "
        "per layer; its standard errors are OLS by default (se=hac: Newey–West), neither calibrated on passages "
        "this short under dependent errors (docs/results.md).",
    ]
    if 1 < result.replicates and 2 / 2 ** result.replicates > result.alpha:
        out.append(f"With {result.replicates} passages there are {2 ** result.replicates} sign patterns, so the "
                   f"smallest family-wise p-value is {2 / 2 ** result.replicates:.3g} > {result.alpha}: no layer can "
                   "be significant. Use more passages (replicates; 8 by default).")
    if result.model.prepend_bos:
        out.append(f"{result.model.name} gets a BOS token before every passage (its family's policy); the BOS "
                   "position is not part of the regression.")
    return tuple(out)


def report(result: AutoregressionResult, config) -> Report:
    return Report(method=method(result, config), key_numbers=key_numbers(result), notes=notes(result, config))
