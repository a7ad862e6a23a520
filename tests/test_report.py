"""report.html: every figure loads in headless Chromium; user strings are escaped."""

import dataclasses
import html
import os
import re
import shutil
import subprocess
import types

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


# A hostile string in every field a user controls: each view must show it escaped once (html.escape's
# spelling), never raw and never escaped twice.
HOSTILE = "<script>alert(1)</script> & \"q\" 'a'"


def _escaped_once(page: str):
    assert HOSTILE not in page and "<script>" not in page
    assert html.escape(HOSTILE) in page
    assert "&amp;lt;" not in page and "&amp;amp;" not in page and "&amp;#x27;" not in page


def test_every_view_escapes_a_hostile_string(tmp_path):
    import pandas as pd
    from matplotlib.figure import Figure as MplFigure

    from lamina.experiments.base import Figure, KeyNumber, Report
    from lamina.report import render_comparison
    from lamina.report.notebook import comparison_html, run_html

    @dataclasses.dataclass
    class Config:
        text: str = HOSTILE

    experiment = types.SimpleNamespace(title=HOSTILE, name="position", seed_notebook="000", question=HOSTILE)
    (tmp_path / "fig.png").write_bytes(b"\x89PNG not really")
    manifest = {"model": {"name": HOSTILE, "weights_sha256": HOSTILE, "n_layers": 3}, "started": HOSTILE, "seed": 0,
                "device": HOSTILE, "versions": {"lamina": HOSTILE}, "timings": {HOSTILE: 1.0}}
    text = Report(method=HOSTILE, key_numbers=(KeyNumber(HOSTILE, HOSTILE, HOSTILE),), notes=(HOSTILE,))
    page = render(experiment=experiment, config=Config(), text=text, figures={"fig": Figure(MplFigure(), HOSTILE)},
                  manifest=manifest, figure_dir=tmp_path, tables=[HOSTILE])
    _escaped_once(page)
    # title 2, sub line 3, question, method, key numbers 3, figure 2, note, run table 4, table link 2
    assert page.count(html.escape(HOSTILE)) == 19

    members = [{"label": HOSTILE, "family": HOSTILE, "n_layers": 3, "status": "new", "run": "runs/a",
                "weights": "abc", "device": HOSTILE, "seconds": 1.0},
               {"label": "other", "status": "failed", "reason": HOSTILE, "seconds": 0.5}]
    key_numbers = pd.DataFrame({"quantity": [HOSTILE], HOSTILE: [HOSTILE], "other": ["—"]})
    page = render_comparison(title=HOSTILE, experiment="position", question=HOSTILE, started=HOSTILE, seed=0,
                             config=HOSTILE, members=members, key_numbers=key_numbers,
                             figures=[("profiles", tmp_path / "fig.png", HOSTILE, 100)],
                             bands={HOSTILE: {HOSTILE: HOSTILE}}, differences=[HOSTILE], definitions=[HOSTILE],
                             files=[HOSTILE])
    _escaped_once(page)
    assert "<tr class='failed'>" in page and "1 of 2 runs complete" in page

    view = run_html(experiment=experiment, config={"text": HOSTILE}, manifest=manifest, key_numbers=text.key_numbers,
                    notes=[HOSTILE], tables={HOSTILE: pd.DataFrame({HOSTILE: [1]})},
                    figures=[("fig", HOSTILE, "AAAA")], path=HOSTILE)
    _escaped_once(view)
    assert view.startswith("<style>") and "<html" not in view and "<h3>" + html.escape(HOSTILE) in view
    view = comparison_html(experiment=experiment, seed=0, path=HOSTILE, members=members,
                           bands={HOSTILE: {HOSTILE: HOSTILE}}, differences=[HOSTILE],
                           figures=[("fig", HOSTILE, "AAAA")])
    _escaped_once(view)
    assert "1 of 2 runs complete" in view and "<html" not in view
