"""The tests of ``attn-kl``, composed from lamina.stats: one set of label shuffles for every layer and
window, the JS divergence and the difference of means tested with it, and the tests across windows.

:func:`analyse` is the whole statistics stage from log norms and labels (no model): the experiment
calls it, and so does the calibration suite (calibration/attn_kl.py) on simulated data.

The profiled quantities have a null value of 0 at every layer whatever its bins, occupancy and group
sizes: the bias-corrected JS (JS minus its shuffles' mean, :func:`lamina.stats.divergence.bias_corrected_js`)
and the within-stratum difference of mean log norms (:func:`lamina.stats.groups.stratified_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import LaminaError
from ...stats.divergence import MIN_GROUP, bias_corrected_js, check_groups
from ...stats.groups import (expected_difference, mean_differences, permuted_within, shift_interval,
                             stratified_scale, strata_codes, two_sided_pvalue)
from ...stats.multiple import benjamini_hochberg, permutation_pvalue, significant, standardised_max_pvalue
from ...stats.pairing import js_pairs, pairing_test
from ...stats.permutation import binned, js_by_labels
from ...stats.replicates import t_interval
from ..across import AcrossLayers, across_layers
from .result import SHUFFLES, AcrossJS, AcrossWindows

LEVEL = 95.0  # every interval
MAX_PAIRINGS = 40_320  # 8!: every pairing of up to 8 windows is enumerated


@dataclass
class LabelTests:
    """Per layer (shape ``(n_layers,)`` unless said): the JS divergence and the difference of means of
    one set of tokens, each against the same label shuffles."""

    js: np.ndarray
    js_null: np.ndarray  # (n_permutations, n_layers)
    p_js: np.ndarray
    js_z: np.ndarray
    difference: np.ndarray
    expected: np.ndarray  # the difference's expectation under the shuffles
    diff_null: np.ndarray  # (n_permutations, n_layers)
    p_difference: np.ndarray  # two-sided
    scale: float  # stratified_scale of the labels: (difference − expected) = scale · within-stratum difference
    ci: tuple[np.ndarray, np.ndarray]  # shift interval of the within-stratum difference (``within``)

    @property
    def within(self) -> np.ndarray:
        """The within-stratum difference of means (shape ``(n_layers,)``): ``(difference − expected) / scale``,
        a weighted mean of the strata's own differences (:func:`lamina.stats.groups.within_strata_difference`);
        the difference itself with one stratum."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.difference - self.expected) / self.scale

    @property
    def js_corrected(self) -> np.ndarray:
        """JS minus its shuffles' mean (shape ``(n_layers,)``): 0 under H0 at every layer."""
        return bias_corrected_js(self.js, self.js_null)

    def corrected(self, correction: str) -> dict[str, np.ndarray]:
        """Across layers: ``p_max`` (JS standardised by each layer's null, then the max), ``p_bh`` and the
        difference's corrected p (standardised max of |difference − expected|, or BH)."""
        p_max = standardised_max_pvalue(self.js, self.js_null)
        p_bh = benjamini_hochberg(self.p_js)
        if correction == "max":
            diff = standardised_max_pvalue(self.difference, self.diff_null, centre=self.expected, two_sided=True,
                                           tie=1e-12)
        else:
            diff = benjamini_hochberg(self.p_difference)
        return {"p_max": p_max, "p_bh": p_bh, "p_corrected": p_max if correction == "max" else p_bh,
                "p_difference_corrected": diff}


def label_tests(values, label_sets, strata, n_bins: int, *, device=None) -> LabelTests:
    """Both statistics of ``values`` ``(n_layers, n)`` for the labellings ``label_sets`` ``(1 + P, n)``
    (row 0 the observed labels, then P shuffles within ``strata`` ``(n,)`` or None)."""
    labels = label_sets[0]
    _, bins = binned(values, n_bins)
    js = js_by_labels(bins, label_sets, n_bins, device=device)
    diff = mean_differences(values, label_sets)
    expected = expected_difference(values, labels, strata)
    js_null, diff_null = js[1:], diff[1:]
    sd = js_null.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (js[0] - js_null.mean(axis=0)) / sd, np.nan)
    scale = stratified_scale(labels, strata)
    low, high = shift_interval(diff[0], diff_null, expected, LEVEL)
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = (low / scale, high / scale)  # the shifts of every stratum's True group the test would not reject
    return LabelTests(js=js[0], js_null=js_null, p_js=permutation_pvalue(js[0], js_null), js_z=z,
                      difference=diff[0], expected=expected, diff_null=diff_null,
                      p_difference=two_sided_pvalue(diff[0], diff_null, expected), scale=scale, ci=ci)


