"""Report text of ``attn-autoregression``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ..base import KeyNumber, Report
from .result import AutoregressionResult

METHOD = ("A passage ({source}; {n_tokens} tokens) goes through the model; at every layer the attention "
          "output after its projection (site attn.out) gives one vector per token, and its log L2 norm y. "
          "Per layer, ordinary least squares fits y[t] = b0 + b1 y[t-1] + b2 y[t-2] over t = {first}..T-1 "
          "(statsmodels: betas, standard errors, two-sided t-test p-values). Across layers the p-values are "
          "corrected with Benjamini-Hochberg (false discovery rate {alpha}).")


def report(result: AutoregressionResult, config) -> Report:
    alpha, n, sig = config.alpha, len(result.layers), result.significant_layers
    best = int(np.argmin(result.column("p_t1")))
    strongest = result.layers[best]
    key_numbers = (
        KeyNumber("Layers where t-1 predicts t", f"{sig.t1_raw} of {n} (p < {alpha})",
                  f"{sig.t1_bh} of {n} after Benjamini-Hochberg"),
        KeyNumber("Layers where t-2 predicts t", f"{sig.t2_raw} of {n} (p < {alpha})",
                  f"{sig.t2_bh} of {n} after Benjamini-Hochberg"),
        KeyNumber("Strongest t-1 layer", f"layer {best}: beta = {strongest.beta_t1:.3f} (SE {strongest.se_t1:.3f})",
                  f"p = {strongest.p_t1:.2g}, BH p = {strongest.p_t1_bh:.2g}, R² = {strongest.r2:.3f}"),
        KeyNumber("Mean R² across layers", f"{result.column('r2').mean():.3f}"),
    )
    notes = list(result.data_notes) + [
        "Seed 002 regresses t = 3..T-1 although t = 2 already has both predictors; lamina keeps that "
        "(setting first_target).",
        "Seed 002 hooks the attention module's output[0]; lamina's attn.out is the output of the projection "
        "inside it, the same tensor in eval mode (docs/sites.md).",
        "Consecutive residuals of a time series may be autocorrelated; the OLS p-values assume they are not.",
    ]
    if result.model.prepend_bos:
        notes.append(f"{result.model.name} gets a BOS token before the passage (its family's policy); the BOS "
                     "position is not part of the regression.")
    method = METHOD.format(source=result.source, n_tokens=result.n_tokens, first=config.first_target, alpha=alpha)
    return Report(method=method, key_numbers=key_numbers, notes=tuple(notes))
