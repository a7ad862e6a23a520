"""The architecture holds: stages import only earlier stages, computing draws nothing, the face is lazy."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """import-linter's contracts in pyproject.toml: the layer order of docs/design.md, and no plotting
    library (directly or through another module) in stats/ or any experiment's compute.py / result.py."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing; `make install` installs import-linter from requirements.lock")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_import_lamina_loads_nothing_heavy():
    """`import lamina` starts without torch, transformers, matplotlib, the runner or any experiment;
    each public name is imported on first use."""
    code = ("import sys, lamina\n"
            "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'lamina.runner', 'lamina.experiments',"
            " 'lamina.record') if m in sys.modules]\n"
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


@pytest.mark.parametrize("first", ["import lamina", "from lamina.record import store", "import lamina.record as r"])
def test_record_is_the_package_and_records_whatever_is_imported_first(first):
    """`lamina.record` the function does not shadow `lamina.record` the package: it is the package, and
    calling it records, in whichever order things are imported."""
    code = (f"{first}\n"
            "import sys, types, lamina\n"
            "import lamina.record as package\n"
            "assert lamina.record is package is sys.modules['lamina.record']\n"
            "assert isinstance(lamina.record, types.ModuleType) and lamina.record.store.write_shard\n"
            "from lamina import Recording, record\n"
            "assert record is package and Recording is package.Recording\n"
            "called = []\n"
            "package.record = lambda *args, **kwargs: called.append((args, kwargs)) or 'recording'\n"
            "assert lamina.record('model', 'stimuli', sites=['hidden']) == 'recording'\n"
            "assert called == [(('model', 'stimuli'), {'sites': ['hidden']})]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
