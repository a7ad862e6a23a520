"""Experiments from outside lamina are first-class (issue 28).

tests/external/lamina_demo_ext is an experiment package outside src/ (a typed result with intervals
over windows, tables, profiles, figures, a report, control settings). It runs from a file path, a
module on sys.path, an installed distribution's entry point and as an object; its run directory
records how it was found, reads back equal in this process and another, and redraws; ``lamina
compare`` lines it up across models and untrained controls. Every bad spec is one line from the CLI.
"""

import dataclasses
import filecmp
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina.cli import main
from lamina.comparison import Comparison
from lamina.experiments import BUILTIN, EXPERIMENTS, catalog, code_sha256, locate, resolve, sources

EXTERNAL = Path(__file__).parent / "external"
PACKAGE = EXTERNAL / "lamina_demo_ext"
FILE_SPEC = f"{PACKAGE}/__init__.py:EXPERIMENT"
NAME = "demo-norms"


def _same_drawing(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in (a / "figures").iterdir())
    assert names == sorted(p.name for p in (b / "figures").iterdir()) == ["norms.png", "norms.svg"]
    return [n for n in [*(f"figures/{n}" for n in names), "report.html"]
            if not filecmp.cmp(a / n, b / n, shallow=False)]


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("lamina: error: ") and "Traceback" not in err, err
    return err


def _save(model, path: Path) -> str:
    model.hf.save_pretrained(path)
    model.tokenizer.save_pretrained(path)
    return str(path)


