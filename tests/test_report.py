"""report.html: every figure loads in headless Chromium; user strings are escaped."""

import dataclasses
import os
import re
import shutil
import subprocess

import pytest

import lamina
from lamina.report import render

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        if os.environ.get("LAMINA_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (LAMINA_REQUIRE_BROWSER is set) but not installed")
        pytest.skip("Chromium is not installed (make test installs it)")
    return path


def images_in_chromium(page, tmp_path) -> tuple[int, int]:
    """(images on the page, images that loaded) when headless Chromium opens ``page`` (a copy in ``tmp_path``)."""
    probe = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
             " document.title = 'IMAGES ' + imgs.length + ' ' +"
             " imgs.filter(i => i.complete && i.naturalWidth > 0).length; });</script></body>")
    (tmp_path / "probe.html").write_text(page.read_text().replace("</body>", probe), encoding="utf-8")
    result = subprocess.run([chromium(), *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             "--virtual-time-budget=5000", "--dump-dom", f"file://{tmp_path / 'probe.html'}"],
                            capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>IMAGES (\d+) (\d+)</title>", result.stdout)
    assert title, result.stderr[-2000:]
    return tuple(map(int, title.groups()))


@pytest.fixture(scope="module")
def small_run(tiny_gpt2, tmp_path_factory, data_dir):
    return lamina.run("position", model=tiny_gpt2, out=tmp_path_factory.mktemp("r") / "run", n_samples=40,
                      test_start=100, progress=False)


def test_every_figure_loads_in_chromium(small_run, tmp_path):
    total, loaded = images_in_chromium(small_run.path / "report.html", tmp_path)
    assert total == len(list((small_run.path / "figures").glob("*.png"))) == 6 and loaded == total  # 5 + replicates
    shot = tmp_path / "report.png"
    subprocess.run([chromium(), *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--hide-scrollbars",
                    "--window-size=1200,4000", f"--screenshot={shot}", f"file://{small_run.path / 'report.html'}"],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_user_strings_are_escaped(small_run, tmp_path):
    text = dataclasses.replace(small_run.text, notes=small_run.notes + ("<script>alert(1)</script> & <b>bold</b>",))
    manifest = {**small_run.manifest, "model": {**small_run.manifest["model"], "name": "<img src=x onerror=alert(2)>"}}
    page = render(experiment=small_run.experiment, config=small_run.config, text=text, figures=small_run.figures(),
                  manifest=manifest, figure_dir=small_run.path / "figures", tables=["a<b>.csv"])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "a&lt;b&gt;.csv" in page
