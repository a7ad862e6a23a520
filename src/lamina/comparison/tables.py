"""The comparison's tables, from its members' runs alone (no model): the tidy profile table, key numbers
side by side, where each trained model leaves its control's band, and differences of profiles."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from ..models.depth import relative_depth
from ..stats.profiles import band_exits, profile_difference, runs

TIDY_COLUMNS = ("model", "family", "n_layers", "site", "layer", "relative_depth", "metric", "value", "ci_low",
                "ci_high", "control")


def tidy(members) -> pd.DataFrame:
    """One row per member, metric and layer (columns :data:`TIDY_COLUMNS`).

    ``value``, ``ci_low`` and ``ci_high`` are the experiment's own ``profiles(result)`` of each member's
    run, unchanged; ``relative_depth`` places the layer on 0..1 (:func:`lamina.models.depth.relative_depth`).
    """
    frames = []
    for member in members:
        table = member.run.profiles
        if table.empty:
            continue
        n_layers = int(member.facts["n_layers"])
        depth = np.array([relative_depth(site, layer, n_layers) for site, layer in zip(table["site"], table["layer"])],
                         dtype=float)
        frames.append(table.assign(model=member.model, family=member.facts["family"], n_layers=n_layers,
                                   relative_depth=depth, control=member.control))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TIDY_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(TIDY_COLUMNS)]


def metrics(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(site, metric) pairs in the order the experiment lists them."""
    return list(dict.fromkeys(zip(table["site"], table["metric"])))


def key_numbers(members) -> pd.DataFrame:
    """Long table of each member's report key numbers: model, control, label, quantity, value, test."""
    rows = [{"model": m.model, "control": m.control, "label": m.label, "quantity": q, "value": v, "test": t}
            for m in members for q, v, t in m.run.key_numbers]
    return pd.DataFrame(rows, columns=["model", "control", "label", "quantity", "value", "test"])


_LAYER = re.compile(r"\b([Ll])ayer (\d+)\b")


def _aligned(long: pd.DataFrame) -> pd.DataFrame:
    """Quantities that name a layer ("JS divergence, layer 3") lined up across models whose same setting
    (a relative depth) picks different layers: the row reads "layer ·" and each value says its layer.
    A member keeps its own labels where this would merge two of its quantities."""
    frames = []
    for _, rows in long.groupby("label", sort=False):
        merged = rows["quantity"].str.replace(_LAYER, lambda m: f"{m.group(1)}ayer ·", regex=True)
        if merged.is_unique:
            layer = rows["quantity"].str.extract(_LAYER, expand=True)[1]
            rows = rows.assign(quantity=merged, value=[f"layer {n}: {v}" if isinstance(n, str) else v
                                                       for v, n in zip(rows["value"], layer)])
        frames.append(rows)
    return pd.concat(frames)


