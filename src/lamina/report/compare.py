"""The self-contained page of a comparison across models (``lamina compare``).

Same rules as a run's page (:mod:`lamina.report.html`), same layout: written from
``templates/comparison.html.j2`` with autoescaping, figures embedded as base64 PNG; links to the
members' own run pages and to the comparison's CSV files are relative, so the directory can be
moved as a whole.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .templating import render_template


def render_comparison(*, title: str, experiment: str, question: str, started: str, seed: int, config: str,
                      members: list[dict], key_numbers, figures: list[tuple[str, Path, str, int]],
                      bands: dict[str, dict[str, str]], differences: list[str], definitions: list[str],
                      files: list[str]) -> str:
    """The comparison page as one HTML string.

    Args:
        title, experiment, question: the experiment's title, name and question.
        started, seed, config: when the comparison was assembled, the seed, the compute config (JSON text).
        members: one dict per member: label, family, n_layers, status (new/reused/failed), run (relative
            path of its run directory or None), weights (sha256 or identity), device, reason (failed only).
        key_numbers: DataFrame: column "quantity" and one column per member label (strings).
        figures: (name, png path, caption, width in px) to embed.
        bands: metric -> {trained model: where it leaves its controls' band}.
        differences: sentences on the differences of profiles.
        definitions: how relative depth, bands and differences are defined (short paragraphs).
        files: names of the comparison's data files (linked).
    """
    has_numbers = key_numbers is not None and len(key_numbers)
    labels = [c for c in key_numbers.columns if c != "quantity"] if has_numbers else []
    rows = [(r["quantity"], [r[c] for c in labels]) for _, r in key_numbers.iterrows()] if has_numbers else []
    models = list(dict.fromkeys(m for per_model in bands.values() for m in per_model))
    return render_template(
        "comparison.html.j2", title=title, experiment=experiment, question=question, started=started, seed=seed,
        config=config, members=members, key_labels=labels, key_numbers=rows, differences=differences,
        figures=[(name, caption, base64.b64encode(Path(png).read_bytes()).decode(), int(width))
                 for name, png, caption, width in figures],
        band_models=models, bands=[[metric] + [per_model.get(m, "—") for m in models]
                                   for metric, per_model in bands.items()],
        definitions=definitions, files=files)
