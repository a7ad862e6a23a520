"""``lamina new NAME``: the skeleton of a new experiment, a package that already runs and passes the contract.

It writes ``DIR/NAME/`` (``__init__.py`` with :meth:`~lamina.experiments.base.Experiment.from_package`,
``config.py``, ``compute.py``, ``result.py``, ``figures.py``, ``report.py``), ``DIR/tests/test_NAME.py`` (the contract
by :func:`lamina.testing.check_experiment` and one check of the computed numbers against the model's
own hidden states) and ``DIR/pyproject.toml`` declaring the ``lamina.experiments`` entry point (kept
when one exists). The skeleton's analysis is real and small: the mean L2 norm of the residual stream
at every ``hidden`` entry, per window of a book, with the windows as replicates and a t interval; it
is meant to be edited into the new experiment.
"""

from __future__ import annotations

import keyword
from pathlib import Path

from .errors import LaminaError, check_output_dir, one_line

INIT = '''"""Hidden-state norms layer by layer: the mean L2 norm of the residual stream at every entry."""

from lamina.experiments.base import Experiment

TITLE = "Hidden-state norms layer by layer"
QUESTION = ("How large is the residual stream at each depth of the model, and how much does its size vary from "
            "one stretch of text to another?")

# The parts come from config.py, compute.py, result.py, figures.py and report.py (lamina.experiments.base).
EXPERIMENT = Experiment.from_package(__name__)
'''

CONFIG = '''"""Settings of ``{name}``: one typed value, each setting's rule beside it (lamina checks it,
`lamina experiments -v` lists it, the fuzz tests read it). No torch here: loading a run, drawing its figures
and writing its report read the settings without the model."""

from __future__ import annotations

from dataclasses import dataclass

from lamina.experiments.settings import setting


@dataclass
class {cls}Config:
    book: str = "alice"  # a name in lamina.data.BOOKS, a Gutenberg id or a text file path
    window: int = setting(64, ge=1, why="tokens per window")
    replicates: int = setting(8, ge=2, why="disjoint windows of the book: the unit of the intervals")
'''

COMPUTE = '''"""Compute of ``{name}``: per window of a book and per ``hidden`` entry, the mean L2 norm of the residual
stream over the window's tokens; per entry the windows' mean with a t interval (windows are the replicates).
No figures here: compute.py imports no plotting library."""

from __future__ import annotations

import numpy as np

from lamina import data, stimuli
from lamina.experiments.base import Context, ModelFacts
from lamina.recording import record
from lamina.stats.replicates import t_interval

from .config import {cls}Config
from .result import LEVEL, {cls}Result


def window_norms(norms: np.ndarray, window_of: np.ndarray, n_windows: int) -> np.ndarray:
    """``(entries, tokens)`` norms -> ``(entries, windows)``: each window's mean over its tokens."""
    return np.stack([norms[:, window_of == w].mean(axis=1) for w in range(n_windows)], axis=1)


def compute(model, config: {cls}Config, ctx: Context) -> {cls}Result:
    with ctx.stage("data"):
        stim = stimuli.windows(data.book(config.book), model, config.window, config.replicates,
                               max_length=model.context_length - int(model.prepend_bos))
    with ctx.stage("record"):
        rec = record(model, stim, sites=["hidden"], loss=False, progress=ctx.progress)
    with ctx.stage("stats"):
        norms = np.stack([np.linalg.norm(rec.flat("hidden", e).astype(np.float64), axis=-1)
                          for e in range(model.n_layers + 1)])  # (entries, tokens)
        per_window = window_norms(norms, rec.tokens["sequence"].to_numpy(), len(stim))  # (entries, windows)
        mean, low, high = t_interval(per_window.T, LEVEL)
    return {cls}Result(book=config.book, window=config.window, level=LEVEL,
                       starts=tuple(int(s) for s in stim.meta["start"]), norm=mean, ci_low=low, ci_high=high,
                       largest_entry=int(np.argmax(mean)), model=ModelFacts.of(model), per_window=per_window)
'''

RESULT = '''"""The typed result of ``{name}``: plain fields are results.json, key for key."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lamina.experiments.base import ModelFacts, profile_table
from lamina.experiments.typed import FloatArray, Typed, array_field, detail_field

LEVEL = 95.0  # every interval, percent


@dataclass(frozen=True, eq=False)
class {cls}Result(Typed):
    book: str
    window: int  # tokens per window
    level: float  # of the intervals, percent
    starts: tuple[int, ...]  # each window's first token in the book
    norm: FloatArray  # (entries,) the windows' mean of their mean ||hidden||
    ci_low: FloatArray  # (entries,) t interval over the windows
    ci_high: FloatArray
    largest_entry: int  # the entry with the largest mean norm
    model: ModelFacts = detail_field()
    per_window: FloatArray = array_field()  # (entries, windows)


def tables(result: {cls}Result) -> dict[str, pd.DataFrame]:
    """``entries``: the profile with its interval; ``windows``: every window's norm per entry."""
    entries, n_windows = result.per_window.shape
    return {{
        "entries": pd.DataFrame({{"entry": np.arange(entries), "norm": result.norm, "ci_low": result.ci_low,
                                 "ci_high": result.ci_high}}),
        "windows": pd.DataFrame({{"entry": np.repeat(np.arange(entries), n_windows),
                                 "window": np.tile(np.arange(n_windows), entries),
                                 "start": np.tile(result.starts, entries), "norm": result.per_window.ravel()}}),
    }}


def profiles(result: {cls}Result) -> pd.DataFrame:
    """The norm per ``hidden`` entry (0..n_layers), what ``lamina compare`` lines up across models."""
    return profile_table(("hidden", "norm", result.norm, (result.ci_low, result.ci_high)))
'''

