"""The comparison's tables, from its members' runs alone (no model): the tidy profile table, key numbers
side by side, where each trained model leaves its controls' band, and differences of profiles."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from ..models.depth import relative_depth
from ..stats.profiles import control_band, interval_se, profile_difference, runs

TIDY_COLUMNS = ("model", "family", "n_layers", "site", "layer", "relative_depth", "metric", "value", "ci_low",
                "ci_high", "control", "control_seed")
ALPHA = 0.05  # family-wise level of "leaves its controls' band" and "the profiles differ"


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
                                   relative_depth=depth, control=member.control,
                                   control_seed=member.seed if member.control else -1))
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
                 & (table["metric"] == metric)].sort_values(["control_seed", "layer"])
    return rows


BAND_COLUMNS = ["model", "site", "metric", "layer", "relative_depth", "value", "ci_low", "ci_high", "control_mean",
                "band_low", "band_high", "effect", "t", "df", "p", "p_fw", "n_controls", "tested", "outside",
                "direction"]


def _se(rows: pd.DataFrame) -> np.ndarray:
    se = interval_se(rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float))
    return np.where(np.isfinite(se), se, 0.0)


def bands(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per trained model with controls, metric and layer: the controls' family-wise prediction band
    for one more initialisation and whether the trained model leaves it
    (:func:`lamina.stats.profiles.control_band`; columns :data:`BAND_COLUMNS`)."""
    frames = []
    for model in dict.fromkeys(table.loc[~table["control"].astype(bool), "model"]):
        for site, metric in metrics(table):
            own = _profile(table, model, False, site, metric)
            ref = _profile(table, model, True, site, metric)
            if own.empty or ref.empty:
                continue
            layers = own["layer"].to_numpy()
            wide = ref.pivot_table(index="control_seed", columns="layer", values="value", aggfunc="first",
                                   dropna=False).reindex(columns=layers)
            ref_se = ref.assign(se=_se(ref)).pivot_table(index="control_seed", columns="layer", values="se",
                                                         aggfunc="first", dropna=False).reindex(columns=layers)
            band = control_band(own["value"].to_numpy(float), _se(own), wide.to_numpy(float),
                                np.nan_to_num(ref_se.to_numpy(float)), alpha=alpha)
            frames.append(pd.DataFrame({
                "model": model, "site": site, "metric": metric, "layer": layers,
                "relative_depth": own["relative_depth"].to_numpy(), "value": own["value"].to_numpy(),
                "ci_low": own["ci_low"].to_numpy(), "ci_high": own["ci_high"].to_numpy(),
                "control_mean": band.center, "band_low": band.low, "band_high": band.high, "effect": band.effect,
                "t": band.t, "df": band.df, "p": band.p, "p_fw": band.p_fw,
                "n_controls": np.isfinite(wide.to_numpy(float)).sum(axis=0), "tested": band.tested,
                "outside": band.outside, "direction": band.direction}))
    return pd.concat(frames, ignore_index=True)[BAND_COLUMNS] if frames else pd.DataFrame(columns=BAND_COLUMNS)


def _span(rows: pd.DataFrame, first: int, last: int) -> str:
    a, b = rows.iloc[first], rows.iloc[last]
    layers = f"layer {a['layer']}" if first == last else f"layers {a['layer']}–{b['layer']}"
    depths = f"{a['relative_depth']:.2f}" if first == last else f"{a['relative_depth']:.2f}–{b['relative_depth']:.2f}"
    return f"{layers} (depth {depths})"


def _number(x: float) -> str:
    return f"{x:+.3g}"


def band_statement(rows: pd.DataFrame) -> str:
    """Where one trained model leaves its controls' band for one metric (``rows``: its :func:`bands` rows):
    the largest departure first (estimate and band), then the family-wise count with the effects' range
    and the contiguous layers, named with their depths."""
    rows = rows.sort_values("layer").reset_index(drop=True)
    tested = rows["tested"].to_numpy(bool)
    k = int(rows["n_controls"].max()) if len(rows) else 0
    if not tested.any():
        if k < 2:
            return (f"not tested: {k} initialisation{'s' if k != 1 else ''} of the architecture cannot give a band "
                    "for another one (use --controls random:5, the default, or at least 2).")
        return "not tested: the metric is constant across initialisations and exactly estimated at every layer."
    i = int(np.nanargmax(np.abs(np.where(tested, rows["t"].to_numpy(float), np.nan))))
    r = rows.iloc[i]
    lead = (f"largest departure {_number(r['effect'])} at layer {r['layer']} (depth {r['relative_depth']:.2f}; "
            f"band {r['band_low']:.3g} to {r['band_high']:.3g}, {k} initialisations)")
    n_out, n_tested = int(rows["outside"].sum()), int(tested.sum())
    correction = f"family-wise α {ALPHA:g} over {n_tested} layers, Bonferroni-t"
    if n_out == 0:
        return f"{lead}; within its controls' band at every layer ({correction})."
    parts = []
    for direction, word in ((1, "above"), (-1, "below")):
        spans = [_span(rows, a, b) for a, b in runs(rows["direction"].to_numpy() == direction)]
        if spans:
            parts.append(f"{word} at {', '.join(spans)}")
    effects = rows.loc[rows["outside"].astype(bool), "effect"].to_numpy(float)
    return (f"{lead}; leaves its controls' band at {n_out} of {n_tested} layers ({correction}; effects "
            f"{_number(effects.min())} to {_number(effects.max())}): {'; '.join(parts)}.")


