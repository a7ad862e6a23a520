"""HTML summaries for notebooks: what a :class:`~lamina.Run` or a comparison shows when it is the
value of a Jupyter cell (their ``_repr_html_``).

A fragment, not a page: the report pages' layout with ``fragment`` set (no ``<html>``, CSS scoped
to class ``lamina-nb``), figures inline as base64 PNG. Same rule as the report pages: templates
with autoescaping, so every string that can come from a user (config values, model names, words,
paths, notes) is escaped.
"""

from __future__ import annotations

import base64
import io
import json

from .templating import render_template


def png_base64(fig) -> str:
    """A matplotlib figure as base64 PNG (96 dpi: a notebook cell, not a print)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode()


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
    return render_template(
        "run_summary.html.j2", experiment=experiment, model=manifest.get("model", {}), manifest=manifest, path=path,
        key_numbers=key_numbers, notes=notes, figures=figures,
        settings=[(k, json.dumps(v, default=str)) for k, v in config.items()],
        tables=[(n, len(t), ", ".join(map(str, t.columns))) for n, t in tables.items()])


def comparison_html(*, experiment, seed: int, path, members: list[dict], bands: dict, differences: list[str],
                    figures) -> str:
    """A comparison's notebook summary.

    Args:
        members: one dict per member: label, status (new/reused/failed), seconds, reason.
        bands: metric -> {model: where it leaves its controls' band}; differences: sentences.
        figures: (name, caption, base64 PNG) triples.
    """
    return render_template(
        "comparison_summary.html.j2", experiment=experiment, seed=seed, path=path, bands=bands,
        differences=differences, figures=figures, complete=sum(m["status"] != "failed" for m in members),
        members=[(m["label"], m["status"], f"{m['seconds']:.1f}", m.get("reason") or "") for m in members])
