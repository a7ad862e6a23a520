"""lesion with another run's labels: the correct/incorrect split by the predictions of the model that made it.

An untrained control predicts (almost) no token correctly, so its own split is empty. In ``lamina
compare`` its lesion run takes its trained model's clean labels (``labels_from``), token for token, and
asks the same question of it: does a lesion cost the tokens the *trained* model gets right more?
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import labelled
from ..labelled import control_settings  # noqa: F401 (control_settings: its face)


def check_run_dir(path: str) -> None:
    """A LaminaError unless ``path`` holds a lesion run's config and token table."""
    labelled.check_run_dir(path, "a lesion")


def labels_from(path: str | Path, config, window: np.ndarray, position: np.ndarray,
                next_id: np.ndarray) -> np.ndarray:
    """The labelling run's clean ``correct`` for this run's tokens (``lamina.experiments.labelled.read_labels``)."""
    return labelled.read_labels(path, config, window, position, next_id)
