"""The architecture holds: stages import only earlier stages, computing draws nothing, the face is lazy."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """import-linter's contracts in pyproject.toml: the layer order of docs/design.md, and no plotting
    library (directly or through another module) in stats/ or any experiment's compute.py / result.py, no
    torch, recording or compute.py imported by a figures.py or report.py (they take shared constants from
    result.py), and no import cycle inside models/ (its own layers)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing; `make install` installs import-linter from requirements.lock")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    assert "models/ has no import cycle" in done.stdout  # the contract inside models/ is checked too
    assert "Drawing and reporting load no model" in done.stdout


def test_import_lamina_loads_nothing_heavy():
    """`import lamina` starts without torch, transformers, matplotlib, the runner or any experiment;
    each public name is imported on first use."""
    code = ("import sys, lamina\n"
            "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'lamina.runner', 'lamina.experiments',"
            " 'lamina.recording') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(lamina.load) and callable(lamina.record) and callable(lamina.run)\n"
            "assert lamina.Run.__name__ == 'Run' and lamina.stimuli.window and lamina.data.book\n"
            "assert 'lamina.runner' in sys.modules\n"
            "assert set(lamina.__all__) <= set(dir(lamina))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute_is_an_attribute_error():
    import lamina

    with pytest.raises(AttributeError, match="no attribute 'recrod'"):
        lamina.recrod  # noqa: B018


def test_record_is_the_function_of_the_recording_package():
    """`lamina.record` is the function; the stage lives in `lamina.recording` (no name is both)."""
    import lamina
    import lamina.recording as recording

    assert lamina.record is recording.record is recording.engine.record
    assert lamina.Recording is recording.Recording
