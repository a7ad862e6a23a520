"""Seed 003: a token's geometry through the four MLP stages, one long sequence vs many short ones."""

from ..base import Experiment
from . import compute, figures, report
from .result import MlpStagesResult

EXPERIMENT = Experiment(
    name="mlp-stages",
    title="The MLP progression: geometry through the four MLP stages",
    description="PR, effective dimensionality and RSA of mlp.in/pre/post/out; one long vs many short sequences",
    question=("How does a token's representation change as it passes through the MLP: its input, the expansion "
              "before and after the nonlinearity, and the projection back? And does the geometry differ between "
              "different tokens in one long sequence and one word in many short contexts?"),
    seed_notebook="003",
    Config=compute.MlpStagesConfig, Options=figures.MlpStagesOptions, Result=MlpStagesResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
