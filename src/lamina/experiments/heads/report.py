"""Report text of ``heads``: method, key numbers, notes, from the result."""

from __future__ import annotations

import numpy as np

from ..base import KeyNumber, Report
from .result import CORRECTIONS, N_FLIPS, HeadScore, HeadsResult


def method(result: HeadsResult, config) -> str:
    r = result.n_replicates
    bos = ("with the BOS token lamina feeds kept as position 0" if result.first_is_bos else
           "(this model gets no BOS, so position 0 is each window's first token)")
    correction = (f"sign-flip max-|t| ({'all ' + str(2 ** r) if 2 ** r <= N_FLIPS else N_FLIPS} sign patterns: each "
                  "window's values at all heads flip together)" if result.correction == "max" else "Holm's step-down")
    return (f"{r} disjoint windows of {result.window} tokens of the book '{config.book}' are recorded {bos}: "
            f"attn.pattern and attn.heads at every layer and the raw residual stream (resid) at every entry. Per "
            f"window, layer and head, each score is the mean over query positions q ≥ 1 (query 0 sees only itself): "
            f"sink = attention to position 0; previous = attention to position q − 1; induction = the attention to "
            f"positions j + 1 for every j < q whose token equals the query's token (averaged over the queries that "
            f"have such a j); entropy = −Σ p log p over the keys, in nats. The window is the unit: per head, the "
            f"windows' mean and its {result.level:g}% t interval. Massive activations (Sun et al. 2024): per resid "
            f"entry, the largest |activation| over all windows, positions and dimensions divided by the median "
            f"|activation| of that entry. Seed 001's question per head: the mean norm of the head's output "
            f"(attn.heads) on the tokens the model predicts correctly minus that on the tokens it predicts "
            f"incorrectly, per window (the first {result.skip_first} tokens of each window left out), t interval "
            f"and two-sided one-sample t test against 0 across windows, corrected over layer × head by {correction}; "
            f"significant: corrected p ≤ {result.alpha} ({CORRECTIONS[result.correction]}).")


def _cell(s: HeadScore, layer: int, head: int, digits: int = 3) -> str:
    return (f"layer {layer}, head {head}: {s.mean[layer, head]:.{digits}f} "
            f"(interval {s.ci_low[layer, head]:.{digits}f} to {s.ci_high[layer, head]:.{digits}f})")


def _top(s: HeadScore, k: int = 3) -> str:
    if not np.isfinite(s.mean).any():
        return "not computed"
    order = np.argsort(np.nan_to_num(s.mean, nan=-np.inf), axis=None)[::-1][:k]
    return "; ".join(_cell(s, *np.unravel_index(i, s.mean.shape)) for i in order)


