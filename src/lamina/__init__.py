"""lamina: record what happens inside a causal language model, layer by layer.

Three calls::

    model = lamina.load("smollm2-135m")
    stimuli = lamina.stimuli.window(lamina.data.book("alice"), model, 512)
    rec = lamina.record(model, stimuli, sites=["hidden", "attn.out"])

Experiments: ``lamina.run("position", model)``; across models with untrained controls:
``lamina.compare("attn-kl", ["smollm2-135m", "gemma3-270m"], controls="random")``; one untrained
control by hand: ``lamina.random_control(model, seed=0)``.

The names below are imported on first use (PEP 562), so ``import lamina`` loads neither torch nor
matplotlib, and the runner and the experiments only when a run needs them.

``lamina.record`` is the function; the recording stage is the package ``lamina.recording``
(``Recording``, ``store``, ``engine``, ``hooks``).
"""

import warnings

from ._lazy import lazy_exports
from ._version import __version__
from .errors import LaminaError

# tqdm.auto, imported by huggingface_hub and transformers, warns "IProgress not found. Please update
# jupyter and ipywidgets" in a Jupyter kernel without ipywidgets and falls back to text bars. lamina's
# bars make that choice on purpose (lamina._progress), so in a lamina session the warning asks for
# nothing; this filter silences that one message only.
warnings.filterwarnings("ignore", message="IProgress not found")

# public name -> (module, attribute); attribute None: the module itself
_LAZY = {
    "data": (".data", None),
    "stimuli": (".stimuli", None),
    "Stimuli": (".stimuli", "Stimuli"),
    "Model": (".models", "Model"),
    "load": (".models", "load"),
    "wrap": (".models", "wrap"),
    "random_control": (".models", "random_control"),
    "Recording": (".recording", "Recording"),
    "record": (".recording", "record"),
    "edits": (".recording.edits", None),
    # stages used as namespaces in notebooks (lamina.stats.t_interval): imported on first use too
    "stats": (".stats", None),
    "plots": (".plots", None),
    "editing": (".recording.edits", "editing"),
    "Run": (".runner", "Run"),
    "run": (".runner", "run"),
    "compare": (".comparison", "compare"),
    "experiment": (".experiments.simple", "experiment"),
    "LayerProfiles": (".experiments.simple", "LayerProfiles"),
    "Comparison": (".comparison", "Comparison"),
}

__all__ = ["Comparison", "LaminaError", "LayerProfiles", "Model", "Recording", "Run", "Stimuli", "compare", "data", "editing", "edits",
           "experiment", "load", "random_control", "record", "run", "stimuli", "wrap", "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
