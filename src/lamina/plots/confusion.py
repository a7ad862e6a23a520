"""Classification figures: per-class accuracy with chance level, row-normalised confusion heat map."""

from __future__ import annotations

import numpy as np


def accuracy_bars(ax, accuracy: np.ndarray, chance: float):
    """Bars of per-class accuracy (percent, shape ``(k,)``), labelled, with a dashed chance line."""
    for i, acc in enumerate(accuracy):
        ax.bar(i, acc)
        ax.text(i, 1 + acc, f"{acc:.1f}%", fontsize=10, fontweight="bold", ha="center", va="bottom")
    ax.axhline(chance, linestyle="--", color="k", linewidth=0.8, zorder=-10, label=f"chance ({chance:.1f}%)")
    ax.set_xticks(range(len(accuracy)))
    ax.set_ylim(0, max(100.0, float(np.nanmax(accuracy)) + 12))
    ax.legend(fontsize=8, loc="upper center")


def confusion_heatmap(ax, percent: np.ndarray, *, value_range=(0.0, 100.0)):
    """Row-normalised confusion matrix (percent, rows = true class) as an annotated heat map,
    coloured over ``value_range`` (low, high)."""
    import seaborn as sns

    sns.heatmap(np.nan_to_num(percent), annot=True, fmt=".1f", cmap="Reds", annot_kws={"size": 11}, ax=ax,
                vmin=value_range[0], vmax=value_range[1])
