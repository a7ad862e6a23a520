"""MkDocs hooks of the documentation site (mkdocs.yml; docs/docs-site.md).

- Before anything is built, every public name must have a docstring (scripts/docstrings.py).
- The home page is README.md, read from the repository root: the README stays the one source, and
  its links into docs/ are rewritten to be relative to docs/.
- A tutorial page shows the executed copy that `make tutorials` or `make test` left in
  docs/tutorials/executed/ when it is of the committed notebook (same cells); otherwise the
  committed notebook, without outputs, under a note that says how to get them. Nothing is executed
  here, so `make docs` takes seconds.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "docs" / "tutorials" / "executed"

NOT_EXECUTED = (
    "!!! note \"Outputs not shown\"\n"
    "    This page shows the committed notebook, which carries no outputs. `make tutorials` (or\n"
    "    `make test`) executes it on the embedded model and leaves the executed copy in\n"
    "    `docs/tutorials/executed/`; the next `make docs` shows its outputs here.")


def _docstrings():
    spec = importlib.util.spec_from_file_location("lamina_docstrings", ROOT / "scripts" / "docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_config(config):
    missing = _docstrings().missing()
    if missing:
        raise PluginError(f"{len(missing)} public names have no docstring (scripts/docstrings.py):\n  "
                          + "\n  ".join(missing))
    return config


def home_page(readme: str) -> str:
    """README.md as docs/index.md: links into docs/ made relative to it (``docs/sites.md#9`` -> ``sites.md#9``)."""
    return re.sub(r"\]\(docs/", "](", readme)


def cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def tutorial_source(committed: Path, out: Path, executed_dir: Path = EXECUTED) -> bool:
    """Write the notebook a tutorial page renders to ``out`` and say whether it has outputs: the executed
    copy if it is of the committed notebook's cells, else the committed one with the note as its second cell."""
    nb = nbformat.read(committed, as_version=4)
    executed = executed_dir / committed.name
    if executed.is_file():
        done = nbformat.read(executed, as_version=4)
        if cells(done) == cells(nb):
            nbformat.write(done, out)
            return True
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(NOT_EXECUTED))
    nbformat.write(nb, out)
    return False


_scratch: list[str] = []


# Before mkdocs-jupyter's on_files (default priority 0), which wraps the notebook files it renders
# (its wrapper reads a file's path from src_dir, so the chosen notebooks go to a scratch docs folder).
@event_priority(50)
def on_files(files, config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=home_page(readme)))
    scratch = tempfile.mkdtemp(prefix="lamina-docs-")
    _scratch.append(scratch)
    for file in list(files):
        if file.src_uri.startswith("tutorials/") and file.src_uri.endswith(".ipynb"):
            out = Path(scratch) / file.src_uri
            out.parent.mkdir(parents=True, exist_ok=True)
            tutorial_source(Path(file.abs_src_path), out)
            files.remove(file)
            files.append(File(file.src_uri, scratch, config["site_dir"], config["use_directory_urls"]))
    return files


def on_post_build(config):
    while _scratch:
        shutil.rmtree(_scratch.pop(), ignore_errors=True)


_LOCAL_PAGE_LINK = re.compile(r'href="(?![a-z]+:|/|#)([^"#]*?)\.(?:md|ipynb)(#[^"]*)?"')


def on_post_page(output, page, config):
    """A notebook's links to other pages (``../sites.md#8-editing-a-site``, right on GitHub) point at the
    built pages: mkdocs rewrites the links of Markdown pages, not those inside a rendered notebook.
    tests/test_docs_site.py checks that every such link and anchor resolves."""
    if page.file.src_uri.endswith(".ipynb"):
        output = _LOCAL_PAGE_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', output)
    return output
