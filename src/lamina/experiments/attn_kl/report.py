"""Report text of ``attn-kl``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ...stats.replicates import t_interval
from ..base import KeyNumber, Report
from . import inference
from .result import CORRECTION_NAMES, DEFAULT_WINDOW_CAP, SHUFFLES, AttnKLResult, default_window, other_skip

FAMILY = {"max": "family-wise", "bh": "false discovery rate"}
STRATA = {"window": "window", "length": "window and next-token length"}


def method(config) -> str:
    r = config.replicates
    if config.window:
        window = f"{config.window} tokens"
    elif r == 1:
        window = f"min(context length − BOS, {DEFAULT_WINDOW_CAP}) tokens"
    else:
        window = f"min(context length − BOS, {default_window(r)}) tokens"
    if r == 1:
        windows = f"A window of {window} from the middle of the book '{config.book}' (Gutenberg header and footer "
        windows += "removed) goes"
    else:
        windows = (f"{r} disjoint windows of {window} of the book '{config.book}' (Gutenberg header and footer "
                   f"removed), the middle one (the seed's) and {r - 1} more spread evenly over the rest, go")
    skip = config.skip_first
    if skip:
        starts = (f"Each window starts a new context, and its first tokens are predicted worse and have smaller "
                  f"attention-output norms than the rest (key numbers), so the first {skip} tokens of every window "
                  f"are left out of both groups (skip_first={skip}); every test is also run with all tokens, and "
                  "the report says which layers are significant either way. ")
    else:
        starts = (f"All tokens are compared, window starts included (skip_first=0, the seed's design); every test "
                  f"is also run without each window's first {other_skip(0)} tokens (a new context: worse "
                  "predictions, smaller norms), and the report says which layers are significant either way. ")
    text = (f"{windows} through the model in one recording. A token counts as correct when the argmax "
            "of the logits at its position is the next token of the book (for a window's last token, the token "
            "after the window). " + starts + "The attention output after its output projection (site attn.out) "
            "is recorded at every layer, and each token's log norm is compared between correct and incorrect "
            f"predictions: histograms over {config.bins} equal bins from the layer's smallest to largest log "
            "norm, the Kullback–Leibler divergence in both directions, the Jensen–Shannon (JS) divergence in "
            "nats, and the difference of mean log norms. The plug-in JS of two sampled histograms is biased "
            "upwards by about (occupied bins − 1)/8 · (1/n_correct + 1/n_incorrect), which differs between "
            "layers, models and controls; the JS reported as an estimate is bias-corrected: JS minus the mean "
            "JS of the label shuffles, which is that plug-in bias for the layer's own bins and group sizes, so "
            "its null value is 0 at every layer. The difference is the within-"
            f"{STRATA[config.shuffle]} difference: the weighted mean over strata (each {STRATA[config.shuffle]}) "
            "of correct − incorrect within the stratum, weights n_correct·n_incorrect/n of the stratum (those of "
            "a regression with one intercept per stratum), estimated as the pooled difference beyond its "
            "expectation under the shuffles divided by the sum of those weights times (1/n_correct + "
            "1/n_incorrect); its null value is 0 at every layer. Both statistics are tested with the same "
            f"{config.n_permutations} shuffles of the correct/incorrect labels {SHUFFLES[config.shuffle]} (the "
            "same shuffles at every layer): p = (1 + #{null ≥ observed}) / (1 + permutations), two-sided for the "
            "difference (around its mean under the shuffles), with a shift interval; across layers "
            f"{CORRECTION_NAMES[config.correction]} corrected "
            f"{'(each layer standardised by its own null first) ' if config.correction == 'max' else ''}"
            f"at alpha = {config.alpha} (significant: p ≤ alpha).")
    if r > 1:
        flips = "by sign flips of whole windows, max |t|" if config.correction == "max" else "by Benjamini–Hochberg"
        text += (" These shuffles treat the tokens of a window as exchangeable, which neighbouring tokens are not; "
                 "the main inference therefore takes the window as the unit: each window's within-stratum "
                 "difference is tested across windows with a one-sample t test (corrected "
                 f"{flips}), "
                 "and each window's JS against the other pairings of the windows' labels with their log norms "
                 "(pairing test, labels and log norms kept whole); the bias-corrected JS (each window's JS minus "
                 "the mean of its own shuffles) and the difference are estimated as the mean across windows with "
                 "a t interval.")
    return text


def _kl_text(value: float, n: int) -> str:
    return f"{value:.3f} nats" + (f" (ε-driven: {n} bin{'s' if n > 1 else ''} without support)" if n else "")


def _layers(indices) -> str:
    indices = [int(i) for i in indices]
    return ", ".join(map(str, indices)) if indices else "none"


def _agreement(a) -> str:
    if a.n_agreement_layers == 0:
        return "no layer's pooled difference is significant, so there is no direction to disagree with"
    return (f"agree: the window's own difference of means has the pooled sign at more than half of the "
            f"{a.n_agreement_layers} layers where the pooled difference is significant; "
            f"{100 * a.share_same_sign:.0f}% of all window-layer pairs have the pooled sign")


def _signed(values, digits: int = 3) -> str:
    """'+0.050 to +0.081' (the range of the values), one value alone, or '' for none."""
    values = np.sort(np.asarray(values, dtype=float))
    if values.size == 0:
        return ""
    if values.size == 1 or values[0] == values[-1]:
        return f"{values[0]:+.{digits}f}"
    return f"{values[0]:+.{digits}f} to {values[-1]:+.{digits}f}"


def _directions_sized(estimate, keep, digits: int = 3) -> str:
    """Where a signed estimate is significant, by direction, each with the range of its estimates."""
    keep = np.asarray(keep, dtype=bool)
    up, down = np.flatnonzero(keep & (estimate > 0)), np.flatnonzero(keep & (estimate < 0))
    parts = []
    for name, idx in (("correct larger", up), ("smaller", down)):
        sizes = f" ({_signed(estimate[idx], digits)})" if idx.size else ""
        parts.append(f"{name} at {_layers(idx)}{sizes}")
    return "; ".join(parts)


def _sized(estimate, keep, digits: int = 4, unit: str = " nats") -> str:
    keep = np.asarray(keep, dtype=bool)
    idx = np.flatnonzero(keep)
    return _layers(idx) + (f" (bias-corrected JS {_signed(estimate[idx], digits)}{unit})" if idx.size else "")


def _interval(mean: float, low: float, high: float, digits: int, unit: str = "") -> str:
    return f"{mean:+.{digits}f}{unit} ({inference.LEVEL:g}% interval {low:+.{digits}f} to {high:+.{digits}f})"


def _difference_label(r: AttnKLResult) -> str:
    return f"Difference of mean log norms (correct − incorrect, within {STRATA[r.shuffle]}), layer {r.focus_layer}"


def _estimates(r: AttnKLResult, corr: str) -> tuple[KeyNumber, ...]:
    """The headline estimates with their intervals: the focus layer and the mean over layers."""
    focus, layer, a = r.focus_layer, r.layers[r.focus_layer], r.across
    out = []
    if a is not None:
        reps = [rep for rep in r.replicates if rep.tested]
        js_w = np.stack([rep.js_corrected for rep in reps])
        diff_w = np.stack([rep.difference_within for rep in reps])
        js_all, diff_all = (t_interval(x.mean(axis=1), inference.LEVEL) for x in (js_w, diff_w))
        out += [
            KeyNumber(f"Bias-corrected JS, layer {focus}",
                      _interval(a.js.corrected_mean[focus], a.js.corrected_ci_low[focus], a.js.corrected_ci_high[focus],
                                4, " nats") + f"; plug-in JS {a.js.mean[focus]:.4f}, of which bias "
                      f"{a.js.mean[focus] - a.js.corrected_mean[focus]:.4f}",
                      f"each window's JS minus the mean of its {r.n_permutations} label shuffles (null value 0 at "
                      f"every layer), t interval across {a.n} windows; pairing test p = {a.js.p[focus]:.3g}, "
                      f"{corr} p = {a.js.p_corrected[focus]:.3g}"),
            KeyNumber(_difference_label(r),
                      _interval(a.difference.mean[focus], a.difference.ci_low[focus], a.difference.ci_high[focus], 3),
                      f"t test across {a.n} windows, two-sided p = {a.difference.p[focus]:.3g}; "
                      f"{'sign flips of whole windows, max |t|' if a.correction == 'max' else corr} "
                      f"p = {a.difference.p_corrected[focus]:.3g}"),
            KeyNumber(f"Mean over the {len(r.layers)} layers",
                      f"bias-corrected JS {_interval(*(float(x[0]) for x in js_all), 4, ' nats')}; difference "
                      f"{_interval(*(float(x[0]) for x in diff_all), 3)}",
                      f"each window's mean over layers, t interval across {a.n} windows"),
        ]
    else:
        out += [
            KeyNumber(f"Bias-corrected JS, layer {focus}",
                      f"{layer.js_corrected:+.4f} nats (plug-in JS {layer.js:.4f}, its shuffles' mean "
                      f"{layer.null_mean:.4f})",
                      f"JS minus the mean of its {r.n_permutations} label shuffles (null value 0 at every layer); "
                      f"permutation p = {layer.p_value:.3g}, {corr} p = {layer.p_corrected:.3g}; no interval "
                      "across windows (fewer than 2 windows with both groups)"),
            KeyNumber(_difference_label(r),
                      _interval(layer.difference_within, layer.difference_ci_low, layer.difference_ci_high, 3),
                      f"label shuffles {SHUFFLES[r.shuffle]}, shift interval; two-sided p = {layer.p_difference:.3g}, "
                      f"{corr} p = {layer.p_difference_corrected:.3g}"),
            KeyNumber(f"Mean over the {len(r.layers)} layers",
                      f"bias-corrected JS {np.mean(r.column('js_corrected')):+.4f} nats; difference "
                      f"{np.mean(r.column('difference_within')):+.3f}", "pooled; descriptive (no tests across windows)"),
        ]
    return tuple(out)


def _across(r: AttnKLResult, corr: str) -> tuple[KeyNumber, ...]:
    a, n_layers = r.across, len(r.layers)
    if a is None:
        if r.n_replicates > 1:
            return (KeyNumber("Across windows (the window as the unit)", "needs at least 2 windows with both groups",
                              f"{sum(rep.tested for rep in r.replicates)} of {r.n_replicates} windows have 2 or more "
                              "correct and incorrect predictions (notes)"),)
        return (KeyNumber("Across windows (the window as the unit)", "needs at least 2 windows",
                          "--set replicates=8 (the default) tests across windows"),)
    flips = "sign flips of whole windows, max |t|" if a.correction == "max" else "Benjamini–Hochberg"
    return (
        KeyNumber(f"Layers whose mean log norm differs, across {a.n} windows",
                  f"{a.n_significant_difference} of {n_layers} ({FAMILY[a.correction]}): "
                  + _directions_sized(a.difference.mean, a.difference.significant),
                  f"one-sample t test of the windows' within-{STRATA[r.shuffle]} differences, two-sided, {flips} "
                  f"corrected p ≤ {r.alpha}; the ranges are the mean differences at those layers"),
        KeyNumber(f"Layers whose distributions differ, across {a.n} windows",
                  f"{a.n_significant_js} of {n_layers} ({FAMILY[a.correction]}): "
                  + _sized(a.js.corrected_mean, a.js.significant),
                  f"pairing test of each window's JS against its log norms split by other windows' labels "
                  f"({a.js.n_pairings} pairings{'' if a.js.exact else ', drawn'}), {corr} corrected p ≤ {r.alpha}"),
        KeyNumber("Windows that agree with the pooled result", f"{a.n_agree} of {a.n}", _agreement(a)),
    )


def _choice_layers(choice, which: str) -> str:
    if which == "difference":
        sig, est = choice.difference_significant, choice.difference
        return ", ".join(f"{i}{'+' if est[i] > 0 else '−'}" for i in np.flatnonzero(sig)) or "none"
    return _layers(np.flatnonzero(choice.js_significant))


def _starts(r: AttnKLResult) -> tuple[KeyNumber, ...]:
    ws = r.window_starts
    worst = int(np.nanargmin(ws.log_norm_start_z)) if np.isfinite(ws.log_norm_start_z).any() else None
    norms = (f"; their log norms {np.nanmin(ws.log_norm_start_z):+.1f} SD from the rest at layer {worst}, "
             f"{np.nanmedian(ws.log_norm_start_z):+.1f} SD in the median layer" if worst is not None else "")
    out = [KeyNumber(f"Window starts: the first {ws.start_tokens} tokens of each window",
                     f"{100 * ws.accuracy_start:.0f}% correct vs {100 * ws.accuracy_rest:.0f}% after" + norms,
                     f"each window starts a new context; skip_first={r.skip_first} "
                     + ("leaves them out of both groups" if r.skip_first else "keeps them (the seed's design)"))]
    if ws.other is None:
        return tuple(out)
    used, other = ws.used, ws.other
    unit = "across windows" if used.unit == "windows" else "pooled"

    def compare(which: str, stable) -> str:
        a, b = _choice_layers(used, which), _choice_layers(other, which)
        n = int(np.sum(stable))
        same = "the same layers" if a == b else f"{n} layer{'s' if n != 1 else ''} in both"
        return f"{which}: {a} with skip_first={used.skip_first}, {b} with skip_first={other.skip_first} ({same})"

    out.append(KeyNumber(f"Significant layers with and without the window starts ({unit})",
                         compare("difference", ws.stable_difference) + "; " + compare("JS", ws.stable_js),
                         f"the same tests and correction on the tokens from position {used.skip_first} and from "
                         f"{other.skip_first} on; a layer counts as stable when significant (the difference with "
                         "the same sign) under both"))
    return tuple(out)


def key_numbers(r: AttnKLResult, config=None) -> tuple[KeyNumber, ...]:
    focus, layer, tl, unsup = r.focus_layer, r.layers[r.focus_layer], r.token_length, r.kl_unsupported_bins
    corr = CORRECTION_NAMES[r.correction]
    windows = f" in {r.n_replicates} windows" if r.n_replicates > 1 else ""
    pooled = f"pooled, labels shuffled {SHUFFLES[r.shuffle]}"
    estimates = _estimates(r, corr)
    if getattr(config, "labels_from", None):  # the groups are another model's: the headline says so
        first = estimates[0]
        estimates = (KeyNumber(first.label, first.value + "; correct/incorrect: another model's predictions "
                               "(labels_from)", first.test), *estimates[1:])
    return (
        *estimates,
        *_across(r, corr),
        *_starts(r),
        KeyNumber("Prediction accuracy", f"{100 * r.accuracy:.1f}% ({r.n_correct}/{r.n_tokens} tokens{windows}"
                  + (f", from position {r.skip_first} on" if r.skip_first else "") + ")"
                  + (", another model's predictions (labels_from)" if getattr(config, "labels_from", None) else "")),
        KeyNumber("Next-token length, correct vs incorrect",
                  f"{tl.correct_mean:.2f} vs {tl.incorrect_mean:.2f} characters",
                  f"Mann–Whitney U, two-sided: p = {tl.p_mannwhitney:.2g}"),
        KeyNumber("Layers where the distributions differ (JS), pooled", f"{r.n_significant} of {len(r.layers)} "
                  f"({FAMILY[r.correction]}): " + _sized(r.column("js_corrected"), r.column("significant")),
                  f"{pooled}; {corr} corrected p ≤ {r.alpha} (uncorrected: {r.n_significant_uncorrected}, "
                  f"Benjamini–Hochberg: {r.n_significant_bh}, max-statistic of standardised JS: "
                  f"{r.n_significant_max})"),
        KeyNumber("Layers where the mean log norm differs, pooled", f"{r.n_significant_difference} of "
                  f"{len(r.layers)} ({FAMILY[r.correction]}): "
                  + _directions_sized(r.column("difference_within"), r.column("difference_significant")),
                  f"{pooled}; two-sided, {corr} corrected p ≤ {r.alpha}; the ranges are the within-"
                  f"{STRATA[r.shuffle]} differences at those layers"),
        KeyNumber(f"Difference of mean log norms, pooled, layer {focus}",
                  _interval(layer.difference_within, layer.difference_ci_low, layer.difference_ci_high, 3)
                  + (f"; raw difference of pooled means {layer.difference:+.3f}" if r.n_replicates > 1
                     or r.shuffle != "window" else ""),
                  f"same shuffles, shift interval; two-sided p = {layer.p_difference:.3g}; {corr} p = "
                  f"{layer.p_difference_corrected:.3g}"),
        KeyNumber(f"JS divergence of log norms (plug-in, biased), layer {focus}",
                  f"{r.js:.4f} nats (maximum ln 2 = 0.693); its shuffles' mean {layer.null_mean:.4f}, "
                  f"bias-corrected {r.js_corrected:+.4f}",
                  f"pooled permutation p = {layer.p_value:.3g} ({r.n_permutations} shuffles); {corr} p = "
                  f"{layer.p_corrected:.3g}"),
        KeyNumber(f"KL(correct ‖ incorrect), layer {focus}",
                  _kl_text(r.kl_correct_to_incorrect, unsup.correct_to_incorrect)),
        KeyNumber(f"KL(incorrect ‖ correct), layer {focus}",
                  _kl_text(r.kl_incorrect_to_correct, unsup.incorrect_to_correct)),
        KeyNumber(f"Seed's symmetric_KL, layer {focus}", f"{r.seed_symmetric_kl:.4f}",
                  f"= ½[KL(M‖P) + KL(M‖Q)] / {r.bins} bins, ε = 1e-15; not the JS divergence (see notes)"),
    )


def notes(r: AttnKLResult, config) -> tuple[str, ...]:
    ratio = r.seed_symmetric_kl * r.bins / r.js if r.js > 0 else float("nan")
    layer = r.layers[r.focus_layer]
    share = layer.null_mean / layer.js if layer.js > 0 else float("nan")
    out = list(r.data_notes) + [
        "Null values. Both profiled metrics are 0 under H0 at every layer: the bias-corrected JS (JS minus the "
        "mean JS of the label shuffles) because the shuffles' mean is the plug-in bias for the layer's own bins, "
        "occupancy and group sizes (under H0 the observed labelling is one of the equally likely shuffles), and "
        "the within-stratum difference because it compares correct and incorrect tokens of the same stratum. The "
        "plug-in JS is not comparable across layers, models or controls: its bias grows with the bins a layer "
        "occupies and shrinks with the group sizes, and it is most of the value "
        f"(at layer {r.focus_layer}: shuffles' mean {layer.null_mean:.4f} of {layer.js:.4f} nats, {100 * share:.0f}%). "
        "Within a window the shuffles treat labels as exchangeable; correct flags that are autocorrelated "
        "(together with autocorrelated norms) would make the shuffles' mean a slight under-correction. "
        "lamina compare lines up these two profiles (and the mean log norms by group), not the plug-in JS.",
        "The difference is within strata (the shuffles' windows, or windows and next-token lengths): the pooled "
        "difference of means mixes strata, and its excess over the shuffles' expectation shrinks a shift common "
        "to every stratum by the factor Σ_s w_s·(1/n_correct + 1/n_incorrect), w_s = n_correct,s·n_incorrect,s/n_s "
        f"(here {r.stratified_scale:.3f}), whenever accuracy differs between strata. Dividing by it estimates the "
        "weighted mean of the strata's own differences (weights w_s), with the same p-values; its interval is "
        "the shift interval divided by the same factor.",
        "The seed's symmetric_KL is not the Jensen–Shannon divergence. F.kl_div(log(P + 1e-15), M, "
        "reduction='batchmean') is KL(M‖P) divided by the number of bins, so the seed reports "
        "½[KL(M‖P) + KL(M‖Q)] / n_bins: it shrinks as bins are added, and an empty bin in one histogram "
        "makes it depend on the 1e-15. lamina reports the true JS divergence ½KL(P‖M) + ½KL(Q‖M) in nats "
        f"(0 to ln 2) and keeps the seed's value beside it (seed_symmetric_kl). At layer {r.focus_layer}: "
        f"JS = {r.js:.4f} nats; seed value = {r.seed_symmetric_kl:.5f}, times {r.bins} bins = "
        f"{r.seed_symmetric_kl * r.bins:.4f} nats ({ratio:.2f} × JS).",
        "KL in both directions is Σ p·ln(p / (q + 1e-15)) over the focus layer's bins: the seed's smoothing "
        "without its division by the number of bins. The true KL is infinite whenever one group fills a bin "
        "the other leaves empty (counted in results.json as kl_unsupported_bins); then the value measures "
        "the ε more than the data, which is why the tests use the JS divergence. The seed's 'Target is "
        "incorrect' line prints KL(incorrect ‖ correct) / n_bins.",
        "p-values are (1 + #{null ≥ observed}) / (1 + n), never 0; the seed's (null > observed).sum() / n can "
        f"be exactly 0. Across layers lamina adds a {CORRECTION_NAMES[r.correction]} "
        "correction (results.json has both: p_max, p_bh; p_corrected is the one chosen by --set correction); "
        "the seed marks layers with uncorrected p < 0.05. The max-statistic compares each layer's JS "
        "standardised by its own null ((JS − null mean) / null sd): raw JS nulls differ in scale between layers "
        "(each layer's bins span its own range, so a layer with outliers has few occupied bins and a small null), "
        "and the raw maximum would let the layer with the widest null decide for all.",
        "The seed reads the sign of the difference of means (panel C) without testing it; the JS divergence is "
        "not directional and can be significant through a difference in spread or shape alone. lamina tests "
        "the difference itself with the same shuffles (two-sided, around its mean under the shuffles) and "
        "colours panel C by that test.",
        "Shuffling labels token by token treats the tokens of a window as exchangeable. Attention-output norms "
        "of neighbouring tokens are autocorrelated; that is harmless while the correct/incorrect labels are not, "
        "but when both are, within-window tests reject too often (docs/results.md gives the rates under a "
        "simulated autocorrelated null). And correct predictions are of shorter tokens (above), which --set "
        "shuffle=length holds fixed by shuffling within next-token lengths. The tests across windows take the "
        "window as the unit and are not affected by dependence within a window.",
        "The histogram edges span both groups (min to max over all tokens), so a label shuffle never moves "
        "them: lamina bins each layer once and counts every shuffle at every layer with one matrix product "
        "(the same shuffles at every layer). The seed recomputes the same edges for every shuffle.",
        "The seed's nbins is the number of linspace edges: its default 31 gives 30 bins, and its sweep "
        "nbins = 10..50 is 9..49 bins. lamina counts bins (bins=30, bins_sweep=9..49 here), so the "
        "histograms are the seed's.",
        "The seed's comment calls pg11.txt 'Through the Looking Glass'; it is Alice's Adventures in "
        "Wonderland (Gutenberg #11). lamina removes the Gutenberg header and footer before taking the middle "
        f"of the book, so the {'window' if r.n_replicates == 1 else 'middle window'} (tokens {r.window_start}.."
        f"{r.window_start + r.window - 1} of the stripped text) is not the seed's exact window.",
    ]
    model = r.model
    if config.window is None and model.context_length - int(model.prepend_bos) > r.window:
        many = (f"; with {r.n_replicates} windows the default is {r.window} tokens each, "
                f"{r.n_replicates * r.window} in all" if r.n_replicates > 1 else "")
        out.append(f"The seed uses the whole context ({model.context_length} tokens for {model.name}) in one "
                   f"window; lamina caps the default window at {DEFAULT_WINDOW_CAP} tokens for speed{many} "
                   "(--set window= and --set replicates= change it).")
    if model.prepend_bos:
        out.append(f"{model.name} gets a BOS token before {'the' if r.n_replicates == 1 else 'each'} window (its "
                   "family's policy); BOS is fed to the model but never recorded or counted.")
    out.append("Token length is the length in characters of the token being predicted (the next token), as "
               "in the seed. accuracy in results.json is a fraction of all windows' tokens.")
    return tuple(out)


def report(result: AttnKLResult, config) -> Report:
    return Report(method=method(config), key_numbers=key_numbers(result, config), notes=notes(result, config))
