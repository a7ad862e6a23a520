"""One estimate per replicate with its interval, beside their mean across replicates with its interval."""

from __future__ import annotations

import numpy as np


def replicate_intervals(ax, values, low, high, *, significant=None, mean=None, mean_interval=None,
                        reference=None, reference_label="chance", color="tab:blue"):
    """Per replicate (x = 0..R-1): the estimate (shape ``(R,)``) with its interval ``low..high``; filled
    where ``significant``. ``mean`` and ``mean_interval`` (low, high) are drawn as a band across the
    replicates, ``reference`` (e.g. chance) as a dashed line.
    """
    values = np.asarray(values, dtype=float)
    x = np.arange(len(values))
    sig = np.ones(len(values), bool) if significant is None else np.asarray(significant, bool)
    if mean_interval is not None:
        ax.axhspan(*mean_interval, color=color, alpha=0.15, linewidth=0, label="mean across replicates, interval")
    if mean is not None:
        ax.axhline(mean, color=color, linewidth=1)
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="k", linewidth=0.8, label=reference_label)
    ax.vlines(x, low, high, color=color, linewidth=1.5)
    ax.plot(x[sig], values[sig], "o", color=color, markersize=8, linestyle="none")
    ax.plot(x[~sig], values[~sig], "o", color=color, markerfacecolor="white", markersize=8, linestyle="none")
    ax.set_xticks(x)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel("Replicate")
    ax.legend(fontsize=8)
