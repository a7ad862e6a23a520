"""The typed result of ``lens``: results.json key for key, plus the per-window values behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..base import ModelFacts, profile_table
from ..typed import FloatArray, Typed, array_field, detail_field, dims

#: the per-token metrics, in the order of the arrays' metric axis
METRICS = ("cross_entropy", "kl", "top1_agreement", "entropy")
#: In nats, bounded by each model's log V (and the cross-entropy per token of its own tokenization): compared with
#: the model's own untrained controls (same vocabulary) but never between two models (Experiment.own_scale).
OWN_SCALE = tuple(f"{kind}{m}" for kind in ("", "tuned_") for m in ("cross_entropy", "kl", "entropy"))


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

    start: np.ndarray = dims("window")  # int64, first token of each window in the book
    n_tokens: np.ndarray = dims("window")  # int64, tokens with a known next token
    model_loss: np.ndarray = dims("window")  # float64, the recording's mean loss
    values: np.ndarray = dims("lens", "lens_metric", "entry", "window")  # float64; metrics in METRICS order


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


def tables(result: LensResult) -> dict[str, pd.DataFrame]:
    w, n_entries = result.windows, result.model.n_layers + 1
    rows, per_window = [], []
    for k, lens in enumerate(result.lenses):
        row = {"lens": lens.kind, "entry": np.arange(n_entries)}
        for m in METRICS:
            p = getattr(lens, m)
            row.update({f"{m}_mean": p.mean, f"{m}_ci_low": p.ci_low, f"{m}_ci_high": p.ci_high})
        rows.append(pd.DataFrame(row))
        for e in range(n_entries):
            per_window.append(pd.DataFrame({"lens": lens.kind, "entry": e, "window": np.arange(result.n_replicates),
                                            **{m: w.values[k, i, e] for i, m in enumerate(METRICS)}}))
    g = result.grid
    text = result.token_texts.get
    grid = [pd.DataFrame({"lens": lens.kind, "entry": e, "position": g.position,
                          "token": [text(str(i)) for i in g.token_id], "next": [text(str(i)) for i in g.next_id],
                          "top1": [text(str(i)) for i in g.top1_id[k, e]], "top1_p": g.top1_p[k, e]})
            for k, lens in enumerate(result.lenses) for e in range(n_entries)]
    return {
        "entries": pd.concat(rows, ignore_index=True),
        "windows": pd.concat(per_window, ignore_index=True),
        "clean": pd.DataFrame({"window": np.arange(result.n_replicates), "start": w.start, "n_tokens": w.n_tokens,
                               "loss": w.model_loss}),
        "predictions": pd.concat(grid, ignore_index=True),
    }


def profile_metric(metric: str, kind: str) -> str:
    """A profile metric's name: ``kl`` for the logit lens, ``tuned_kl`` for the tuned lens."""
    return metric if kind == "logit" else f"{kind}_{metric}"


def profiles(result: LensResult) -> pd.DataFrame:
    """Per ``hidden`` entry, each lens's four metrics with their t intervals across windows (logit lens:
    ``cross_entropy``, ``kl``, ``top1_agreement``, ``entropy``; tuned lens: the same with ``tuned_`` first).

    No metric has a null value that holds at every entry of every model, so none is tested against one:

    * ``kl`` (nats) is 0 and ``top1_agreement`` is 1 at the last entry by construction (it is the model's
      own distribution), and neither has a value "of no effect" below it; 0 KL would be a lens that
      already decodes the final distribution, which no model shows at entry 0;
    * ``cross_entropy`` and ``entropy`` (nats) are bounded by ``log V``, which differs between tokenizers
      (10.80 for SmolLM2's 49,152 ids, 12.48 for Gemma-3's 262,144), and the cross-entropy is per token of
      each model's own tokenization, so two models' values are not on one scale.

    What ``lamina compare`` says of them is therefore relative: "leaves its controls' band" means the trained
    model's lens differs from what the architecture gives at initialisation; the nats metrics (:data:`OWN_SCALE`)
    are never differenced between two models. (An untrained SmolLM2, init seed 0,
    measured once on 3 windows of 64 tokens: every entry after the embeddings decodes to a near-uniform
    distribution, entropy 10.69 and cross-entropy about 10.9-11.0 nats against log V = 10.80; KL from its
    own final distribution falls smoothly from 0.2 to 0 nats; top-1 agreement is under 4% up to entry 24
    of 30 and rises to 60% at entry 29.)
    """
    parts = []
    for lens in result.lenses:
        for m in METRICS:
            p = getattr(lens, m)
            parts.append(("hidden", profile_metric(m, lens.kind), p.mean, (p.ci_low, p.ci_high)))
    return profile_table(*parts)
