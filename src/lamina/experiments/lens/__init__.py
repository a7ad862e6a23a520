"""Issue 27: the laminar profile of prediction. Decode every hidden entry through the LM head: how early
does the residual stream hold the model's prediction?"""

from ..base import Experiment
from . import compute, figures, report
from .result import LensResult

EXPERIMENT = Experiment(
    name="lens",
    title="Laminar profile of prediction: the logit lens (and the tuned lens) at every hidden entry",
    description="decode each hidden entry through the final norm and LM head: cross-entropy, KL from the final "
                "distribution, top-1 agreement and entropy per entry, across windows",
    question=("If the residual stream at each depth were read out through the model's own final norm and LM head, "
              "how close would it come to the model's prediction, and from which depth on does the model's top "
              "token already come out on top?"),
    seed_notebook="issue 27",
    Config=compute.LensConfig, Options=figures.LensOptions, Result=LensResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
