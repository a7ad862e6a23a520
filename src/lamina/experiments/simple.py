"""An experiment in one function: ``@lamina.experiment`` and its ready-made result, :class:`LayerProfiles`.

A package with compute.py, result.py, figures.py and report.py (``lamina new``) is the full form. For a
question that ends in laminar profiles — one number per layer per metric, with replicates or a test —
one decorated function is enough, in a module or a notebook cell::

    @lamina.experiment(title="Hidden-state norms", question="How large is the residual stream at each depth?")
    def norms(model, config, ctx):
        \"\"\"Mean L2 norm of hidden per entry; windows of Alice are the replicates.\"\"\"
        rec = lamina.record(model, lamina.stimuli.windows(lamina.data.book("alice"), model, 64, 8), "hidden")
        per_window = ...                                   # (windows, entries)
        return lamina.LayerProfiles.of(model, "hidden", {"norm": per_window})

    lamina.run(norms, "smollm2-135m", out="runs/norms")   # run directory, report.html, Run.load
    lamina.compare(norms, ["smollm2-135m", "gemma3-270m"], controls="random")

The result, tables, profiles, figures and report come from :class:`LayerProfiles`: per metric and layer
the mean with its t interval over the replicates (or values and intervals given), and, where the claim
has a null value (``null=``), a one-sample t test per layer corrected family-wise across layers by sign
flips of whole replicates (max-|t|, the test :func:`lamina.stats.replicates.across_replicates` gives
every seed experiment; its level is measured in docs/calibration.md). A test of your own enters as
corrected p-values (``p=``, ``test=`` naming it).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import LaminaError
from ..stats.replicates import across_replicates, t_interval
from .base import Experiment, Figure, KeyNumber, ModelFacts, Report, profile_table
from .settings import setting
from .typed import BoolArray, FloatArray, Typed, array_field, detail_field

LEVEL = 95.0


@dataclass(frozen=True, eq=False)
class LayerProfiles(Typed):
    """Laminar profiles: per metric (``m``) and layer (``L``) a value, its interval and, where tested, a
    family-wise corrected p-value. Build it with :meth:`of`.

    Attributes:
        site: the site whose layers index the profile (``hidden``: entries 0..n_layers; a block site:
            blocks 0..n_layers-1), so ``lamina compare`` puts each layer at its relative depth.
        metrics: the metrics' names, ``(m,)``.
        mean, ci_low, ci_high: ``(m, L)``: the value per layer and its interval (NaN where none).
        p_corrected: ``(m, L)``: corrected p-values (NaN where the metric is not tested).
        significant: ``(m, L)``: ``p_corrected <= alpha``.
        n_replicates: per metric, the replicates behind its interval (0: values given directly).
        test: what decided ``significant`` ("" when nothing is tested).
        replicates: ``(m, R, L)`` per-replicate values, NaN-padded to the largest R (arrays.npz).
    """

    site: str
    metrics: tuple[str, ...]
    level: float
    alpha: float
    null: float | None
    mean: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_corrected: FloatArray
    significant: BoolArray
    n_replicates: tuple[int, ...]
    test: str
    model: ModelFacts = detail_field()
    notes: tuple[str, ...] = detail_field(default=())
    replicates: FloatArray = array_field(default=None)

    @classmethod
    def of(cls, model, site: str, metrics: dict, *, null: float | None = None, p: dict | None = None,
           test: str = "", alpha: float = 0.05, level: float = LEVEL, notes=(), seed: int = 0) -> LayerProfiles:
        """Profiles from per-replicate values or from values with their intervals.

        Args:
            model: the lamina Model (its facts go in the report).
            site: the site the layers belong to (``"hidden"``, ``"attn.out"``, ...).
            metrics: ``{name: values}``; values of shape ``(R, L)`` (R >= 2 replicates, e.g. windows of a
                text: mean and t interval per layer) or ``(L,)`` (a value per layer, no interval) or a
                tuple ``(mean, low, high)`` of ``(L,)`` arrays. Every metric has the same L.
            null: the value of "no effect" of every replicated metric: then each layer is tested against it
                (one-sample t, replicates as the unit), corrected across layers by sign-flip max-|t|
                (family-wise). None: nothing is tested, the profiles are descriptive.
            p: ``{name: (L,) corrected p-values}`` from a test of your own; ``test`` says which.
            seed: the sign flips' seed (a rerun gives the same p-values).
        """
        if not isinstance(metrics, dict) or not metrics:
            raise LaminaError("metrics is a non-empty dict {name: values per layer}.")
        p = dict(p or {})
        unknown = set(p) - set(metrics)
        if unknown:
            raise LaminaError(f"p names metrics that are not in metrics: {', '.join(sorted(unknown))}.")
        rng = np.random.default_rng(seed)
        rows, reps, tested_here = [], [], False
        for name, values in metrics.items():
            mean, low, high, corrected, rep = _one(name, values, null, level, rng)
            tested_here |= not np.all(np.isnan(corrected))
            if name in p:
                corrected = _layers(name, p[name], len(mean), "p")
            rows.append((mean, low, high, corrected))
            reps.append(rep)
        n_layers = {len(r[0]) for r in rows}
        if len(n_layers) != 1:
            raise LaminaError(f"every metric needs the same number of layers; got {sorted(n_layers)}.")
        width = max((r.shape[0] for r in reps if r is not None), default=0)
        padded = np.full((len(rows), width, n_layers.pop()), np.nan)
        for i, r in enumerate(reps):
            if r is not None:
                padded[i, :r.shape[0]] = r
        stacked = [np.stack([r[k] for r in rows]) for k in range(4)]
        tests = [t for t in (f"one-sample t against {null:g} per layer, replicates as the unit, sign-flip max-|t| "
                             "across layers (family-wise)" if tested_here else "", test if p else "") if t]
        return cls(site=site, metrics=tuple(metrics), level=level, alpha=alpha, null=null, mean=stacked[0],
                   ci_low=stacked[1], ci_high=stacked[2], p_corrected=stacked[3],
                   significant=np.nan_to_num(stacked[3], nan=1.0) <= alpha,
                   n_replicates=tuple(0 if r is None else r.shape[0] for r in reps), test="; ".join(tests),
                   model=ModelFacts.of(model), notes=tuple(notes), replicates=padded)


def _layers(name: str, values, n: int | None, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or (n is not None and len(values) != n):
        raise LaminaError(f"metric {name!r}: {what} should have one value per layer"
                          f"{'' if n is None else f' ({n})'}, not shape {values.shape}.")
    return values


def _one(name, values, null, level, rng):
    """One metric -> mean, low, high, corrected p (L,) and its replicates (R, L) or None."""
    if isinstance(values, tuple):
        if len(values) != 3:
            raise LaminaError(f"metric {name!r}: a tuple is (mean, low, high), not {len(values)} items.")
        mean = _layers(name, values[0], None, "mean")
        low, high = (_layers(name, v, len(mean), "the interval") for v in values[1:])
        return mean, low, high, np.full(len(mean), np.nan), None
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        nan = np.full(len(array), np.nan)
        return array, nan, nan.copy(), nan.copy(), None
    if array.ndim != 2 or array.shape[0] < 2:
        raise LaminaError(f"metric {name!r}: values are (replicates >= 2, layers) or (layers,), "
                          f"not shape {array.shape}.")
    if not np.isfinite(array).all():
        raise LaminaError(f"metric {name!r}: a replicate's value is NaN or infinite.")
    if null is None:
        mean, low, high = t_interval(array, level)
        return mean, low, high, np.full(array.shape[1], np.nan), array
    res = across_replicates(array, null=null, level=level, correction="max", rng=rng)
    return res.mean, res.ci_low, res.ci_high, res.p_corrected, array


@dataclass
class NoSettings:
    """An experiment without compute settings."""


@dataclass
class ProfileOptions:
    """Presentation options of a :class:`LayerProfiles` experiment's figure."""

    show_replicates: bool = True  # each replicate as a faint line
    columns: int = setting(3, ge=1, le=12)  # panels per row, one panel per metric