def key_numbers_wide(long: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Quantities as rows (in first-seen order), members as columns; '—' where a member has no such number."""
    if long.empty:
        return pd.DataFrame(columns=["quantity", *labels])
    long = _aligned(long)
    wide = long.pivot_table(index="quantity", columns="label", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(index=list(dict.fromkeys(long["quantity"])), columns=labels).fillna("—")
    return wide.reset_index()


def _profile(table, model, control, site, metric):
    rows = table[(table["model"] == model) & (table["control"] == control) & (table["site"] == site)
                 & (table["metric"] == metric)].sort_values("layer")
    return rows


def bands(table: pd.DataFrame) -> pd.DataFrame:
    """Per trained model with a control, metric and layer: whether it leaves its control's band.

    Columns: model, site, metric, layer, relative_depth, value, control_value, tested, outside, direction
    (+1 above the control's band, -1 below). The rule: :func:`lamina.stats.profiles.band_exits`.
    """
    frames = []
    for model in dict.fromkeys(table.loc[~table["control"].astype(bool), "model"]):
        for site, metric in metrics(table):
            own = _profile(table, model, False, site, metric)
            ref = _profile(table, model, True, site, metric)
            if own.empty or ref.empty:
                continue
            merged = own.merge(ref, on="layer", suffixes=("", "_control"))
            exits = band_exits(merged["value"], merged["ci_low"], merged["ci_high"], merged["value_control"],
                               merged["ci_low_control"], merged["ci_high_control"])
            frames.append(pd.DataFrame({
                "model": model, "site": site, "metric": metric, "layer": merged["layer"],
                "relative_depth": merged["relative_depth"], "value": merged["value"],
                "control_value": merged["value_control"], "tested": exits.tested, "outside": exits.outside,
                "direction": exits.direction}))
    columns = ["model", "site", "metric", "layer", "relative_depth", "value", "control_value", "tested", "outside",
               "direction"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _span(rows: pd.DataFrame, first: int, last: int) -> str:
    a, b = rows.iloc[first], rows.iloc[last]
    layers = f"layer {a['layer']}" if first == last else f"layers {a['layer']}–{b['layer']}"
    depths = f"{a['relative_depth']:.2f}" if first == last else f"{a['relative_depth']:.2f}–{b['relative_depth']:.2f}"
    return f"{layers} (depth {depths})"


def band_statement(rows: pd.DataFrame) -> str:
    """Where one trained model leaves its control's band for one metric (``rows``: its :func:`bands` rows)."""
    rows = rows.sort_values("layer").reset_index(drop=True)
    tested = rows["tested"].to_numpy(bool)
    if not tested.any():
        above = int((rows["value"] > rows["control_value"]).sum())
        return (f"not tested: no interval on either side (the experiment gives none); descriptively, above the "
                f"control's value at {above} of {len(rows)} layers.")
    parts = []
    for direction, word in ((1, "above"), (-1, "below")):
        spans = [_span(rows, a, b) for a, b in runs(rows["direction"].to_numpy() == direction)]
        if spans:
            parts.append(f"{word} at {', '.join(spans)}")
    n_out, n_tested = int(rows["outside"].sum()), int(tested.sum())
    if not parts:
        return f"within its control's band at every layer ({n_tested} tested)."
    return f"leaves its control's band at {n_out} of {n_tested} layers: {'; '.join(parts)}."


def differences(table: pd.DataFrame, points: int | None = None, level: float = 95.0) -> pd.DataFrame:
    """Differences of profiles ``a - b`` for every pair of trained models (a listed before b) and every metric
    where both give intervals, on a common relative-depth grid (:func:`lamina.stats.profiles.profile_difference`).

    Columns: site, metric, model_a, model_b, relative_depth, difference, ci_low, ci_high, excludes_zero.
    """
    trained = table[~table["control"].astype(bool)]
    models = list(dict.fromkeys(trained["model"]))
    frames = []
    for site, metric in metrics(trained):
        for a, b in itertools.combinations(models, 2):
            pa, pb = _profile(trained, a, False, site, metric), _profile(trained, b, False, site, metric)
            if pa.empty or pb.empty or not (pa["ci_low"].notna().any() and pb["ci_low"].notna().any()):
                continue
            diff = profile_difference(pa["relative_depth"], pa["value"], pa["ci_low"], pa["ci_high"],
                                      pb["relative_depth"], pb["value"], pb["ci_low"], pb["ci_high"],
                                      points=points, level=level)
            with np.errstate(invalid="ignore"):
                excludes = (diff.ci_low > 0) | (diff.ci_high < 0)
            frames.append(pd.DataFrame({"site": site, "metric": metric, "model_a": a, "model_b": b,
                                        "relative_depth": diff.grid, "difference": diff.difference,
                                        "ci_low": diff.ci_low, "ci_high": diff.ci_high, "excludes_zero": excludes}))
    columns = ["site", "metric", "model_a", "model_b", "relative_depth", "difference", "ci_low", "ci_high",
               "excludes_zero"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def difference_statement(rows: pd.DataFrame) -> str:
    """One sentence per (metric, pair): where on the grid the difference's interval excludes 0, and its sign."""
    first = rows.iloc[0]
    head = f"{first['metric']}: {first['model_a']} − {first['model_b']}"
    rows = rows.reset_index(drop=True)
    parts = []
    for sign, word in ((1, "positive"), (-1, "negative")):
        mask = rows["excludes_zero"].to_numpy(bool) & (np.sign(rows["difference"].to_numpy()) == sign)
        spans = [f"{rows['relative_depth'][a]:.2f}" if a == b else
                 f"{rows['relative_depth'][a]:.2f}–{rows['relative_depth'][b]:.2f}" for a, b in runs(mask)]
        if spans:
            parts.append(f"{word} at depth {', '.join(spans)}")
    if not parts:
        return f"{head}: the interval includes 0 at every grid point ({len(rows)} points)."
    return f"{head}: {'; '.join(parts)} ({int(rows['excludes_zero'].sum())} of {len(rows)} grid points)."
