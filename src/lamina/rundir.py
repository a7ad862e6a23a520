"""Run directories: written atomically, read back without the model, redrawn with new presentation options.

A run directory holds everything its figures and report are drawn from::

    config.json         compute settings (after --set)
    presentation.json   presentation options of figures/ and report.html (lamina report --set)
    results.json        the numbers: the typed result's plain fields
    details.json        what else the report says: model facts, notes from the data
    arrays.npz          the arrays behind the figures and tables (NumPy .npz, no pickle)
    tables/*.csv        tidy tables, derived from the result
    figures/*.png|svg   drawn from the result and the presentation options
    manifest.json       provenance: experiment and how it was found (experiment_source), seed, model,
                        versions, timings, and the sha256 of the four files that hold the computed run
                        (config, results, details, arrays)
    report.html         one self-contained page

Reading a directory back checks every file it reads: a missing, truncated, unparsable or changed
file is a :class:`~lamina.errors.LaminaError` naming the file and what is wrong with it.

Figures and report.html are byte-reproducible: drawing them again from the same files gives the
same bytes (:func:`lamina.plots.save` fixes SVG ids and leaves out dates).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

from .errors import LaminaError, one_line
from .experiments import Experiment, for_run, spec_of
from .experiments.typed import arrays, build, details, dump_json, load_arrays, save_arrays, summary
from .plots import save
from .recording.store import sha256
from .report import render

DATA_FILES = ("config.json", "presentation.json", "results.json", "details.json", "arrays.npz", "manifest.json")
#: Written once by the run and never again (redraw rewrites presentation.json only): their sha256 is
#: in the manifest, so a truncated or hand-edited file is named on load instead of misread.
CHECKSUMMED = ("config.json", "results.json", "details.json", "arrays.npz")


class Contents(NamedTuple):
    """What a run directory holds, read back."""

    experiment: Experiment
    config: object
    options: object
    result: object
    manifest: dict


def write(out: Path, contents: Contents, *, force: bool, ctx, started: float) -> None:
    """Write the run directory ``out`` under a temporary name and rename it when complete.

    ``ctx`` times the stages "write" and "figures"; the manifest gets every timing and the wall
    time before the directory appears.
    """
    tmp = _partial(out)
    try:
        with ctx.stage("write"):
            write_data(tmp, contents)
        with ctx.stage("figures"):
            draw(tmp, contents)
        manifest = contents.manifest
        manifest["sha256"] = {name: sha256(tmp / name) for name in CHECKSUMMED}
        manifest["timings"] = dict(ctx.timings)
        manifest["wall_seconds"] = round(time.perf_counter() - started, 3)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _publish(tmp, out, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_data(path: Path, contents: Contents) -> None:
    """Everything but the figures and the page: settings, the result's three files, tables, manifest."""
    exp, config, options, result, manifest = contents
    (path / "tables").mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    (path / "presentation.json").write_text(json.dumps(dataclasses.asdict(options), indent=1))
    (path / "results.json").write_text(dump_json(summary(result)))
    (path / "details.json").write_text(dump_json(details(result)))
    save_arrays(path / "arrays.npz", arrays(result))
    for name, table in exp.tables(result).items():
        table.to_csv(path / "tables" / f"{name}.csv", index=False)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))


def draw(path: Path, contents: Contents) -> None:
    """(Re)draw figures/ and report.html in ``path`` from the result: no model involved."""
    exp, config, options, result, manifest = contents
    figure_dir = path / "figures"
    shutil.rmtree(figure_dir, ignore_errors=True)
    figure_dir.mkdir(parents=True)
    figures = exp.figures(result, config, options)
    try:
        for name, (fig, _caption) in figures.items():
            save(fig, figure_dir / name)
        page = render(experiment=exp, config=config, text=exp.report(result, config), figures=figures,
                      manifest=manifest, figure_dir=figure_dir,
                      tables=sorted(p.name for p in (path / "tables").glob("*.csv")))
        (path / "report.html").write_text(page, encoding="utf-8")
    finally:
        for fig, _caption in figures.values():
            fig.clear()  # saved: free their memory


def read(path, *, experiment=None) -> Contents:
    """The experiment, config, presentation options, typed result and manifest of a run directory.

    Every file read is checked first: a damaged one raises a LaminaError naming it (see :func:`check`).
    The experiment is found again from the manifest (:func:`lamina.experiments.for_run`), or is
    ``experiment`` (any spec :func:`lamina.experiments.resolve` takes) when given.
    """
    path = Path(path)
    manifest = check(path)
    exp = for_run(manifest["experiment"], manifest.get("experiment_source"), experiment, where=path).experiment
    config = _parsed(path, "config.json", lambda text: exp.config(json.loads(text)))
    options = _parsed(path, "presentation.json", lambda text: exp.options(json.loads(text)))
    results = _parsed(path, "results.json", json.loads)
    details_ = _parsed(path, "details.json", json.loads)
    stored = _parsed(path, "arrays.npz", None)
    result = build(exp.Result, results, details_, stored, where=path)
    return Contents(exp, config, options, result, manifest)