def _dist(site: Path, name: str, entries: dict[str, str]) -> None:
    """A fake installed distribution in ``site``: METADATA and entry_points.txt, found by importlib.metadata."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[lamina.experiments]\n{lines}")


@pytest.fixture(scope="module")
def from_file(tiny_gpt2, tmp_path_factory):
    return lamina.run(FILE_SPEC, tiny_gpt2, out=tmp_path_factory.mktemp("ext") / "run", progress=False)


def test_a_file_spec_runs_writes_and_reads_back(from_file, tmp_path, capsys):
    run = from_file
    manifest = _manifest(run.path)
    assert manifest["experiment"] == NAME == run.experiment.name
    assert manifest["experiment_source"] == f"file:{PACKAGE.resolve()}:EXPERIMENT"
    assert manifest["experiment_code"] == code_sha256(run.experiment) and code_sha256(BUILTIN["position"]) is None
    assert len(run.result.entries) == 4 and run.result.replicates == 3  # 3 blocks: 4 hidden entries, 3 windows
    assert {p.name for p in (run.path / "tables").iterdir()} == {"norms.csv", "windows.csv"}
    loaded = lamina.Run.load(run.path)
    assert loaded.experiment is run.experiment and loaded.result == run.result and loaded.config == run.config
    assert list(loaded.profiles["metric"].unique()) == ["log_norm"]
    assert np.isfinite(loaded.profiles["ci_low"]).all()
    # the other forms of the same file resolve to the same object; lamina report redraws byte for byte
    assert resolve(str(PACKAGE)) is resolve(f"{PACKAGE}:EXPERIMENT") is run.experiment
    assert main(["report", str(run.path), "--out", str(tmp_path / "copy")]) == 0
    assert _same_drawing(run.path, tmp_path / "copy") == []
    assert main(["report", str(run.path), "--out", str(tmp_path / "red"), "--set", "color=tab:red"]) == 0
    assert _same_drawing(run.path, tmp_path / "red") == ["figures/norms.png", "figures/norms.svg", "report.html"]
    assert f"report: {tmp_path / 'red' / 'report.html'}" in capsys.readouterr().out


def test_a_fresh_process_finds_the_file_again(from_file, tmp_path):
    """lamina report in another process: the manifest's file source is imported again there."""
    copy = tmp_path / "run"
    shutil.copytree(from_file.path, copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    env = {**os.environ, "PYTHONPATH": str(Path(lamina.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "lamina.cli", "report", str(copy)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _same_drawing(from_file.path, copy) == []


def test_a_module_spec(tiny_gpt2, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXTERNAL))
    run = lamina.run("lamina_demo_ext:EXPERIMENT", tiny_gpt2, out=tmp_path / "run", progress=False)
    assert _manifest(run.path)["experiment_source"] == "module:lamina_demo_ext:EXPERIMENT"
    import lamina_demo_ext

    assert run.experiment is lamina_demo_ext.EXPERIMENT
    assert lamina.Run.load(run.path).result == run.result
    # the object itself, found where its module holds it
    again = lamina.run(lamina_demo_ext.EXPERIMENT, tiny_gpt2, out=tmp_path / "object", progress=False)
    assert _manifest(again.path)["experiment_source"] == "object:lamina_demo_ext:EXPERIMENT"
    assert again.result == run.result
    assert lamina.Run.load(again.path).experiment is lamina_demo_ext.EXPERIMENT


def test_an_entry_point(tiny_gpt2, tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    _dist(site, "lamina-demo-ext", {NAME: "lamina_demo_ext:EXPERIMENT"})
    monkeypatch.syspath_prepend(str(EXTERNAL))
    monkeypatch.syspath_prepend(str(site))
    assert list(EXPERIMENTS) == [*BUILTIN, NAME]
    entry = catalog()[-1]
    assert (entry.name, entry.source, entry.problem) == (NAME, "entry-point:lamina-demo-ext", None)
    assert main(["experiments"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].startswith(NAME) and listed[-1].endswith("(entry-point:lamina-demo-ext)")
    assert main(["experiments", "--names"]) == 0 and capsys.readouterr().out.split()[-1] == NAME
    model = _save(tiny_gpt2, tmp_path / "gpt2")
    assert main(["run", NAME, "--model", model, "--out", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.startswith(f"{NAME}: ")
    manifest = _manifest(tmp_path / "run")
    assert manifest["experiment_source"] == "entry-point:lamina-demo-ext"
    assert lamina.Run.load(tmp_path / "run").experiment is EXPERIMENTS[NAME] is resolve("lamina_demo_ext:EXPERIMENT")
    # the object an entry point gives records the entry point
    assert locate(EXPERIMENTS[NAME]).source == "entry-point:lamina-demo-ext"


def test_entry_point_clashes(tmp_path, monkeypatch, capsys):
    """A built-in name wins (a warning; the listing says so); one name from two distributions is refused;
    an entry point named otherwise than its experiment is refused."""
    site = tmp_path / "site"
    _dist(site, "first-dist", {NAME: "lamina_demo_ext:EXPERIMENT", "position": "lamina_demo_ext"})
    _dist(site, "second-dist", {NAME: "lamina_demo_ext", "misnamed": "lamina_demo_ext:EXPERIMENT"})
    monkeypatch.syspath_prepend(str(EXTERNAL))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sources, "_warned", set())
    with pytest.warns(UserWarning, match="entry point 'position' of first-dist is ignored: 'position' is a built-in"):
        assert resolve("position") is BUILTIN["position"]
    with pytest.raises(lamina.LaminaError, match="2 installed distributions register the experiment 'demo-norms' "
                                                 r"\(first-dist: lamina_demo_ext:EXPERIMENT, second-dist"):
        resolve(NAME)
    with pytest.raises(lamina.LaminaError, match="gives the experiment 'demo-norms'; the entry point must be named"):
        resolve("misnamed")
    assert list(EXPERIMENTS) == list(BUILTIN)  # none of them usable by name
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out
    assert ("(entry-point:first-dist) ignored: 'position' is a built-in experiment, which wins; run this one as "
            "lamina_demo_ext:EXPERIMENT") in out
    assert out.count("ignored: 2 installed distributions register") == 2
    assert "(entry-point:second-dist) entry point 'misnamed' of second-dist" in out
    assert main(["run", NAME]) == 2
    assert "2 installed distributions register" in _one_line_error(capsys)


def test_an_object_from_a_notebook(from_file, tiny_gpt2, tmp_path, monkeypatch, capsys):
    """An experiment defined in a notebook cell (module __main__) reads back in the same process; in another
    session it is named with how to pass it."""
    exp = dataclasses.replace(from_file.experiment, name="demo-notebook")
    monkeypatch.setattr(sys.modules["__main__"], "NOTEBOOK_EXP", exp, raising=False)
    run = lamina.run(exp, tiny_gpt2, out=tmp_path / "run", progress=False, window=6)
    assert _manifest(run.path)["experiment_source"] == "object:__main__:NOTEBOOK_EXP"
    assert lamina.Run.load(run.path).experiment is exp
    assert lamina.Run.load(run.path).result == run.result
    monkeypatch.setattr(sources, "_passed", {})  # another session
    with pytest.raises(lamina.LaminaError, match="cannot find its experiment 'demo-notebook' "
                                                 r"\(object:__main__:NOTEBOOK_EXP\).*experiment=EXP"):
        lamina.Run.load(run.path)
    assert lamina.Run.load(run.path, experiment=exp).result == run.result  # given: known again from now on
    monkeypatch.setattr(sources, "_passed", {})
    assert main(["report", str(run.path)]) == 2
    assert "--experiment FILE.py:NAME" in _one_line_error(capsys)
    assert main(["report", str(run.path), "--experiment", FILE_SPEC]) == 2
    assert "holds a run of the experiment 'demo-notebook', not of 'demo-norms'" in _one_line_error(capsys)


def test_changed_code_is_run_again_and_a_file_that_moved(from_file, tiny_gpt2, tmp_path, capsys):
    """lamina compare reuses an external experiment's run while its code is unchanged; a run whose file is
    gone says how to give the experiment."""
    moved = tmp_path / "pkg" / "lamina_demo_ext"
    shutil.copytree(PACKAGE, moved, ignore=shutil.ignore_patterns("__pycache__"))
    first = lamina.compare(str(moved), [tiny_gpt2], out=tmp_path / "cmp", progress=False)
    assert lamina.compare(str(moved), [tiny_gpt2], out=tmp_path / "cmp", progress=False).members[0].status == "reused"
    time.sleep(0.01)
    with open(moved / "compute.py", "a") as changed:
        changed.write("# changed\n")
    again = lamina.compare(str(moved), [tiny_gpt2], out=tmp_path / "cmp", progress=False)
    assert again.members[0].status == "new" and again.members[0].path != first.members[0].path
    run = again.runs["tiny-gpt2"]
    assert _manifest(run.path)["experiment_source"] == f"file:{moved.resolve()}:EXPERIMENT"
    shutil.rmtree(moved)
    assert main(["report", str(run.path)]) == 2
    err = _one_line_error(capsys)
    assert f"its file {moved.resolve()} no longer exists" in err and "--experiment FILE.py:NAME" in err
    assert main(["report", str(run.path), "--experiment", FILE_SPEC]) == 0
    capsys.readouterr()
    loaded = lamina.Run.load(run.path, experiment=FILE_SPEC)  # another copy of the package: its own classes
    assert dataclasses.asdict(loaded.config) == dataclasses.asdict(run.config) and loaded.summary == run.summary


def test_a_changed_file_is_imported_again(tmp_path):
    file = tmp_path / "mine.py"
    source = textwrap.dedent("""
        import dataclasses
        from lamina.experiments import BUILTIN
        EXP = dataclasses.replace(BUILTIN["position"], name="mine", description="{}")
    """)
    file.write_text(source.format("first"))
    first = resolve(f"{file}:EXP")
    assert first is resolve(f"{file}:EXP") and first.description == "first"
    time.sleep(0.01)
    file.write_text(source.format("second, longer"))
    assert resolve(f"{file}:EXP").description == "second, longer"


def test_compare_lines_up_an_external_experiment(tiny_gpt2, tiny_llama, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cmp"
    done = lamina.compare(FILE_SPEC, [tiny_gpt2, tiny_llama], controls="random:2", out=out, progress=False)
    assert [m.status for m in done.members] == ["new"] * 6 and not done.failures
    assert set(zip(done.table["model"], done.table["control"])) == {(m, c) for m in ("tiny-gpt2", "tiny-llama")
                                                                   for c in (False, True)}
    assert set(done.table["metric"]) == {"log_norm"} and done.table["ci_low"].notna().all()
    assert not done.bands.empty and (done.bands["n_controls"] == 2).all()
    trained = {m.model: m.run for m in done.members if not m.control}
    for member in done.members:  # each control read its trained model's windows (control_settings, Run.load)
        if member.control:
            assert member.run.config.starts == trained[member.model].result.starts == member.run.result.starts
        assert _manifest(member.path)["experiment_source"] == f"file:{PACKAGE.resolve()}:EXPERIMENT"
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["experiment"] == NAME and comparison["experiment_source"].startswith("file:")
    loaded = Comparison.load(out)
    assert loaded.experiment is done.experiment and loaded.table.equals(done.table)
    again = lamina.compare(FILE_SPEC, [tiny_gpt2, tiny_llama], controls="random:2", out=out, progress=False)
    assert [m.status for m in again.members] == ["reused"] * 6
    # the CLI: a module spec, one saved model
    monkeypatch.syspath_prepend(str(EXTERNAL))
    model = _save(tiny_gpt2, tmp_path / "gpt2")
    assert main(["compare", "lamina_demo_ext:EXPERIMENT", "--models", model, "--out", str(tmp_path / "cli")]) == 0
    assert "report:" in capsys.readouterr().out
    assert (tmp_path / "cli" / "figures" / "profiles.png").is_file()


BAD = {
    "missing.py": None,
    "raises.py": "raise RuntimeError('boom at import')\n",
    "syntax.py": "def broken(:\n",
    "plain.py": "EXPERIMENT = 'not an experiment'\nOTHER = 3\n",
    "empty.py": "X = 1\n",
    "plain.txt": "text\n",
}


@pytest.mark.parametrize("spec, message", [
    ("{d}/missing.py:EXP", "experiment file '{d}/missing.py' does not exist"),
    ("{d}/raises.py:EXP", "importing the experiment file {d}/raises.py failed: RuntimeError: boom at import"),
    ("{d}/syntax.py", "importing the experiment file {d}/syntax.py failed: SyntaxError"),
    ("{d}/plain.py", "experiment file {d}/plain.py:EXPERIMENT is a str, not a lamina Experiment"),
    ("{d}/plain.py:OTHER", "experiment file {d}/plain.py:OTHER is an int, not a lamina Experiment"),
    ("{d}/plain.py:NOPE", "experiment file {d}/plain.py has no attribute 'NOPE'. It holds no Experiment."),
    ("{d}/empty.py", "experiment file {d}/empty.py defines no EXPERIMENT; name the attribute that holds the "
                     "experiment ({d}/empty.py:NAME)"),
    ("{d}", "is a directory without __init__.py"),
    ("{d}/plain.txt:X", "experiment file '{d}/plain.txt' is not a Python file"),
    ("no_such_module_xyz:EXP", "cannot import the experiment module 'no_such_module_xyz' (ModuleNotFoundError: "
                               "No module named "),
    ("json:EXP", "experiment module json has no attribute 'EXP'"),
    ("json:dumps", "experiment module json:dumps is a function, not a lamina Experiment"),
    ("demo-norm", "unknown experiment 'demo-norm'. Experiments: position,"),
    ("positon", "unknown experiment 'positon'. Did you mean 'position'"),
])
def test_bad_specs_are_one_line_errors(spec, message, tmp_path, capsys):
    for name, text in BAD.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    d = str(tmp_path.resolve())
    spec, message = spec.format(d=d), message.format(d=d)
    for argv in (["run", spec], ["compare", spec, "--models", "x"]):
        assert main(argv) == 2, argv
        assert message in _one_line_error(capsys)
    with pytest.raises(lamina.LaminaError) as caught:
        lamina.run(spec, model=None)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_not_a_spec():
    for value in (3, None, "", ["position"]):
        with pytest.raises(lamina.LaminaError, match="an experiment is a name from `lamina experiments`, "
                                                     "FILE.py"):
            lamina.run(value)


def test_the_package_outside_src_passes_the_contract(tiny_gpt2, tmp_path, data_dir):
    """The contract every seed passes (lamina.testing.check_experiment), on the package outside src/."""
    from lamina.testing import check_experiment

    run = check_experiment(resolve(FILE_SPEC), tiny_gpt2, tmp_dir=tmp_path)
    assert run.experiment.name == NAME and _manifest(run.path)["experiment_source"].startswith("file:")
