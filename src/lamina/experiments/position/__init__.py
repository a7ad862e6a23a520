"""Seed 000: decode a token's position from its next-token loss."""

from ..base import Experiment
from . import compute, figures, report
from .result import PositionResult

EXPERIMENT = Experiment(
    name="position",
    title="Decoding token position from next-token loss",
    description="decode token position from per-token loss (OLS, logistic regression, held-out test)",
    question=("Does the loss a model assigns to its next-token prediction carry information about where in "
              "the sequence the token sits? Early tokens have little context, so their predictions should "
              "be worse; if so, position is decodable from loss alone."),
    seed_notebook="000",
    Config=compute.PositionConfig, Options=figures.PositionOptions, Result=PositionResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
