"""The tutorials (docs/tutorials/*.ipynb): short, committed without outputs, and every cell runs.

Each notebook is executed by nbclient in its own Jupyter kernel (the test's Python), in a temporary
working directory, on the embedded SmolLM2: a cell that raises fails the test. `make tutorials`
executes them the same way and renders HTML (scripts/tutorials.py).
"""

import importlib.util
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_script", ROOT / "scripts" / "tutorials.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)
NAMES = ["000-position", "001-attn-kl", "002-attn-autoregression", "003-mlp-stages", "004-categories",
         "005-own-question", "006-edits", "007-attention"]
MAX_CODE_LINES = 20  # issue 18: each analysis in at most 20 lines of code


def code_lines(nb) -> int:
    """Non-blank lines of code cells that are not comments."""
    return sum(1 for cell in nb.cells if cell.cell_type == "code"
               for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#"))


def read(name):
    return nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)


def test_one_notebook_per_seed_one_of_its_own_and_one_of_edits():
    assert sorted(p.stem for p in TUTORIALS.glob("*.ipynb")) == NAMES


def test_code_lines_counts_code_only():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("a\nb"),
                                         nbformat.v4.new_code_cell("# a comment\nx = 1\n\n  # indented comment\ny = (x,\n     2)")])
    assert code_lines(nb) == 3


@pytest.mark.parametrize("name", NAMES)
def test_short(name):
    nb = read(name)
    assert code_lines(nb) <= MAX_CODE_LINES, f"{name}: {code_lines(nb)} code lines"
    assert any(c.cell_type == "markdown" for c in nb.cells) and nb.cells[0].cell_type == "markdown"


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    nbformat.validate(read(name))
    for cell in read(name).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{name} has outputs; commit it clean: .venv/bin/jupyter nbconvert --clear-output --inplace "
                f"docs/tutorials/{name}.ipynb (make tutorials renders the outputs to docs/tutorials/html)")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_executes(name, tmp_path, data_dir):
    """Every cell runs on the embedded model; the notebook writes nothing outside its working directory.

    Executed as `make tutorials` does (scripts/tutorials.execute): the kernel's environment is set
    explicitly, so MPLBACKEND=Agg or HF_* in the caller's environment change nothing."""
    started = time.perf_counter()
    nb = script.execute(TUTORIALS / f"{name}.ipynb", tmp_path)
    seconds = time.perf_counter() - started
    print(f"{name}: {code_lines(read(name))} code lines, executed in {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # Rich views and figures reach the notebook (not only a text repr): a figure as a PNG output, or inside a
    # run's or comparison's HTML view (tutorial 005 shows a comparison, whose view embeds its figures).
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    pictures = [d for d in data if "image/png" in d or "<img" in d.get("text/html", "")]
    assert pictures, f"{name}: no figure reached the notebook"
    if name[:3] in {"000", "001", "002", "003", "004", "005"}:  # these display a run or a comparison
        assert any("text/html" in d for d in data), f"{name}: no run or comparison view reached the notebook"
    script.keep(nb, name)  # the docs site shows this executed copy (`make docs` executes nothing)


def test_kernel_env_ignores_the_callers_backend_and_hub_settings():
    env = script.kernel_env({"MPLBACKEND": "Agg", "HF_HOME": "/nowhere", "HF_HUB_OFFLINE": "0", "LC_ALL": "C",
                             "LAMINA_DATA_DIR": "/data", "LAMINA_CACHE": "/cache", "PATH": "/bin"})
    assert env["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"
    assert env["HF_HUB_OFFLINE"] == "1" and "HF_HOME" not in env
    assert env["LAMINA_DATA_DIR"] == "/data" and env["LAMINA_CACHE"] == "/cache" and env["PATH"] == "/bin"
