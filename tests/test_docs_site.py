"""The documentation site (`make docs`, docs/docs-site.md): it builds strict and offline, every public name
has a docstring and an entry in the API reference, every link, anchor and image resolves, nothing comes
from the network, and headless Chromium shows the pages' images."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from test_report import BROWSER_FLAGS, chromium

ROOT = Path(__file__).resolve().parents[1]


def script(name):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docstrings = script("docstrings")
hooks = script("mkdocs_hooks")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site as `make docs` builds it (strict), into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    return out


class Refs(HTMLParser):
    """The ids of a page and the URLs it refers to: (tag, attribute, url)."""

    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                self.refs.append((tag, name, attrs[name]))


def parse(page: Path) -> Refs:
    refs = Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def test_the_pages_are_there(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    tutorials = {f"tutorials/{p.stem}.html" for p in (ROOT / "docs" / "tutorials").glob("*.ipynb")}
    guides = {f"{p.stem}.html" for p in (ROOT / "docs").glob("*.md")}
    api = {f"api/{p.stem}.html" for p in (ROOT / "docs" / "api").glob("*.md")}
    assert len(tutorials) == 8 and len(api) == 11 and "architectures.html" in guides
    assert {"index.html", "tutorials/index.html"} | tutorials | guides | api <= pages
    # The home page is the README, its links into docs/ made relative to the site.
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Two commands" in home and 'href="architectures.html"' in home and 'href="docs/' not in home


def test_every_public_name_is_in_the_api_reference(site):
    ids = set().union(*(parse(p).ids for p in (site / "api").glob("*.html")))
    lamina = docstrings.load()
    expected = []
    for path in docstrings.PACKAGES:
        package = lamina[path.removeprefix("lamina.")]
        shadowed = docstrings.shadowed(package)
        expected += [f"{path}.{n}.{n}" if n in shadowed else f"{path}.{n}" for n in docstrings.face_names(package)]
    expected += ["lamina.recording.edits.patch", "lamina.recording.edits.editing", "lamina.runner.Run",
                 "lamina.runner.Run.load", "lamina.runner.run", "lamina.plots.profiles.layer_profile",
                 "lamina.stats.selectivity_permutation_test", "lamina.errors.LaminaError"]
    assert len(expected) > 100
    assert [name for name in expected if name not in ids] == []


def test_links_anchors_and_images_resolve_and_nothing_comes_from_the_network(site):
    parsed = {page: parse(page) for page in site.rglob("*.html")}
    broken, external = [], []
    for page, refs in parsed.items():
        if page.name == "404.html":  # a web server's error page: its URLs are from the site's root, on purpose
            continue
        for tag, attribute, url in refs.refs:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                if tag != "a":  # a script, stylesheet, font or image from the network
                    external.append(f"{page.relative_to(site)}: <{tag} {attribute}={url}>")
                continue
            if parts.scheme in ("data", "mailto", "javascript") or (tag == "link" and attribute == "href"
                                                                     and not parts.path.endswith(".css")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or (tag == "img" and target.stat().st_size == 0):
                broken.append(f"{page.relative_to(site)}: {url}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)}: {url} (no such anchor)")
    assert not broken, "\n".join(broken)
    assert not external, "\n".join(external)
    images = sum(tag == "img" for refs in parsed.values() for tag, _, _ in refs.refs)
    assert images >= 1  # docs/compare.md's figure at least


def test_search_index_holds_the_guides_and_the_api(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    text = " ".join(f"{doc['location']} {doc['title']} {doc['text']}" for doc in index["docs"])
    for phrase in ("selectivity_permutation_test", "lamina.runner.Run", "relative depth", "Recording sites"):
        assert phrase in text


def test_no_google_fonts(site):
    # Material loads Roboto from Google by default; the site must work offline (mkdocs.yml: font: false).
    assert not [p for p in site.rglob("*.html") if "fonts.googleapis" in p.read_text(encoding="utf-8")]


def images_in_chromium(page: Path, tmp_path) -> tuple[int, int]:
    """(images, images decoded to a non-zero size) when Chromium opens ``page``, with the network unreachable.
    The probe is a copy beside the page, so its relative URLs resolve as the page's do."""
    probe_script = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
                    " document.title = 'IMAGES ' + imgs.length + ' ' +"
                    " imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length; });"
                    "</script></body>")
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", probe_script), encoding="utf-8")
    try:
        result = subprocess.run([chromium(), *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                 "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000",
                                 "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    title = re.search(r"<title>IMAGES (\d+) (\d+)</title>", result.stdout)
    assert title, result.stderr[-2000:]
    return tuple(map(int, title.groups()))


def test_images_load_in_chromium(site, tmp_path):
    total, loaded = images_in_chromium(site / "compare.html", tmp_path)
    assert total >= 1 and loaded == total
    # The tutorials: figures inline where an executed copy was shown, none (and the note) otherwise.
    for name in ("005-own-question", "006-edits"):
        page = site / "tutorials" / f"{name}.html"
        total, loaded = images_in_chromium(page, tmp_path)
        assert loaded == total
        assert (total > 0) != ("Outputs not shown" in page.read_text(encoding="utf-8"))


def test_a_tutorial_page_shows_the_executed_copy_only_if_it_is_of_the_committed_notebook(tmp_path):
    committed = ROOT / "docs" / "tutorials" / "005-own-question.ipynb"
    executed = tmp_path / "executed"
    executed.mkdir()
    out = tmp_path / "out.ipynb"
    assert not hooks.tutorial_source(committed, out, executed)  # no executed copy: the note, no outputs
    shown = nbformat.read(out, as_version=4)
    assert "Outputs not shown" in shown.cells[1].source
    assert not any(c.get("outputs") for c in shown.cells)

    nb = nbformat.read(committed, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nbformat.write(nb, executed / committed.name)
    assert hooks.tutorial_source(committed, out, executed)
    assert nbformat.read(out, as_version=4).cells == nb.cells

    code.source += "\n# edited since it was executed"
    nbformat.write(nb, executed / committed.name)
    assert not hooks.tutorial_source(committed, out, executed)  # stale: the committed notebook again


def test_the_docstring_check_finds_a_missing_docstring(tmp_path):
    assert docstrings.missing() == []
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "lamina", src / "lamina", ignore=shutil.ignore_patterns("__pycache__"))
    module = src / "lamina" / "stats" / "permutation.py"
    text = module.read_text(encoding="utf-8")
    start = text.index('    """One-sided label-permutation test of within > across')
    end = text.index('"""', start + 10) + 3
    module.write_text(text[:start] + "    pass\n" + text[end:], encoding="utf-8")
    # A method of a public class, too: Run.figure's docstring removed.
    runner = src / "lamina" / "runner.py"
    text = runner.read_text(encoding="utf-8")
    runner.write_text(re.sub(r'(def figure\(self, name: str, \*\*options\):\n)\s+""".*?"""\n', r"\1", text,
                             count=1, flags=re.S), encoding="utf-8")
    found = [line.split()[0] for line in docstrings.missing(src)]
    assert found == ["lamina.Run.figure", "lamina.stats.selectivity_permutation_test"]
