"""Seed 004: category selectivity via cosine similarity, and one word in many contexts."""

from ..base import Experiment

TITLE = "Category selectivity via cosine similarity"
DESCRIPTION = "within- vs across-category cosine similarity of word hidden states, layer by layer"
QUESTION = ("Are the hidden states of words from the same category (space, furniture, fruit) more similar to "
            "each other than to words of other categories, and at which layers? And does one word, met in "
            "many contexts, stay more similar to itself than to other words?")
SEED_NOTEBOOK = "004"

EXPERIMENT = Experiment.from_package(__name__)
