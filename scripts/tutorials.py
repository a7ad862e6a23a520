"""Execute the tutorials and render them to HTML: `make tutorials` (docs/tutorials/README.md).

Each notebook in docs/tutorials/ runs top to bottom in a fresh Jupyter kernel (this Python), in a
temporary working directory, on the embedded model; the executed copy is rendered to
docs/tutorials/html/<name>.html and kept as docs/tutorials/executed/<name>.ipynb, which the docs site
shows (both git-ignored: the committed notebooks stay without outputs).
A cell that raises stops the script with exit status 1, naming the notebook.

    python scripts/tutorials.py                  # all of them
    python scripts/tutorials.py 004-categories   # one (name without .ipynb)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
HTML = TUTORIALS / "html"
#: Executed copies, read by the docs site (scripts/mkdocs_hooks.py) so `make docs` executes nothing.
EXECUTED = TUTORIALS / "executed"


#: Variables of the caller's environment the kernel does not inherit: they would change what a
#: notebook shows (MPLBACKEND=Agg on a headless server: no figures) or where it reads models.
_NOT_INHERITED = ("MPL", "HF_", "TRANSFORMERS_", "JPY_", "PYTHONSTARTUP")


def kernel_env(environ=None) -> dict[str, str]:
    """The kernel's environment, independent of the caller's: the inline figure backend, offline
    Hugging Face, the caller's ``LAMINA_*`` directories (data and converted models) and nothing of
    its matplotlib, Hugging Face or Jupyter settings."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if not k.startswith(_NOT_INHERITED)}
    env.update(MPLBACKEND="module://matplotlib_inline.backend_inline", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return env


def execute(path: Path, workdir: Path, timeout: int = 600):
    """The notebook at ``path``, executed in ``workdir`` with :func:`kernel_env`; raises
    ``CellExecutionError`` on a failing cell."""
    nb = nbformat.read(path, as_version=4)
    # coalesce_streams: a text progress bar's updates ('\r') become its final line, as Jupyter shows it.
    NotebookClient(nb, timeout=timeout, kernel_name="python3", coalesce_streams=True,
                   resources={"metadata": {"path": str(workdir)}}).execute(env=kernel_env())
    return nb


def keep(nb, name: str, directory: Path = EXECUTED) -> Path:
    """Write the executed notebook ``nb`` as ``directory/<name>.ipynb`` for the docs site; written under a
    temporary name and renamed, so a build reading it meanwhile sees the old copy or the new, never half."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}.ipynb"
    partial = directory / f".{name}.{os.getpid()}.ipynb"
    nbformat.write(nb, partial)
    os.replace(partial, out)
    return out


def main(names: list[str]) -> int:
    paths = [TUTORIALS / f"{n.removesuffix('.ipynb')}.ipynb" for n in names] or sorted(TUTORIALS.glob("*.ipynb"))
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        print(f"no such tutorial: {', '.join(missing)}", file=sys.stderr)
        return 2
    HTML.mkdir(exist_ok=True)
    exporter = HTMLExporter()
    total = 0.0
    for path in paths:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"lamina-{path.stem}-") as workdir:
            try:
                nb = execute(path, Path(workdir))
            except CellExecutionError as err:
                print(f"{path.name}: a cell failed\n{err}", file=sys.stderr)
                return 1
        seconds = time.perf_counter() - started
        total += seconds
        keep(nb, path.stem)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        out = HTML / f"{path.stem}.html"
        out.write_text(body, encoding="utf-8")
        print(f"{path.name}: executed in {seconds:.1f} s -> {out.relative_to(ROOT)}", flush=True)
    print(f"{len(paths)} tutorials in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
