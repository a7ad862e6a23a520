"""Seed 004: category selectivity via cosine similarity, and one word in many contexts."""

from ..base import Experiment
from . import compute, figures, report
from .result import CategoriesResult

EXPERIMENT = Experiment(
    name="categories",
    title="Category selectivity via cosine similarity",
    description="within- vs across-category cosine similarity of word hidden states, layer by layer",
    question=("Are the hidden states of words from the same category (space, furniture, fruit) more similar to "
              "each other than to words of other categories, and at which layers? And does one word, met in "
              "many contexts, stay more similar to itself than to other words?"),
    seed_notebook="004",
    Config=compute.CategoriesConfig, Options=figures.CategoriesOptions, Result=CategoriesResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
