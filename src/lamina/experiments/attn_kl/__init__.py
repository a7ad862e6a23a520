"""Seed 001: do attention outputs differ in size for correctly and incorrectly predicted tokens?"""

from ..base import Experiment
from . import compute, figures, labels, report
from .result import AttnKLResult

EXPERIMENT = Experiment(
    name="attn-kl",
    title="Prediction accuracy and attention-output norms",
    description="attention-output norms of correctly vs incorrectly predicted tokens (JS divergence, permutations)",
    question=("When a model predicts the next token correctly, is its attention adjustment to that token larger "
              "or smaller than when it is wrong? The question is asked layer by layer: at which depths do the "
              "distributions of attention-output norms of correct and incorrect predictions differ?"),
    seed_notebook="001",
    Config=compute.AttnKLConfig, Options=figures.AttnKLOptions, Result=AttnKLResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report, control_settings=labels.control_settings,
)
