"""``lamina.compare``: one experiment across several models, their untrained controls, profiles on relative depth.

A comparison directory::

    comparison.json     the manifest: experiment and experiment_source (as its runs'), config, seeds, and
                        per member (model or control) its run directory, run key, weights sha256 (a
                        control: its init identity), new/reused/failed and why, family, layers, device,
                        dtype, seconds
    profiles.csv        the tidy table: model, family, n_layers, site, layer, relative_depth, metric, value,
                        ci_low, ci_high, control
    key_numbers.csv     every member's report key numbers (model, control, label, quantity, value, test)
    bands.csv           per trained model, metric and layer: whether it leaves its controls' band (--controls)
    differences.csv     differences of profiles on a common relative-depth grid, with intervals
    figures/            profiles.png|svg, differences.png|svg
    report.html         one self-contained page
    runs/               the members' ordinary run directories (lamina.Run.load, lamina report), by run key

Everything but ``runs/`` is rewritten by each comparison into the directory; runs are reused by key
(:mod:`lamina.comparison.plan`), so adding a model to a comparison costs that model's run only.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..errors import DISK_FULL, LaminaError, check_output_dir, one_line
from ..experiments import Experiment, code_sha256, for_run
from ..experiments.spec import RunSpec, check_seed
from ..plots import save
from ..report import render_comparison
from ..report.notebook import comparison_html, png_base64
from ..rundir import dead_writers
from ..runner import Run, run_spec
from . import tables
from .figures import differences_figure, profiles_figure
from .plan import Member, check_controls, control_seeds, parse_models, reusable, run_dir, run_key

MANAGED = ("comparison.json", "profiles.csv", "key_numbers.csv", "bands.csv", "differences.csv", "figures",
           "report.html")
BOS_KEYS = ("prepend_bos", "bos_token", "revision")

DEFINITIONS = (
    "Relative depth: a model with n blocks has n + 1 hidden entries (residual-stream boundaries): entry e sits at "
    "e/n, 0 = the embedding output, 1 = the final norm's output. A block site (attn.out, mlp.*) of block l sits at "
    "(l + 0.5)/n, between the boundaries it reads from and writes to.",
    "Untrained control: the same architecture built by transformers' own initialisation (from_config) under the "
    "recorded init seed, with the trained model's tokenizer and BOS policy, run through the same experiment.",
    "Untrained controls: K initialisations per model (--controls random:K, default 5; seeds control_seed, "
    "control_seed + 1, ...). Their spread is what another initialisation could give.",
    "Leaves its controls' band: the trained value lies outside the band in which one more initialisation would lie, "
    "mean ± q √(s² (1 + 1/K) + se² + mean(se_c²)/K), with s² the controls' spread (K − 1 df), se and se_c the runs' own "
    "standard errors, q Student's t at the Bonferroni level over the tested layers: an untrained model passed as the "
    "trained one leaves the band anywhere with probability at most 0.05 (docs/calibration.md). One control gives no "
    "band (not tested).",
    "Differences of profiles: at the shallower model's layer depths within the range both cover, the deeper model's "
    "value and standard error interpolated linearly; the interval is difference ± (allowance + z √(se_a² + se_b²)) "
    "with z at the Bonferroni level over those depths and the allowance a bound on the interpolation's error from "
    "the profile's curvature: 'differs at depth x' is family-wise at 0.05.",
)


def _dtype_name(dtype) -> str:
    import torch

    from ..models.loading import DTYPES

    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        return str(dtype).replace("torch.", "")
    if str(dtype) not in DTYPES:
        raise LaminaError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    return str(DTYPES[str(dtype)]).replace("torch.", "")


def _say(progress, message: str) -> None:
    if progress is not False:
        print(f"lamina compare: {message}", file=sys.stderr, flush=True)


@dataclass
class Comparison:
    """A finished comparison: its members (models and controls) with their runs, the tables and the report.

    Attributes:
        experiment, config: the experiment and its compute config (the same for every member).
        seed: the runs' seed; control_seed: the controls' init seed; controls: the control kinds.
        members: every :class:`~lamina.comparison.plan.Member` in order (a model, then its control).
        path: the comparison directory (None: not written).
        source: how the experiment was found (the runs' ``experiment_source``).
    """

    experiment: Experiment
    config: object
    seed: int
    control_seed: int
    controls: tuple
    members: list
    path: Path | None = None
    grid_points: int | None = None
    started: str = ""
    source: str = "lamina"

    @property
    def completed(self) -> list:
        """The members that ran or were reused (every :class:`~lamina.comparison.plan.Member` not ``"failed"``)."""
        return [m for m in self.members if m.status != "failed"]

    @property
    def runs(self) -> dict:
        """label -> :class:`~lamina.runner.Run` of every member that ran (or was reused)."""
        return {m.label: m.run for m in self.completed}

    @property
    def failures(self) -> dict:
        """label -> why that member could not run."""
        return {m.label: m.reason for m in self.members if m.status == "failed"}

    @property
    def models(self) -> list[str]:
        """The trained models' names, in the order they were given (each once; controls share their model's name)."""
        return list(dict.fromkeys(m.model for m in self.members))

    @functools.cached_property
    def table(self):
        """The tidy profile table (:data:`lamina.comparison.tables.TIDY_COLUMNS`)."""
        return tables.tidy(self.completed)

    @functools.cached_property
    def key_numbers(self):
        """Every member's report key numbers, long (model, control, label, quantity, value, test)."""
        return tables.key_numbers(self.completed)

    @functools.cached_property
    def bands(self):
        """Where each trained model leaves its controls' family-wise band, per metric and layer."""
        return tables.bands(self.table)

    @functools.cached_property
    def differences(self):
        """Differences of profiles between trained models on a common relative-depth grid."""
        return tables.differences(self.table, points=self.grid_points, own_scale=self.experiment.own_scale)

    def band_statements(self) -> dict[str, dict[str, str]]:
        """metric -> {trained model: where it leaves its controls' band (estimate first)}."""
        out: dict[str, dict[str, str]] = {}
        if self.bands.empty:
            return out
        for site, metric in tables.metrics(self.bands):
            rows = self.bands[(self.bands["site"] == site) & (self.bands["metric"] == metric)]
            out[metric] = {model: tables.band_statement(rows[rows["model"] == model])
                           for model in dict.fromkeys(rows["model"])}
        return out

    def difference_statements(self) -> list[str]:
        """One sentence per (site, metric, pair of models): the depths where their profiles differ, the
        largest difference first (empty without differences, e.g. with one trained model)."""
        trained = self.table[~self.table["control"].astype(bool)]
        skipped = [m for m in dict.fromkeys(trained["metric"]) if m in self.experiment.own_scale]
        note = ([f"not compared between models: {', '.join(skipped)} (each model's values are on its own scale, "
                 "e.g. nats bounded by its vocabulary's log V; each is compared with its own controls only)"]
                if skipped and trained["model"].nunique() > 1 else [])
        if self.differences.empty:
            return note
        groups = self.differences.groupby(["site", "metric", "model_a", "model_b"], sort=False)
        return [tables.difference_statement(rows) for _, rows in groups] + note

    @property
    def report(self) -> Path | None:
        """The comparison's ``report.html`` (None: the comparison was not written to a directory)."""
        return self.path / "report.html" if self.path else None

    @functools.cached_property
    def _inline_figures(self) -> list[tuple[str, str, str]]:
        """(name, caption, base64 PNG) of the profiles and differences figures, for :meth:`_repr_html_`."""
        drawn = {"profiles": profiles_figure(self.table, self.bands, self.models),
                 "differences": differences_figure(self.differences)}
        return [(name, fig.caption, png_base64(fig.figure)) for name, fig in drawn.items() if fig is not None]

    def _repr_html_(self) -> str:
        """The notebook view: members and their status, band and difference statements, figures inline."""
        members = [{"label": m.label, "status": m.status, "seconds": m.seconds, "reason": m.reason}
                   for m in self.members]
        return comparison_html(experiment=self.experiment, seed=self.seed, path=self.path, members=members,
                               bands=self.band_statements(), differences=self.difference_statements(),
                               figures=self._inline_figures)

    @classmethod
    def load(cls, path, *, experiment=None) -> Comparison:
        """A comparison read back from its directory: its members' runs are loaded, no model is.

        The experiment is found again as its runs' (see :meth:`lamina.Run.load`); ``experiment`` gives it.
        """
        path = Path(path)
        if not (path / "comparison.json").is_file():
            raise LaminaError(f"{path} is not a comparison directory (no comparison.json); give the directory "
                              "`lamina compare` wrote.")
        file = path / "comparison.json"
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
            name, source = manifest["experiment"], manifest.get("experiment_source")
            if not isinstance(name, str):
                raise TypeError(f"its experiment is {type(name).__name__}, not a name")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise _damaged(file, err) from None
        found = for_run(name, source, experiment, where=path)
        exp = found.experiment
        try:
            members = []
            for m in manifest["members"]:
                member = Member(model=m["model"], control=m["control"], label=m["label"], spec=m["model"],
                                device=m.get("device"), identity=m.get("identity"), key=m.get("key"),
                                seed=m.get("seed", manifest["control_seed"] if m["control"] else None),
                                path=(path / m["run"]) if m.get("run") else None, status=m["status"],
                                reason=m.get("reason"), seconds=m.get("seconds", 0.0),
                                facts={k: m.get(k) for k in ("family", "n_layers", "weights_sha256", "dtype")})
                members.append(member)
            comparison = cls(exp, exp.config(manifest["config"]), manifest["seed"], manifest["control_seed"],
                             tuple(manifest["controls"]), members, path, manifest.get("grid_points"),
                             manifest["started"], found.source)
        except LaminaError as err:
            raise LaminaError(f"{file} is damaged: {one_line(err)}") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise _damaged(file, err) from None
        for member in members:  # each run directory checks its own files
            if member.status != "failed":
                if member.path is None:
                    raise LaminaError(f"{file} is damaged: member {member.label!r} has no run directory.")
                member.run = Run.load(member.path, experiment=found)
        return comparison

    def manifest(self) -> dict:
        """What ``comparison.json`` holds: experiment, config, seeds, controls, lamina's version and each
        member (label, model, control, seed, status, reason, its run directory relative to the
        comparison's, run key, weights identity, device, seconds)."""
        def where(p):
            return None if p is None else os.path.relpath(p, self.path) if self.path else str(p)

        return {
            "experiment": self.experiment.name, "experiment_source": self.source,
            "config": json.loads(json.dumps(dataclasses.asdict(self.config), default=str)),
            "seed": self.seed, "control_seed": self.control_seed, "controls": list(self.controls),
            "grid_points": self.grid_points, "started": self.started, "lamina": __version__,
            "members": [{"label": m.label, "model": m.model, "control": m.control, "seed": m.seed, "status": m.status,
                         "reason": m.reason, "run": where(m.path) if m.status != "failed" else None, "key": m.key,
                         "identity": m.identity, "device": m.device, "seconds": round(m.seconds, 3),
                         **{k: m.facts.get(k) for k in ("family", "n_layers", "weights_sha256", "dtype")},
                         **({"error": m.facts["error"]} if m.facts.get("error") else {})}
                        for m in self.members],
        }

    def write(self, path=None) -> Path:
        """Write (or rewrite) the comparison's files in ``path`` (default: its own); ``runs/`` is left alone."""
        self.path = Path(path) if path is not None else self.path
        if self.path is None:
            raise LaminaError("this comparison has no directory; give one (out=...).")
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in dead_writers(self.path, ".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.path / f".partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "figures").mkdir(parents=True)
        try:
            written = self._write_into(tmp)
            for name in MANAGED:  # swap in what was written, drop what this comparison no longer has
                target = self.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                if name in written:
                    (tmp / name).rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.path

    def _write_into(self, tmp: Path) -> set[str]:
        written = {"comparison.json", "profiles.csv", "key_numbers.csv", "figures", "report.html"}
        (tmp / "comparison.json").write_text(json.dumps(self.manifest(), indent=1))
        self.table.to_csv(tmp / "profiles.csv", index=False)
        self.key_numbers.to_csv(tmp / "key_numbers.csv", index=False)
        if not self.bands.empty:
            self.bands.to_csv(tmp / "bands.csv", index=False)
            written.add("bands.csv")
        if not self.differences.empty:
            self.differences.to_csv(tmp / "differences.csv", index=False)
            written.add("differences.csv")
        drawn = {"profiles": profiles_figure(self.table, self.bands, self.models),
                 "differences": differences_figure(self.differences)}
        figures = []
        for name, fig in drawn.items():
            if fig is None:
                continue
            save(fig.figure, tmp / "figures" / name)
            figures.append((name, tmp / "figures" / f"{name}.png", fig.caption,
                            int(min(fig.figure.get_figwidth(), 12) * 90)))
        wide = tables.key_numbers_wide(self.key_numbers, [m.label for m in self.completed])
        definitions = list(DEFINITIONS)
        if self.table.empty:
            definitions.insert(0, f"{self.experiment.name} has no per-layer metrics: its comparison is the key-number "
                                  "table alone.")
        page = render_comparison(
            title=self.experiment.title, experiment=self.experiment.name, question=self.experiment.question,
            started=self.started, seed=self.seed, config=json.dumps(dataclasses.asdict(self.config), default=str),
            members=[{"label": m.label, "family": m.facts.get("family"), "n_layers": m.facts.get("n_layers"),
                      "status": m.status, "reason": m.reason, "device": m.device,
                      "run": os.path.relpath(m.path, self.path) if m.path and m.status != "failed" else None,
                      "weights": m.identity if m.control else m.facts.get("weights_sha256") or m.identity}
                     for m in self.members],
            key_numbers=wide, figures=figures, bands=self.band_statements(),
            differences=self.difference_statements(), definitions=definitions,
            files=sorted(n for n in written if n.endswith((".csv", ".json"))))
        (tmp / "report.html").write_text(page, encoding="utf-8")
        for fig in drawn.values():
            if fig is not None:
                fig.figure.clear()
        return written


