"""Runs that take another run's correct/incorrect labels (``labels_from``): what attn-kl and lesion share.

An untrained control predicts (almost) no token correctly, so in ``lamina compare`` its run takes
its trained model's labels from that model's run directory (``Experiment.control_settings``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LaminaError

LABELS_TABLE = "tables/tokens.csv"
SAME_WINDOWS = ("book", "window", "replicates")  # settings that decide the windows


def check_run_dir(path: str, experiment: str) -> None:
    """A LaminaError unless ``path`` holds a run's config and token table (``experiment``: for the message)."""
    if not (Path(path) / LABELS_TABLE).is_file() or not (Path(path) / "config.json").is_file():
        raise LaminaError(f"labels_from={path!r} is not {experiment} run directory "
                          f"(no config.json and {LABELS_TABLE} in it).")


def control_settings(trained_run: str | Path) -> dict:
    """An untrained control's settings in ``lamina compare``: its trained model's labels."""
    return {"labels_from": str(Path(trained_run).resolve())}
