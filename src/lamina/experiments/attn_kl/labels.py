"""attn-kl with another run's labels: tokens grouped by the predictions of the model that made that run.

An untrained control predicts (almost) no token correctly, so in ``lamina compare`` its attn-kl run
takes its trained model's correct/incorrect labels (``labels_from``), token for token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import LaminaError
from .. import labelled
from ..labelled import control_settings  # noqa: F401 (control_settings: its face)

LABEL_KEYS = ["replicate", "position", "token", "next_token"]  # a token is the same token in both runs


def check_run_dir(path: str) -> None:
    """A LaminaError unless ``path`` holds an attn-kl run's config and token table."""
    labelled.check_run_dir(path, "an attn-kl")


def labels_from(path: str | Path, config, tokens: pd.DataFrame, texts: np.ndarray) -> pd.DataFrame:
    """The labelling run's ``predicted``, ``correct`` and ``loss`` columns for this run's tokens.

    Args:
        path: the labelling run's directory (``config.labels_from``).
        tokens: this run's token table (known next token only), rows in recording order, ``n`` rows.
        texts: shape ``(n,)``: this run's next-token texts.
    Returns:
        A DataFrame of ``n`` rows: predicted (str), correct (bool), loss (float).
    """
    table = labelled.read_table(path, config, keep_default_na=False,
                                dtype={"token": str, "next_token": str, "predicted": str})
    mine = pd.DataFrame({"replicate": tokens["sequence"].to_numpy(), "position": tokens["position"].to_numpy(),
                         "token": tokens["token"].to_numpy(dtype=str), "next_token": texts})
    missing = [c for c in LABEL_KEYS + ["predicted", "correct", "loss"] if c not in table.columns]
    if missing or len(table) != len(mine) or not (table[LABEL_KEYS].astype(str).to_numpy()
                                                  == mine.astype(str).to_numpy()).all():
        raise LaminaError(f"labels_from={str(path)!r} labels other tokens than this run (a different tokenizer, "
                          "book text or lamina version); its labels cannot be used here.")
    return pd.DataFrame({"predicted": table["predicted"].to_numpy(dtype=str),
                         "correct": table["correct"].astype(str).str.lower().eq("true").to_numpy(),
                         "loss": table["loss"].to_numpy(dtype=float)})
