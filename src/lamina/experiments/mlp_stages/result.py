"""The typed result of ``mlp-stages``: results.json key for key, plus the focus layer's activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..across import Across, Interval
from ..base import ModelFacts
from ..typed import FloatArray, IntArray, Typed, array_field, detail_field

STAGES = ("in", "pre", "post", "out")
# The seed's fourth stage is the MLP's projection ("Proj"): mlp.raw, the down projection's output.
# Where a block norms or scales it before the residual add (Gemma-2/3, OLMo-2, Granite), mlp.out is
# that, not the MLP's own computation; elsewhere the two are the same tensor (docs/sites.md).
SITES = {"in": "mlp.in", "pre": "mlp.pre", "post": "mlp.post", "out": "mlp.raw"}
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]  # the seed's order: 1v2, 1v3, 1v4, 2v3, 2v4, 3v4
PAIR_NAMES = [f"{STAGES[i]}-{STAGES[j]}" for i, j in PAIRS]
SETS = ("one", "many")
SET_TITLES = {"one": "One sequence", "many": "Many sequences"}
CI_LEVEL = 95.0
ALPHA = 0.05  # level of the one-vs-many decisions (Benjamini–Hochberg false discovery rate)


@dataclass(frozen=True, eq=False)
class StageInfo(Typed):
    site: str
    meaning: str  # what the stage is on this model's MLP


@dataclass(frozen=True, eq=False)
class StageDims(Typed):
    """Participation ratio and effective dimensionality of one stage's items, per set."""

    pr_one: float
    effdim_one: int
    pr_many: float
    effdim_many: int
    pr_one_ci: tuple[float, float]  # percentile bootstrap: blocks of tokens (one), items (many)
    pr_many_ci: tuple[float, float]


@dataclass(frozen=True, eq=False)
class LayerAcross(Typed):
    """One layer across replicates: one − many tested per stage or pair (BH across all layers), set means."""

    rsa_diff: dict[str, Across]  # pair -> RSA one − many (family: every layer × pair)
    pr_diff: dict[str, Across]  # stage -> participation ratio one − many (family: every layer × stage)
    effdim_diff: dict[str, Across]  # stage -> effective dimensionality one − many (family: layer × stage)
    rsa_one: dict[str, Interval]  # pair -> the replicates' mean RSA and its t interval
    rsa_many: dict[str, Interval]
    pr_one: dict[str, Interval]  # stage -> mean participation ratio
    pr_many: dict[str, Interval]
    effdim_one: dict[str, Interval]
    effdim_many: dict[str, Interval]


@dataclass(frozen=True, eq=False)
class LayerEntry(Typed):
    layer: int
    block_one: int  # circular-bootstrap block length (tokens) of the one-sequence items at this layer
    stages: dict[str, StageDims]  # stage (in, pre, post, out) -> dimensionality
    rsa_one: dict[str, float]  # stage pair (in-pre, ...) -> RSA of the one-sequence items
    rsa_many: dict[str, float]
    rsa_one_ci: dict[str, tuple[float, float]]  # percentile bootstrap interval
    rsa_many_ci: dict[str, tuple[float, float]]
    rsa_diff_ci: dict[str, tuple[float, float]]  # of rsa_one − rsa_many
    rsa_diff_p: dict[str, float]  # two-sided bootstrap p of rsa_one − rsa_many = 0
    rsa_diff_p_bh: dict[str, float]  # Benjamini–Hochberg across every layer × pair
    rsa_differs: dict[str, bool]  # rsa_diff_p_bh <= alpha
    across: LayerAcross | None  # None with one replicate


@dataclass(frozen=True, eq=False)
class Replicates(Typed):
    """Each replicate's statistics: shape ``(R, n_layers, 4)`` per stage, ``(R, n_layers, 6)`` per pair."""

    window_start: IntArray  # (R,) token where each replicate's long sequence starts
    first_occurrence: IntArray  # (R,) token position of the replicate's first and last short-sequence word
    last_occurrence: IntArray
    pr_one: FloatArray
    pr_many: FloatArray
    effdim_one: IntArray
    effdim_many: IntArray
    rsa_one: FloatArray
    rsa_many: FloatArray


@dataclass(frozen=True, eq=False)
class StageActivations(Typed):
    """One set's items at the focus layer, per stage: shape ``(n, width)`` float32."""

    mlp_in: np.ndarray
    mlp_pre: np.ndarray
    mlp_post: np.ndarray
    mlp_out: np.ndarray

    def stage(self, stage: str) -> np.ndarray:
        return getattr(self, f"mlp_{stage}")


