"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens?"""

from ..base import Experiment
from . import labels

TITLE = "Prediction accuracy and attention-output norms"
DESCRIPTION = "attention-output norms of correctly vs incorrectly predicted tokens (JS divergence, permutations)"
QUESTION = ("When a model predicts the next token correctly, is its attention adjustment to that token larger "
            "or smaller than when it is wrong? The question is asked layer by layer: at which depths do the "
            "distributions of attention-output norms of correct and incorrect predictions differ?")
SEED_NOTEBOOK = "001"

EXPERIMENT = Experiment.from_package(__name__, control_settings=labels.control_settings)
