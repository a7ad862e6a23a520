"""Figures of ``position``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ...plots.confusion import accuracy_bars, confusion_heatmap
from ...plots.distributions import density_lines, means_with_points
from ...plots.regression import coefficient_bars, jitter_scatter
from ...plots.replicates import replicate_intervals
from ...stats.regression import confusion_percent
from .. import settings as shared
from ..base import Figure
from ..settings import setting
from .result import LEVEL, PositionResult


@dataclass
class PositionOptions:
    density_bins: int = shared.bins(10)  # bins of the per-position loss densities (np.histogram's default, as the seed)
    # colour range of the confusion matrices, percent
    confusion_range: tuple[float, ...] = setting((0.0, 100.0), items=2, order="<", why="low,high")


def figures(result: PositionResult, config, options: PositionOptions) -> dict[str, Figure]:
    train = result.tokens.train_losses.astype(float)
    k = train.shape[1]
    positions = np.tile(np.arange(k), (len(train), 1)).ravel().astype(float)
    rng = np.random.default_rng(0)  # jitter only: a fixed seed redraws the same figure
    chance = result.chance_percent
    out = {}
    fig, (a, b) = figure(2, size=(12, 4), width_ratios=[2, 1])
    means_with_points(a, train, rng)
    a.set(xlabel="Token position", ylabel="Loss", title="A) Next-token prediction loss")
    density_lines(b, train, [f"Token {i}" for i in range(k)], bins=options.density_bins)
    b.set(xlabel="Per-token loss", ylabel="Probability density", title="B) Distribution by token position")
    out["loss_by_position"] = Figure(fig, "Next-token loss by position (training contexts): mean with every "
                                          "token (A) and its distribution per position (B).")
    fig, ax = figure(1, size=(8, 4))
    jitter_scatter(ax, positions, result.ols.const + result.ols.slope * train.ravel(), rng)
    ax.set(xlabel="True positions", ylabel="Predicted positions", xticks=range(k), yticks=range(k),
           title="Linear regression: predicted vs true position")
    out["linear_predictions"] = Figure(fig, "Positions predicted by the OLS fit of position on loss, against "
                                            "the true positions (jittered).")
    fig, (a, b) = figure(2, size=(12, 4))
    coefficient_bars(a, result.logistic.coefs, [0.9, 0.7, 0.7])
    a.set(xlabel="Token position", ylabel="Coefficient value", title="A) Relative slopes")
    coefficient_bars(b, result.logistic.intercepts, [0.7, 0.7, 0.9])
    b.set(xlabel="Token position", ylabel="Coefficient value", title="B) Relative intercepts")
    out["logistic_coefficients"] = Figure(fig, "Multinomial logistic regression: per-position slope on loss (A) "
                                               "and intercept (B).")
    for split, scores in (("train", result.train), ("test", result.test)):
        fig, (a, b) = figure(2, size=(11, 4))
        accuracy_bars(a, scores.accuracy_by_position, chance)
        a.set(xlabel="Token position", ylabel="Prediction accuracy (%)",
              title="A) Position-specific prediction accuracy")
        confusion_heatmap(b, confusion_percent(scores.confusion), value_range=options.confusion_range)
        b.set(xlabel="Predicted position", ylabel="True position", title="B) Confusion matrix (% row-wise)")
        fig.suptitle(f"{split.upper()} performance", fontsize=14, fontweight="bold")
        which = ("training contexts (in sample: descriptive)" if split == "train" else
                 f"held-out contexts (overall {scores.accuracy:.1f}%, {LEVEL:g}% interval over contexts "
                 f"{scores.ci_low:.1f}-{scores.ci_high:.1f}%)")
        out[f"{split}_performance"] = Figure(fig, f"Logistic decoding on the {which}: accuracy per position "
                                                  f"with chance dashed (A), row-normalised confusion (B).")
    out["replicates"] = _replicates(result)
    return out


def _replicates(result: PositionResult) -> Figure:
    reps, a = result.replicates, result.across
    fig, (left, right) = figure(2, size=(11, 4))
    replicate_intervals(left, [r.test_accuracy for r in reps], [r.test_ci_low for r in reps],
                        [r.test_ci_high for r in reps], significant=[r.significant for r in reps],
                        mean=a.test_accuracy.mean if a else None,
                        mean_interval=(a.test_accuracy.ci_low, a.test_accuracy.ci_high) if a else None,
                        reference=result.chance_percent)
    left.set(ylabel="Held-out accuracy (%)", title="A) Held-out accuracy per replicate")
    replicate_intervals(right, [r.slope for r in reps], [r.slope_ci_low for r in reps],
                        [r.slope_ci_high for r in reps],
                        significant=[r.p_slope <= result.alpha for r in reps], mean=a.slope.mean if a else None,
                        mean_interval=(a.slope.ci_low, a.slope.ci_high) if a else None, reference=0.0,
                        reference_label="zero", color="tab:red")
    right.set(ylabel="Positions per nat", title="B) OLS slope of position on loss per replicate")
    across = (f" Band: the mean across the {a.n} replicates and its {a.level:g}% t interval (replicates as the "
              "unit)." if a else " One replicate: nothing to compare across (--set replicates=2 or more).")
    return Figure(fig, "Each replicate is a disjoint pair of HellaSwag row ranges with its own decoder. (A) Held-out "
                       f"accuracy with its {LEVEL:g}% interval over contexts, filled where the one-sided t test "
                       f"over contexts has p <= {result.alpha}; chance dashed. (B) The OLS slope with its cluster-robust "
                       f"{LEVEL:g}% interval, filled where its p <= {result.alpha}." + across)
