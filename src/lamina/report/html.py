"""The self-contained HTML report of a run: question, method, key numbers, figures, notes.

Written from ``templates/run.html.j2`` with autoescaping (:mod:`lamina.report.templating`), so every
string that can come from a user (config values, words, texts, notes, model names) is escaped;
figures are embedded as base64 PNG so the page stands alone.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

from .templating import render_template

# Stages timed while the figures and this page are made: the page cannot know them yet, and
# leaving them out lets `lamina report` rebuild the page byte for byte from manifest.json.
_LATER_STAGES = ("figures", "write")


def render(*, experiment, config, text, figures: dict, manifest: dict, figure_dir: Path, tables: list[str]) -> str:
    """The report page as one HTML string.

    Args:
        experiment: the ``Experiment`` (title, question, name, seed notebook).
        config: the run's config dataclass; manifest: manifest.json's dict.
        text: the experiment's ``Report`` (method, key numbers, notes).
        figures: name -> ``Figure`` (the drawn figure, for its width, and its caption).
        figure_dir: where ``<name>.png`` of each figure was written (embedded as base64).
        tables: names of the CSV files under tables/ (linked relatively).
    """
    embedded = [(name, caption, base64.b64encode((Path(figure_dir) / f"{name}.png").read_bytes()).decode(),
                 int(fig.get_figwidth() * 90))  # keep small figures small on the page
                for name, (fig, caption) in figures.items()]
    return render_template(
        "run.html.j2", experiment=experiment, manifest=manifest, model=manifest["model"]["name"], text=text,
        figures=embedded, config=json.dumps(dataclasses.asdict(config)), tables=tables,
        versions=", ".join(f"{k} {v}" for k, v in manifest["versions"].items()),
        timings=", ".join(f"{k} {v}" for k, v in manifest["timings"].items() if k not in _LATER_STAGES))
