"""The typed result of ``lens``: results.json key for key, plus the per-window values behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import FloatArray, Typed, array_field, detail_field

#: the per-token metrics, in the order of the arrays' metric axis
METRICS = ("cross_entropy", "kl", "top1_agreement", "entropy")


@dataclass(frozen=True, eq=False)
class Profile(Typed):
    """One metric per ``hidden`` entry (each ``(n_layers + 1,)``): the windows' mean and its t interval."""

    mean: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray


@dataclass(frozen=True, eq=False)
class Crossing(Typed):
    """The first entry whose mean top-1 agreement with the final prediction exceeds one half."""

    entry: int  # -1: none does (the last entry always agrees: it is the final prediction)
    mean: float  # its mean agreement (fraction), and the t interval across windows
    ci_low: float
    ci_high: float
    first_above: int  # the first entry whose whole interval lies above one half (-1: none)


@dataclass(frozen=True, eq=False)
class Lens(Typed):
    """One lens (logit or tuned): each metric's profile over the ``hidden`` entries."""

    kind: str  # "logit" or "tuned"
    cross_entropy: Profile  # −log q_l(next token), nats
    kl: Profile  # KL(final distribution || q_l), nats
    top1_agreement: Profile  # argmax q_l == the model's own argmax (fraction)
    entropy: Profile  # H(q_l), nats
    agreement_crossing: Crossing


@dataclass(frozen=True, eq=False)
class Check(Typed):
    """The built-in check: decoding the last entry with the LM head alone gives the model's own loss."""

    max_abs_difference: float  # largest |lens cross-entropy − recorded loss| over the tokens, nats
    tolerance: float  # what the check allows (by the model's dtype)
    lens_loss: float  # mean cross-entropy of the last entry, nats
    model_loss: float  # mean of the recording's own loss column


@dataclass(frozen=True, eq=False)
class Training(Typed):
    """How the tuned lens's translators were fitted (one affine map per entry below the last)."""

    n_windows: int  # training windows (disjoint from the evaluated ones)
    n_tokens: int  # training tokens
    steps: int
    batch: int  # tokens per step
    lr: float
    kl_first: FloatArray  # (n_layers,) training KL of each entry's lens at step 0 (the logit lens), nats
    kl_last: FloatArray  # (n_layers,) mean training KL over the last tenth of the steps, nats


@dataclass(frozen=True, eq=False)
class Windows(Typed):
    """Per window: where it starts, its tokens, and each lens's metrics per entry."""

    start: np.ndarray  # (R,) int64, first token of each window in the book
    n_tokens: np.ndarray  # (R,) int64, tokens with a known next token
    model_loss: np.ndarray  # (R,) float64, the recording's mean loss
    values: np.ndarray  # (K lenses, 4 metrics (METRICS), E entries, R windows) float64


@dataclass(frozen=True, eq=False)
class Grid(Typed):
    """Window 0's last P tokens (at most 12), for the predictions figure: what each lens predicts there."""

    position: np.ndarray  # (P,) int64, position in the window
    token_id: np.ndarray  # (P,) int64, the input token
    next_id: np.ndarray  # (P,) int64, the token that follows
    top1_id: np.ndarray  # (K lenses, E entries, P) int64, the lens's top-1 token
    top1_p: np.ndarray  # (K, E, P) float64, its probability under the lens


@dataclass(frozen=True, eq=False)
class LensResult(Typed):
    n_tokens: int  # tokens with a known next token, all windows
    window: int  # tokens per window
    n_replicates: int  # windows
    level: float  # interval level, percent
    vocab_size: int
    vocab_chunk: int  # vocabulary ids per step of the streamed softmax
    softcap: float | None  # the head's final-logit soft-cap (None: none)
    logit_scale: float  # the head's logit scale (1: none)
    check: Check
    lenses: tuple[Lens, ...]  # the logit lens, then the tuned lens when asked for
    training: Training | None
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    tuned_cache: str | None = detail_field()  # the translators' cache file name (None: not cached, or no tuned lens)
    token_texts: dict[str, str] = detail_field()  # token id -> its text, for every id in ``grid``
    windows: Windows = array_field()
    grid: Grid = array_field()
