"""The typed result of ``trace``: results.json key for key, plus each prompt's effects (arrays.npz)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..across import Interval
from ..base import ModelFacts, profile_table
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field, dims

#: Position classes of Meng et al. (2022), Fig. 1; tokens before the subject are never corrupted (causal
#: attention) and are not restored.
CLASSES = ("first subject", "middle subject", "last subject", "first subsequent", "further", "last")


@dataclass(frozen=True, eq=False)
class Peak(Typed):
    """A layer chosen by its mean indirect effect in one position class (the largest; or the first past 0.5), with
    that layer's 95% t interval (``ci_*``: pointwise, as if the layer had been fixed in advance) and the class's
    simultaneous 95% band over its layers there (``band_*``: it covers every layer's mean at once, so it holds for
    the chosen layer whatever the choice; the t interval at a chosen layer misses more often than 5%)."""

    layer: int  # -1 where every layer is NaN
    mean: float
    ci_low: float
    ci_high: float
    band_low: float
    band_high: float

    @classmethod
    def none(cls) -> Peak:
        """No layer: every mean is NaN, or none passes the level asked for."""
        return cls(layer=-1, mean=np.nan, ci_low=np.nan, ci_high=np.nan, band_low=np.nan, band_high=np.nan)

    @classmethod
    def at(cls, i: int, mean, ci_low, ci_high, band_low, band_high) -> Peak:
        """Layer ``i`` of per-layer arrays, each ``(layers,)``."""
        return cls(layer=int(i), mean=mean[i], ci_low=ci_low[i], ci_high=ci_high[i], band_low=band_low[i],
                   band_high=band_high[i])


@dataclass(frozen=True, eq=False)
class SiteTrace(Typed):
    """Restoring one site: the normalised indirect effect per position class (rows, :data:`CLASSES`) and layer
    (columns: the site's entries), mean over prompts with its 95% t interval (pointwise); ``raw_mean`` in
    probability."""

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

    clean: np.ndarray = dims("prompt")
    corrupted: np.ndarray = dims("prompt")
    subject_tokens: np.ndarray = dims("prompt")
    hidden: np.ndarray = dims("prompt", "position_class", "restored_layer")
    attn_out: np.ndarray = dims("prompt", "position_class", "restored_layer")
    mlp_out: np.ndarray = dims("prompt", "position_class", "restored_layer")


@dataclass(frozen=True, eq=False)
class TraceResult(Typed):
    n_candidates: int  # prompts read
    n_prompts: int  # prompts traced (answered correctly, or every prompt with answer=argmax)
    answer: str  # "fact" or "argmax"
    noise: float  # noise SD in units of the embeddings' SD
    noise_sd: float  # the noise SD itself (the embeddings' SD over every prompt token × noise)
    samples: int
    classes: tuple[str, ...]
    clean_p: Interval  # p(answer), mean over prompts with Hall's skewness-corrected t interval (skew_t_interval)
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


def tables(result: TraceResult) -> dict[str, pd.DataFrame]:
    out = {}
    rows = []
    for site, trace in result.sites.items():
        for c, name in enumerate(result.classes):
            for layer in range(trace.mean.shape[1]):
                rows.append(dict(site=site, window=trace.window, position=name, layer=layer, n=int(trace.n[c]),
                                 effect=trace.mean[c, layer], ci_low=trace.ci_low[c, layer],
                                 ci_high=trace.ci_high[c, layer], raw_effect=trace.raw_mean[c, layer]))
    out["effects"] = pd.DataFrame(rows, columns=["site", "window", "position", "layer", "n", "effect", "ci_low",
                                                 "ci_high", "raw_effect"])
    pp = result.per_prompt
    out["prompts"] = pd.DataFrame({"prompt": list(result.prompts), "answer": list(result.answers),
                                   "subject_tokens": pp.subject_tokens, "p_clean": pp.clean,
                                   "p_corrupted": pp.corrupted})
    return out


def profiles(result: TraceResult) -> pd.DataFrame:
    """Per site and layer (hidden: entries 0..n; attn.out, mlp.out: blocks), the normalised indirect effect at the
    last subject token (``effect_last_subject``) and the last token (``effect_last``), mean over prompts with its
    95% t interval. Null value 0 at every layer: a restoration that changes nothing gives restored = corrupted."""
    parts = []
    for site, trace in result.sites.items():
        for metric, name in (("effect_last_subject", "last subject"), ("effect_last", "last")):
            c = result.classes.index(name)
            parts.append((site, metric, trace.mean[c], np.stack([trace.ci_low[c], trace.ci_high[c]])))
    return profile_table(*parts)