def tables(result: LayerProfiles) -> dict[str, pd.DataFrame]:
    """``profiles``: one row per metric and layer; ``replicates``: one per metric, replicate and layer."""
    m, n_layers = result.mean.shape
    frame = pd.DataFrame({"metric": np.repeat(result.metrics, n_layers), "layer": np.tile(np.arange(n_layers), m),
                          "mean": result.mean.ravel(), "ci_low": result.ci_low.ravel(),
                          "ci_high": result.ci_high.ravel(), "p_corrected": result.p_corrected.ravel(),
                          "significant": result.significant.ravel()})
    out = {"profiles": frame}
    if result.replicates is not None and result.replicates.size:
        idx = np.indices(result.replicates.shape).reshape(3, -1)
        keep = np.isfinite(result.replicates.ravel())
        out["replicates"] = pd.DataFrame({"metric": np.asarray(result.metrics)[idx[0]][keep], "replicate": idx[1][keep],
                                          "layer": idx[2][keep], "value": result.replicates.ravel()[keep]})
    return out


def profiles(result: LayerProfiles) -> pd.DataFrame:
    """Every metric as a laminar profile on ``result.site``: what ``lamina compare`` lines up."""
    return profile_table(*[(result.site, name, result.mean[i], (result.ci_low[i], result.ci_high[i]))
                           for i, name in enumerate(result.metrics)])


