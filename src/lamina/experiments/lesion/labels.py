"""lesion with another run's labels: the correct/incorrect split by the predictions of the model that made it.

An untrained control predicts (almost) no token correctly, so its own split is empty. In ``lamina
compare`` its lesion run takes its trained model's clean labels (``labels_from``), token for token, and
asks the same question of it: does a lesion cost the tokens the *trained* model gets right more?
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import LaminaError
from .. import labelled
from ..labelled import LABELS_TABLE, SAME_WINDOWS, control_settings  # noqa: F401 (control_settings: its face)


def check_run_dir(path: str) -> None:
    """A LaminaError unless ``path`` holds a lesion run's config and token table."""
    labelled.check_run_dir(path, "a lesion")


def labels_from(path: str | Path, config, window: np.ndarray, position: np.ndarray,
                next_id: np.ndarray) -> np.ndarray:
    """The labelling run's clean ``correct`` for this run's tokens.

    Args:
        path: the labelling run's directory (``config.labels_from``).
        window, position, next_id: shape ``(n,)`` each: this run's tokens with a known next token, in
            recording order (the window, the position in it, the next token's id).
    Returns:
        Shape ``(n,)`` bool: whether the labelling run's clean model predicted each token's next token.
    """
    path = Path(path)
    try:
        theirs = json.loads((path / "config.json").read_text())
        table = pd.read_csv(path / LABELS_TABLE)
    except (OSError, ValueError) as err:
        raise LaminaError(f"labels_from={str(path)!r}: cannot read its labels ({err}).") from err
    differ = [k for k in SAME_WINDOWS if theirs.get(k) != getattr(config, k)]
    if differ:
        raise LaminaError(f"labels_from={str(path)!r} was run with other windows ("
                          + ", ".join(f"{k}={theirs.get(k)!r}, here {getattr(config, k)!r}" for k in differ) + ").")
    keys = ("window", "position", "next_id")
    if any(c not in table.columns for c in (*keys, "correct")) or len(table) != len(next_id) or not all(
            np.array_equal(table[k].to_numpy(), v) for k, v in zip(keys, (window, position, next_id))):
        raise LaminaError(f"labels_from={str(path)!r} labels other tokens than this run (a different tokenizer, "
                          "book text or lamina version); its labels cannot be used here.")
    return table["correct"].astype(str).str.lower().eq("true").to_numpy()