def check(path) -> dict:
    """The manifest of the run directory ``path`` after checking that every data file is there and,
    where the manifest records one, has the sha256 the run wrote; a LaminaError names the first fault."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise LaminaError(f"{path} is not a run directory (no manifest.json); give the directory "
                          "`lamina run` wrote, e.g. runs/position-smollm2-135m.")
    manifest = _parsed(path, "manifest.json", json.loads)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("experiment"), str):
        raise LaminaError(f"{path / 'manifest.json'} is damaged: it names no experiment; run the experiment again.")
    spec = spec_of(manifest["experiment"], manifest.get("experiment_source"))
    again = f"run the experiment again (lamina run {spec} --out {path} --force)"
    missing = [name for name in DATA_FILES if not (path / name).is_file()]
    if missing:
        raise LaminaError(f"{path} has no {', '.join(missing)}: it was written by an older lamina or is "
                          f"incomplete; {again}.")
    recorded = manifest.get("sha256") or {}
    if not isinstance(recorded, dict):
        raise LaminaError(f"{path / 'manifest.json'} is damaged: its sha256 entry is not a table of files; {again}.")
    for name, digest in recorded.items():
        if name in CHECKSUMMED and sha256(path / name) != digest:
            raise LaminaError(f"{path / name} was changed or damaged after the run wrote it (its sha256 differs "
                              f"from the one in manifest.json); {again}.")
    return manifest


def _parsed(path: Path, name: str, parse):
    """``parse(text)`` of ``path/name`` (``parse=None``: the arrays of an .npz), any failure a LaminaError."""
    file = path / name
    try:
        return load_arrays(file) if parse is None else parse(file.read_text(encoding="utf-8"))
    except LaminaError as err:
        raise LaminaError(f"{file} does not hold valid settings: {one_line(err)}") from None
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as err:
        what = "not valid JSON" if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise LaminaError(f"{file} is damaged ({what}: {one_line(err)}); run the experiment again.") from None


def redraw(path, overrides: dict | None = None, *, out=None, force: bool = False, experiment=None) -> Path:
    """Draw the figures and report.html of the run directory ``path`` again, without the model.

    Args:
        overrides: presentation options (e.g. ``{"density_bins": "20"}``) on top of the ones the
            directory was drawn with; compute settings are refused (they need a new run).
        out: write a complete copy there instead of redrawing in place; it must not exist
            unless ``force``.
        experiment: the run's experiment, when it cannot be found from the manifest (see :func:`read`).

    Returns:
        The directory written.
    """
    path = Path(path)
    contents = read(path, experiment=experiment)
    stored = dataclasses.asdict(contents.options)
    options = contents.experiment.options({**stored, **(overrides or {})})
    target = path if out is None else Path(out)
    if out is not None and target.exists() and not force:
        raise LaminaError(f"{target} already exists; pass --force (force=True) to replace it, or choose another --out.")
    tmp = _partial(target)
    try:
        shutil.copytree(path, tmp, ignore=shutil.ignore_patterns("figures", "report.html"), dirs_exist_ok=True)
        (tmp / "presentation.json").write_text(json.dumps(dataclasses.asdict(options), indent=1))
        draw(tmp, contents._replace(options=options))
        _publish(tmp, target, force=True if out is None else force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _partial(out: Path) -> Path:
    """A fresh temporary directory beside ``out``, after removing those of writers that died (killed
    mid-write, they could not clean up; a living writer's are left alone). A replaced run that a dead
    writer had moved aside, with nothing renamed into its place, is put back."""
    for stale in dead_writers(out.parent, f".{glob.escape(out.name)}.*-*"):
        if stale.name.rpartition("-")[0].endswith(".old") and not out.exists():
            stale.rename(out)  # killed between moving the old run aside and renaming the new one in
        else:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def dead_writers(directory: Path, pattern: str) -> list[Path]:
    """Temporary entries ``<name>.partial-PID`` / ``<name>.old-PID`` matching ``pattern`` in ``directory``
    whose writer process no longer exists (killed mid-write, it could not clean up)."""
    if not directory.is_dir():
        return []
    out = []
    for path in directory.glob(pattern):
        kind, _, pid = path.name.rpartition("-")
        if kind.endswith((".partial", ".old")) and pid.isdigit() and not _alive(int(pid)):
            out.append(path)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _publish(tmp: Path, out: Path, force: bool) -> None:
    """Rename ``tmp`` to ``out``: the directory appears complete or not at all."""
    old = None
    if out.exists():
        if not force:
            raise LaminaError(f"{out} appeared while the run was going; nothing was replaced.")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
