"""The tests of ``attn-kl``, composed from lamina.stats: one set of label shuffles for every layer and
window, the JS divergence and the difference of means tested with it, and the tests across windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...stats.divergence import MIN_GROUP
from ...stats.groups import expected_difference, mean_differences, shift_interval, two_sided_pvalue
from ...stats.multiple import benjamini_hochberg, permutation_pvalue, significant, standardised_max_pvalue
from ...stats.pairing import js_pairs, pairing_test
from ...stats.permutation import binned, js_by_labels
from ...stats.replicates import across_replicates, t_interval
from .result import AcrossDifference, AcrossJS, AcrossWindows

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
    ci: tuple[np.ndarray, np.ndarray]  # shift interval of difference − expected

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
    return LabelTests(js=js[0], js_null=js_null, p_js=permutation_pvalue(js[0], js_null), js_z=z,
                      difference=diff[0], expected=expected, diff_null=diff_null,
                      p_difference=two_sided_pvalue(diff[0], diff_null, expected),
                      ci=shift_interval(diff[0], diff_null, expected, LEVEL))


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


def across_difference(windows: list[LabelTests], correction: str, alpha: float, rng) -> AcrossDifference:
    """Each window's difference beyond its shuffle expectation, windows as the unit (t test, two-sided)."""
    excess = np.stack([w.difference - w.expected for w in windows])  # (R, n_layers)
    res = across_replicates(excess, null=0.0, alternative="two-sided", level=LEVEL, correction=correction, rng=rng)
    return AcrossDifference(mean=res.mean, ci_low=res.ci_low, ci_high=res.ci_high, t=res.t, p=res.p,
                            p_corrected=res.p_corrected, significant=significant(res.p_corrected, alpha))


def across_js(windows: list[LabelTests], values, window_of, labels, n_bins: int, correction: str, alpha: float,
              rng, used) -> AcrossJS:
    """Each window's JS against its log norms split by the other windows' labels (the pairing test);
    windows longer than the shortest are cut to its length for the pairing.

    Args:
        windows: the used windows' tests; used: their window numbers."""
    n = int(min((window_of == r).sum() for r in used))
    stacked = np.stack([values[:, window_of == r][:, :n] for r in used])  # (R, n_layers, n)
    cut = np.stack([labels[window_of == r][:n] for r in used])
    test = pairing_test(js_pairs(stacked, cut, n_bins), n_permutations=MAX_PAIRINGS, rng=rng)
    corrected = test.p_max if correction == "max" else benjamini_hochberg(test.p)
    mean, low, high = t_interval(np.stack([w.js for w in windows]), LEVEL)
    return AcrossJS(mean=mean, ci_low=low, ci_high=high, mismatched=test.mismatched, p=test.p,
                    p_corrected=corrected, significant=significant(corrected, alpha), n_tokens=n,
                    n_pairings=test.n_pairings, exact=test.exact)


def same_sign(window: LabelTests | None, pooled: LabelTests, pooled_significant) -> int:
    """At how many of the layers where the pooled difference is significant a window's difference (beyond
    its shuffle expectation) has the pooled sign (0 for a window without tests)."""
    if window is None:
        return 0
    keep = np.asarray(pooled_significant, dtype=bool)
    excess = window.difference - window.expected
    return int((np.sign(excess[keep]) == np.sign(pooled.difference[keep] - pooled.expected[keep])).sum())


def across_windows(windows: list[LabelTests | None], pooled: LabelTests, pooled_significant, values, window_of,
                   labels, n_bins: int, correction: str, alpha: float, rng) -> tuple[AcrossWindows | None, list, list]:
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
    js = across_js(tested, values, window_of, labels, n_bins, correction, alpha, rng, used)
    return AcrossWindows(n=len(used), level=LEVEL, correction=correction, difference=diff, js=js,
                         n_significant_difference=int(diff.significant.sum()),
                         n_significant_js=int(js.significant.sum()), n_agree=int(sum(agree)),
                         n_agreement_layers=k,
                         share_same_sign=sum(same) / (k * len(used)) if k else float("nan")), same, agree
