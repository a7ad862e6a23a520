"""HTML summaries for notebooks: what a :class:`~lamina.Run` or a comparison shows when it is the
value of a Jupyter cell (their ``_repr_html_``).

A fragment, not a page: no ``<html>``, scoped CSS (class ``lamina-nb``), figures inline as base64
PNG. Same rule as the report pages: every string that can come from a user (config values, model
names, words, paths, notes) goes through :func:`lamina.report.html._e`.
"""

from __future__ import annotations

import base64
import io
import json

from .html import _e

CSS = """<style>
.lamina-nb{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;line-height:1.4;max-width:1100px}
.lamina-nb h3{margin:.2rem 0}.lamina-nb .sub{color:#666;margin:.1rem 0 .6rem}
.lamina-nb table{border-collapse:collapse;margin:.3rem 0 .8rem}
.lamina-nb td,.lamina-nb th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left;vertical-align:top}
.lamina-nb th{background:#f4f4f8}.lamina-nb summary{cursor:pointer;font-weight:600}
.lamina-nb figure{margin:.6rem 0}.lamina-nb figure img{max-width:100%;height:auto;border:1px solid #eee}
.lamina-nb figcaption{color:#444;font-size:.9rem}.lamina-nb .failed{color:#a00}
</style>"""


def png_base64(fig) -> str:
    """A matplotlib figure as base64 PNG (96 dpi: a notebook cell, not a print)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode()


def _table(header, rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figures(figures) -> str:
    """``figures``: (name, caption, base64 PNG) triples."""
    return "".join(f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{png}'>"
                   f"<figcaption><b>{_e(name)}.</b> {_e(caption)}</figcaption></figure>"
                   for name, caption, png in figures)


def run_html(*, experiment, config: dict, manifest: dict, key_numbers, notes, tables: dict, figures, path) -> str:
    """A run's notebook summary.

    Args:
        experiment: the ``Experiment`` (title, name, question, seed notebook).
        config: the compute settings as a dict; manifest: manifest.json's dict.
        key_numbers: (quantity, value, test) rows; notes: the report's notes.
        tables: name -> DataFrame (listed with their shapes).
        figures: (name, caption, base64 PNG) triples, shown inline.
        path: the run directory, or None for a run kept in memory.
    """
    model = manifest.get("model", {})
    where = f"<code>{_e(path)}</code>" if path else "in memory (no run directory)"
    wall = manifest.get("wall_seconds")
    parts = [
        CSS, "<div class='lamina-nb'>",
        f"<h3>{_e(experiment.title)}</h3>",
        f"<p class='sub'>lamina run <code>{_e(experiment.name)}</code> (seed notebook {_e(experiment.seed_notebook)}) "
        f"on <b>{_e(model.get('name', '?'))}</b> ({_e(model.get('n_layers', '?'))} layers), seed "
        f"{_e(manifest.get('seed'))}, {_e(manifest.get('device', '?'))}"
        + (f", {_e(wall)} s" if wall is not None else "") + f" — {where}</p>",
        f"<p>{_e(experiment.question)}</p>",
    ]
    if key_numbers:
        parts.append(_table(["quantity", "value", "test"], [tuple(k) for k in key_numbers]))
    parts.append("<details><summary>Settings</summary>"
                 + _table(["setting", "value"], [(k, json.dumps(v, default=str)) for k, v in config.items()])
                 + "</details>")
    if tables:
        parts.append("<details><summary>Tables (<code>run.tables[name]</code>, pandas DataFrames)</summary>"
                     + _table(["name", "rows", "columns"],
                              [(n, len(t), ", ".join(map(str, t.columns))) for n, t in tables.items()])
                     + "</details>")
    if notes:
        parts.append("<details><summary>Notes</summary><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                     + "</ul></details>")
    if figures:
        parts.append(f"<details open><summary>Figures ({len(figures)}; <code>run.figure(name)</code> gives one "
                     "as a matplotlib Figure)</summary>" + _figures(figures) + "</details>")
    parts.append("</div>")
    return "".join(parts)


def comparison_html(*, experiment, seed: int, path, members: list[dict], bands: dict, differences: list[str],
                    figures) -> str:
    """A comparison's notebook summary.

    Args:
        members: one dict per member: label, status (new/reused/failed), seconds, reason.
        bands: metric -> {model: where it leaves its controls' band}; differences: sentences.
        figures: (name, caption, base64 PNG) triples.
    """
    ok = sum(m["status"] != "failed" for m in members)
    where = f"<code>{_e(path)}</code>" if path else "in memory"
    parts = [
        CSS, "<div class='lamina-nb'>", f"<h3>{_e(experiment.title)} across models</h3>",
        f"<p class='sub'>lamina compare <code>{_e(experiment.name)}</code>: {ok} of {len(members)} runs complete, "
        f"seed {_e(seed)} — {where}</p>",
        _table(["member", "status", "seconds", "why it failed"],
               [(m["label"], m["status"], f"{m['seconds']:.1f}", m.get("reason") or "") for m in members]),
    ]
    for metric, statements in bands.items():
        parts.append(f"<p><b>{_e(metric)}</b>: " + "; ".join(f"{_e(model)}: {_e(text)}"
                                                            for model, text in statements.items()) + "</p>")
    if differences:
        parts.append("<ul>" + "".join(f"<li>{_e(d)}</li>" for d in differences) + "</ul>")
    if figures:
        parts.append("<details open><summary>Figures</summary>" + _figures(figures) + "</details>")
    parts.append("</div>")
    return "".join(parts)
