"""The typed result of ``trace``: results.json key for key, plus each prompt's effects (arrays.npz)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..across import Interval
from ..base import ModelFacts
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field

#: Position classes of Meng et al. (2022), Fig. 1; tokens before the subject are never corrupted (causal
#: attention) and are not restored.
CLASSES = ("first subject", "middle subject", "last subject", "first subsequent", "further", "last")


@dataclass(frozen=True, eq=False)
class Peak(Typed):
    """The layer of the largest mean indirect effect in one position class, with that layer's interval."""

    layer: int  # -1 where every layer is NaN
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, eq=False)
class SiteTrace(Typed):
    """Restoring one site: the normalised indirect effect per position class (rows, :data:`CLASSES`) and layer
    (columns: the site's entries), mean over prompts with its 95% t interval; ``raw_mean`` in probability."""

    window: int  # layers restored together, centred on the layer (hidden: always 1)
    n: IntArray  # (classes,) prompts with a value in the class
    mean: FloatArray  # (classes, layers)
    ci_low: FloatArray
    ci_high: FloatArray
    raw_mean: FloatArray  # (classes, layers): restored − corrupted p(answer), not normalised
    peak_last_subject: Peak
    peak_last: Peak  # the first layer whose mean effect at the last token exceeds 0.5


@dataclass(frozen=True, eq=False)
class PerPrompt(Typed):
    """Each prompt's numbers: p(answer) clean and corrupted (mean over noise samples), and per site the normalised
    indirect effect, shape ``(prompts, classes, layers)`` (an empty array for a site not restored)."""

    clean: np.ndarray
    corrupted: np.ndarray
    subject_tokens: np.ndarray
    hidden: np.ndarray
    attn_out: np.ndarray
    mlp_out: np.ndarray


@dataclass(frozen=True, eq=False)
class TraceResult(Typed):
    n_candidates: int  # prompts read
    n_prompts: int  # prompts traced (answered correctly, or every prompt with answer=argmax)
    answer: str  # "fact" or "argmax"
    noise: float  # noise SD in units of the embeddings' SD
    noise_sd: float  # the noise SD itself (the embeddings' SD over every prompt token × noise)
    samples: int
    classes: tuple[str, ...]
    clean_p: Interval  # p(answer), mean over prompts with its t interval
    corrupted_p: Interval
    normalised_prompts: int  # prompts where clean − corrupted > 1e-5 × clean (the normalised effect is defined)
    forwards: int  # forward passes (record calls' sequences) in all
    sites: dict[str, SiteTrace]
    model: ModelFacts = detail_field()
    prompts: tuple[str, ...] = detail_field()
    answers: tuple[str, ...] = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    per_prompt: PerPrompt = array_field()

    def site_effects(self, site: str) -> np.ndarray:
        """Per-prompt normalised effects of ``site``: ``(prompts, classes, layers)``."""
        return getattr(self.per_prompt, site.replace(".", "_"))
