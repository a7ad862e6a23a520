"""``lamina.run``: one experiment end to end; :class:`Run`, also read back from its run directory.

A run directory (see :mod:`lamina.rundir`) holds the settings, the typed result (results.json,
details.json, arrays.npz), tables, figures, the manifest and report.html. It is written under a
temporary name and renamed when complete, and never replaces an existing directory unless
``force=True``. ``Run.load(path)`` gives the same typed result back; ``run.redraw(...)`` and
``lamina report`` draw its figures and report again without the model.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import models, rundir
from ._version import __version__
from .errors import LaminaError, check_output_dir, closest, one_line
from .experiments import Context, Experiment, code_sha256
from .experiments.spec import RunSpec
from .experiments.typed import summary
from .report.notebook import png_base64, run_html


@dataclass
class Run:
    """A finished run: the experiment, its config, typed result, presentation options, manifest and directory."""

    experiment: Experiment
    config: object
    result: object
    manifest: dict
    path: Path | None
    options: object = None

    def __repr__(self) -> str:
        where = f", {str(self.path)!r}" if self.path else ", in memory"
        return (f"Run({self.experiment.name} on {self.manifest.get('model', {}).get('name', '?')}, "
                f"seed {self.manifest.get('seed')}{where})")

    @classmethod
    def load(cls, path, *, experiment=None) -> Run:
        """A run read back from its directory (no model needed): ``Run.load(path).result`` equals the
        result of the run that wrote it.

        The experiment is found again from the manifest's ``experiment_source`` (a built-in, an entry
        point, a file, a module, or an object run earlier in this process); ``experiment`` (an
        Experiment or any spec ``lamina.run`` takes) gives it instead, e.g. for an experiment defined
        in a notebook of another session or a file that has moved.
        """
        exp, config, options, result, manifest = rundir.read(path, experiment=experiment)
        return cls(exp, config, result, manifest, Path(path), options)

    @property
    def summary(self) -> dict:
        """results.json's content."""
        return summary(self.result)

    @functools.cached_property
    def tables(self) -> dict:
        """name -> DataFrame (tables/<name>.csv)."""
        return self.experiment.tables(self.result)

    @functools.cached_property
    def profiles(self):
        """The laminar profiles: one row per layer and metric (site, layer, metric, value, ci_low, ci_high)."""
        return self.experiment.profiles(self.result)

    def to_xarray(self):
        """The run's numbers as labelled arrays, an ``xarray.Dataset`` (needs ``pip install 'lamina[xarray]'``).

        Variables:

        * ``value``, ``ci_low``, ``ci_high``, dims ``(site, metric, layer)``: the laminar profiles
          (:attr:`profiles`; ``layer`` is the site's entry, ``hidden`` 0..n, a block site 0..n-1; NaN where a
          site lacks a metric or a layer), what ``lamina compare`` lines up across models;
        * every array of arrays.npz (the arrays behind figures and tables, per replicate, token or prompt)
          under its key (``windows.delta_loss``), its axes named as its result type declares them
          (:func:`lamina.experiments.typed.dims`, e.g. lesion's ``(ablated_site, block, window)``), else
          ``<group>_dim0``, ... (``tokens_dim0``: shared by the arrays of ``tokens``), ``<key>_dim0`` where
          their lengths differ. Empty arrays (a part that did not run) are left out.

        Attributes: experiment, model, seed, and the run directory. The values are copies.
        """
        from .experiments.typed import array_dims, arrays
        from .recording.xr import xarray_module

        xr = xarray_module()
        table = self.profiles.set_index(["site", "metric", "layer"])[["value", "ci_low", "ci_high"]]
        data = table.to_xarray() if len(table) else xr.Dataset()
        names = array_dims(self.result)
        for key, values in arrays(self.result).items():
            if values.size == 0:  # a part of the experiment that did not run (trace: a site not restored)
                continue
            axes = names.get(key) or _positional(key, values.shape, data.sizes)
            if len(axes) != values.ndim:
                raise LaminaError(f"{self.experiment.name}: array {key} has {values.ndim} axes but declares "
                                  f"{len(axes)} names ({', '.join(axes)}).")
            data[key] = (axes, np.array(values))
        data.attrs.update(experiment=self.experiment.name, model=self.manifest.get("model", {}).get("name", "?"),
                          seed=self.manifest.get("seed", -1), path=str(self.path or ""))
        return data

    @functools.cached_property
    def text(self):
        """The report's text: ``.method``, ``.key_numbers``, ``.notes``."""
        return self.experiment.report(self.result, self.config)

    @property
    def key_numbers(self):
        """The report's key numbers: a tuple of :class:`~lamina.experiments.KeyNumber` (label, value, test)."""
        return self.text.key_numbers

    @property
    def notes(self) -> tuple[str, ...]:
        """The report's notes, one string each: differences from the seed notebook, dropped items, caveats."""
        return self.text.notes

    def figures(self, **options) -> dict:
        """name -> ``Figure(figure, caption)``, drawn now with the run's presentation options and ``options``.

        ``figure`` is a ``matplotlib.figure.Figure`` (not registered with pyplot): restyle its
        ``.axes``, ``savefig`` it, or make it a cell's value to show it in a notebook.
        """
        base = {} if self.options is None else dataclasses.asdict(self.options)
        return self.experiment.figures(self.result, self.config, self.experiment.options({**base, **options}))

    def figure(self, name: str, **options):
        """One figure, drawn now, as a ``matplotlib.figure.Figure`` (see :meth:`figures`)."""
        figures = self.figures(**options)
        if name not in figures:
            raise LaminaError(f"{self.experiment.name} has no figure {name!r}; its figures: "
                              f"{', '.join(figures)}.{closest(name, list(figures))}")
        return figures[name].figure

    @functools.cached_property
    def _inline_figures(self) -> list[tuple[str, str, str]]:
        """(name, caption, base64 PNG) of every figure, drawn once for :meth:`_repr_html_`."""
        out = []
        for name, (fig, caption) in self.figures().items():
            out.append((name, caption, png_base64(fig)))
            fig.clear()  # encoded: free its memory
        return out

    def _repr_html_(self) -> str:
        """The notebook view: experiment, model, key numbers, settings, tables and the figures inline."""
        return run_html(experiment=self.experiment, config=dataclasses.asdict(self.config), manifest=self.manifest,
                        key_numbers=self.key_numbers, notes=self.notes, tables=self.tables,
                        figures=self._inline_figures, path=self.path)

    @property
    def report(self) -> Path | None:
        """The run's ``report.html`` (None: the run was not written to a directory)."""
        return self.path / "report.html" if self.path else None

    def redraw(self, out=None, *, force: bool = False, **options) -> Run:
        """Draw figures/ and report.html again with presentation ``options`` (in place, or a copy at ``out``)."""
        if self.path is None:
            raise LaminaError("this run has no directory; run it with out=... first.")
        return Run.load(rundir.redraw(self.path, options, out=out, force=force, experiment=self.experiment),
                        experiment=self.experiment)


