"""Causal tracing (Meng et al. 2022, Fig. 1): where restoring the clean state brings a corrupted fact back."""

from ..base import Experiment
from . import compute, figures, report
from .result import TraceResult

EXPERIMENT = Experiment(
    name="trace",
    title="Causal tracing of factual recall",
    description="corrupt the subject's embeddings, restore one site at one (layer, position), measure p(answer)",
    question=("Where in depth and position does the model carry the fact it recalls? With the subject's embeddings "
              "corrupted by noise, restoring the clean hidden state (or attention / MLP output) at one layer and "
              "position brings back some of the correct answer's probability: how much, and where is it largest?"),
    seed_notebook="issue 26",
    Config=compute.TraceConfig, Options=figures.TraceOptions, Result=TraceResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report,
)
