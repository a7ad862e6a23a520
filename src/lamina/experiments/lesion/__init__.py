"""Issue 26: the laminar lesion profile. Ablate attention or the MLP at one layer: what does the loss do?"""

from ..base import Experiment
from . import compute, figures, labels, report
from .result import LesionResult

EXPERIMENT = Experiment(
    name="lesion",
    title="Laminar lesion profile: ablating attention and MLP outputs layer by layer",
    description="mean-, zero- or resample-ablate attn.out / mlp.out per layer: Δ loss and Δ accuracy across windows",
    question=("If what attention (or the MLP) adds to the residual stream at one layer is removed, how much worse "
              "does the model predict the next token, and at which depths does it matter most? And does the lesion "
              "hurt the tokens the intact model predicts correctly more than those it gets wrong?"),
    seed_notebook="issue 26",
    Config=compute.LesionConfig, Options=figures.LesionOptions, Result=LesionResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report, control_settings=labels.control_settings,
)
