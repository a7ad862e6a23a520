"""Issue 26: the laminar lesion profile. Ablate attention or the MLP at one layer: what does the loss do?"""

from ..base import Experiment
from . import labels

TITLE = "Laminar lesion profile: ablating attention and MLP outputs layer by layer"
DESCRIPTION = "mean-, zero- or resample-ablate attn.out / mlp.out per layer: Δ loss and Δ accuracy across windows"
QUESTION = ("If what attention (or the MLP) adds to the residual stream at one layer is removed, how much worse "
            "does the model predict the next token, and at which depths does it matter most? And does the lesion "
            "hurt the tokens the intact model predicts correctly more than those it gets wrong?")
SEED_NOTEBOOK = "issue 26"

EXPERIMENT = Experiment.from_package(__name__, control_settings=labels.control_settings)
