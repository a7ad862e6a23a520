"""Issue 27: attention heads layer by layer: sinks, previous-token and induction-like heads, entropy,
massive activations, and seed 001's correct vs incorrect question per head."""

from ..base import Experiment

TITLE = "Attention heads layer by layer: sinks, previous-token and induction-like heads, massive activations"
DESCRIPTION = ("per layer and head: sink, previous-token and induction-like attention, entropy; massive "
               "activations; head output norms on correct vs incorrect tokens")
QUESTION = ("What does each attention head attend to (the first position, the previous token, the token after an "
            "earlier occurrence of the current one), how spread is its attention, where in the residual stream do "
            "massive activations appear, and does a head write more on tokens the model predicts correctly?")
SEED_NOTEBOOK = "issue 27"

EXPERIMENT = Experiment.from_package(__name__)