def _damaged(file: Path, err: Exception) -> LaminaError:
    what = "not valid JSON" if isinstance(err, json.JSONDecodeError) else f"{type(err).__name__}: {err}"
    return LaminaError(f"{file} is damaged ({one_line(what)}); run the comparison again (its finished runs are "
                       "reused).")


def default_out(experiment: str) -> Path:
    return Path("runs") / f"compare-{experiment}"


def compare(experiment, models, *, controls=None, seed: int = 0, control_seed: int = 0,
            settings: dict | None = None, options: dict | None = None, device=None, dtype=None,
            trust_remote_code: bool = False, load_kwargs: dict | None = None, out=None, runs_dir=None,
            rerun: bool = False, grid_points: int | None = None, progress: bool | None = None,
            sets: dict | None = None, **kwargs) -> Comparison:
    """Run ``experiment`` on every model (and its untrained control), line the profiles up on relative depth.

    Every setting is checked before any model loads. Each member's run is an ordinary run directory
    under ``runs_dir``, reused when one with the same run key exists (:mod:`lamina.comparison.plan`):
    a rerun of the same comparison loads no model, and adding a model costs only that model. A member
    that cannot run (a LaminaError, or any other error) is named in the report with the reason and
    the others go on; if none can run, a LaminaError says why after the directory is written.

    Args:
        experiment: a name from ``lamina experiments``, an ``Experiment``, or ``"path/to/file.py:NAME"`` /
            ``"my.module:NAME"`` (see :func:`lamina.experiments.resolve`). Its runs are reused while its
            code is unchanged (an experiment from outside lamina: ``experiment_code``, the sha256 of the
            files defining it).
        models: names/paths as :func:`lamina.load` takes, or :class:`~lamina.models.Model` objects, as a list
            or a comma-separated string. ``"name@cuda:1"`` places that model on its own device.
        controls: ``"random"`` or ``"random:K"``: add K untrained controls per model (same architecture,
            fresh initialisations under seeds ``control_seed .. control_seed + K − 1``, same tokenizer and
            BOS policy; K defaults to 5). Their spread is the band "leaves its controls' band" refers
            to (:func:`lamina.stats.profiles.control_band`); one control gives no band. None: no controls.
        seed: every run's seed (permutations, bootstrap, subsets).
        settings / kwargs: compute settings, the same for every model (``focus_layer=0.25`` is the same
            relative depth in each); options: presentation options of the members' own reports.
        sets: settings and options mixed (the command line's ``--set`` pairs), split by the experiment's
            declared options (see :meth:`lamina.experiments.spec.RunSpec.build`).
        device, dtype, trust_remote_code, load_kwargs: for models given by name (a Model stays as it is).
        out: the comparison directory (default ``runs/compare-<experiment>``); runs_dir: where the members'
            run directories live (default ``<out>/runs``; share one between comparisons to share runs).
        rerun: run every member again even where a run with its key exists.
        grid_points: points of an evenly spaced grid for differences of profiles (default: the shallower
            model's own layer depths).
        progress: False silences the per-member lines and progress bars.

    Returns:
        A :class:`Comparison` (``.table``, ``.key_numbers``, ``.bands``, ``.differences``, ``.runs``,
        ``.failures``, ``.report``).
    """
    # the model libraries load here, when a comparison runs: Comparison.load and its figures need no torch
    from ..models import Model
    from ..models.control import control_name
    from ..models.identity import random_control_identity, weights_identity
    from ..models.loading import parse_device

    # Built and checked once: every member's spec is this one with its model (a control's: with its
    # control_settings applied to the typed config), nothing parsed again.
    base = RunSpec.build(experiment, None, settings=settings, options=options, sets=sets, seed=seed, **kwargs)
    found, config = base.experiment, base.config
    exp, code = found.experiment, code_sha256(found.experiment)
    check_seed(control_seed, "control_seed")
    if grid_points is not None and (isinstance(grid_points, bool) or not isinstance(grid_points, int)
                                    or grid_points < 2):
        raise LaminaError(f"grid_points must be an integer of at least 2, not {grid_points!r}.")
    items = parse_models(models)
    kinds = check_controls(controls)
    if device is not None:
        parse_device(device)  # its form now; whether it is present, per model when it loads
    load_kwargs = dict(load_kwargs or {})
    unknown = set(load_kwargs) & {"device", "dtype", "trust_remote_code"}
    if unknown:
        raise LaminaError(f"give {sorted(unknown)[0]} as its own argument, not in load_kwargs.")
    default_dtype = _dtype_name(dtype)
    out = check_output_dir(out, "out") if out is not None else default_out(exp.name)
    runs_dir = check_output_dir(runs_dir, "runs_dir") if runs_dir is not None else out / "runs"
    bos = {k: load_kwargs[k] for k in BOS_KEYS if load_kwargs.get(k) is not None}

    members = []
    for spec, dev in items:
        name = spec.name if isinstance(spec, Model) else spec
        where = str(spec.device) if isinstance(spec, Model) else (dev or (str(device) if device else "cpu"))
        members.append(Member(model=name, control=False, label=name, spec=spec, device=where))
        for init_seed in control_seeds(kinds, control_seed):
            members.append(Member(model=name, control=True, label=control_name(name, init_seed), spec=spec,
                                  device=where, seed=init_seed))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _say(progress, f"{exp.name} on {len(members)} runs ({', '.join(m.label for m in members)}) -> {out}")
    for i, member in enumerate(members, 1):
        wall = time.perf_counter()
        spec = member.spec
        member_dtype = _dtype_name(spec.dtype) if isinstance(spec, Model) else default_dtype
        member_bos = ({"prepend_bos": spec.prepend_bos, "bos_token": spec.bos_token} if isinstance(spec, Model)
                      else bos)
        try:
            if member.control:
                member.identity = random_control_identity(spec, member.seed, trust_remote_code=trust_remote_code,
                                                          revision=load_kwargs.get("revision"))
            else:
                member.identity = weights_identity(spec)
            member_spec = _member_spec(base, member, members)
            member_config = member_spec.config
            member.key = run_key(experiment=exp.name, config=member_config, seed=seed, identity=member.identity,
                                 dtype=member_dtype, bos=member_bos, code=code)
            member.path = run_dir(runs_dir, exp.name, member)
            if not rerun and reusable(member, experiment=exp.name, config=member_config, seed=seed,
                                      dtype=member_dtype, code=code):
                member.run, member.status = Run.load(member.path, experiment=found), "reused"
            else:
                _say(progress, f"[{i}/{len(members)}] {member.label}: running")
                model = _build(member, device=member.device if not isinstance(spec, Model) else None, dtype=dtype,
                               trust_remote_code=trust_remote_code, load_kwargs=load_kwargs)
                try:
                    member.run = run_spec(dataclasses.replace(member_spec, model=model), out=member.path,
                                          force=True, progress=progress)
                finally:
                    del model
                    _free()
                member.status = "new"
            facts = member.run.manifest["model"]
            member.facts = {"family": facts.get("family"), "n_layers": facts.get("n_layers"),
                            "weights_sha256": facts.get("weights_sha256"), "dtype": member.run.manifest.get("dtype")}
        except LaminaError as err:
            member.status, member.reason, member.run = "failed", str(err), None
        except OSError as err:
            if err.errno in DISK_FULL:  # every later member would fail the same way: stop, rerun resumes
                raise
            member.status, member.run = "failed", None
            member.reason = f"{type(err).__name__}: {err}"
            member.facts = {"error": traceback.format_exc()}
        except Exception as err:  # a bug or an unexpected library error: named, traceback kept, the rest go on
            member.status, member.run = "failed", None
            member.reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
            member.facts = {"error": traceback.format_exc()}
        member.seconds = time.perf_counter() - wall
        where = f" ({member.path})" if member.status != "failed" else f": {member.reason}"
        _say(progress, f"[{i}/{len(members)}] {member.label}: {member.status}{where} [{member.seconds:.1f} s]")
    comparison = Comparison(exp, config, seed, control_seed, kinds, members, out, grid_points, started,
                            found.source)
    comparison.write()
    if not comparison.completed:
        reasons = list(dict.fromkeys(comparison.failures.values()))
        said = reasons[0] if len(reasons) == 1 else "; ".join(
            f"{label}: {reason}" for label, reason in comparison.failures.items())
        raise LaminaError(f"no model could run {exp.name}: {said} (report: {comparison.report})")
    return comparison


def _member_spec(base: RunSpec, member: Member, members: list[Member]) -> RunSpec:
    """The member's spec: the comparison's, and for a control with what its experiment takes from the trained
    model's run (``Experiment.control_settings``; attn-kl: the trained model's labels), applied to the typed
    config and checked by the settings' declared rules."""
    exp = base.experiment.experiment
    if not member.control or exp.control_settings is None:
        return base
    trained = next(m for m in members if m.model == member.model and not m.control)
    if trained.run is None:
        raise LaminaError(f"{exp.name} runs a control with its trained model's run, and {trained.label} failed.")
    return base.amended(exp.control_settings(trained.path))


def _build(member: Member, *, device, dtype, trust_remote_code, load_kwargs):
    """The member's model: loaded (a trained model by name), as given (a Model), or its untrained control."""
    from ..models import Model, load, random_control

    spec = member.spec
    if member.control:
        if isinstance(spec, Model):
            return random_control(spec, seed=member.seed)
        return random_control(spec, seed=member.seed, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                              revision=load_kwargs.get("revision"), prepend_bos=load_kwargs.get("prepend_bos"),
                              bos_token=load_kwargs.get("bos_token"))
    if isinstance(spec, Model):
        return spec
    return load(spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code, **load_kwargs)


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
