"""The typed result of ``attn-kl``: results.json key for key, plus the arrays behind figures and tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...stats.divergence import SEED_EPSILON
from ...stats.multiple import significant
from ..across import AcrossLayers
from ..base import ModelFacts, profile_table
from ..typed import BoolArray, FloatArray, Typed, array_field, detail_field

# Settings' vocabularies and defaults, here (not in compute.py) so that figures and report import no torch.
DEFAULT_WINDOW_CAP = 1024  # SmolLM2's context is 8192 tokens: the seed's "whole context" is slow on a CPU
DEFAULT_TOKENS = 2048  # the default windows share this many tokens: 1 × 1024 (the seed's design), 8 × 256, ...
MIN_DEFAULT_WINDOW = 64
CORRECTION_NAMES = {"max": "max-statistic", "bh": "Benjamini–Hochberg"}
# Each window starts a new context. On SmolLM2 (8 windows of Alice) its first tokens are predicted far worse
# than the rest and their attention-output log norms lie well below (docs/results.md, "Window starts"); the
# transient is over by about 16 tokens, so by default the first 16 of each window are left out.
DEFAULT_SKIP_FIRST = 16
SHUFFLES = {"window": "within each window", "length": "within each window and next-token length"}


def default_window(replicates: int) -> int:
    """The default window before the model's context caps it: 1024 for one window, else 2048 / replicates."""
    return min(DEFAULT_WINDOW_CAP, max(MIN_DEFAULT_WINDOW, DEFAULT_TOKENS // replicates))


def other_skip(skip_first: int) -> int:
    """The other handling of window starts the report compares with: keep them all (0), or the default."""
    return 0 if skip_first > 0 else DEFAULT_SKIP_FIRST


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

    @classmethod
    def per_layer(cls, main, values, seed_symmetric_kl) -> tuple[LayerStats, ...]:
        """Every layer's entry from the pooled tests of ``main`` (``inference.Analysis``), the compared tokens'
        log norms ``values`` ``(n_layers, n)`` and the seed's value per layer ``(n_layers,)``."""
        pooled, fixed, correct = main.pooled, main.fixed, main.labels
        mean_correct, mean_incorrect = values[:, correct].mean(axis=1), values[:, ~correct].mean(axis=1)
        null, within, js_corrected = pooled.js_null, pooled.within, pooled.js_corrected
        return tuple(cls(
            layer=layer, mean_log_norm_correct=mean_correct[layer], mean_log_norm_incorrect=mean_incorrect[layer],
            difference=pooled.difference[layer], difference_expected=pooled.expected[layer],
            difference_within=within[layer], difference_ci_low=pooled.ci[0][layer],
            difference_ci_high=pooled.ci[1][layer], p_difference=pooled.p_difference[layer],
            p_difference_corrected=fixed["p_difference_corrected"][layer],
            difference_significant=main.difference_significant[layer], js=pooled.js[layer],
            js_corrected=js_corrected[layer], js_z=pooled.js_z[layer], p_value=pooled.p_js[layer],
            p_corrected=fixed["p_corrected"][layer], p_max=fixed["p_max"][layer], p_bh=fixed["p_bh"][layer],
            significant=main.js_significant[layer], null_mean=null[:, layer].mean(), null_sd=null[:, layer].std(),
            null_min=null[:, layer].min(), null_max=null[:, layer].max(),
            seed_symmetric_kl=seed_symmetric_kl[layer]) for layer in range(len(values)))


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

    @classmethod
    def per_window(cls, main, starts, n_layers: int) -> tuple[Replicate, ...]:
        """Every window's entry from its own tests in ``main`` (``inference.Analysis``; NaN arrays for a window
        without tests) and each window's first token in the book, ``starts`` ``(n_windows,)``."""
        correct, window_of = main.labels, main.window_of
        return tuple(cls(
            replicate=r, start=int(starts[r]), n_tokens=int((window_of == r).sum()),
            n_correct=int(correct[window_of == r].sum()), accuracy=float(correct[window_of == r].mean()),
            tested=w is not None, **_window_arrays(w, n_layers), same_sign=k, agrees=a)
            for r, (w, k, a) in enumerate(zip(main.windows, main.same, main.agree)))


def _window_arrays(tests, n_layers: int) -> dict[str, np.ndarray]:
    """A window's per-layer statistics for :class:`Replicate`; NaN for a window without tests."""
    if tests is None:
        return dict.fromkeys(("difference", "difference_expected", "difference_within", "p_difference", "js",
                              "js_corrected", "js_z", "p_value"), np.full(n_layers, np.nan))
    return dict(difference=tests.difference, difference_expected=tests.expected, difference_within=tests.within,
                p_difference=tests.p_difference, js=tests.js, js_corrected=tests.js_corrected, js_z=tests.js_z,
                p_value=tests.p_js)


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
    # Each window's within-stratum difference (n_layers,), windows as the unit: one-sample t test against 0,
    # two-sided; corrected by max: sign flips of whole windows (max |t|), bh: Benjamini–Hochberg.
    difference: AcrossLayers
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

    @classmethod
    def of(cls, analysis) -> StartChoice:
        """The headline of one ``inference.Analysis``."""
        h = analysis.headline
        return cls(skip_first=analysis.skip_first, n_tokens=len(analysis.labels), unit=h["unit"],
                   difference=h["difference"], difference_significant=h["difference_significant"],
                   js_corrected=h["js_corrected"], js_significant=h["js_significant"])


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

    @classmethod
    def of(cls, config, main, window_starts: WindowStarts, *, values, tokens: pd.DataFrame, next_token, token_length,
           window: int, starts, focus: int, focus_divergences: dict, sweep, seed_symmetric_kl, p_mannwhitney: float,
           model: ModelFacts, notes) -> AttnKLResult:
        """The result from its parts.

        Args:
            config: the run's settings (``AttnKLConfig``).
            main: the statistics of the compared tokens (``inference.Analysis`` with ``config.skip_first``).
            window_starts: the start-of-window transient and the decisions under both handlings.
            values: shape ``(n_layers, n_all)``, the log norms of attn.out at every recorded token with a known
                next token; ``tokens``: their table (``sequence``, ``position``, ``token``, ``predicted``,
                ``correct``, ``loss``: the labels used); ``next_token`` ``(n_all,)`` str and ``token_length``
                ``(n_all,)`` float: the token each predicts and its length in characters.
            window: tokens per window; ``starts``: shape ``(n_windows,)``, each window's first token in the book.
            focus: the focus layer; ``focus_divergences``: its
                :func:`lamina.stats.divergence.group_divergences` with ``config.bins`` bins, ``sweep``:
                ``(bins, group_divergences)`` for every swept bin count; ``seed_symmetric_kl``: shape
                ``(n_layers,)``, the seed's value at every layer.
            p_mannwhitney: the two groups' next-token lengths, two-sided Mann–Whitney U.
            model, notes: the model's facts and the notes on the data.
        """
        keep, correct, pooled, div = main.keep, main.labels, main.pooled, focus_divergences
        used_length = token_length[keep]
        sig, diff_sig = main.js_significant, main.difference_significant
        return cls(
            n_tokens=len(correct), window=window, skip_first=config.skip_first, window_start=int(starts[0]),
            n_replicates=len(starts), shuffle=config.shuffle, n_correct=int(correct.sum()),
            accuracy=float(correct.mean()),
            token_length=TokenLength(correct_mean=used_length[correct].mean(),
                                     incorrect_mean=used_length[~correct].mean(), p_mannwhitney=p_mannwhitney),
            focus_layer=focus, bins=config.bins, kl_correct_to_incorrect=div["kl_true_false"],
            kl_incorrect_to_correct=div["kl_false_true"], kl_epsilon=SEED_EPSILON,
            kl_unsupported_bins=UnsupportedBins(correct_to_incorrect=div["unsupported_true_false"],
                                                incorrect_to_correct=div["unsupported_false_true"]),
            js=pooled.js[focus], js_corrected=pooled.js_corrected[focus],
            seed_symmetric_kl=div["mixture_kl"] / config.bins,  # the tested value
            bins_sweep=tuple(SweepEntry(bins=b, edges=b + 1, js=d["js"], seed_symmetric_kl=d["mixture_kl"] / b)
                             for b, d in sweep),
            n_permutations=config.n_permutations, correction=config.correction, alpha=config.alpha,
            n_significant=int(sig.sum()), n_significant_uncorrected=int(significant(pooled.p_js, config.alpha).sum()),
            n_significant_bh=int(significant(main.fixed["p_bh"], config.alpha).sum()),
            n_significant_max=int(significant(main.fixed["p_max"], config.alpha).sum()),
            n_significant_difference=int(diff_sig.sum()),
            n_difference_positive=int((diff_sig & (pooled.within > 0)).sum()), stratified_scale=pooled.scale,
            layers=LayerStats.per_layer(main, values[:, keep], seed_symmetric_kl),
            replicates=Replicate.per_window(main, starts, len(values)), across=main.across,
            window_starts=window_starts, model=model, data_notes=tuple(notes),
            tokens=Tokens(used=keep, replicate=tokens["sequence"].to_numpy(), position=tokens["position"].to_numpy(),
                          token=tokens["token"].to_numpy(dtype=str), next_token=next_token,
                          predicted=tokens["predicted"].to_numpy(dtype=str),
                          correct=tokens["correct"].to_numpy(dtype=bool),
                          next_token_length=token_length.astype(np.int64), loss=tokens["loss"].to_numpy(),
                          focus_log_norm=values[focus], focus_null=pooled.js_null[:, focus],
                          focus_edges=div["edges"], focus_probs=div["probs"]))

    def column(self, name: str) -> np.ndarray:
        """One value per layer, shape ``(n_layers,)``: e.g. ``column("js")``."""
        return np.array([getattr(layer, name) for layer in self.layers])

    def per_replicate(self, name: str) -> np.ndarray:
        """Shape ``(n_replicates, n_layers)``: e.g. ``per_replicate("difference")``."""
        return np.stack([getattr(rep, name) for rep in self.replicates])


def tables(result: AttnKLResult) -> dict[str, pd.DataFrame]:
    t = result.tokens
    per_window = [pd.DataFrame({
        "replicate": rep.replicate, "layer": np.arange(len(rep.js)), "difference": rep.difference,
        "difference_expected": rep.difference_expected, "difference_within": rep.difference_within,
        "p_difference": rep.p_difference, "js_corrected": rep.js_corrected, "js_biased": rep.js, "js_z": rep.js_z,
        "p_value": rep.p_value}) for rep in result.replicates]
    layers = pd.DataFrame([vars(layer) for layer in result.layers]).rename(columns={"js": "js_biased"})
    ws = result.window_starts
    starts = {"layer": np.arange(len(result.layers)), "log_norm_start_z": ws.log_norm_start_z}
    for name, choice in (("used", ws.used), ("other", ws.other)):
        if choice is not None:
            starts.update({f"{name}_skip{choice.skip_first}_{k}": getattr(choice, k) for k in (
                "difference", "difference_significant", "js_corrected", "js_significant")})
    out = {
        "tokens": pd.DataFrame({
            "replicate": t.replicate, "position": t.position, "used": t.used, "token": t.token,
            "next_token": t.next_token, "predicted": t.predicted, "correct": t.correct,
            "next_token_length": t.next_token_length, "loss": t.loss,
            f"log_norm_layer{result.focus_layer}": t.focus_log_norm}),
        "layers": layers,
        "windows": pd.concat(per_window, ignore_index=True),
        "window_starts": pd.DataFrame({**starts, "stable_difference": ws.stable_difference,
                                       "stable_js": ws.stable_js}),
        "bins_sweep": pd.DataFrame([vars(entry) for entry in result.bins_sweep]).rename(columns={"js": "js_biased"}),
        "null_focus_layer": pd.DataFrame({"permutation": np.arange(result.n_permutations), "js": t.focus_null}),
    }
    if result.across is not None:
        a = result.across
        out["across_windows"] = pd.DataFrame({"layer": np.arange(len(result.layers)), **{
            f"difference_{k}": getattr(a.difference, k) for k in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected",
                                                                   "significant")}, **{
            f"js_corrected_{k}": getattr(a.js, f"corrected_{k}") for k in ("mean", "ci_low", "ci_high")}, **{
            f"js_biased_{k}": getattr(a.js, k) for k in ("mean", "ci_low", "ci_high", "mismatched")}, **{
            f"js_{k}": getattr(a.js, k) for k in ("p", "p_corrected", "significant")}})
    return out


def profiles(result: AttnKLResult) -> pd.DataFrame:
    """Per block, the two profiled metrics, each with a null value of 0 at every layer whatever its bins,
    histogram occupancy and group sizes:

    * ``difference``: the within-stratum difference of mean log norms, correct − incorrect (strata: the
      shuffles' windows, or windows and next-token lengths);
    * ``js_corrected``: the JS divergence minus the mean of its label-shuffle null (the plug-in bias for
      that layer's bins and group sizes), in nats.

    With several windows each is the mean across windows with its t interval; with one window, the pooled
    value (the difference with its shift interval, JS without an interval). Also the pooled mean log norms
    by group (:func:`profile_table`). The raw (biased) JS is not a profile: it stays in results.json."""
    a = result.across
    if a is None:
        diff = ("attn.out", "difference", result.column("difference_within"),
                (result.column("difference_ci_low"), result.column("difference_ci_high")))
        js = ("attn.out", "js_corrected", result.column("js_corrected"), None)
    else:
        diff = ("attn.out", "difference", a.difference.mean, (a.difference.ci_low, a.difference.ci_high))
        js = ("attn.out", "js_corrected", a.js.corrected_mean, (a.js.corrected_ci_low, a.js.corrected_ci_high))
    return profile_table(diff, js, *[("attn.out", name, result.column(name), None) for name in (
        "mean_log_norm_correct", "mean_log_norm_incorrect")])