def window_tests(values, window_of, label_sets, strata, n_bins: int, *, device=None) -> list[LabelTests | None]:
    """:func:`label_tests` of each window alone, with the pooled shuffles restricted to it (shuffles within
    windows are shuffles of each window); None for a window with fewer than 2 tokens in a group."""
    out = []
    for r in range(int(window_of.max()) + 1):
        keep = window_of == r
        n_correct = int(label_sets[0, keep].sum())
        if min(n_correct, int(keep.sum()) - n_correct) < MIN_GROUP:
            out.append(None)
            continue
        out.append(label_tests(values[:, keep], label_sets[:, keep], None if strata is None else strata[keep],
                               n_bins, device=device))
    return out


def across_difference(windows: list[LabelTests], correction: str, alpha: float, rng) -> AcrossLayers:
    """Each window's within-stratum difference (its difference beyond the shuffle expectation, divided by
    its stratified scale), windows as the unit (t test, two-sided)."""
    excess = np.stack([w.within for w in windows])  # (R, n_layers)
    return across_layers(excess, alpha=alpha, null=0.0, alternative="two-sided", correction=correction, level=LEVEL,
                         rng=rng)


def across_js(windows: list[LabelTests], values, window_of, labels, n_bins: int, correction: str, alpha: float,
              rng, used, n_pairings: int = MAX_PAIRINGS) -> AcrossJS:
    """Each window's JS against its log norms split by the other windows' labels (the pairing test);
    windows longer than the shortest are cut to its length for the pairing.

    Args:
        windows: the used windows' tests; used: their window numbers."""
    n = int(min((window_of == r).sum() for r in used))
    stacked = np.stack([values[:, window_of == r][:, :n] for r in used])  # (R, n_layers, n)
    cut = np.stack([labels[window_of == r][:n] for r in used])
    test = pairing_test(js_pairs(stacked, cut, n_bins), n_permutations=n_pairings, rng=rng)
    corrected = test.p_max if correction == "max" else benjamini_hochberg(test.p)
    mean, low, high = t_interval(np.stack([w.js for w in windows]), LEVEL)
    c_mean, c_low, c_high = t_interval(np.stack([w.js_corrected for w in windows]), LEVEL)
    return AcrossJS(corrected_mean=c_mean, corrected_ci_low=c_low, corrected_ci_high=c_high,
                    mean=mean, ci_low=low, ci_high=high, mismatched=test.mismatched, p=test.p,
                    p_corrected=corrected, significant=significant(corrected, alpha), n_tokens=n,
                    n_pairings=test.n_pairings, exact=test.exact)


def same_sign(window: LabelTests | None, pooled: LabelTests, pooled_significant) -> int:
    """At how many of the layers where the pooled difference is significant a window's difference (beyond
    its shuffle expectation) has the pooled sign (0 for a window without tests)."""
    if window is None:
        return 0
    keep = np.asarray(pooled_significant, dtype=bool)
    return int((np.sign(window.within[keep]) == np.sign(pooled.within[keep])).sum())


def across_windows(windows: list[LabelTests | None], pooled: LabelTests, pooled_significant, values, window_of,
                   labels, n_bins: int, correction: str, alpha: float, rng,
                   n_pairings: int = MAX_PAIRINGS) -> tuple[AcrossWindows | None, list, list]:
    """The tests across the windows that have both groups (None with fewer than 2 of them), and per window the
    layers with the pooled sign and whether it agrees (the pooled sign at more than half of the layers where
    the pooled difference is significant)."""
    same = [same_sign(w, pooled, pooled_significant) for w in windows]
    k = int(np.sum(pooled_significant))
    agree = [w is not None and (2 * s > k if k else True) for w, s in zip(windows, same)]
    used = [r for r, w in enumerate(windows) if w is not None]
    if len(windows) < 2 or len(used) < 2:
        return None, same, agree
    tested = [windows[r] for r in used]
    diff = across_difference(tested, correction, alpha, rng)
    js = across_js(tested, values, window_of, labels, n_bins, correction, alpha, rng, used, n_pairings)
    return AcrossWindows(n=len(used), level=LEVEL, correction=correction, difference=diff, js=js,
                         n_significant_difference=int(diff.significant.sum()),
                         n_significant_js=int(js.significant.sum()), n_agree=int(sum(agree)),
                         n_agreement_layers=k,
                         share_same_sign=sum(same) / (k * len(used)) if k else float("nan")), same, agree


