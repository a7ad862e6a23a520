"""lamina: record what happens inside a causal language model, layer by layer.

Three calls::

    model = lamina.load("smollm2-135m")
    stimuli = lamina.stimuli.window(lamina.data.book("alice"), model, 512)
    rec = lamina.record(model, stimuli, sites=["hidden", "attn.out"])
"""

__version__ = "0.1.0"  # before the imports: stages read it

from . import data, stimuli
from .errors import LaminaError
from .models import Model, load, wrap
from .record import Recording, record
from .runner import Run, run
from .stimuli import Stimuli

__all__ = ["LaminaError", "Model", "Recording", "Run", "Stimuli", "data", "load", "record", "run", "stimuli",
           "wrap", "__version__"]
