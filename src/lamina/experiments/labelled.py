"""Runs that take another run's correct/incorrect labels (``labels_from``): what attn-kl, lesion and heads share.

An untrained control predicts (almost) no token correctly, so in ``lamina compare`` its run takes
its trained model's labels from that model's run directory (``Experiment.control_settings``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

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


def read_table(path: str | Path, config, **read_csv) -> pd.DataFrame:
    """The labelling run's token table, once its windows are this run's (:data:`SAME_WINDOWS` of its config.json
    equal ``config``'s); ``read_csv``: pandas.read_csv arguments. A LaminaError (one line) otherwise."""
    path = Path(path)
    try:
        theirs = json.loads((path / "config.json").read_text())
        table = pd.read_csv(path / LABELS_TABLE, **read_csv)
    except (OSError, ValueError) as err:
        raise LaminaError(f"labels_from={str(path)!r}: cannot read its labels ({err}).") from err
    differ = [k for k in SAME_WINDOWS if theirs.get(k) != getattr(config, k)]
    if differ:
        raise LaminaError(f"labels_from={str(path)!r} was run with other windows ("
                          + ", ".join(f"{k}={theirs.get(k)!r}, here {getattr(config, k)!r}" for k in differ) + ").")
    return table


def read_labels(path: str | Path, config, window: np.ndarray, position: np.ndarray, next_id: np.ndarray) -> np.ndarray:
    """The labelling run's ``correct`` for this run's tokens (its ``tables/tokens.csv``), token for token.

    Args:
        path: the labelling run's directory (``config.labels_from``).
        config: this run's config (its :data:`SAME_WINDOWS` settings must equal the labelling run's).
        window, position, next_id: shape ``(n,)`` each: this run's tokens with a known next token, in
            recording order (the window, the position in it, the next token's id).
    Returns:
        Shape ``(n,)`` bool: whether the labelling run's model predicted each token's next token.
    """
    table = read_table(path, config)
    keys = ("window", "position", "next_id")
    if any(c not in table.columns for c in (*keys, "correct")) or len(table) != len(next_id) or not all(
            np.array_equal(table[k].to_numpy(), v) for k, v in zip(keys, (window, position, next_id))):
        raise LaminaError(f"labels_from={str(path)!r} labels other tokens than this run (a different tokenizer, "
                          "book text or lamina version); its labels cannot be used here.")
    return table["correct"].astype(str).str.lower().eq("true").to_numpy()