@dataclass
class Analysis:
    """The statistics stage of attn-kl on one set of tokens (those from position ``skip_first`` on).

    Attributes:
        keep: shape ``(n_all,)`` bool, the tokens used (position >= skip_first).
        labels, window_of, token_length: the used tokens' (shape ``(n,)``).
        strata: the shuffles' strata (window, or window and next-token length), shape ``(n,)``, or None.
        pooled: the pooled tests; fixed: their corrections across layers (:meth:`LabelTests.corrected`).
        windows: per window, its own tests (None where a group has fewer than 2 tokens).
        difference_significant, js_significant: the pooled tests' decisions, shape ``(n_layers,)``.
        across: the tests across windows (None with fewer than 2 tested windows); same, agree: per window.
    """

    skip_first: int
    keep: np.ndarray
    labels: np.ndarray
    window_of: np.ndarray
    token_length: np.ndarray | None
    strata: np.ndarray | None
    pooled: LabelTests
    fixed: dict
    windows: list
    difference_significant: np.ndarray
    js_significant: np.ndarray
    across: AcrossWindows | None
    same: list
    agree: list

    @property
    def headline(self) -> dict[str, np.ndarray | str]:
        """The report's main estimates and decisions per layer: across windows when there are 2 or more tested
        windows (the window as the unit), else the pooled ones. Keys: ``difference`` (within-stratum),
        ``difference_significant``, ``js_corrected``, ``js_significant``, ``unit``."""
        a = self.across
        if a is None:
            return {"difference": self.pooled.within, "difference_significant": self.difference_significant,
                    "js_corrected": self.pooled.js_corrected, "js_significant": self.js_significant,
                    "unit": "pooled"}
        return {"difference": a.difference.mean, "difference_significant": a.difference.significant,
                "js_corrected": a.js.corrected_mean, "js_significant": a.js.significant, "unit": "windows"}


def analyse(values, labels, window_of, position, *, skip_first: int = 0, token_length=None, shuffle: str = "window",
            n_bins: int = 30, n_permutations: int = 1000, correction: str = "max", alpha: float = 0.05,
            rng: np.random.Generator, device=None, n_pairings: int = MAX_PAIRINGS) -> Analysis:
    """All of attn-kl's tests from log norms and labels: pooled (label shuffles within strata), per window,
    and across windows (the window as the unit).

    Args:
        values: shape ``(n_layers, n_all)``, log norms of every token of every window.
        labels: shape ``(n_all,)`` bool (True = correctly predicted).
        window_of: shape ``(n_all,)`` int, each token's window (0..R−1).
        position: shape ``(n_all,)`` int, each token's position in its window (0 = the window's first).
        skip_first: tokens at positions below this are left out of both groups (a window's first tokens
            start a new context: low accuracy, low norms).
        token_length: shape ``(n_all,)``, the next token's length; needed for ``shuffle="length"``.
        shuffle: ``"window"`` (strata: windows) or ``"length"`` (windows × next-token lengths).
        n_bins, n_permutations, correction (``"max"`` or ``"bh"``), alpha: as the experiment's settings.
        rng: draws the shuffles (and sign flips or pairings when not enumerated).
        device: a torch device for the JS counts, or None (NumPy).
        n_pairings: the pairing test of JS across windows enumerates all R! pairings up to this many, else
            draws this many (the observed one first); the experiment enumerates up to 8 windows (8! = 40,320).

    Returns:
        :class:`Analysis`.
    """
    values = np.asarray(values, dtype=np.float64)
    position = np.asarray(position)
    if skip_first < 0:
        raise LaminaError(f"skip_first must be 0 or more tokens, not {skip_first}.")
    if shuffle not in SHUFFLES:
        raise LaminaError(f"shuffle must be one of {', '.join(SHUFFLES)}, not {shuffle!r}.")
    if shuffle == "length" and token_length is None:
        raise LaminaError("shuffle='length' needs each token's next-token length (token_length).")
    keep = position >= skip_first
    values = values[:, keep]
    labels = check_groups(np.asarray(labels)[keep])
    window_of = np.asarray(window_of)[keep]
    window_of = np.unique(window_of, return_inverse=True)[1].reshape(-1)  # windows 0..R'-1 in order
    lengths = None if token_length is None else np.asarray(token_length, dtype=float)[keep]
    many = int(window_of.max()) > 0
    keys = ([window_of] if many else []) + ([lengths] if shuffle == "length" else [])
    strata = strata_codes(*keys) if keys else None
    # One set of shuffles (within windows, or within windows and lengths) for every layer and test.
    sets = np.vstack([labels[None], permuted_within(labels, n_permutations, rng, strata)])
    pooled = label_tests(values, sets, strata, n_bins, device=device)
    fixed = pooled.corrected(correction)
    windows = window_tests(values, window_of, sets, strata, n_bins, device=device)
    diff_sig = significant(fixed["p_difference_corrected"], alpha)
    across, same, agree = across_windows(windows, pooled, diff_sig, values, window_of, labels, n_bins, correction,
                                         alpha, rng, n_pairings)
    return Analysis(skip_first=skip_first, keep=keep, labels=labels, window_of=window_of, token_length=lengths,
                    strata=strata, pooled=pooled, fixed=fixed, windows=windows, difference_significant=diff_sig,
                    js_significant=significant(fixed["p_corrected"], alpha), across=across, same=same, agree=agree)
