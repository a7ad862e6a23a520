"""docs/compare.md's "SmolLM2-135M and Gemma-3 270M on every experiment", generated from comparison directories.

    python scripts/compare_doc.py run [EXPERIMENT ...]    # run the comparisons (runs reused), then write
    python scripts/compare_doc.py write                   # write the section from the directories alone

`run` compares SmolLM2 and Gemma-3 with five untrained initialisations each on every experiment
(default settings, seed 0), and the negative control: SmolLM2's architecture at init seed 7 passed as
the trained model against its own five controls. Every run lives in one runs directory
(``runs/compare-doc/runs``), so running it again reuses every finished run. `write` reads
``runs/compare-doc/<experiment>`` and ``runs/compare-doc/<experiment>-negative`` and replaces the block
between the markers in docs/compare.md: nothing in it is typed by hand.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lamina
from lamina.experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compare.md"
OUT = ROOT / "runs" / "compare-doc"
BEGIN, END = "<!-- BEGIN generated: scripts/compare_doc.py -->", "<!-- END generated: scripts/compare_doc.py -->"
MODELS = ["smollm2-135m", "gemma3-270m"]
CONTROLS = "random:5"


def run(experiments: list[str]) -> None:
    from lamina.models.control import random_control

    impostor = None
    for name in experiments:
        started = time.perf_counter()
        done = lamina.compare(name, MODELS, controls=CONTROLS, out=OUT / name, runs_dir=OUT / "runs")
        if impostor is None:
            impostor = random_control(lamina.load("smollm2-135m"), seed=7)
        # An experiment whose controls take their trained model's labels (attn-kl: an untrained model
        # predicts nothing correctly) gives the impostor SmolLM2's labels too: it stands where SmolLM2 stood.
        settings = EXPERIMENTS[name].control_settings(done.runs["smollm2-135m"].path) \
            if EXPERIMENTS[name].control_settings else {}
        lamina.compare(name, [impostor], controls=CONTROLS, out=OUT / f"{name}-negative", runs_dir=OUT / "runs",
                       settings=settings)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)


def _seconds(cmp) -> str:
    total = sum(m.run.manifest.get("wall_seconds", 0) for m in cmp.completed)
    return f"{total / 60:.1f} min of runs"


def section(name: str) -> list[str]:
    cmp = lamina.Comparison.load(OUT / name)
    lines = [f"### {name}", "", f"{len(cmp.completed)} runs ({_seconds(cmp)}; {', '.join(m.label for m in cmp.completed)}).", ""]
    key = cmp.key_numbers
    trained = key[~key["control"].astype(bool)]
    if len(trained):
        lines += ["Headline key numbers of the trained models (each run's report):", "",
                  "| quantity | " + " | ".join(MODELS) + " |", "|---|" + "---|" * len(MODELS)]
        for quantity in list(dict.fromkeys(trained["quantity"]))[:6]:
            cells = []
            for model in MODELS:
                value = trained[(trained["model"] == model) & (trained["quantity"] == quantity)]["value"]
                cells.append(str(value.iloc[0]).replace("|", "/") if len(value) else "—")
            lines.append(f"| {quantity} | " + " | ".join(cells) + " |")
        lines.append("")
    statements = cmp.band_statements()
    if statements:
        lines += ["Against five untrained initialisations of the same architecture (family-wise over layers):", ""]
        for metric, by_model in statements.items():
            for model, text in by_model.items():
                lines.append(f"- **{metric}**, {model}: {text}")
        lines.append("")
    differences = cmp.difference_statements()
    if differences:
        lines += ["SmolLM2 − Gemma-3 (family-wise over the shallower model's depths):", ""]
        lines += [f"- {text}" for text in differences]
        lines.append("")
    negative = OUT / f"{name}-negative"
    if not negative.is_dir():
        lines += ["Negative control (SmolLM2's architecture at init seed 7 as the trained model): **not run yet** for "
                  "this experiment, so these statements have no measured false-positive check here "
                  f"(`python scripts/compare_doc.py run {name}` runs it).", ""]
    else:
        neg = lamina.Comparison.load(negative)
        bands = neg.bands
        if bands.empty:
            lines += ["Negative control (SmolLM2's architecture at init seed 7 as the trained model): no per-layer "
                      "profile to test.", ""]
        else:
            out, tested = int(bands["outside"].sum()), int(bands["tested"].sum())
            lines += [f"Negative control (SmolLM2's architecture at init seed 7 passed as the trained model, against "
                      f"its five controls): outside the band at **{out} of {tested}** tested layer × metric cells.", ""]
    return lines


def write() -> None:
    names = [n for n in EXPERIMENTS if (OUT / n).is_dir()]
    body = ["Generated by `scripts/compare_doc.py` from the comparison directories under `runs/compare-doc/` "
            "(`python scripts/compare_doc.py run`: every experiment at its defaults, seed 0, five untrained "
            "initialisations per model, 2 CPU cores).", ""]
    for name in names:
        body += section(name)
    missing = [n for n in EXPERIMENTS if n not in names]
    if missing:
        body += [f"Not compared here: {', '.join(missing)} (their key numbers on SmolLM2 are in docs/results.md; "
                 f"`python scripts/compare_doc.py run {missing[0]}` adds one; a comparison of both models with five "
                 "controls each is 12 runs of the experiment).", ""]
    doc = DOC.read_text()
    start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + "\n".join(body).rstrip() + "\n" + doc[stop:])
    print(f"wrote {DOC.relative_to(ROOT)}: {', '.join(names)}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "write"):
        print(__doc__)
        return 2
    if argv[0] == "run":
        run(argv[1:] or list(EXPERIMENTS))
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
