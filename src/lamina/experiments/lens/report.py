"""Report text of ``lens``: method, key numbers, notes, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .result import Lens, LensResult


def _head(result: LensResult) -> str:
    parts = []
    if result.softcap is not None:
        parts.append(f"the soft-cap cap·tanh(logits/cap) with cap = {result.softcap:g}")
    if result.logit_scale != 1.0:
        parts.append(f"the logit scale {result.logit_scale:g}")
    return f" and the model's {' and '.join(parts)}" if parts else ""


def method(result: LensResult, config) -> str:
    n, r = result.model.n_layers, result.n_replicates
    text = (f"{r} disjoint windows of {result.window} tokens of the book '{config.book}' (window 0 the middle "
            f"one, the others spread over the rest) are recorded at every hidden entry (0 = the embeddings, "
            f"{n} = the final norm's output) with the model's own per-token loss. The logit lens decodes each "
            f"entry l < {n} through the model's final norm and LM head{_head(result)}, and entry {n} (already "
            f"normed) through the head alone. Per token: the cross-entropy with the next token, KL(final ‖ lens) "
            f"from the model's own output distribution, whether the lens's top-1 token is the model's, and the "
            f"lens's entropy, all in nats. The softmax over the {result.vocab_size:,} vocabulary ids is streamed "
            f"in chunks of {result.vocab_chunk:,} (online log-sum-exp, running argmax, a first pass for the final "
            f"distribution's normaliser that the KL needs), so no token's full row of logits is ever held. The "
            f"window is the unit: per entry, the windows' mean of each metric with its {result.level:g}% t interval "
            f"({r - 1} degrees of freedom). Built-in check: the last entry's cross-entropy must be the recording's "
            f"own loss at every token (else the run stops).")
    if result.training is not None:
        t = result.training
        text += (f" The tuned lens (Belrose et al. 2023) puts an affine translator h + A_l h + b_l (A_l a d × d "
                 f"matrix and b_l a vector, both initialised at 0, so step 0 is the logit lens) before the final "
                 f"norm at each entry l < {n}, fitted to minimise KL(final ‖ lens) on {t.n_tokens} tokens of "
                 f"{t.n_windows} other windows of the book (disjoint from the evaluated ones, with their next "
                 f"tokens): {t.steps} Adam steps of {t.batch} tokens, learning rate {t.lr:g} decayed linearly to "
                 f"0, the run's seed; then evaluated on the same windows as the logit lens.")
    return text


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _crossing(lens: Lens, n: int, level: float, r: int) -> KeyNumber:
    c = lens.agreement_crossing
    label = f"{lens.kind} lens: first entry whose top-1 agreement with the final prediction exceeds 50%"
    if c.entry < 0:
        return KeyNumber(label, "none", f"mean over {r} windows")
    sure = (f"; its interval lies above 50% from entry {c.first_above}" if c.first_above >= 0
            else "; no entry's interval lies wholly above 50%")
    return KeyNumber(label, f"entry {c.entry} of {n} (relative depth {c.entry / max(n, 1):.2f}): {_pct(c.mean)} "
                            f"({level:g}% interval {_pct(c.ci_low)} to {_pct(c.ci_high)}){sure}",
                     f"mean over {r} windows, t interval across windows")


def _at(lens: Lens, metric: str, e: int, level: float) -> str:
    p = getattr(lens, metric)
    return f"{p.mean[e]:#.3g} nats ({level:g}% interval {p.ci_low[e]:#.3g} to {p.ci_high[e]:#.3g})"


def report(result: LensResult, config) -> Report:
    n, r, level = result.model.n_layers, result.n_replicates, result.level
    across = f"mean over {r} windows, t interval across windows"
    keys = [_crossing(lens, n, level, r) for lens in result.lenses]
    mid = n // 2
    for lens in result.lenses:
        keys.append(KeyNumber(f"{lens.kind} lens: KL(final ‖ lens) at entry {mid} (the middle)",
                              _at(lens, "kl", mid, level), across))
        keys.append(KeyNumber(f"{lens.kind} lens: cross-entropy at entries 0, {mid}, {n}",
                              ", ".join(f"{getattr(lens, 'cross_entropy').mean[e]:.3f}" for e in (0, mid, n)) + " nats",
                              across))
    c = result.check
    keys.append(KeyNumber("Check: the last entry decoded by the head alone vs the model's own loss",
                          f"largest difference {c.max_abs_difference:.2g} nats over {result.n_tokens} tokens "
                          f"(mean {c.lens_loss:.4f} vs {c.model_loss:.4f})",
                          f"passes: every token within {c.tolerance:g} nats"))
    if result.training is not None:
        t = result.training
        shown = ", ".join(f"{t.kl_first[e]:.3f} → {t.kl_last[e]:.3f}" for e in (0, mid, n - 1))
        keys.append(KeyNumber(f"Tuned lens training: KL on its training tokens, step 0 → end (entries 0, {mid}, "
                              f"{n - 1})", shown + " nats",
                              f"{t.steps} steps of {t.batch} tokens; end: mean of the last tenth of the steps"))
    notes = list(result.data_notes) + [
        "No metric has a null value to test against: KL is 0 and the agreement 100% at the last entry by "
        "construction (it is the model's output), and nowhere else is 0 KL a value 'of no effect'; the "
        "cross-entropy and entropy are bounded by log V, which differs between vocabularies. So the intervals "
        "describe the profile and no entry is tested. In lamina compare, 'leaves its controls' band' says the "
        "trained model's lens differs from what the same architecture gives at initialisation, and differences "
        "between models compare values on each model's own tokenization and vocabulary.",
        "The logit lens reads every entry in the basis of the last: an entry whose information is there but "
        "not yet aligned with the unembedding reads as 'no prediction'. Early entries are also dominated by the "
        "input token, which the head may decode as itself (tied embeddings). The tuned lens corrects the basis "
        "with one affine map per entry, at the price of being fitted.",
        "Windows are disjoint spans of one book: more independent than tokens, but they share the author and "
        "the story, so the intervals describe this book's text rather than text in general.",
    ]
    if result.training is not None:
        notes.append("The tuned lens here is a small-budget fit (Belrose et al. train on about 2^18 tokens per "
                     f"step for 250 steps; this one on {result.training.batch} tokens per step): its numbers are those "
                     "of this budget, not of the best affine translator, and the gap between its training KL (key "
                     "numbers) and the KL on the evaluated windows shows how much it overfits its training tokens. "
                     f"Its translators are cached under the lamina cache (tuned-lens/{result.tuned_cache}) by weights, "
                     "training tokens, settings and seed."
                     if result.tuned_cache else "The tuned lens's translators could not be cached (no weights hash "
                     "known for this model): each run fits them again.")
    if result.model.prepend_bos:
        notes.append(f"{result.model.name} gets a BOS token before each window; the BOS position is never decoded.")
    return Report(method=method(result, config), key_numbers=tuple(keys), notes=tuple(notes))
