"""The self-contained page of a comparison across models (``lamina compare``).

Same rules as a run's page (:mod:`lamina.report.html`): every string that can come from a user goes
through ``html.escape``, figures are embedded as base64 PNG; links to the members' own run pages
and to the comparison's CSV files are relative, so the directory can be moved as a whole.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .html import CSS, _e

EXTRA_CSS = ".failed{color:#a00}.dim{color:#777}td.num{font-variant-numeric:tabular-nums}"


def _table(header, rows, classes=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{classes[i]}'" if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


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
    ok = [m for m in members if m["status"] != "failed"]
    failed = [m for m in members if m["status"] == "failed"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)} across models — lamina</title><style>{CSS}{EXTRA_CSS}</style></head><body>",
        f"<h1>{_e(title)} across models</h1>",
        f"<p class='sub'>lamina compare <code>{_e(experiment)}</code> — {len(ok)} of {len(members)} runs complete, "
        f"seed {_e(seed)}, {_e(started)}</p>",
        "<h2>Question</h2>", f"<p>{_e(question)}</p>",
        "<h2>Models</h2>",
    ]
    rows, classes = [], []
    for m in members:
        link = (f"<a href='{_e(m['run'])}/report.html'>{_e(m['run'])}</a>" if m.get("run") and m["status"] != "failed"
                else "—")
        status = _e(m["status"]) + (f": {_e(m['reason'])}" if m.get("reason") else "")
        weights = _e((m.get("weights") or "—")[:16])
        rows.append([_e(m["label"]), _e(m.get("family") or "—"), _e(m.get("n_layers") or "—"),
                     _e(m.get("device") or "—"), status, link, f"<code>{weights}</code>"])
        classes.append("failed" if m["status"] == "failed" else "")
    parts.append(_table(["model", "family", "layers", "device", "run", "run directory", "weights sha256 / identity"],
                        rows, classes))
    if failed:
        parts.append("<h2>Models that could not run</h2><ul class='notes'>")
        parts += [f"<li class='failed'><b>{_e(m['label'])}</b>: {_e(m['reason'])}</li>" for m in failed]
        parts.append("</ul><p>The other models' runs and everything below are unaffected.</p>")
    if key_numbers is not None and len(key_numbers):
        parts.append("<h2>Key numbers side by side</h2>")
        labels = [c for c in key_numbers.columns if c != "quantity"]
        rows = [[_e(r["quantity"])] + [f"<span class='num'>{_e(r[c])}</span>" for c in labels]
                for _, r in key_numbers.iterrows()]
        parts.append(_table(["quantity", *labels], rows))
    if figures:
        parts.append("<h2>Profiles on relative depth</h2>")
    for name, png, caption, width in figures:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(f"<figure id='fig-{_e(name)}'><img width='{int(width)}' alt='{_e(caption)}' "
                     f"src='data:image/png;base64,{data}'><figcaption><b>{_e(name)}.</b> {_e(caption)}"
                     "</figcaption></figure>")
    if bands:
        parts.append("<h2>Where each trained model leaves the band of its untrained initialisations</h2>")
        models = list(dict.fromkeys(m for per_model in bands.values() for m in per_model))
        parts.append(_table(["metric", *models], [[_e(metric)] + [_e(per_model.get(m, "—")) for m in models]
                                                  for metric, per_model in bands.items()]))
    if differences:
        parts.append("<h2>Differences of profiles</h2><ul class='notes'>")
        parts += [f"<li>{_e(s)}</li>" for s in differences]
        parts.append("</ul>")
    if definitions:
        parts.append("<h2>Definitions</h2><ul class='notes'>")
        parts += [f"<li>{_e(d)}</li>" for d in definitions]
        parts.append("</ul>")
    parts.append("<h2>Settings</h2>")
    parts.append(f"<table><tr><th>config</th><td><code>{_e(config)}</code></td></tr></table>")
    if files:
        parts.append("<p>Data: " + " · ".join(f"<a href='{_e(f)}'>{_e(f)}</a>" for f in files) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
