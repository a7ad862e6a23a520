"""The typed result of ``mlp-stages``: results.json key for key, plus the focus layer's activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import Typed, array_field, detail_field

STAGES = ("in", "pre", "post", "out")
SITES = {stage: f"mlp.{stage}" for stage in STAGES}
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]  # the seed's order: 1v2, 1v3, 1v4, 2v3, 2v4, 3v4
PAIR_NAMES = [f"{STAGES[i]}-{STAGES[j]}" for i, j in PAIRS]
SETS = ("one", "many")
SET_TITLES = {"one": "One sequence", "many": "Many sequences"}
CI_LEVEL = 95.0


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


@dataclass(frozen=True, eq=False)
class LayerEntry(Typed):
    layer: int
    stages: dict[str, StageDims]  # stage (in, pre, post, out) -> dimensionality
    rsa_one: dict[str, float]  # stage pair (in-pre, ...) -> RSA of the one-sequence items
    rsa_many: dict[str, float]
    rsa_one_ci: dict[str, tuple[float, float]]  # percentile bootstrap interval
    rsa_many_ci: dict[str, tuple[float, float]]
    rsa_diff_ci: dict[str, tuple[float, float]]  # of rsa_one − rsa_many


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

    one_tokens: np.ndarray  # (n,) str, positions 1..n of the long sequence
    many_positions: np.ndarray  # (n,) int64, the word's token position in the text
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
    n_targets: int
    long_sequence_tokens: int
    context: int
    focus_layer: int
    threshold: float
    n_boot: int
    ci_level: float
    mlp_kind: str
    activation: str
    stages: dict[str, StageInfo]
    layers: tuple[LayerEntry, ...]
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

    def differs(self) -> np.ndarray:
        """Shape ``(n_layers, 6)`` bool: the interval of one − many excludes 0."""
        low, high = self.ci("diff")
        return (low > 0) | (high < 0)

    def kind_sentence(self) -> str:
        act = self.activation
        if self.mlp_kind == "gated":
            return (f"{self.model.name} has a gated MLP: mlp.pre is the gate projection before the {act}, and "
                    f"mlp.post is {act}(gate)·up, the down projection's input (not the {act} of mlp.pre alone).")
        return (f"{self.model.name} has a {act} MLP: mlp.pre is the expansion before the {act}, mlp.post the same "
                "expansion after it (the seed's 'Expa' and 'GELU' stages).")
