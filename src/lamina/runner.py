"""``lamina.run``: one experiment end to end, and its run directory.

A run directory holds ``config.json``, ``results.json``, ``tables/*.csv``,
``figures/*.png`` and ``*.svg``, ``manifest.json`` and ``report.html``. It is written
under a temporary name and renamed when complete, and never replaces an existing
directory unless ``force=True``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import LaminaError
from .experiments import Context, Experiment, Result, get
from .experiments.base import jsonable
from .models import Model, load
from .models.fingerprint import weights_sha256
from .plots import save
from .report import render


@dataclass
class Run:
    """A finished run: the experiment, its config, its result, the manifest, and where it was written."""

    experiment: Experiment
    config: object
    result: Result
    manifest: dict
    path: Path | None

    @property
    def summary(self) -> dict:
        return self.result.summary

    @property
    def tables(self):
        return self.result.tables

    @property
    def report(self) -> Path | None:
        return self.path / "report.html" if self.path else None


def default_out(experiment: str, model_name: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(model_name).name)
    return Path("runs") / f"{experiment}-{slug}"


def run(experiment: str, model="smollm2-135m", *, device=None, dtype=None, seed: int = 0, out=None,
        force: bool = False, progress: bool | None = None, settings: dict | None = None, **kwargs) -> Run:
    """Run ``experiment`` on ``model`` and (with ``out``) write its run directory.

    Args:
        experiment: a name from ``lamina experiments`` (e.g. ``"position"``).
        model: a ``Model`` or anything :func:`lamina.load` takes (default: the embedded SmolLM2).
        device, dtype: passed to :func:`lamina.load` when ``model`` is a name.
        seed: seeds every random choice (jitter, permutations, bootstrap), so a rerun is identical.
        out: run directory; None keeps everything in memory.
        force: replace an existing ``out``.
        settings / kwargs: config overrides, e.g. ``seqlen=8`` (strings are converted).

    Returns:
        A :class:`Run` (``.summary``, ``.tables``, ``.result.figures``, ``.report``).
    """
    exp = get(experiment)
    config = exp.config({**(settings or {}), **kwargs})
    out = Path(out) if out is not None else None
    if out is not None and out.exists() and not force:
        raise LaminaError(f"{out} already exists; pass --force (force=True) to replace it, or choose another --out.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LaminaError(f"seed must be a non-negative integer, not {seed!r}.")
    torch.manual_seed(seed)
    ctx = Context(seed, progress=progress)
    started = datetime.now(timezone.utc)
    wall = time.perf_counter()
    with ctx.stage("load"):
        model = model if isinstance(model, Model) else load(model, device=device, dtype=dtype)
    result = exp.run(model, config, ctx)
    manifest = _manifest(exp, model, seed, ctx, started)
    if out is not None:
        with ctx.stage("write"):
            _write(out, exp, config, result, manifest, force)
    manifest["timings"] = dict(ctx.timings)
    manifest["wall_seconds"] = round(time.perf_counter() - wall, 3)
    if out is not None:
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for fig, _caption in result.figures.values():
        fig.clear()  # figures are saved; free their memory
    return Run(exp, config, result, manifest, out)


def _manifest(exp, model, seed, ctx, started) -> dict:
    import transformers

    return {
        "experiment": exp.name, "seed": seed, "started": started.isoformat(timespec="seconds"),
        "device": str(model.device), "dtype": str(model.dtype).replace("torch.", ""),
        "model": {"name": model.name, "family": model.adapter.family, "source": model.source,
                  "weights_sha256": weights_sha256(model), "n_layers": model.n_layers,
                  "prepend_bos": model.prepend_bos},
        "versions": {"lamina": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("lamina") else None,
        "timings": dict(ctx.timings),
    }


def _write(out: Path, exp, config, result, manifest, force) -> None:
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "tables").mkdir(parents=True)
    (tmp / "figures").mkdir()
    try:
        (tmp / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
        (tmp / "results.json").write_text(json.dumps(jsonable(result.summary), indent=1, allow_nan=False))
        for name, table in result.tables.items():
            table.to_csv(tmp / "tables" / f"{name}.csv", index=False)
        for name, (fig, _caption) in result.figures.items():
            save(fig, tmp / "figures" / name)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        page = render(experiment=exp, config=config, result=result, manifest=manifest, figure_dir=tmp / "figures",
                      tables=[f"{name}.csv" for name in result.tables])
        (tmp / "report.html").write_text(page, encoding="utf-8")
        if out.exists():
            if not force:
                raise LaminaError(f"{out} appeared while the run was going; nothing was replaced.")
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)  # the directory appears complete or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
