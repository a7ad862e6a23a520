"""Report text of ``demo-norms``."""

from __future__ import annotations

import numpy as np

from lamina.experiments import KeyNumber, Report

from .result import NormsResult


def report(result: NormsResult, config) -> Report:
    means = result.column("mean")
    top = int(np.nanargmax(means))
    method = (f"{result.replicates} windows of {result.window} tokens of a fixed paragraph go through "
              f"{result.model.name}; at every hidden entry the log L2 norm of each token's hidden state is "
              "averaged over the window's tokens, and the windows' means get a one-sample t test against 0 with "
              "a 95% t interval (windows as the unit), Benjamini–Hochberg over entries.")
    key = (KeyNumber("largest mean log norm", f"{means[top]:.3f} at entry {top}",
                     f"95% CI {result.entries[top].ci_low:.3f} to {result.entries[top].ci_high:.3f}"),
           KeyNumber("entries with p ≤ alpha", f"{sum(e.significant for e in result.entries)} of {len(means)}"))
    return Report(method=method, key_numbers=key, notes=("A demonstration experiment defined outside lamina.",))
