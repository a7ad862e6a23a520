"""Causal tracing (Meng et al. 2022, Fig. 1): where restoring the clean state brings a corrupted fact back."""

from ..base import Experiment

TITLE = "Causal tracing of factual recall"
DESCRIPTION = "corrupt the subject's embeddings, restore one site at one (layer, position), measure p(answer)"
QUESTION = ("Where in depth and position does the model carry the fact it recalls? With the subject's embeddings "
            "corrupted by noise, restoring the clean hidden state (or attention / MLP output) at one layer and "
            "position brings back some of the correct answer's probability: how much, and where is it largest?")
SEED_NOTEBOOK = "issue 26"

EXPERIMENT = Experiment.from_package(__name__)
