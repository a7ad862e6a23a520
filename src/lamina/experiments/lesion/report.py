"""Report text of ``lesion``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ..across import AcrossLayers
from ..base import KeyNumber, Report
from .result import CORRECTIONS, N_FLIPS, LesionResult

ABLATION_TEXT = {
    "mean": "replaced by its mean over every token of the clean recording of the same windows (mean ablation)",
    "zero": "set to zero (zero ablation)",
    "resample": "replaced, token by token, by its clean value at a random token of another window (resample "
                "ablation)",
}


def method(result: LesionResult, config) -> str:
    r, corr = result.n_replicates, CORRECTIONS[result.correction]
    flips = (f"all {2 ** r} sign patterns" if 2 ** r <= N_FLIPS else f"{N_FLIPS} sign patterns")
    correction = (f"sign-flip max-|t| ({flips}: each window's values at all layers flip together, so the "
                  "dependence between layers is kept)" if result.correction == "max" else "Holm's step-down")
    return (f"{r} disjoint windows of {result.window} tokens of the book '{config.book}' (window 0 the middle one, "
            f"the others spread over the rest) go through the model once intact, recording the loss per token. "
            f"Then, for each site ({', '.join(s.site for s in result.sites)}) and each layer separately, the site's "
            f"value at that layer, at every token, is {ABLATION_TEXT[result.ablation]}, with lamina.edits through "
            f"lamina.record (what an edit of attn.out / mlp.out replaces: docs/sites.md, 'Editing a site'), and the "
            f"edited run's loss is recorded. Per window: Δ mean loss and Δ top-1 accuracy (edited − clean), and "
            f"Δ loss on the tokens the intact model predicts correctly and incorrectly, and their difference. The "
            f"window is the unit: per layer, the windows' mean with its {result.level:g}% t interval and a two-sided "
            f"one-sample t test against 0 ({r - 1} degrees of freedom), corrected across layers per site and metric "
            f"by {correction}; significant: corrected p ≤ {result.alpha} ({corr}).")


def _interval(a: AcrossLayers, i: int, digits: int, level: float, k: float = 1.0, unit: str = "") -> str:
    return (f"{a.mean[i] * k:+.{digits}f}{unit} ({level:g}% interval {a.ci_low[i] * k:+.{digits}f} to "
            f"{a.ci_high[i] * k:+.{digits}f})")


def _range(values, digits: int, k: float = 1.0) -> str:
    values = np.sort(np.asarray(values, dtype=float)) * k
    if values.size == 0:
        return ""
    if values.size == 1 or values[0] == values[-1]:
        return f"{values[0]:+.{digits}f}"
    return f"{values[0]:+.{digits}f} to {values[-1]:+.{digits}f}"


def _layers(idx) -> str:
    return ", ".join(map(str, idx)) if len(idx) else "none"


def _significant(a: AcrossLayers, digits: int, k: float = 1.0, unit: str = "") -> str:
    n = len(a.mean)
    idx = np.flatnonzero(a.significant)
    up, down = idx[a.mean[idx] > 0], idx[a.mean[idx] < 0]
    parts = [f"{len(idx)} of {n} layers"]
    if len(up):
        parts.append(f"up at {_layers(up)} ({_range(a.mean[up], digits, k)}{unit})")
    if len(down):
        parts.append(f"down at {_layers(down)} ({_range(a.mean[down], digits, k)}{unit})")
    return "; ".join(parts)


def _depth(layer: int, n_layers: int) -> str:
    return f"layer {layer} of {n_layers} (relative depth {layer / max(n_layers - 1, 1):.2f})"


def report(result: LesionResult, config) -> Report:
    corr = "sign-flip max-|t|" if result.correction == "max" else "Holm"
    r, level = result.n_replicates, result.level
    fam = f"two-sided one-sample t test across {r} windows; {corr} across layers, family-wise α = {result.alpha}"
    keys = []
    for site in result.sites:
        dl, da, i = site.delta_loss, site.delta_accuracy, site.worst_layer
        n_layers = len(dl.mean)
        keys.append(KeyNumber(
            f"{site.site}: the layer whose ablation costs most, Δ loss",
            f"{_depth(i, n_layers)}: " + _interval(dl, i, 3, level, unit=" nats"),
            f"t = {dl.t[i]:.2f}, p = {dl.p[i]:.2g}, corrected p = {dl.p_corrected[i]:.2g} ({fam})"))
        keys.append(KeyNumber(
            f"{site.site}: Δ accuracy at layer {i}",
            _interval(da, i, 1, level, 100, " points"),
            f"t = {da.t[i]:.2f}, corrected p = {da.p_corrected[i]:.2g}"))
        keys.append(KeyNumber(f"{site.site}: layers where ablation changes the loss", _significant(dl, 3, unit=" nats"),
                              fam))
        keys.append(KeyNumber(f"{site.site}: layers where ablation changes accuracy",
                              _significant(da, 1, 100, " points"), fam))
        if site.split is None:
            keys.append(KeyNumber(f"{site.site}: Δ loss, correct − incorrect tokens", "not tested",
                                  f"{site.n_split_windows} windows hold both correct and incorrect clean predictions; "
                                  "the test needs 2"))
        else:
            s = site.split
            keys.append(KeyNumber(
                f"{site.site}: Δ loss on correct − incorrect tokens, layer {i}",
                _interval(s, i, 3, level, unit=" nats")
                + f"; correct {site.delta_loss_correct[i]:+.3f}, incorrect {site.delta_loss_incorrect[i]:+.3f}",
                f"t = {s.t[i]:.2f}, corrected p = {s.p_corrected[i]:.2g}; {site.n_split_windows} windows"))
            keys.append(KeyNumber(f"{site.site}: layers where the lesion costs correct and incorrect tokens differently",
                                  _significant(s, 3, unit=" nats"), fam + f"; {site.n_split_windows} windows"))
    keys.append(KeyNumber("Intact model", f"mean loss {result.clean_loss:.3f} nats, accuracy "
                          f"{100 * result.clean_accuracy:.1f}% ({result.n_correct} of {result.n_tokens} tokens)",
                          "descriptive"))
    notes = list(result.data_notes) + [
        "Every null value is 0: Δ loss and Δ accuracy are 0 where the ablated output carries nothing the rest of the "
        "model uses beyond what replaces it, and the correct − incorrect difference is 0 where the lesion costs "
        "both kinds of token alike. lamina compare lines the profiles up on relative depth (block l of n at (l + 0.5)/n).",
        "A lesion is not a clean removal: a mean ablation keeps the site's average contribution (a bias the later "
        "layers may rely on), a zero ablation also removes it, a resample ablation puts in realistic values from "
        "other text. The layer that costs most can differ between them (--set ablation=zero|resample).",
        ("Correct and incorrect are the intact model's predictions." if result.labels_from is None else
         f"Correct and incorrect are the predictions of the intact model of the run {result.labels_from} "
         "(labels_from: given to an untrained control, which predicts almost nothing correctly itself).")
        + " Tokens the labelling model gets wrong have high loss already and room to go either way, so the split "
        "compares tokens of different difficulty, not matched ones.",
        "Windows are disjoint spans of one book: more independent than tokens, but they share the author and the "
        "story, so the intervals describe this book's text rather than text in general.",
        "Each edited run computes only from the ablated block on: the blocks below it replay their outputs from "
        "the clean pass of the same windows (lamina.recording.prefix; the same numbers as full passes, tested).",
    ]
    if result.correction == "max":
        notes.append(f"With {result.n_replicates} windows the sign-flip max-|t| correction has {2 ** result.n_replicates} "
                     f"sign patterns, so no corrected p is below {2 / 2 ** result.n_replicates:.2g}: strong effects "
                     "all read that floor (more windows, --set replicates=N, lower it).")
    if result.model.prepend_bos:
        notes.append(f"{result.model.name} gets a BOS token before each window; the BOS position is never ablated.")
    return Report(method=method(result, config), key_numbers=tuple(keys), notes=tuple(notes))
