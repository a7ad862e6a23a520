"""The comparison's figures: every metric's profile on relative depth, and the differences of profiles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..experiments.base import Figure
from ..plots import figure
from ..plots.depth import depth_profile, difference_profile
from .tables import metrics

PANEL = (3.3, 2.4)  # inches per panel
COLUMNS = 4


def _grid(n: int):
    ncols = min(COLUMNS, n)
    nrows = math.ceil(n / ncols)
    fig, axes = figure(ncols=ncols, nrows=nrows, size=(PANEL[0] * ncols, PANEL[1] * nrows + 0.6))
    flat = list(np.atleast_1d(axes).ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _title(ax, site: str, metric: str) -> None:
    """A panel's title and the small type every comparison panel uses."""
    ax.set_title(f"{metric}  ({site})", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(8)


def _legend(fig, axes, ncols: int) -> None:
    """One legend below all panels, from the first panel's lines."""
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)), fontsize=8, frameon=False)


def profiles_figure(table: pd.DataFrame, band_table: pd.DataFrame, models: list[str]) -> Figure | None:
    """One panel per metric: each trained model (solid, its colour) and its control (dashed, same colour),
    intervals shaded, layers where the trained model leaves its control's band ringed in black."""
    pairs = metrics(table)
    if not pairs:
        return None
    fig, axes = _grid(len(pairs))
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, (site, metric) in zip(axes, pairs):
        rows = table[(table["site"] == site) & (table["metric"] == metric)]
        for model in models:
            for control in (False, True):
                prof = rows[(rows["model"] == model) & (rows["control"] == control)].sort_values("layer")
                if prof.empty:
                    continue
                exits = None
                if not control and not band_table.empty:
                    sel = band_table[(band_table["model"] == model) & (band_table["site"] == site)
                                     & (band_table["metric"] == metric)].sort_values("layer")
                    if len(sel) == len(prof):
                        exits = sel["outside"].to_numpy(bool)
                depth_profile(ax, prof["relative_depth"], prof["value"], prof["ci_low"], prof["ci_high"],
                              label=f"{model}{' (untrained)' if control else ''}", color=colors[model],
                              control=control, exits=exits)
        _title(ax, site, metric)
    _legend(fig, axes, 4)
    caption = ("Each metric's profile on relative depth (hidden entry e of n blocks at e/n; a block site's block l at "
               "(l + 0.5)/n). Solid: trained; dashed, hollow markers: its untrained control (same colour); shading: "
               "the experiment's interval where it gives one; black rings: layers where the trained model leaves its "
               "control's band.")
    return Figure(fig, caption)


def differences_figure(diffs: pd.DataFrame) -> Figure | None:
    """One panel per metric with differences: each pair's ``a − b`` on the common grid with its interval."""
    if diffs.empty:
        return None
    pairs = list(dict.fromkeys(zip(diffs["site"], diffs["metric"])))
    fig, axes = _grid(len(pairs))
    names = list(dict.fromkeys(zip(diffs["model_a"], diffs["model_b"])))
    for ax, (site, metric) in zip(axes, pairs):
        rows = diffs[(diffs["site"] == site) & (diffs["metric"] == metric)]
        for i, (a, b) in enumerate(names):
            d = rows[(rows["model_a"] == a) & (rows["model_b"] == b)]
            if not d.empty:
                difference_profile(ax, d["relative_depth"], d["difference"], d["ci_low"], d["ci_high"],
                                   label=f"{a} − {b}", color=f"C{i % 10}")
        _title(ax, site, metric)
    _legend(fig, axes, 3)
    caption = ("Differences of profiles (first model − second) on a common relative-depth grid over the depths both "
               "cover, with pointwise 95% intervals (filled markers: the interval excludes 0). Each profile's value and "
               "standard error (interval width / 2·1.96) are interpolated linearly between its layers; the "
               "difference's standard error is the root sum of squares (see docs/compare.md).")
    return Figure(fig, caption)