def differences(table: pd.DataFrame, points: int | None = None, alpha: float = ALPHA,
                own_scale=()) -> pd.DataFrame:
    """Differences of profiles ``a - b`` for every pair of trained models (a listed before b) and every metric
    where both give intervals, at the shallower model's depths (or ``points`` evenly spaced ones), decided
    family-wise over depth (:func:`lamina.stats.profiles.profile_difference`). Metrics in ``own_scale``
    (each model's own scale: :attr:`lamina.experiments.Experiment.own_scale`) are left out.

    Columns: site, metric, model_a, model_b, relative_depth, difference, ci_low, ci_high, allowance,
    excludes_zero.
    """
    trained = table[~table["control"].astype(bool)]
    models = list(dict.fromkeys(trained["model"]))
    frames = []
    for site, metric in metrics(trained):
        if metric in own_scale:
            continue
        for a, b in itertools.combinations(models, 2):
            pa, pb = _profile(trained, a, False, site, metric), _profile(trained, b, False, site, metric)
            if pa.empty or pb.empty or not (pa["ci_low"].notna().any() and pb["ci_low"].notna().any()):
                continue
            diff = profile_difference(pa["relative_depth"], pa["value"], pa["ci_low"], pa["ci_high"],
                                      pb["relative_depth"], pb["value"], pb["ci_low"], pb["ci_high"],
                                      points=points, alpha=alpha)
            frames.append(pd.DataFrame({"site": site, "metric": metric, "model_a": a, "model_b": b,
                                        "relative_depth": diff.grid, "difference": diff.difference,
                                        "ci_low": diff.ci_low, "ci_high": diff.ci_high,
                                        "allowance": diff.allowance, "excludes_zero": diff.excludes_zero}))
    columns = ["site", "metric", "model_a", "model_b", "relative_depth", "difference", "ci_low", "ci_high",
               "allowance", "excludes_zero"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def difference_statement(rows: pd.DataFrame) -> str:
    """One sentence per (metric, pair): the largest difference first, then where the family-wise interval
    excludes 0 (contiguous depths as ranges) with the range of the differences there."""
    first = rows.iloc[0]
    head = f"{first['metric']}: {first['model_a']} − {first['model_b']}"
    rows = rows.reset_index(drop=True)
    values = rows["difference"].to_numpy(float)
    i = int(np.nanargmax(np.abs(values))) if np.isfinite(values).any() else 0
    lead = (f"largest {_number(values[i])} at depth {rows['relative_depth'][i]:.2f} "
            f"(family-wise interval {rows['ci_low'][i]:.3g} to {rows['ci_high'][i]:.3g})")
    n_points = len(rows)
    correction = f"family-wise α {ALPHA:g} over {n_points} depths, Bonferroni with the interpolation allowance"
    parts = []
    for sign, word in ((1, "positive"), (-1, "negative")):
        mask = rows["excludes_zero"].to_numpy(bool) & (np.sign(values) == sign)
        spans = [f"{rows['relative_depth'][a]:.2f}" if a == b else
                 f"{rows['relative_depth'][a]:.2f}–{rows['relative_depth'][b]:.2f}" for a, b in runs(mask)]
        if spans:
            parts.append(f"{word} at depth {', '.join(spans)}")
    if not parts:
        return f"{head}: {lead}; no depth differs ({correction})."
    hits = values[rows["excludes_zero"].to_numpy(bool)]
    return (f"{head}: {lead}; differs at {len(hits)} of {n_points} depths ({correction}; differences "
            f"{_number(hits.min())} to {_number(hits.max())}): {'; '.join(parts)}.")
