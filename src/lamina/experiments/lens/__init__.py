"""Issue 27: the laminar profile of prediction. Decode every hidden entry through the LM head: how early
does the residual stream hold the model's prediction?"""

from ..base import Experiment

TITLE = "Laminar profile of prediction: the logit lens (and the tuned lens) at every hidden entry"
DESCRIPTION = ("decode each hidden entry through the final norm and LM head: cross-entropy, KL from the final "
               "distribution, top-1 agreement and entropy per entry, across windows")
QUESTION = ("If the residual stream at each depth were read out through the model's own final norm and LM head, "
            "how close would it come to the model's prediction, and from which depth on does the model's top "
            "token already come out on top?")
SEED_NOTEBOOK = "issue 27"

EXPERIMENT = Experiment.from_package(__name__)
