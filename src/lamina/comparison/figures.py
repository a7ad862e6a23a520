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
    """One panel per metric: each trained model (solid, its colour, its own interval shaded), its
    controls' mean (dashed, same colour) with the family-wise band for another initialisation (hatched;
    each control seed a thin dotted line), layers where the trained model leaves that band ringed in black."""
    pairs = metrics(table)
    if not pairs:
        return None
    fig, axes = _grid(len(pairs))
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, (site, metric) in zip(axes, pairs):
        rows = table[(table["site"] == site) & (table["metric"] == metric)]
        for model in models:
            own = rows[(rows["model"] == model) & ~rows["control"].astype(bool)].sort_values("layer")
            controls = rows[(rows["model"] == model) & rows["control"].astype(bool)]
            band = band_table[(band_table["model"] == model) & (band_table["site"] == site)
                              & (band_table["metric"] == metric)].sort_values("layer") \
                if not band_table.empty else band_table
            for _, seed_rows in controls.groupby("control_seed"):
                seed_rows = seed_rows.sort_values("layer")
                ax.plot(seed_rows["relative_depth"], seed_rows["value"], color=colors[model], linewidth=0.6,
                        linestyle=":", alpha=0.7)
            if len(band):
                depth_profile(ax, band["relative_depth"], band["control_mean"], band["band_low"], band["band_high"],
                              label=f"{model} (untrained ×{int(band['n_controls'].max())})", color=colors[model],
                              control=True)
            if not own.empty:
                exits = band["outside"].to_numpy(bool) if len(band) == len(own) else None
                depth_profile(ax, own["relative_depth"], own["value"], own["ci_low"], own["ci_high"], label=model,
                              color=colors[model], exits=exits)
        _title(ax, site, metric)
    _legend(fig, axes, 4)
    caption = ("Each metric's profile on relative depth (hidden entry e of n blocks at e/n; a block site's block l at "
               "(l + 0.5)/n). Solid: trained, its own interval shaded. Dashed, hollow markers: the mean of its untrained "
               "controls (dotted: each initialisation), hatched: the band in which another initialisation would lie, "
               "family-wise over layers at α 0.05 (stats.profiles.control_band). Black rings: layers where the trained "
               "model leaves that band.")
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
    caption = ("Differences of profiles (first model − second) at the shallower model's depths within the range both "
               "cover, with simultaneous intervals over those depths (family-wise α 0.05, Bonferroni) widened by the "
               "bound on the interpolation's error (filled markers: the interval excludes 0). The deeper model's value "
               "and standard error are interpolated linearly between its layers (see docs/compare.md).")
    return Figure(fig, caption)
