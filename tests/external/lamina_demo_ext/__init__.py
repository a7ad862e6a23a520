"""demo-norms: an experiment that lives outside lamina (tests/test_external_experiments.py runs it).

It follows lamina's contract (compute, a typed result, tables, profiles, figures, report) from its
own package; lamina finds it as ``path/to/lamina_demo_ext:EXPERIMENT``, ``lamina_demo_ext:EXPERIMENT``
(on sys.path), the object itself, or by name through an entry point::

    [project.entry-points."lamina.experiments"]
    demo-norms = "lamina_demo_ext:EXPERIMENT"
"""

from lamina.experiments import Experiment

from . import compute, figures, report
from .result import NormsResult

EXPERIMENT = Experiment(
    name="demo-norms",
    title="Residual-stream norms, entry by entry",
    description="mean log L2 norm of each hidden entry across windows of a text (t intervals)",
    question=("How large is the residual stream at each depth? The mean log norm of the hidden state per entry, "
              "with windows of a text as the replicates."),
    seed_notebook="demo",
    Config=compute.NormsConfig, Options=figures.NormsOptions, Result=NormsResult,
    compute=compute.compute, tables=compute.tables, profiles=compute.profiles, figures=figures.figures,
    report=report.report, control_settings=compute.control_settings,
)
