"""The self-contained HTML report of a run: question, method, key numbers, figures, notes.

Every string that can come from a user (config values, words, texts, notes, model names)
goes through ``html.escape``; figures are embedded as base64 PNG so the page stands alone.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}
h1{margin-bottom:.2rem}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .8rem;
text-align:left;vertical-align:top}th{background:#f4f4f8}
figure{margin:1.5rem 0;padding:0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.95rem;margin-top:.3rem}
.notes li{margin:.3rem 0}code{background:#f4f4f8;padding:0 .2rem}
details{margin:1rem 0}summary{cursor:pointer;font-weight:600}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


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
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(experiment.title)} — lamina</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(experiment.title)}</h1>",
        f"<p class='sub'>lamina experiment <code>{_e(experiment.name)}</code> (seed notebook "
        f"{_e(experiment.seed_notebook)}) on <b>{_e(manifest['model']['name'])}</b> — "
        f"{_e(manifest['started'])}, seed {_e(manifest['seed'])}, device {_e(manifest['device'])}</p>",
        "<h2>Question</h2>", f"<p>{_e(experiment.question)}</p>",
        "<h2>Method</h2>", f"<p>{_e(text.method)}</p>",
    ]
    if text.key_numbers:
        parts.append("<h2>Key numbers</h2><table><tr><th>quantity</th><th>value</th><th>test</th></tr>")
        parts += [f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(c)}</td></tr>" for a, b, c in text.key_numbers]
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for name, (fig, caption) in figures.items():
        png = base64.b64encode((Path(figure_dir) / f"{name}.png").read_bytes()).decode()
        width = int(fig.get_figwidth() * 90)  # keep small figures small on the page
        parts.append(f"<figure id='fig-{_e(name)}'><img width='{width}' alt='{_e(caption)}' "
                     f"src='data:image/png;base64,{png}'>"
                     f"<figcaption><b>{_e(name)}.</b> {_e(caption)}</figcaption></figure>")
    if text.notes:
        parts.append("<h2>Notes</h2><ul class='notes'>")
        parts += [f"<li>{_e(note)}</li>" for note in text.notes]
        parts.append("</ul>")
    parts.append("<h2>Run</h2><table>")
    parts.append(_rows([("config", json.dumps(dataclasses.asdict(config))), ("model", manifest["model"]["name"]),
                        ("weights sha256", manifest["model"].get("weights_sha256")),
                        ("versions", ", ".join(f"{k} {v}" for k, v in manifest["versions"].items())),
                        ("wall time per stage (s)", ", ".join(f"{k} {v}" for k, v in manifest["timings"].items()
                                                              if k not in _LATER_STAGES))]))
    parts.append("</table>")
    if tables:
        links = " · ".join(f"<a href='tables/{_e(t)}'>{_e(t)}</a>" for t in tables)
        parts.append(f"<p>Tables: {links} · <a href='results.json'>results.json</a> · "
                     "<a href='arrays.npz'>arrays.npz</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
