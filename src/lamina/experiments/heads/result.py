"""The typed result of ``heads``: results.json key for key, plus the per-window values behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..across import AcrossLayers
from ..base import ModelFacts, profile_table
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field, dims

# The correction's vocabulary and its sign flips, here (not in compute.py) so that the report imports no torch.
CORRECTIONS = {"max": "max-|t| over sign flips of whole windows (family-wise over layer × head)",
               "holm": "Holm (family-wise over layer × head)"}
N_FLIPS = 10_000


@dataclass(frozen=True, eq=False)
class HeadScore(Typed):
    """One score per layer and head (each ``(n_layers, n_heads)``): the windows' mean and its t interval."""

    mean: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray


@dataclass(frozen=True, eq=False)
class LayerSummary(Typed):
    """A per-layer summary over heads (each ``(n_layers,)``): its value and interval, and the head it is
    (−1 for a mean over heads). What ``profiles`` gives lamina compare."""

    value: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    head: IntArray


@dataclass(frozen=True, eq=False)
class Massive(Typed):
    """Massive activations per ``resid`` entry (each ``(n_layers + 1,)``), pooled over every window, position
    and dimension: max |x| / median |x|, and where the max sits (``position`` is the model position: 0 is
    the BOS where one is fed)."""

    ratio: FloatArray
    top: FloatArray
    median: FloatArray
    window: IntArray
    position: IntArray
    dim: IntArray
    token: tuple[str, ...]  # the token at that window and position (Sun et al.: the first token and delimiters)
    first_position_share: FloatArray  # fraction of windows whose own largest |x| is at position 0


@dataclass(frozen=True, eq=False)
class Windows(Typed):
    """Per layer × head × window (L, H, R) and per window (R): the values the intervals use."""

    start: np.ndarray = dims("window")  # int64, first token of each window in the book
    sink: np.ndarray = dims("block", "head", "window")  # float64
    previous: np.ndarray = dims("block", "head", "window")
    induction: np.ndarray = dims("block", "head", "window")  # NaN in a window without a repeated token
    entropy: np.ndarray = dims("block", "head", "window")  # nats
    # mean attn.heads norm on correct tokens, NaN where a window has none
    norm_correct: np.ndarray = dims("block", "head", "window")
    norm_incorrect: np.ndarray = dims("block", "head", "window")  # ... on incorrect tokens
    massive_position: np.ndarray = dims("entry", "window")  # int64, position of each window's largest |resid| per entry


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """Per stimulus token with a known next token (N, all windows, recording order): the split's labels."""

    window: np.ndarray  # (N,) int64, the window (replicate) of the token
    position: np.ndarray  # (N,) int64, its position in the window
    next_id: np.ndarray  # (N,) int64, the next token's id
    correct: np.ndarray  # (N,) bool, this model's top-1 prediction is the next token
    split_correct: np.ndarray  # (N,) bool, the split's labels (``correct``, or the labels_from run's)


@dataclass(frozen=True, eq=False)
class HeadsResult(Typed):
    n_tokens: int  # stimulus tokens, all windows (the BOS not counted)
    window: int  # tokens per window
    n_replicates: int  # windows
    n_heads: int
    first_is_bos: bool  # position 0 (the sink score's key) is a BOS lamina feeds; else the window's first token
    attention_kind: tuple[str, ...]  # per layer: "local" (sliding window) or "global"
    sliding_window: int | None  # the local layers' window in tokens (None: no local layers)
    level: float  # interval level, percent
    correction: str  # over layer × head: max (sign-flip max-|t|) or holm
    alpha: float
    skip_first: int  # each window's first tokens left out of the correct/incorrect split
    accuracy: float  # top-1 accuracy over the split's tokens
    n_split_windows: int  # windows with correct and incorrect tokens after skip_first
    induction_windows: int  # windows with at least one repeated token (the induction score's replicates)
    sink: HeadScore
    previous: HeadScore
    induction: HeadScore
    entropy: HeadScore  # nats
    # Correct − incorrect mean attn.heads norm per layer and head (each (n_layers, n_heads)): the windows' mean,
    # t interval, one-sample t test against 0, p corrected over layer × head (family-wise); None with fewer
    # than 2 split windows.
    norm_difference: AcrossLayers | None
    massive: Massive
    sink_max: LayerSummary  # per layer, the head with the largest mean sink score, with its interval
    previous_max: LayerSummary
    induction_max: LayerSummary
    entropy_mean: LayerSummary  # mean over heads; interval: the mean of the heads' bounds
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    labels_from: str | None = detail_field()  # the run whose labels split the tokens (None: this model's own)
    windows: Windows = array_field()
    tokens: Tokens = array_field()


SCORES = ("sink", "previous", "induction", "entropy")


def tables(result: HeadsResult) -> dict[str, pd.DataFrame]:
    n_layers, n_heads = result.sink.mean.shape
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    row = {"layer": layer, "head": head, "attention_kind": np.asarray(result.attention_kind)[layer]}
    for name in SCORES:
        s = getattr(result, name)
        row.update({f"{name}_{k}": getattr(s, k).ravel() for k in ("mean", "ci_low", "ci_high")})
    if result.norm_difference is not None:
        d = result.norm_difference
        row.update({f"norm_difference_{k}": getattr(d, k).ravel() for k in
                    ("mean", "ci_low", "ci_high", "t", "p", "p_corrected", "significant")})
    m = result.massive
    t = result.tokens
    return {
        # per token: this model's labels and the split's (labels_from reads this table: tables/tokens.csv)
        "tokens": pd.DataFrame({"window": t.window, "position": t.position, "next_id": t.next_id,
                                "correct": t.correct, "split_correct": t.split_correct}),
        "heads": pd.DataFrame(row),
        "massive": pd.DataFrame({"entry": np.arange(len(m.ratio)), "ratio": m.ratio, "top": m.top, "median": m.median,
                                 "window": m.window, "position": m.position, "dim": m.dim, "token": m.token,
                                 "first_position_share": m.first_position_share}),
    }


def profiles(result: HeadsResult) -> pd.DataFrame:
    """Per block, descriptive summaries over heads, each with an interval across windows, and per ``resid``
    entry the massive-activation ratio (no interval). None of them has a null value of 0: they are
    descriptive, and lamina compare's bands of untrained controls are their reference.

    * ``sink_max``, ``previous_max``, ``induction_max``: the score of the layer's head with the largest
      mean, with that head's t interval (chance for a head that attends uniformly is not 0: sink and
      previous ≈ mean over queries of 1/(q + 1), induction ≈ the share of keys that follow an earlier
      occurrence);
    * ``entropy_mean``: the mean over heads of the mean pattern entropy (nats), interval = the mean of the
      heads' bounds (conservative);
    * ``massive_ratio`` (site ``resid``): max |x| / median |x| of the raw residual stream.
    """
    parts = [("attn.pattern", name, s.value, (s.ci_low, s.ci_high)) for name, s in (
        ("sink_max", result.sink_max), ("previous_max", result.previous_max),
        ("induction_max", result.induction_max), ("entropy_mean", result.entropy_mean))]
    parts.append(("resid", "massive_ratio", result.massive.ratio, None))
    return profile_table(*parts)
