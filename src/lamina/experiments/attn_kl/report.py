"""Report text of ``attn-kl``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ..base import KeyNumber, Report
from . import inference
from .compute import CORRECTION_NAMES, DEFAULT_WINDOW_CAP, SHUFFLES, default_window
from .result import AttnKLResult


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
    text = (f"{windows} through the model in one recording. A token counts as correct when the argmax "
            "of the logits at its position is the next token of the book (for a window's last token, the token "
            "after the window). The attention output after its output projection (site attn.out) is recorded at "
            "every layer, and each token's log norm is compared between correct and incorrect predictions: "
            f"histograms over {config.bins} equal bins from the layer's smallest to largest log norm, the "
            "Kullback–Leibler divergence in both directions, the Jensen–Shannon (JS) divergence in nats, and the "
            "difference of the two groups' mean log norms. Both statistics are tested with the same "
            f"{config.n_permutations} shuffles of the correct/incorrect labels {SHUFFLES[config.shuffle]} (the "
            "same shuffles at every layer): p = (1 + #{null ≥ observed}) / (1 + permutations), two-sided for the "
            "difference (around its mean under the shuffles), with a shift interval; across layers "
            f"{CORRECTION_NAMES[config.correction]} corrected "
            f"{'(each layer standardised by its own null first) ' if config.correction == 'max' else ''}"
            f"at alpha = {config.alpha} (significant: p ≤ alpha).")
    if r > 1:
        flips = "by sign flips of whole windows, max |t|" if config.correction == "max" else "by Benjamini–Hochberg"
        text += (" These shuffles treat the tokens of a window as exchangeable, which neighbouring tokens are not; "
                 "the main inference therefore takes the window as the unit: each window's difference of means "
                 "is tested across windows with a one-sample t test (corrected "
                 f"{flips}), "
                 "and each window's JS against the other pairings of the windows' labels with their log norms "
                 "(pairing test, labels and log norms kept whole).")
    return text


def _kl_text(value: float, n: int) -> str:
    return f"{value:.3f} nats" + (f" (ε-driven: {n} bin{'s' if n > 1 else ''} without support)" if n else "")


def _layers(indices) -> str:
    indices = [int(i) for i in indices]
    return ", ".join(map(str, indices)) if indices else "none"


def _directions(layers, difference, keep) -> str:
    keep = np.asarray(keep, dtype=bool)
    up = np.flatnonzero(keep & (difference > 0))
    down = np.flatnonzero(keep & (difference < 0))
    return f"correct larger at {_layers(up)}; smaller at {_layers(down)}"


def _agreement(a) -> str:
    if a.n_agreement_layers == 0:
        return "no layer's pooled difference is significant, so there is no direction to disagree with"
    return (f"agree: the window's own difference of means has the pooled sign at more than half of the "
            f"{a.n_agreement_layers} layers where the pooled difference is significant; "
            f"{100 * a.share_same_sign:.0f}% of all window-layer pairs have the pooled sign")


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
                  f"{a.n_significant_difference} of {n_layers}: "
                  + _directions(r.layers, a.difference.mean, a.difference.significant),
                  f"one-sample t test of the windows' differences, two-sided, {flips} corrected p ≤ {r.alpha}"),
        KeyNumber(f"Layers whose distributions differ, across {a.n} windows", f"{a.n_significant_js} of {n_layers}: "
                  f"{_layers(np.flatnonzero(a.js.significant))}",
                  f"pairing test of each window's JS against its log norms split by other windows' labels "
                  f"({a.js.n_pairings} pairings{'' if a.js.exact else ', drawn'}), {corr} corrected p ≤ {r.alpha}"),
        KeyNumber("Windows that agree with the pooled result", f"{a.n_agree} of {a.n}", _agreement(a)),
    )


def key_numbers(r: AttnKLResult, config=None) -> tuple[KeyNumber, ...]:
    focus, layer, tl, unsup = r.focus_layer, r.layers[r.focus_layer], r.token_length, r.kl_unsupported_bins
    corr = CORRECTION_NAMES[r.correction]
    windows = f" in {r.n_replicates} windows" if r.n_replicates > 1 else ""
    pooled = f"pooled, labels shuffled {SHUFFLES[r.shuffle]}"
    return (
        KeyNumber("Prediction accuracy", f"{100 * r.accuracy:.1f}% ({r.n_correct}/{r.n_tokens} tokens{windows})"
                  + (", another model's predictions (labels_from)" if getattr(config, "labels_from", None) else "")),
        KeyNumber("Next-token length, correct vs incorrect",
                  f"{tl.correct_mean:.2f} vs {tl.incorrect_mean:.2f} characters",
                  f"Mann–Whitney U, two-sided: p = {tl.p_mannwhitney:.2g}"),
        *_across(r, corr),
        KeyNumber("Layers where the distributions differ (JS)", f"{r.n_significant} of {len(r.layers)}: "
                  f"{_layers(np.flatnonzero(r.column('significant')))}",
                  f"{pooled}; {corr} corrected p ≤ {r.alpha} (uncorrected: {r.n_significant_uncorrected}, "
                  f"Benjamini–Hochberg: {r.n_significant_bh}, max-statistic of standardised JS: "
                  f"{r.n_significant_max})"),
        KeyNumber("Layers where the mean log norm differs", f"{r.n_significant_difference} of {len(r.layers)}: "
                  + _directions(r.layers, r.column("difference") - r.column("difference_expected"),
                                r.column("difference_significant")),
                  f"{pooled}; two-sided, {corr} corrected p ≤ {r.alpha}"),
        KeyNumber(f"JS divergence of log norms, layer {focus}", f"{r.js:.4f} nats (maximum ln 2 = 0.693)",
                  f"permutation p = {layer.p_value:.3g} ({r.n_permutations} shuffles); {corr} p = "
                  f"{layer.p_corrected:.3g}"),
        KeyNumber(f"Mean log norm correct − incorrect, layer {focus}",
                  f"{layer.difference:+.3f} ({inference.LEVEL:g}% interval "
                  f"{layer.difference_ci_low + layer.difference_expected:+.3f} to "
                  f"{layer.difference_ci_high + layer.difference_expected:+.3f})",
                  f"same shuffles, two-sided p = {layer.p_difference:.3g}; {corr} p = "
                  f"{layer.p_difference_corrected:.3g}"),
        KeyNumber(f"KL(correct ‖ incorrect), layer {focus}",
                  _kl_text(r.kl_correct_to_incorrect, unsup.correct_to_incorrect)),
        KeyNumber(f"KL(incorrect ‖ correct), layer {focus}",
                  _kl_text(r.kl_incorrect_to_correct, unsup.incorrect_to_correct)),
        KeyNumber(f"Seed's symmetric_KL, layer {focus}", f"{r.seed_symmetric_kl:.4f}",
                  f"= ½[KL(M‖P) + KL(M‖Q)] / {r.bins} bins, ε = 1e-15; not the JS divergence (see notes)"),
    )


def notes(r: AttnKLResult, config) -> tuple[str, ...]:
    ratio = r.seed_symmetric_kl * r.bins / r.js if r.js > 0 else float("nan")
    out = list(r.data_notes) + [
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