@dataclass(frozen=True, eq=False)
class Items(Typed):
    """What the items are, and the focus layer's activations (the figures' data)."""

    one_tokens: np.ndarray  # (n,) str, positions 1..n_per_replicate of each replicate's long sequence
    one_positions: np.ndarray  # (n,) int64, their token position in the text
    one_replicate: np.ndarray  # (n,) int64
    many_positions: np.ndarray  # (n,) int64, the word's token position in the text
    many_replicate: np.ndarray  # (n,) int64
    many_tokens: np.ndarray  # (n,) str
    many_contexts: np.ndarray  # (n,) str, each short sequence decoded
    one: StageActivations
    many: StageActivations


@dataclass(frozen=True, eq=False)
class MlpStagesResult(Typed):
    word: str
    token_id: int
    text: str
    n_occurrences: int
    n_dropped: int
    n_capped: int
    n_targets: int  # items per set, all replicates
    replicates: int
    n_per_replicate: int  # items per set and replicate
    long_sequence_tokens: int  # tokens of each replicate's long sequence (n_per_replicate + 1)
    context: int
    focus_layer: int
    threshold: float
    n_boot: int
    ci_level: float
    alpha: float
    mlp_kind: str
    activation: str
    stages: dict[str, StageInfo]
    layers: tuple[LayerEntry, ...]
    per_replicate: Replicates
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    items: Items = array_field()

    def dims(self, metric: str, which: str) -> np.ndarray:
        """Shape ``(n_layers, 4)``: ``metric`` ("pr" or "effdim") of set ``which`` per layer and stage."""
        return np.array([[getattr(e.stages[s], f"{metric}_{which}") for s in STAGES] for e in self.layers])

    def rsa(self, which: str) -> np.ndarray:
        """Shape ``(n_layers, 6)``: RSA of set ``which`` per layer and stage pair."""
        return np.array([[getattr(e, f"rsa_{which}")[p] for p in PAIR_NAMES] for e in self.layers])

    def ci(self, which: str) -> np.ndarray:
        """Shape ``(2, n_layers, 6)``: (low, high) of set ``which`` ("one", "many" or "diff")."""
        intervals = [[getattr(e, f"rsa_{which}_ci")[p] for p in PAIR_NAMES] for e in self.layers]
        return np.array(intervals).transpose(2, 0, 1)

    def pr_ci(self, which: str) -> np.ndarray:
        """Shape ``(2, n_layers, 4)``: the bootstrap interval of set ``which``'s participation ratio."""
        intervals = [[getattr(e.stages[s], f"pr_{which}_ci") for s in STAGES] for e in self.layers]
        return np.array(intervals).transpose(2, 0, 1)

    def differs(self) -> np.ndarray:
        """Shape ``(n_layers, 6)`` bool: one − many RSA significant after Benjamini–Hochberg (all 180 cells)."""
        return np.array([[e.rsa_differs[p] for p in PAIR_NAMES] for e in self.layers])

    def differs_uncorrected(self) -> np.ndarray:
        """Shape ``(n_layers, 6)`` bool: the (uncorrected) 95% interval of one − many excludes 0."""
        low, high = self.ci("diff")
        return (low > 0) | (high < 0)

    def across(self, metric: str, key: str = "mean") -> np.ndarray:
        """Across replicates, shape ``(n_layers, 4 or 6)``: ``key`` ("mean", "ci_low", "ci_high", ...) of
        ``metric`` ("rsa_one", "pr_diff", ...) per layer and stage or pair (None with one replicate)."""
        if self.replicates < 2:
            return None
        names = PAIR_NAMES if metric.startswith("rsa") else STAGES
        return np.array([[getattr(getattr(e.across, metric)[k], key) for k in names] for e in self.layers],
                        dtype=float)

    def kind_sentence(self) -> str:
        act = self.activation
        if self.mlp_kind == "gated":
            return (f"{self.model.name} has a gated MLP: mlp.pre is the gate projection before the {act}, and "
                    f"mlp.post is {act}(gate)·up, the down projection's input (not the {act} of mlp.pre alone).")
        return (f"{self.model.name} has a {act} MLP: mlp.pre is the expansion before the {act}, mlp.post the same "
                "expansion after it (the seed's 'Expa' and 'GELU' stages).")
