"""Seed 002: is the size of a token's attention update predicted by the two tokens before it?"""

from ..base import Experiment

TITLE = "Autoregression of attention-output norms"
DESCRIPTION = "least squares of each token's attention-output log norm on the two tokens before it"
QUESTION = ("Is the size of the attention adjustment a token receives predicted by the adjustments the two "
            "tokens before it received? If attention updates come in runs, the log norm at t should depend "
            "on those at t-1 and t-2, and the dependence may differ from layer to layer.")
SEED_NOTEBOOK = "002"

EXPERIMENT = Experiment.from_package(__name__)