def _positional(key: str, shape: tuple[int, ...], sizes) -> tuple[str, ...]:
    """Axis names for an array that declares none: ``<group>_dim<i>``, shared by the arrays of one group
    (``tokens.loss`` and ``tokens.correct``: ``tokens_dim0``) where their lengths agree, else ``<key>_dim<i>``."""
    group = key.rpartition(".")[0] or key
    shared = tuple(f"{group}_dim{i}" for i in range(len(shape)))
    if all(sizes.get(name, n) == n for name, n in zip(shared, shape)):
        return shared
    return tuple(f"{key}_dim{i}" for i in range(len(shape)))


def default_out(experiment: str, model_name: str) -> Path:
    """Where a run goes without ``out``: ``runs/<experiment>-<model>``, the model's last path component with
    characters other than letters, digits, ``-``, ``_`` and ``.`` replaced by ``-``."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(model_name).name)
    return Path("runs") / f"{experiment}-{slug}"


def run(experiment, model="smollm2-135m", *, device=None, dtype=None, trust_remote_code: bool = False,
        load_kwargs: dict | None = None, seed: int = 0, out=None, force: bool = False, progress: bool | None = None,
        settings: dict | None = None, options: dict | None = None, **kwargs) -> Run:
    """Run ``experiment`` on ``model`` and (with ``out``) write its run directory.

    Every setting is checked before the model loads.

    Args:
        experiment: a name from ``lamina experiments`` (e.g. ``"position"``), an ``Experiment``, or
            ``"path/to/file.py:NAME"`` / ``"my.module:NAME"`` (see :func:`lamina.experiments.resolve`);
            the manifest records how it was found, so ``Run.load`` finds it again.
        model: a ``Model`` or anything :func:`lamina.load` takes (default: the embedded SmolLM2).
        device, dtype, trust_remote_code: passed to :func:`lamina.load` when ``model`` is a name;
            load_kwargs: any other :func:`lamina.load` arguments (``device_map``, ``revision``, ...).
        seed: seeds every random choice (permutations, bootstrap, subsets), so a rerun is identical.
        out: run directory; None keeps everything in memory.
        force: replace an existing ``out``.
        settings / kwargs: compute settings, e.g. ``seqlen=8`` (strings are converted).
        options: presentation options of the figures (e.g. ``{"density_bins": 20}``).

    Returns:
        A :class:`Run` (``.result``, ``.summary``, ``.tables``, ``.figures()``, ``.report``).
    """
    spec = RunSpec.build(experiment, model, settings=settings, options=options, seed=seed, device=device,
                         dtype=dtype, trust_remote_code=trust_remote_code, load_kwargs=load_kwargs, **kwargs)
    return run_spec(spec, out=out, force=force, progress=progress)


def run_spec(spec: RunSpec, *, out=None, force: bool = False, progress: bool | None = None) -> Run:
    """Run the checked specification ``spec`` (:class:`~lamina.experiments.spec.RunSpec`): nothing in it
    is parsed or checked again. ``out``, ``force`` and ``progress`` as :func:`run` takes them."""
    out = check_output_dir(out, "out") if out is not None else None
    if out is not None and out.exists() and not force:
        raise LaminaError(f"{out} already exists; pass --force (force=True) to replace it, or choose another --out.")
    if not isinstance(force, bool):
        raise LaminaError(f"force must be True or False, not {one_line(repr(force))}.")
    # torch and the model libraries are imported here, when a run computes: Run.load, its figures and its
    # report need neither (lamina.models imports its names on first use)
    import torch

    exp, config, model = spec.experiment.experiment, spec.config, spec.model
    torch.manual_seed(spec.seed)
    ctx = Context(spec.seed, progress=progress)
    started = datetime.now(timezone.utc)
    wall = time.perf_counter()
    with ctx.stage("load"):
        if not isinstance(model, models.Model):
            model = models.load(model, **spec.load)
    try:
        result = exp.compute(model, config, ctx)
    except LaminaError as err:
        raise _naming(err, spec.given) from err
    manifest = _manifest(spec.experiment, model, spec.seed, ctx, started)
    if out is not None:
        rundir.write(out, rundir.Contents(exp, config, spec.options, result, manifest), force=force, ctx=ctx,
                     started=wall)
    else:
        manifest["timings"] = dict(ctx.timings)
        manifest["wall_seconds"] = round(time.perf_counter() - wall, 3)
    return Run(exp, config, result, manifest, out, spec.options)


def _naming(err: LaminaError, given: dict) -> LaminaError:
    """``err`` naming the settings that were given, when it names none of them: an error found with the
    model or the data (a window longer than the model's context, a word missing from the book) then
    still says which ``--set`` led to it.

    Kept although every setting is checked when the :class:`RunSpec` is built: those checks need no
    model, and these errors are only found inside ``compute``, with the model and the data at hand."""
    message = str(err)
    if not given or any(key in message for key in given):
        return err
    shown = ", ".join(f"{key}={one_line(value)}" for key, value in given.items())
    return LaminaError(f"{message.rstrip('.')} (with {shown}).")


def _manifest(found, model, seed, ctx, started) -> dict:
    import torch
    import transformers

    from .models.fingerprint import weights_sha256

    code = code_sha256(found.experiment)
    return {
        "experiment": found.experiment.name, "experiment_source": found.source,
        **({"experiment_code": code} if code else {}), "seed": seed, "started": started.isoformat(timespec="seconds"),
        "device": str(model.device), "dtype": str(model.dtype).replace("torch.", ""),
        "model": {"name": model.name, "family": model.adapter.family, "source": model.source,
                  "weights_sha256": weights_sha256(model), "n_layers": model.n_layers,
                  "prepend_bos": model.prepend_bos},
        "versions": {"lamina": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("lamina") else None,
        "timings": dict(ctx.timings),
    }
