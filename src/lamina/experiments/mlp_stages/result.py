"""The typed result of ``mlp-stages``: results.json key for key, plus the focus layer's activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..across import Across, Interval
from ..base import ModelFacts, profile_table
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


def replicate_table(result: MlpStagesResult) -> pd.DataFrame:
    """Each replicate's statistics, one row per replicate, layer, set and stage or pair."""
    per, rows = result.per_replicate, []
    for which in SETS:
        for metric, names in (("pr", STAGES), ("effdim", STAGES), ("rsa", PAIR_NAMES)):
            values = getattr(per, f"{metric}_{which}")  # (R, n_layers, k)
            r, layer, k = np.meshgrid(*(np.arange(d) for d in values.shape), indexing="ij")
            rows.append(pd.DataFrame({"replicate": r.ravel(), "layer": layer.ravel(), "set": which, "metric": metric,
                                      "stage_or_pair": np.array([SITES[n] if metric != "rsa" else n
                                                                 for n in names])[k.ravel()],
                                      "value": values.ravel().astype(float)}))
    return pd.concat(rows, ignore_index=True)


def across_table(result: MlpStagesResult) -> pd.DataFrame:
    """One − many across replicates: one row per layer, metric and stage or pair."""
    rows = []
    for entry in result.layers:
        for metric in ("rsa_diff", "pr_diff", "effdim_diff"):
            for key, test in getattr(entry.across, metric).items():
                rows.append({"layer": entry.layer, "metric": metric, "stage_or_pair": SITES.get(key, key),
                             **{f: getattr(test, f) for f in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected",
                                                               "significant")}})
    return pd.DataFrame(rows)


def tables(result: MlpStagesResult) -> dict[str, pd.DataFrame]:
    dim_rows, rsa_rows = [], []
    for entry in result.layers:
        for which in SETS:
            for s in STAGES:
                dims = entry.stages[s]
                ed = getattr(dims, f"effdim_{which}")
                dim_rows.append((entry.layer, SITES[s], which, getattr(dims, f"pr_{which}"),
                                 *getattr(dims, f"pr_{which}_ci"), ed, ed - 1))
            for p in PAIR_NAMES:
                lo, hi = getattr(entry, f"rsa_{which}_ci")[p]
                rsa_rows.append((entry.layer, p, which, getattr(entry, f"rsa_{which}")[p], lo, hi, np.nan, np.nan,
                                 pd.NA))
        for p in PAIR_NAMES:
            lo, hi = entry.rsa_diff_ci[p]
            rsa_rows.append((entry.layer, p, "one-many", entry.rsa_one[p] - entry.rsa_many[p], lo, hi,
                             entry.rsa_diff_p[p], entry.rsa_diff_p_bh[p], entry.rsa_differs[p]))
    items = result.items
    n = len(items.one_tokens)
    item_table = pd.concat([
        pd.DataFrame({"set": "one", "replicate": items.one_replicate, "item": np.arange(n),
                      "text_position": items.one_positions, "token": items.one_tokens, "context": ""}),
        pd.DataFrame({"set": "many", "replicate": items.many_replicate, "item": np.arange(n),
                      "text_position": items.many_positions, "token": items.many_tokens,
                      "context": items.many_contexts}),
    ], ignore_index=True)
    out = {
        "dimensionality": pd.DataFrame(dim_rows, columns=["layer", "site", "set", "participation_ratio", "pr_ci_low",
                                                          "pr_ci_high", "effective_dim", "effective_dim_seed_index"]),
        "rsa": pd.DataFrame(rsa_rows, columns=["layer", "pair", "set", "r", "ci_low", "ci_high", "p", "p_bh",
                                               "significant"]),
        "items": item_table,
    }
    if result.replicates > 1:
        out["replicates"] = replicate_table(result)
        out["across"] = across_table(result)
    return out


def profiles(result: MlpStagesResult) -> pd.DataFrame:
    """Per block: each stage's participation ratio and effective dimensionality per set
    (``pr_one[mlp.pre]``, ...), and each stage pair's RSA per set and one − many (``rsa_one[in-pre]``,
    ``rsa_diff[in-pre]``; site ``mlp``: the whole block). With replicates: the replicates' mean and its
    95% t interval (at ``n_per_replicate`` items); with one, the pooled values with their bootstrap
    intervals (none for effective dimensionality, see docs/results.md)."""
    parts = []
    many = result.replicates > 1
    for which in SETS:
        for metric in ("pr", "effdim"):
            if many:
                name = f"{metric}_{which}"
                values, ci = result.across(name), np.stack([result.across(name, "ci_low"),
                                                            result.across(name, "ci_high")])
            else:
                values, ci = result.dims(metric, which), (result.pr_ci(which) if metric == "pr" else None)
            parts += [(SITES[s], f"{metric}_{which}[{SITES[s]}]", values[:, i], None if ci is None else ci[:, :, i])
                      for i, s in enumerate(STAGES)]
    for which in (*SETS, "diff"):
        if many:
            name = f"rsa_{which}"
            values, ci = result.across(name), np.stack([result.across(name, "ci_low"), result.across(name, "ci_high")])
        else:
            values = result.rsa("one") - result.rsa("many") if which == "diff" else result.rsa(which)
            ci = result.ci(which)
        parts += [("mlp", f"rsa_{which}[{p}]", values[:, j], ci[:, :, j]) for j, p in enumerate(PAIR_NAMES)]
    return profile_table(*parts)