def report(result: HeadsResult, config) -> Report:
    level, kinds = result.level, result.attention_kind
    n_layers, n_heads = result.sink.mean.shape
    first = "the BOS" if result.first_is_bos else "the first token"
    keys = [
        KeyNumber(f"Strongest sinks: attention to position 0 ({first})", _top(result.sink),
                  f"mean over windows with its {level:g}% t interval; descriptive"),
        KeyNumber("Strongest previous-token heads", _top(result.previous), "descriptive"),
        KeyNumber("Strongest induction-like heads", _top(result.induction),
                  f"descriptive; {result.induction_windows} windows with a repeated token"),
        KeyNumber("Pattern entropy, mean over heads, lowest and highest layer",
                  f"layer {int(np.argmin(result.entropy_mean.value))}: {np.min(result.entropy_mean.value):.2f} nats; "
                  f"layer {int(np.argmax(result.entropy_mean.value))}: {np.max(result.entropy_mean.value):.2f} nats "
                  f"(uniform attention over {result.window + int(result.first_is_bos)} positions: "
                  f"{np.log(result.window + int(result.first_is_bos)):.2f} at the last query)", "descriptive"),
    ]
    m = result.massive
    e = int(np.argmax(m.ratio))
    at = f"position {m.position[e]} ({first if m.position[e] == 0 and result.first_is_bos else repr(m.token[e])})"
    keys.append(KeyNumber(
        "Largest massive activation (resid)",
        f"entry {e} of {len(m.ratio) - 1}: |x| = {m.top[e]:.1f}, {m.ratio[e]:.0f} × the median |x| "
        f"({m.median[e]:.3f}); window {m.window[e]}, {at}, dimension {m.dim[e]}",
        f"in {100 * m.first_position_share[e]:.0f}% of windows that entry's largest |x| is at position 0"))
    at0, most = int((m.position == 0).sum()), int((m.first_position_share > 0.5).sum())
    keys.append(KeyNumber(f"resid entries whose largest |x| sits at position 0 ({first})",
                          f"{at0} of {len(m.ratio)} pooled over windows; {most} of {len(m.ratio)} in most windows",
                          "descriptive"))
    d = result.norm_difference
    if d is None:
        keys.append(KeyNumber("Heads whose output norm differs on correct vs incorrect tokens", "not tested",
                              f"{result.n_split_windows} windows hold both kinds; the test needs 2"))
    else:
        sig = d.significant
        effect = d.mean[sig]
        where = (f"; mean differences {effect.min():+.3f} to {effect.max():+.3f} "
                 f"({int((effect > 0).sum())} higher on correct tokens, {int((effect < 0).sum())} lower)"
                 if sig.any() else "")
        i = np.unravel_index(np.argmax(np.abs(d.t)), d.t.shape)
        keys.append(KeyNumber("Heads whose output norm differs on correct vs incorrect tokens",
                              f"{int(sig.sum())} of {n_layers * n_heads}{where}",
                              f"two-sided one-sample t across {result.n_split_windows} windows; "
                              f"{CORRECTIONS[result.correction]}, α = {result.alpha}"))
        keys.append(KeyNumber("Largest |t|, correct − incorrect norm",
                              f"layer {i[0]}, head {i[1]}: {d.mean[i]:+.3f} (interval {d.ci_low[i]:+.3f} to "
                              f"{d.ci_high[i]:+.3f})", f"t = {d.t[i]:.2f}, corrected p = {d.p_corrected[i]:.2g}"))
    keys.append(KeyNumber("Accuracy on the split's tokens", f"{100 * result.accuracy:.1f}%", "descriptive"))
    if "local" in kinds:
        keys.append(KeyNumber("Local (sliding-window) layers",
                              ", ".join(str(i) for i, k in enumerate(kinds) if k == "local")
                              + f"; window {result.sliding_window} tokens", "from the model's config"))
    notes = list(result.data_notes) + [
        "The attention scores and massive activations are descriptive: their values under 'no structure' are not 0 "
        "(a head attending uniformly gives sink and previous ≈ the mean over queries of 1/(q + 1), induction ≈ the "
        "share of keys that follow an earlier occurrence, entropy log(q + 1)). In lamina compare the bands of "
        "untrained controls, not 0, are their reference. Only the correct − incorrect difference has a null of 0.",
        "Induction-like attention here is attention to the token after an earlier occurrence of the query's token in "
        "natural text, not Olsson et al.'s repeated random sequences: a previous-token or copying head, or a repeat "
        "of the previous token itself (j = q − 1 gives key q, the query's own position), can score on it too.",
        "The sink score is attention to position 0 whatever token is there; "
        + ("here it is the BOS lamina feeds." if result.first_is_bos else
           "this model gets no BOS, so it is each window's first token, a different token in every window."),
        "Correct and incorrect tokens differ in difficulty, frequency and position, not only in the model's "
        "answer: a norm difference is an association, not a cause (lesion asks causally).",
        "Windows are disjoint spans of one book: more independent than tokens, but the intervals describe this "
        "book's text.",
    ]
    if result.correction == "max":
        notes.append(f"With {result.n_replicates} windows the sign-flip correction has {2 ** result.n_replicates} sign "
                     f"patterns, so no corrected p is below {1 / 2 ** (result.n_replicates - 1):.2g}.")
    return Report(method=method(result, config), key_numbers=tuple(keys), notes=tuple(notes))