def figures(result: LayerProfiles, config, options: ProfileOptions) -> dict[str, Figure]:
    """``profiles``: one panel per metric, the value per layer with its interval band (filled markers where
    the corrected test rejects)."""
    from ..plots import figure
    from ..plots.profiles import replicate_band

    m = len(result.metrics)
    cols = min(options.columns, m)
    rows = -(-m // cols)
    fig, axes = figure(cols, rows, size=(4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(axes).ravel()
    for i, name in enumerate(result.metrics):
        ax = axes[i]
        reps = result.replicates[i, :result.n_replicates[i]] if result.n_replicates[i] else None
        replicate_band(ax, result.mean[i], result.ci_low[i], result.ci_high[i],
                       replicates=reps if options.show_replicates else None,
                       significant=result.significant[i] if result.test else None, level=result.level)
        if result.null is not None and result.n_replicates[i]:
            ax.axhline(result.null, color="grey", linewidth=0.8, linestyle=":")
        ax.set(title=name, xlabel=f"{result.site} layer", ylabel=name)
    for ax in axes[m:]:
        ax.set_visible(False)
    caption = (f"Per layer of {result.model.name}: each metric's value with its {result.level:g}% t interval over "
               "its replicates (faint lines: each replicate)"
               + (f"; filled markers: significant ({result.test}, α = {result.alpha:g})" if result.test else "") + ".")
    return {"profiles": Figure(fig, caption)}


def report(result: LayerProfiles, config, description: str = "") -> Report:
    """Key numbers: per metric its largest |value| with the layer and interval, then the count of layers the
    test finds (family-wise), with the effect sizes there; the method opens with ``description``."""
    keys = []
    for i, name in enumerate(result.metrics):
        mean = result.mean[i]
        at = int(np.nanargmax(np.abs(mean)))
        interval = (f" (interval {result.ci_low[i][at]:.4g} to {result.ci_high[i][at]:.4g})"
                    if np.isfinite(result.ci_low[i][at]) else "")
        how = (f"mean over {result.n_replicates[i]} replicates with its {result.level:g}% t interval"
               if result.n_replicates[i] else "with the interval given" if np.isfinite(result.ci_low[i]).any()
               else "descriptive: one value per layer, no interval")
        keys.append(KeyNumber(f"{name}: largest |value|", f"layer {at}: {mean[at]:.4g}{interval}", how))
        if np.isfinite(result.p_corrected[i]).any():
            sig = np.flatnonzero(result.significant[i])
            effects = ", ".join(f"{layer}: {mean[layer]:.3g}" for layer in sig[:8]) + (" …" if len(sig) > 8 else "")
            keys.append(KeyNumber(f"{name}: layers that differ" + (f" from {result.null:g}"
                                                                   if result.null is not None else ""),
                                  f"{len(sig)} of {len(mean)}" + (f" (layer: value — {effects})" if len(sig) else ""),
                                  f"{result.test}, α = {result.alpha:g}"))
    method = (f"{description.rstrip('.')}. " if description else "") + (
        f"{len(result.metrics)} metric(s) per {result.site} layer of {result.model.name}"
        + (f"; tested: {result.test}" if result.test else "; descriptive (no test)") + ".")
    return Report(method=method, key_numbers=tuple(keys), notes=result.notes)


def experiment(compute=None, /, *, title: str, question: str, name: str | None = None,
               description: str | None = None, Config: type = NoSettings, Options: type = ProfileOptions,
               control_settings=None):
    """Make ``compute(model, config, ctx) -> LayerProfiles`` an :class:`Experiment` (a decorator).

    Args:
        compute: the function; its name (``_`` as ``-``) is the experiment's default name and its
            docstring's first line the default description (the report's method line).
        title, question: the report's heading and opening question.
        Config: a dataclass of compute settings (``lamina run NAME --set key=value``; declare rules with
            :func:`lamina.experiments.settings.setting`); default: none.
        Options: presentation options of the figures (default :class:`ProfileOptions`).
        control_settings: ``(trained_run_dir) -> {setting: value}`` for untrained controls in
            ``lamina compare``, as :class:`Experiment` describes.

    Returns:
        The :class:`Experiment` (or, without ``compute``, the decorator that makes it).
    """
    def make(function) -> Experiment:
        if not callable(function):
            raise LaminaError(f"@lamina.experiment decorates a function compute(model, config, ctx), "
                              f"not {type(function).__name__}.")
        doc = (function.__doc__ or "").strip().splitlines()
        slug = name or re.sub(r"[^a-z0-9-]", "-", function.__name__.lower().replace("_", "-")).strip("-")
        for kind, cls in (("Config", Config), ("Options", Options)):
            if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
                raise LaminaError(f"{kind} must be a dataclass (its fields are the settings), not {cls!r}.")

        def checked(model, config, ctx):
            before = set(ctx.timings)
            with ctx.stage("compute"):
                result = function(model, config, ctx)
            if set(ctx.timings) - before - {"compute"}:  # the function timed its own stages: keep those alone
                ctx.timings.pop("compute")
            if not isinstance(result, LayerProfiles):
                raise LaminaError(f"experiment {slug!r}: its function returned {type(result).__name__}; it should "
                                  "return lamina.LayerProfiles.of(model, site, {metric: values}).")
            return result

        checked.__name__ = checked.__qualname__ = function.__name__
        checked.__module__ = function.__module__
        checked.__doc__ = function.__doc__
        checked.__wrapped__ = function  # its source is the user's (a fault in it is theirs: the CLI says so)
        text = description or (doc[0] if doc else title)
        return Experiment(name=slug, title=title, question=question, description=text, seed_notebook="none",
                          Config=Config, Options=Options, Result=LayerProfiles, compute=checked, tables=tables,
                          profiles=profiles, figures=figures, report=functools.partial(report, description=text),
                          control_settings=control_settings)

    return make if compute is None else make(compute)
