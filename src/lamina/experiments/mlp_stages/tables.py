"""The replicate tables of ``mlp-stages`` (tables/replicates.csv, tables/across.csv), from the result."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .result import PAIR_NAMES, SETS, SITES, STAGES, MlpStagesResult


def replicate_table(result: MlpStagesResult) -> pd.DataFrame:
    """Each replicate's statistics, one row per replicate, layer, set and stage or pair."""
    per, rows = result.per_replicate, []
    for which in SETS:
        for metric, names in (("pr", STAGES), ("effdim", STAGES), ("rsa", PAIR_NAMES)):
            values = getattr(per, f"{metric}_{which}")  # (R, n_layers, k)
            r, layer, k = np.meshgrid(*(np.arange(d) for d in values.shape), indexing="ij")
            rows.append(pd.DataFrame({"replicate": r.ravel(), "layer": layer.ravel(), "set": which, "metric": metric,
                                      "stage_or_pair": np.array([SITES[n] if metric != "rsa" else n
                                                                 for n in names])[k.ravel()],
                                      "value": values.ravel().astype(float)}))
    return pd.concat(rows, ignore_index=True)


def across_table(result: MlpStagesResult) -> pd.DataFrame:
    """One − many across replicates: one row per layer, metric and stage or pair."""
    rows = []
    for entry in result.layers:
        for metric in ("rsa_diff", "pr_diff", "effdim_diff"):
            for key, test in getattr(entry.across, metric).items():
                rows.append({"layer": entry.layer, "metric": metric, "stage_or_pair": SITES.get(key, key),
                             **{f: getattr(test, f) for f in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected",
                                                               "significant")}})
    return pd.DataFrame(rows)
