"""Seed 000: decode a token's position from its next-token loss."""

from ..base import Experiment

TITLE = "Decoding token position from next-token loss"
DESCRIPTION = "decode token position from per-token loss (OLS, logistic regression, held-out test)"
QUESTION = ("Does the loss a model assigns to its next-token prediction carry information about where in "
            "the sequence the token sits? Early tokens have little context, so their predictions should "
            "be worse; if so, position is decodable from loss alone.")
SEED_NOTEBOOK = "000"

EXPERIMENT = Experiment.from_package(__name__)