FIGURES = '''"""Figures of ``{name}``, drawn from its result alone (no model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina.experiments.base import Figure
from lamina.experiments.settings import setting
from lamina.plots import figure


@dataclass
class {cls}Options:
    log_scale: bool = False  # a logarithmic norm axis
    window_alpha: float = setting(0.3, ge=0, le=1, why="opacity of each window's own profile (0: hidden)")


def figures(result, config, options: {cls}Options) -> dict[str, Figure]:
    fig, ax = figure(size=(7, 4))
    entries = np.arange(len(result.norm))
    if options.window_alpha > 0:
        ax.plot(entries, result.per_window, color="grey", alpha=options.window_alpha, linewidth=0.8)
    ax.fill_between(entries, result.ci_low, result.ci_high, alpha=0.3)
    ax.plot(entries, result.norm, marker="o")
    ax.set(xlabel="hidden entry (0: embeddings)", ylabel="mean ||hidden||", yscale="log" if options.log_scale else "linear")
    caption = (f"Mean L2 norm of the residual stream per hidden entry of {{result.model.name}}: the mean over "
               f"{{result.per_window.shape[1]}} windows of {{result.window}} tokens of {{result.book}} with its "
               f"{{result.level:g}}% t interval; grey: each window.")
    return {{"norms": Figure(fig, caption)}}
'''

REPORT = '''"""Report text of ``{name}``: method, key numbers, notes, from the result."""

from __future__ import annotations

from lamina.experiments.base import KeyNumber, Report


def report(result, config) -> Report:
    method = (f"{{len(result.starts)}} disjoint windows of {{result.window}} tokens of {{result.book}} go through the "
              "model; at every hidden entry the L2 norm of each token's residual stream is averaged over the "
              f"window, and the windows' means give each entry's mean with a {{result.level:g}}% t interval.")
    e = result.largest_entry
    key = (KeyNumber("largest mean norm, entry", str(e)),
           KeyNumber(f"mean norm at entry {{e}}", f"{{result.norm[e]:.4g}} [{{result.ci_low[e]:.4g}}, "
                     f"{{result.ci_high[e]:.4g}}]", f"{{result.level:g}}% t interval, windows as replicates"))
    return Report(method=method, key_numbers=key, notes=())
'''

TEST = '''"""``{name}`` on a tiny random model: the experiment contract, and its numbers against the model's own
hidden states."""

import numpy as np
import torch

import lamina
from lamina.testing import check_experiment, tiny_model

from {name} import EXPERIMENT

QUICK = {{"window": 16, "replicates": 3}}  # settings that run in seconds on the tiny model


def test_contract(tmp_path):
    check_experiment(EXPERIMENT, settings=QUICK, tmp_dir=tmp_path)


def test_norms_are_those_of_the_hidden_states():
    model = tiny_model()
    run = lamina.run(EXPERIMENT, model=model, settings=QUICK, progress=False)
    stim = lamina.stimuli.windows(lamina.data.book("alice"), model, 16, 3)
    with torch.no_grad():
        states = model.hf(torch.as_tensor(np.stack(stim.ids)), output_hidden_states=True).hidden_states
    expected = np.stack([h.double().norm(dim=-1).mean(dim=1).numpy() for h in states])  # (entries, windows)
    np.testing.assert_allclose(run.result.per_window, expected, rtol=1e-5)
    np.testing.assert_allclose(run.result.norm, expected.mean(axis=1), rtol=1e-5)
    assert (run.result.ci_low <= run.result.norm).all() and (run.result.norm <= run.result.ci_high).all()
'''

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A lamina experiment: {name}"
requires-python = ">=3.11"
dependencies = ["lamina"]

[project.entry-points."lamina.experiments"]
{exp} = "{name}:EXPERIMENT"

[tool.setuptools]
packages = ["{name}"]
'''

ENTRY_POINT = '[project.entry-points."lamina.experiments"] {exp} = "{name}:EXPERIMENT"'


def check_name(name: str) -> str:
    """``name`` if it can name the package (a Python identifier, lower case, not a keyword), else a LaminaError."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name != name.lower() \
            or name.startswith("_"):
        raise LaminaError(f"{one_line(repr(name))} cannot name an experiment package: use lower-case letters, digits "
                          "and underscores, starting with a letter (e.g. hidden_norms).")
    return name


def new(name: str, directory=".") -> list[Path]:
    """Write the skeleton of experiment ``name`` under ``directory`` (see the module docstring).

    Returns:
        The files written.
    """
    name = check_name(name)
    root = check_output_dir(directory, "--dir")
    package, test = root / name, root / "tests" / f"test_{name}.py"
    for path in (package, test):
        if path.exists():
            raise LaminaError(f"{path} already exists; choose another name or --dir.")
    cls = "".join(part.capitalize() for part in name.split("_"))
    fill = {"name": name, "cls": cls, "exp": name.replace("_", "-"), "dist": name.replace("_", "-")}
    files = {package / "__init__.py": INIT, package / "config.py": CONFIG, package / "compute.py": COMPUTE,
             package / "result.py": RESULT, package / "figures.py": FIGURES, package / "report.py": REPORT, test: TEST}
    if not (root / "pyproject.toml").exists():
        files[root / "pyproject.toml"] = PYPROJECT
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fill), encoding="utf-8")
    return list(files)


def entry_point(name: str) -> str:
    """The pyproject.toml line that registers ``name`` (for a pyproject.toml that ``new`` kept)."""
    return ENTRY_POINT.format(exp=name.replace("_", "-"), name=name)
