"""lamina: record what happens inside a causal language model, layer by layer.

Three calls::

    model = lamina.load("smollm2-135m")
    stimuli = lamina.stimuli.window(lamina.data.book("alice"), model, 512)
    rec = lamina.record(model, stimuli, sites=["hidden", "attn.out"])

Experiments: ``lamina.run("position", model)``; across models with untrained controls:
``lamina.compare("attn-kl", ["smollm2-135m", "gemma3-270m"], controls="random")``.

The names below are imported on first use (PEP 562), so ``import lamina`` loads neither torch nor
matplotlib, and the runner and the experiments only when a run needs them.

``lamina.record`` is the recording package (``lamina.record.Recording``, ``lamina.record.store``,
``import lamina.record.engine``), and calling it records: ``lamina.record(model, stimuli, ...)`` is
``lamina.record.record(model, stimuli, ...)``. The function does not shadow the package, whatever
is imported first.
"""

import importlib
import sys
import types

from ._version import __version__
from .errors import LaminaError

# public name -> (module, attribute); attribute None: the module itself
_LAZY = {
    "data": (".data", None),
    "stimuli": (".stimuli", None),
    "Stimuli": (".stimuli", "Stimuli"),
    "Model": (".models", "Model"),
    "load": (".models", "load"),
    "wrap": (".models", "wrap"),
    "Recording": (".record", "Recording"),
    "record": (".record", None),
    "Run": (".runner", "Run"),
    "run": (".runner", "run"),
    "compare": (".comparison", "compare"),
    "Comparison": (".comparison", "Comparison"),
}

__all__ = ["Comparison", "LaminaError", "Model", "Recording", "Run", "Stimuli", "compare", "data", "load", "record",
           "run", "stimuli", "wrap", "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lamina' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module, __name__)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _RecordPackage(types.ModuleType):
    """The recording package, callable: ``lamina.record(...)`` runs ``lamina.record.record(...)``."""

    def __call__(self, *args, **kwargs):
        return self.record(*args, **kwargs)


class _Face(types.ModuleType):
    """lamina's own module type. Python attaches every subpackage to its parent with ``setattr``
    once it is imported (by ``import lamina.record.store`` as much as by ``lamina.record``), so
    this is the one place that sees the recording package arrive, whoever imports it first."""

    def __setattr__(self, name, value):
        if name == "record" and type(value) is types.ModuleType:
            value.__class__ = _RecordPackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Face
