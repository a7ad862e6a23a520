"""Run directories: written atomically, read back without the model, redrawn with new presentation options.

A run directory holds everything its figures and report are drawn from::

    config.json         compute settings (after --set)
    presentation.json   presentation options of figures/ and report.html (lamina report --set)
    results.json        the numbers: the typed result's plain fields
    details.json        what else the report says: model facts, notes from the data
    arrays.npz          the arrays behind the figures and tables (NumPy .npz, no pickle)
    tables/*.csv        tidy tables, derived from the result
    figures/*.png|svg   drawn from the result and the presentation options
    manifest.json       provenance: experiment, seed, model, versions, timings
    report.html         one self-contained page

Figures and report.html are byte-reproducible: drawing them again from the same files gives the
same bytes (:func:`lamina.plots.save` fixes SVG ids and leaves out dates).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple

from .errors import LaminaError
from .experiments import Experiment, get
from .experiments.typed import arrays, build, details, dump_json, load_arrays, save_arrays, summary
from .plots import save
from .report import render

DATA_FILES = ("config.json", "presentation.json", "results.json", "details.json", "arrays.npz", "manifest.json")


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


def read(path) -> Contents:
    """The experiment, config, presentation options, typed result and manifest of a run directory."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise LaminaError(f"{path} is not a run directory (no manifest.json); give the directory "
                          "`lamina run` wrote, e.g. runs/position-smollm2-135m.")
    manifest = json.loads((path / "manifest.json").read_text())
    missing = [name for name in DATA_FILES if not (path / name).is_file()]
    if missing:
        raise LaminaError(f"{path} has no {', '.join(missing)}: it was written by an older lamina or is "
                          f"incomplete; run the experiment again (lamina run {manifest.get('experiment', '...')}).")
    exp = get(manifest["experiment"])
    config = exp.config(json.loads((path / "config.json").read_text()))
    options = exp.options(json.loads((path / "presentation.json").read_text()))
    result = build(exp.Result, json.loads((path / "results.json").read_text()),
                   json.loads((path / "details.json").read_text()), load_arrays(path / "arrays.npz"))
    return Contents(exp, config, options, result, manifest)


def redraw(path, overrides: dict | None = None, *, out=None, force: bool = False) -> Path:
    """Draw the figures and report.html of the run directory ``path`` again, without the model.

    Args:
        overrides: presentation options (e.g. ``{"density_bins": "20"}``) on top of the ones the
            directory was drawn with; compute settings are refused (they need a new run).
        out: write a complete copy there instead of redrawing in place; it must not exist
            unless ``force``.

    Returns:
        The directory written.
    """
    path = Path(path)
    contents = read(path)
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
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


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
