"""The typed result of ``attn-kl``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import ModelFacts
from ..typed import BoolArray, FloatArray, Typed, array_field, detail_field


@dataclass(frozen=True, eq=False)
class TokenLength(Typed):
    """Length in characters of the token being predicted, by group."""

    correct_mean: float
    incorrect_mean: float
    p_mannwhitney: float  # two-sided Mann–Whitney U


@dataclass(frozen=True, eq=False)
class UnsupportedBins(Typed):
    """Bins where the first group has tokens and the second none (the true KL is then infinite)."""

    correct_to_incorrect: int
    incorrect_to_correct: int


@dataclass(frozen=True, eq=False)
class SweepEntry(Typed):
    """The focus layer's divergences with another number of bins."""

    bins: int
    edges: int  # bins + 1 (the seed's nbins)
    js: float
    seed_symmetric_kl: float


@dataclass(frozen=True, eq=False)
class LayerStats(Typed):
    """One layer, all windows' tokens pooled, tested by shuffling labels within windows (or within
    windows and next-token lengths)."""

    layer: int
    mean_log_norm_correct: float
    mean_log_norm_incorrect: float
    difference: float  # correct − incorrect, pooled means (raw: mixes strata)
    difference_expected: float  # its mean under the shuffles (0 unless the shuffles are stratified)
    # The within-stratum difference: Σ_s w_s·δ_s / Σ_s w_s over the shuffles' strata (windows, or windows and
    # next-token lengths), δ_s a stratum's own correct − incorrect, w_s = n_correct,s·n_incorrect,s / n_s;
    # = (difference − difference_expected) / stratified_scale. Null value 0 at every layer.
    difference_within: float
    difference_ci_low: float  # interval for difference_within (the test's shift interval, divided by the scale)
    difference_ci_high: float
    p_difference: float  # two-sided permutation p, uncorrected
    p_difference_corrected: float  # the chosen correction across layers
    difference_significant: bool
    js: float  # nats, plug-in: biased upwards by about (occupied bins − 1)/8·(1/n_c + 1/n_i); compare js_corrected
    js_corrected: float  # js − null_mean: the bias-corrected JS, null value 0 at every layer
    js_z: float  # (js − null_mean) / null_sd
    p_value: float  # uncorrected permutation p of js
    p_corrected: float  # the chosen correction
    p_max: float  # max statistic of js standardised per layer
    p_bh: float
    significant: bool  # js: p_corrected <= alpha
    null_mean: float
    null_sd: float
    null_min: float
    null_max: float
    seed_symmetric_kl: float


@dataclass(frozen=True, eq=False)
class Replicate(Typed):
    """One window, tested on its own (its labels shuffled within it); per layer arrays (n_layers,)."""

    replicate: int
    start: int  # first token's index in the tokenized book
    n_tokens: int
    n_correct: int
    accuracy: float
    tested: bool  # both groups have 2 or more tokens; else the arrays below are NaN and the window is left out
    difference: FloatArray  # correct − incorrect mean log norm
    difference_expected: FloatArray
    difference_within: FloatArray  # within-stratum difference (= difference with shuffle=window)
    p_difference: FloatArray  # two-sided, uncorrected
    js: FloatArray  # plug-in (biased)
    js_corrected: FloatArray  # js minus the mean of this window's own shuffles' JS
    js_z: FloatArray
    p_value: FloatArray  # js, uncorrected
    same_sign: int  # layers where the pooled difference is significant and this window's has its sign
    agrees: bool  # same_sign at more than half of those layers


@dataclass(frozen=True, eq=False)
class AcrossDifference(Typed):
    """Each window's within-stratum difference, windows as the unit: one-sample t test against 0."""

    mean: FloatArray  # (n_layers,)
    ci_low: FloatArray  # t interval
    ci_high: FloatArray
    t: FloatArray
    p: FloatArray  # two-sided, uncorrected
    p_corrected: FloatArray  # max: sign flips of whole windows (max |t|); bh: Benjamini–Hochberg
    significant: BoolArray


@dataclass(frozen=True, eq=False)
class AcrossJS(Typed):
    """JS of each window, tested against the other pairings of windows' labels and log norms."""

    corrected_mean: FloatArray  # (n_layers,) mean of the windows' bias-corrected JS (js − own shuffles' mean)
    corrected_ci_low: FloatArray  # t interval of that mean
    corrected_ci_high: FloatArray
    mean: FloatArray  # (n_layers,) mean of the windows' own plug-in JS (biased: depends on bins and sizes)
    ci_low: FloatArray  # t interval of that mean
    ci_high: FloatArray
    mismatched: FloatArray  # mean JS of one window's log norms split by another window's labels
    p: FloatArray  # pairing test, one-sided, uncorrected
    p_corrected: FloatArray  # max: standardised max over layers; bh: Benjamini–Hochberg
    significant: BoolArray
    n_tokens: int  # tokens per window compared (the shortest window's)
    n_pairings: int
    exact: bool  # all R! pairings


