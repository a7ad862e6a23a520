"""The contract can fail: check_experiment on a deliberately broken experiment names each broken check,
and Experiment.from_package names the file and the part a package lacks."""

import dataclasses
import importlib
import sys
import typing
from dataclasses import dataclass

import numpy as np
import pytest

import lamina
from lamina.experiments import Experiment, get
from lamina.testing import ContractError, check_experiment

BASE = get("attn-autoregression")  # the quickest seed on the tiny model
_SEEN = {}  # what compute leaves behind in this process: a fresh process has none of it


@dataclass
class LooseConfig(BASE.Config):
    extra: typing.Any = None  # a setting of a type lamina cannot check: any value passes


def _compute(model, config, ctx):
    _SEEN["model"] = model
    result = BASE.compute(model, config, ctx)
    return dataclasses.replace(result, alpha=float(np.random.default_rng().uniform(0.01, 0.1)))  # unseeded


def _tables(result):
    tables = BASE.tables(result)
    return {**tables, "regression": tables["regression"].assign(made_up=12345.678)}


def _profiles(result):
    table = BASE.profiles(result)
    return table[table["layer"] > 0]  # the first block left out


def _figures(result, config, options):
    figures = BASE.figures(result, config, options)
    figures["betas"] = figures["betas"]._replace(caption=f"drawn for {_SEEN['model'].name}")  # needs the model
    return figures


BROKEN = dataclasses.replace(BASE, name="broken", Config=LooseConfig, compute=_compute, tables=_tables,
                             profiles=_profiles, figures=_figures)


def test_check_experiment_lists_every_broken_check(tiny_gpt2, tmp_path, data_dir):
    with pytest.raises(ContractError) as caught:
        check_experiment(BROKEN, tiny_gpt2, tmp_dir=tmp_path)
    failures = dict(caught.value.failures)
    assert set(failures) == {"settings", "tables", "profiles", "redraw", "rerun"}, caught.value
    assert "extra" in failures["settings"] and "accepted" in failures["settings"]
    assert "table regression, column made_up: [12345.678]" in failures["tables"]
    assert "layers [1, 2], not 0..2" in failures["profiles"]
    assert "fresh process" in failures["redraw"] and "KeyError" in failures["redraw"]
    assert "results.json" in failures["rerun"]
    message = str(caught.value)
    assert message.startswith("experiment 'broken' breaks the contract in 5 check(s):")
    assert all("\n" not in reason for reason in failures.values())


def test_a_run_that_fails_stops_the_check(tiny_gpt2, tmp_path):
    def compute(model, config, ctx):
        raise RuntimeError("no result")

    with pytest.raises(ContractError, match=r"- run: RuntimeError: no result"):
        check_experiment(dataclasses.replace(BASE, name="failing", compute=compute), tiny_gpt2, tmp_dir=tmp_path)


PARTS = {
    "__init__.py": '"""A package."""\nTITLE = "T"\nQUESTION = "Q?"\n',
    "compute.py": ("from dataclasses import dataclass\n\n@dataclass\nclass PkgConfig:\n    n: int = 1\n\n"
                   "def compute(model, config, ctx): ...\ndef tables(result): ...\ndef profiles(result): ...\n"),
    "figures.py": "from dataclasses import dataclass\n\n@dataclass\nclass PkgOptions:\n    k: int = 1\n\n"
                  "def figures(result, config, options): ...\n",
    "report.py": "def report(result, config): ...\n",
    "result.py": "from lamina.experiments.typed import Typed\n\nclass Helper(Typed): ...\nclass PkgResult(Typed): ...\n",
}


def _package(tmp_path, monkeypatch, name, **changes):
    for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, key)  # another test's package of the same name
    folder = tmp_path / name
    folder.mkdir()
    for file, text in {**PARTS, **changes}.items():
        if text is not None:
            (folder / file).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


def test_from_package_finds_the_parts_by_convention(tmp_path, monkeypatch):
    name = _package(tmp_path, monkeypatch, "my_pkg", **{"__init__.py": '"""one line.\n\nmore"""\nTITLE = "T"\n'
                                                                        'QUESTION = "Q?"\n'})
    exp = Experiment.from_package(name)
    assert (exp.name, exp.title, exp.description, exp.question, exp.seed_notebook) == ("my-pkg", "T", "one line.",
                                                                                       "Q?", "none")
    assert (exp.Config.__name__, exp.Options.__name__, exp.Result.__name__) == ("PkgConfig", "PkgOptions", "PkgResult")
    assert exp.compute.__module__ == "my_pkg.compute" and exp.control_settings is None
    assert Experiment.from_package(name, name="other", title="U").name == "other"


@pytest.mark.parametrize("file, text, says", [
    ("figures.py", None, "my_pkg has no figures.py; it should define figures, Options"),
    ("report.py", "x = 1\n", "my_pkg.report (report.py) defines no function report(result, config) -> Report"),
    ("compute.py", PARTS["compute.py"] + "@dataclass\nclass OtherConfig:\n    m: int = 2\n",
     "my_pkg.compute (compute.py) should define one dataclass named Config or *Config; found 2 (PkgConfig, "
     "OtherConfig)"),
    ("result.py", "class PkgResult: ...\n", "should define one Typed dataclass named Result or *Result; found none"),
    ("__init__.py", '"""A package."""\nQUESTION = "Q?"\n', "my_pkg/__init__.py defines no TITLE"),
])
def test_from_package_names_the_missing_part(tmp_path, monkeypatch, file, text, says):
    name = _package(tmp_path, monkeypatch, "my_pkg", **{file: text})
    with pytest.raises(lamina.LaminaError) as caught:
        Experiment.from_package(name)
    assert says in str(caught.value) and "\n" not in str(caught.value)
