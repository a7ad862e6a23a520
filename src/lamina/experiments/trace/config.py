"""The settings of ``trace``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LaminaError
from .. import settings as shared
from ..settings import setting


SITES = ("hidden", "attn.out", "mlp.out")
ANSWERS = ("fact", "argmax")


@dataclass
class TraceConfig:
    noise: float = setting(3.0, ge=0)  # noise SD in units of the embeddings' SD (Meng et al.: 3)
    samples: int = setting(2, ge=1)  # noise samples per prompt (the paper: 10; CPU cost grows linearly)
    # comma-separated: hidden, attn.out, mlp.out
    sites: str = setting("hidden", check=lambda text: bool(parse_sites(text)),
                         means=f"a comma-separated list of {', '.join(SITES)}, each once")
    # layers restored together for attn.out and mlp.out, centred (the paper: 10); hidden: 1
    window: int = shared.window(1, minimum=1)
    # The first N prompts of the set (None: all 83). 12 by default for CPU cost: on 2 CPU cores SmolLM2 takes
    # about 11 s per prompt, noise sample and site (docs/results.md); the intervals over prompts say how far 12 go.
    n_prompts: int | None = setting(12, ge=1)
    # fact: the set's answer, prompts the model gets wrong dropped; argmax: the model's own top next token
    # as the answer, every prompt kept (for untrained or small models)
    answer: str = setting("fact", choices=ANSWERS)


def parse_sites(text) -> list[str]:
    """The ``sites`` setting as a list, in the order of :data:`SITES`."""
    if not isinstance(text, str):
        raise LaminaError(f"sites must be a comma-separated list of {', '.join(SITES)}, not {text!r}.")
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SITES]
    if not names or bad or len(set(names)) != len(names):
        raise LaminaError(f"sites must be a comma-separated list of {', '.join(SITES)} (each once), not {text!r}.")
    return [s for s in SITES if s in names]
