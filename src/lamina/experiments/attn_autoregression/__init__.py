"""Seed 002: is the size of a token's attention update predicted by the two tokens before it?"""

from ..base import Experiment
from . import compute, figures, report
from .result import AutoregressionResult

EXPERIMENT = Experiment(
    name="attn-autoregression",
    title="Autoregression of attention-output norms",
    description="least squares of each token's attention-output log norm on the two tokens before it",
    question=("Is the size of the attention adjustment a token receives predicted by the adjustments the two "
              "tokens before it received? If attention updates come in runs, the log norm at t should depend "
              "on those at t-1 and t-2, and the dependence may differ from layer to layer."),
    seed_notebook="002",
    Config=compute.AutoregressionConfig, Options=figures.AutoregressionOptions, Result=AutoregressionResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
