"""``lamina new``: the skeleton it writes passes its own generated test unmodified; bad names are one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lamina
from lamina.cli import main


def test_the_skeleton_passes_its_generated_test(tmp_path, capsys, data_dir):
    assert main(["new", "demo", "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    written = {str(Path(p).relative_to(tmp_path)) for p in printed}
    assert written == {"demo/__init__.py", "demo/config.py", "demo/compute.py", "demo/result.py", "demo/figures.py",
                       "demo/report.py", "tests/test_demo.py", "pyproject.toml"}
    assert '[project.entry-points."lamina.experiments"]\ndemo = "demo:EXPERIMENT"' in (tmp_path / "pyproject.toml").read_text()
    # the package's lines, without blank ones: what writing a new experiment starts from
    lines = sum(1 for p in (tmp_path / "demo").glob("*.py") for line in p.read_text().splitlines() if line.strip())
    assert lines < 200, lines
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(lamina.__file__).parents[1])])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_demo.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_bad_names_and_existing_folders_are_one_line_errors(tmp_path, capsys):
    for name, says in [("9lives", "cannot name an experiment package"), ("my-exp", "cannot name"),
                       ("class", "cannot name"), ("Demo", "lower-case")]:
        assert main(["new", name, "--dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err
    (tmp_path / "demo").mkdir()
    assert main(["new", "demo", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'demo'} already exists" in err
    (tmp_path / "file").write_text("")
    assert main(["new", "demo", "--dir", str(tmp_path / "file")]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert not (tmp_path / "tests").exists()  # nothing written when refused


def test_an_existing_pyproject_is_kept(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    assert main(["new", "hidden_norms", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "pyproject.toml").read_text() == "[project]\nname = 'mine'\n"
    assert 'hidden-norms = "hidden_norms:EXPERIMENT"' in capsys.readouterr().out
    assert "class HiddenNormsConfig" in (tmp_path / "hidden_norms" / "config.py").read_text()