@dataclass(frozen=True, eq=False)
class AcrossWindows(Typed):
    n: int  # windows tested across (those with ``tested``)
    level: float  # interval level, percent
    correction: str
    difference: AcrossDifference
    js: AcrossJS
    n_significant_difference: int
    n_significant_js: int
    n_agree: int  # windows whose ``agrees`` is true
    n_agreement_layers: int  # layers the agreement is judged on (pooled difference significant)
    share_same_sign: float  # of all (window, such layer) pairs, the fraction with the pooled sign


@dataclass(frozen=True, eq=False)
class StartChoice(Typed):
    """The main estimates and decisions per layer (n_layers,) with one handling of window starts: across
    windows (``unit`` "windows") or, with one window, pooled."""

    skip_first: int  # tokens left out at the start of each window
    n_tokens: int
    unit: str  # "windows" or "pooled"
    difference: FloatArray  # within-stratum difference (across windows: the windows' mean)
    difference_significant: BoolArray  # its test, corrected across layers
    js_corrected: FloatArray
    js_significant: BoolArray  # JS test (across windows: the pairing test), corrected across layers


@dataclass(frozen=True, eq=False)
class WindowStarts(Typed):
    """Each window starts a new context: its first tokens are predicted badly and have small attention
    norms. The transient, and the main decisions with the first tokens left out and kept."""

    start_tokens: int  # the first this many positions of each window are summarised (the larger skip_first)
    accuracy_start: float  # accuracy of those positions, all windows
    accuracy_rest: float  # accuracy from that position on
    log_norm_start_z: FloatArray  # (n_layers,) (mean log norm of the start − mean of the rest) / sd of the rest
    used: StartChoice  # as run (skip_first)
    other: StartChoice | None  # the other choice (0 if skip_first > 0, else the default); None if it cannot run
    stable_difference: BoolArray  # significant with the same sign in both choices
    stable_js: BoolArray  # significant in both choices


@dataclass(frozen=True, eq=False)
class Tokens(Typed):
    """Every recorded token with a known next token (n; the used ones: ``used``) and the focus layer's arrays."""

    used: np.ndarray  # (n,) bool, position >= skip_first: the tokens compared (n_tokens of them)
    replicate: np.ndarray  # (n,) int64, the window of each token (0 = the middle of the book)
    position: np.ndarray  # (n,) int64, position in its window
    token: np.ndarray  # (n,) str
    next_token: np.ndarray  # (n,) str, the token being predicted
    predicted: np.ndarray  # (n,) str, the argmax
    correct: np.ndarray  # (n,) bool
    next_token_length: np.ndarray  # (n,) int64, characters
    loss: np.ndarray  # (n,) float32, nats
    focus_log_norm: np.ndarray  # (n,) float64, log norm of attn.out at the focus layer (every token)
    focus_null: np.ndarray  # (n_permutations,) pooled JS divergence of each shuffle at the focus layer (used tokens)
    focus_edges: np.ndarray  # (bins + 1,) the focus layer's histogram edges
    focus_probs: np.ndarray  # (2, bins) probability per bin, correct then incorrect


@dataclass(frozen=True, eq=False)
class AttnKLResult(Typed):
    n_tokens: int  # compared: all windows, from position skip_first on
    window: int  # tokens per window
    skip_first: int  # each window's first tokens left out of both groups
    window_start: int  # window 0's (the seed's middle window)
    n_replicates: int
    shuffle: str
    n_correct: int
    accuracy: float  # fraction
    token_length: TokenLength
    focus_layer: int
    bins: int
    kl_correct_to_incorrect: float
    kl_incorrect_to_correct: float
    kl_epsilon: float
    kl_unsupported_bins: UnsupportedBins
    js: float  # focus layer, plug-in (biased)
    js_corrected: float  # focus layer, js − its shuffles' mean
    seed_symmetric_kl: float
    bins_sweep: tuple[SweepEntry, ...]
    n_permutations: int
    correction: str
    alpha: float
    n_significant: int
    n_significant_uncorrected: int
    n_significant_bh: int
    n_significant_max: int
    n_significant_difference: int
    n_difference_positive: int  # of those, correct larger
    stratified_scale: float  # pooled (difference − expected) = stratified_scale · difference_within
    layers: tuple[LayerStats, ...]
    replicates: tuple[Replicate, ...]
    across: AcrossWindows | None  # None with one window
    window_starts: WindowStarts
    model: ModelFacts = detail_field()
    data_notes: tuple[str, ...] = detail_field()
    tokens: Tokens = array_field()

    def column(self, name: str) -> np.ndarray:
        """One value per layer, shape ``(n_layers,)``: e.g. ``column("js")``."""
        return np.array([getattr(layer, name) for layer in self.layers])

    def per_replicate(self, name: str) -> np.ndarray:
        """Shape ``(n_replicates, n_layers)``: e.g. ``per_replicate("difference")``."""
        return np.stack([getattr(rep, name) for rep in self.replicates])
