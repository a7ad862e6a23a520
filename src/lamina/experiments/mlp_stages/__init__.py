"""Seed 003: a token's geometry through the four MLP stages, one long sequence vs many short ones."""

from ..base import Experiment

TITLE = "The MLP progression: geometry through the four MLP stages"
DESCRIPTION = "PR, effective dimensionality and RSA of mlp.in/pre/post/out; one long vs many short sequences"
QUESTION = ("How does a token's representation change as it passes through the MLP: its input, the expansion "
            "before and after the nonlinearity, and the projection back? And does the geometry differ between "
            "different tokens in one long sequence and one word in many short contexts?")
SEED_NOTEBOOK = "003"

EXPERIMENT = Experiment.from_package(__name__)
