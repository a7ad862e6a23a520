"""Report text of ``attn-kl``: method, key numbers, notes, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .compute import CORRECTION_NAMES, DEFAULT_WINDOW_CAP
from .result import AttnKLResult


def method(config) -> str:
    window = f"{config.window} tokens" if config.window else f"min(context length − BOS, {DEFAULT_WINDOW_CAP}) tokens"
    return (f"A window of {window} from the middle of the book '{config.book}' (Gutenberg header and footer "
            "removed) goes through the model in one pass. A token counts as correct when the argmax of the "
            "logits at its position is the next token of the book (for the last token, the token after the "
            "window). The attention output after its output projection (site attn.out) is recorded at every "
            "layer, and each token's log norm is compared between correct and incorrect predictions: "
            f"histograms over {config.bins} equal bins from the layer's smallest to largest log norm, the "
            "Kullback–Leibler divergence in both directions and the Jensen–Shannon (JS) divergence in nats. "
            f"A permutation test shuffles the correct/incorrect labels {config.n_permutations} times (the same "
            "shuffles at every layer); p = (1 + #{null ≥ observed}) / (1 + permutations), corrected across "
            f"layers by the {CORRECTION_NAMES[config.correction]} method at alpha = {config.alpha}.")


def _kl_text(value: float, n: int) -> str:
    return f"{value:.3f} nats" + (f" (ε-driven: {n} bin{'s' if n > 1 else ''} without support)" if n else "")


def key_numbers(r: AttnKLResult) -> tuple[KeyNumber, ...]:
    focus, layer, tl, unsup = r.focus_layer, r.layers[r.focus_layer], r.token_length, r.kl_unsupported_bins
    corr = CORRECTION_NAMES[r.correction]
    return (
        KeyNumber("Prediction accuracy", f"{100 * r.accuracy:.1f}% ({r.n_correct}/{r.n_tokens} tokens)"),
        KeyNumber("Next-token length, correct vs incorrect",
                  f"{tl.correct_mean:.2f} vs {tl.incorrect_mean:.2f} characters",
                  f"Mann–Whitney U, two-sided: p = {tl.p_mannwhitney:.2g}"),
        KeyNumber(f"JS divergence of log norms, layer {focus}", f"{r.js:.4f} nats (maximum ln 2 = 0.693)",
                  f"permutation p = {layer.p_value:.3g} ({r.n_permutations} shuffles); {corr} p = "
                  f"{layer.p_corrected:.3g}"),
        KeyNumber(f"KL(correct ‖ incorrect), layer {focus}",
                  _kl_text(r.kl_correct_to_incorrect, unsup.correct_to_incorrect)),
        KeyNumber(f"KL(incorrect ‖ correct), layer {focus}",
                  _kl_text(r.kl_incorrect_to_correct, unsup.incorrect_to_correct)),
        KeyNumber("Layers where the distributions differ", f"{r.n_significant} of {len(r.layers)}",
                  f"{corr} corrected p < {r.alpha} (uncorrected: {r.n_significant_uncorrected}, "
                  f"Benjamini–Hochberg: {r.n_significant_bh}, max-statistic: {r.n_significant_max})"),
        KeyNumber(f"Mean log norm correct − incorrect, layer {focus}", f"{layer.difference:+.3f}",
                  "sign of the difference; tested through the JS divergence above"),
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
        "the seed marks layers with uncorrected p < 0.05.",
        "The histogram edges span both groups (min to max over all tokens), so a label shuffle never moves "
        "them: lamina bins each layer once and counts every shuffle at every layer with one matrix product "
        "(the same shuffles at every layer). The seed recomputes the same edges for every shuffle.",
        "The seed's nbins is the number of linspace edges: its default 31 gives 30 bins, and its sweep "
        "nbins = 10..50 is 9..49 bins. lamina counts bins (bins=30, bins_sweep=9..49 here), so the "
        "histograms are the seed's.",
        "The seed's comment calls pg11.txt 'Through the Looking Glass'; it is Alice's Adventures in "
        "Wonderland (Gutenberg #11). lamina removes the Gutenberg header and footer before taking the middle "
        f"of the book, so the window (tokens {r.window_start}..{r.window_start + r.window - 1} of the "
        "stripped text) is not the seed's exact window.",
    ]
    model = r.model
    if config.window is None and model.context_length - int(model.prepend_bos) > DEFAULT_WINDOW_CAP:
        out.append(f"The seed uses the whole context ({model.context_length} tokens for {model.name}); lamina "
                   f"caps the default window at {DEFAULT_WINDOW_CAP} tokens for speed (--set window= changes it).")
    if model.prepend_bos:
        out.append(f"{model.name} gets a BOS token before the window (its family's policy); BOS is fed to "
                   "the model but never recorded or counted.")
    out.append("Token length is the length in characters of the token being predicted (the next token), as "
               "in the seed. accuracy in results.json is a fraction of the window's tokens.")
    return tuple(out)


def report(result: AttnKLResult, config) -> Report:
    return Report(method=method(config), key_numbers=key_numbers(result), notes=notes(result, config))
