"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", Fig. 1). (compute)

Per factual prompt (``lamina/data/facts.json``: a prompt, its subject, a one-token answer): the clean
run gives p(answer) at the last token; the corrupted runs add Gaussian noise (SD ``noise`` × the
embeddings' SD, seeded) to the subject tokens' embeddings (``hidden`` entry 0, an ``add`` edit per
subject token); each restored run is a corrupted run in which one site at one layer (a window of
layers for ``attn.out`` / ``mlp.out``) and one position is patched back to its clean value (a
``patch`` edit from the clean recording). The indirect effect of that (site, layer, position) is
restored − corrupted p(answer), normalised by clean − corrupted (per prompt, noise samples averaged).
Positions are grouped in the paper's classes; the prompts are the replicates (mean, t interval).
Tokens before the subject are never corrupted (causal attention): restoring them changes nothing,
so they are not run.
"""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np

from ...errors import LaminaError
from ...recording import record
from ...recording import edits as E
from ...stats.replicates import simultaneous_t_band, skew_t_interval, t_interval
from ...stimuli import Stimuli
from ..across import Interval
from ..base import Context, ModelFacts
from .config import SITES, TraceConfig, parse_sites
from .result import CLASSES, Peak, PerPrompt, SiteTrace, TraceResult

#: clean − corrupted must exceed this fraction of clean p for the normalised effect (else NaN: float32 noise)
GAP = 1e-5


def load_facts() -> list[dict]:
    """The shipped prompt set: dicts with ``prompt``, ``subject``, ``answer`` (and the checked models' p)."""
    return json.loads(files("lamina.data").joinpath("facts.json").read_text(encoding="utf-8"))["facts"]


def subject_span(model, prompt: str, subject: str) -> tuple[list[int], int, int] | None:
    """(token ids, first subject token, one past the last) of ``prompt``; None where the subject's tokens are
    not a prefix-stable part of the prompt's tokens."""
    at = prompt.find(subject)
    if at < 0:
        return None
    ids = model.encode(prompt)
    before = model.encode(prompt[:at].rstrip()) if at > 0 else []
    through = model.encode(prompt[:at + len(subject)])
    if ids[:len(through)] != through or through[:len(before)] != before or len(through) <= len(before) \
            or len(through) >= len(ids):
        return None
    return ids, len(before), len(through)


def p_answer(model, seqs, answers, edits, batch_size: int | None = None) -> np.ndarray:
    """p(answer) after the last token of each sequence, under ``edits``."""
    stim = Stimuli([np.asarray(s) for s in seqs], next_ids=np.asarray(answers))
    rec = record(model, stim, sites=["loss"], positions="last", edits=edits or None,
                 batch_size=batch_size or len(seqs), progress=False)
    return np.exp(-rec.tokens.sort_values("sequence")["loss"].to_numpy(dtype=np.float64))


def window_layers(site: str, layer: int, window: int, n_layers: int) -> list[int]:
    """The layers restored for ``layer``: itself for hidden; a window centred on it, clipped, for a block site."""
    if site == "hidden" or window == 1:
        return [layer]
    low = max(0, layer - window // 2)
    return list(range(low, min(n_layers, low + window)))


def classes_of(start: int, stop: int, length: int) -> list[np.ndarray]:
    """Positions (relative to ``start``) of each class of :data:`CLASSES` for a subject ``[start, stop)`` in a
    prompt of ``length`` tokens; a class may be empty (one-token subject: only the last subject token)."""
    rel = lambda a, b: np.arange(a, b) - start  # noqa: E731
    return [rel(start, start + 1) if stop - start >= 2 else rel(0, 0), rel(start + 1, stop - 1), rel(stop - 1, stop),
            rel(stop, stop + 1) if stop < length - 1 else rel(0, 0), rel(stop + 1, length - 1), rel(length - 1, length)]


#: Restored copies of a prompt per forward pass: one record call runs every (layer, position) of a site.
RESTORE_BATCH = 64


def trace_prompt(model, ids, start, stop, answer, noise, sites, window):
    """One prompt: (clean p, corrupted p per sample, {site: restored p, shape (samples, entries, positions)}),
    positions ``start .. len(ids) - 1``. ``noise``: ``(samples, stop - start, d_model)``.

    Per sample and site, one ``record`` call holds a copy of the prompt per (entry, position): copy
    ``e * m + k`` restores entry ``e`` at position ``start + k``, by a ``patch`` from the one clean run
    (``pairs``: every copy reads sequence 0) that leaves every other copy alone (no positions there).
    """
    ids = list(ids)
    m = len(ids) - start
    clean = record(model, Stimuli([np.asarray(ids)], next_ids=[answer]), sites=list(sites), positions="all",
                   progress=False)
    p_clean = float(np.exp(-clean.tokens.query(f"position == {len(ids) - 1}")["loss"].iloc[0]))
    corrupted, restored = [], {site: [] for site in sites}
    for sample in noise:
        corrupt = [E.add("hidden", 0, sample[j], positions=start + j) for j in range(stop - start)]
        corrupted.append(p_answer(model, [ids], [answer], corrupt)[0])
        for site in sites:
            entries = model.n_layers + 1 if site == "hidden" else model.n_layers
            n = entries * m
            restore = [E.patch(site, window_layers(site, e, window, entries), source=clean, pairs=np.zeros(n, int),
                               positions=[[start + i % m] if i // m == e else [] for i in range(n)])
                       for e in range(entries)]
            p = p_answer(model, [ids] * n, [answer] * n, corrupt + restore, batch_size=RESTORE_BATCH)
            restored[site].append(p.reshape(entries, m))
    return p_clean, np.array(corrupted), {site: np.array(v) for site, v in restored.items()}


def interval(values, skewed: bool = False) -> tuple[float, float, float]:
    """Mean and 95% Student t interval of the finite ``values`` (the prompts: one value each); ``skewed``: Hall's
    skewness-corrected t interval (:func:`lamina.stats.replicates.skew_t_interval`; p(answer), whose values across
    prompts are skewed: corrupted p spans two orders of magnitude). One value: no interval (NaN bounds); all equal:
    the value three times; none: NaN."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), (np.nan if len(values) == 1 else float(values[0])), \
            (np.nan if len(values) == 1 else float(values[0]))
    mean, low, high = (skew_t_interval if skewed else t_interval)(values[:, None])
    return float(mean[0]), float(low[0]), float(high[0])


def band(row: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The simultaneous 95% band over the layers of one class, ``row`` ``(prompts, layers)``: low and high per layer
    (:func:`lamina.stats.replicates.simultaneous_t_band` on the prompts with a value at every layer; NaN with fewer
    than 2). It covers every layer's mean at once, so it also covers the mean of a layer chosen by its estimate."""
    row = np.asarray(row, dtype=float)
    row = row[np.isfinite(row).all(axis=1)]
    if len(row) < 2:
        return np.full(row.shape[1], np.nan), np.full(row.shape[1], np.nan)
    _, low, high, _ = simultaneous_t_band(row, rng=rng if rng is not None else np.random.default_rng(0))
    return low, high


def _peak(mean, *bounds) -> Peak:
    """The layer of the largest mean; ``bounds``: its t interval's and the band's low and high rows."""
    return Peak.at(int(np.nanargmax(mean)), mean, *bounds) if np.isfinite(mean).any() else Peak.none()


def _first_above(mean, *bounds, level: float) -> Peak:
    """The first layer whose mean effect exceeds ``level`` (at the last token the effect climbs to 1 at the last
    entries, which the output reads directly, so its maximum says nothing; where it first passes half does)."""
    above = np.flatnonzero(np.nan_to_num(mean, nan=-np.inf) > level)
    return Peak.at(int(above[0]), mean, *bounds) if len(above) else Peak.none()


def normalised(raw, clean, corrupted) -> np.ndarray:
    """The normalised indirect effect: ``raw`` (restored − corrupted p(answer), shape ``(..., classes, layers)``)
    over clean − corrupted (shape ``(...)``: one per prompt), NaN where that gap is not above ``GAP`` × clean."""
    raw = np.asarray(raw, dtype=float)
    clean, corrupted = np.asarray(clean, dtype=float), np.asarray(corrupted, dtype=float)
    gap = clean - corrupted
    defined = (gap > GAP * clean)[..., None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, raw / gap[..., None, None], np.nan)


def prompt_effects(clean, corrupted, restored, groups) -> tuple[np.ndarray, np.ndarray]:
    """A prompt's raw and normalised indirect effects per position class and entry, ``(..., classes, entries)``
    each: ``restored`` p(answer) ``(..., samples, entries, positions)`` and ``corrupted`` ``(..., samples)``
    averaged over the noise samples, restored − corrupted averaged over each class's positions (``groups``, from
    :func:`classes_of`; an empty class is NaN), then :func:`normalised` by clean − corrupted. A leading axis
    (prompts sharing one layout of positions) broadcasts."""
    corrupt = np.asarray(corrupted, dtype=float).mean(axis=-1)
    raw = np.asarray(restored).mean(axis=-3) - corrupt[..., None, None]  # (..., entries, positions)
    by_class = np.stack([raw[..., g].mean(axis=-1) if len(g) else np.full(raw.shape[:-1], np.nan) for g in groups],
                        axis=-2)
    return by_class, normalised(by_class, clean, corrupt)


def summarise(effects: np.ndarray, raw: np.ndarray, window: int, site: str,
              rng: np.random.Generator | None = None) -> SiteTrace:
    """Aggregate ``(prompts, classes, layers)`` normalised effects (and raw ones) over prompts: per class and layer
    the mean with its t interval (:func:`interval`: pointwise, for a layer fixed in advance); the peak at the last
    subject token (the layer of the largest mean) and the first layer whose mean at the last token exceeds 0.5, each
    with that layer's t interval and, since the layer is chosen by its mean, the class's simultaneous band there
    (:func:`band`; ``rng`` draws its sign flips beyond 13 prompts, default a generator seeded 0)."""
    n_classes, n_layers = effects.shape[1:]
    stats = np.array([[interval(effects[:, c, l]) for l in range(n_layers)] for c in range(n_classes)])
    mean, low, high = stats[..., 0], stats[..., 1], stats[..., 2]
    with np.errstate(invalid="ignore"):
        raw_mean = np.array([[np.nanmean(raw[:, c, l]) if np.isfinite(raw[:, c, l]).any() else np.nan
                              for l in range(n_layers)] for c in range(n_classes)])
    last_subject, last = CLASSES.index("last subject"), CLASSES.index("last")
    return SiteTrace(window=1 if site == "hidden" else window, n=np.isfinite(effects[:, :, 0]).sum(axis=0),
                     mean=mean, ci_low=low, ci_high=high, raw_mean=raw_mean,
                     peak_last_subject=_peak(mean[last_subject], low[last_subject], high[last_subject],
                                             *band(effects[:, last_subject], rng)),
                     peak_last=_first_above(mean[last], low[last], high[last], *band(effects[:, last], rng), level=0.5))


def prepare(model, config: TraceConfig) -> tuple[list[dict], list[str], int]:
    """The prompts to trace (dicts with ``ids``, ``start``, ``stop``, ``answer`` id, ``fact``), notes, candidates."""
    facts = load_facts()
    if config.n_prompts is not None:
        facts = facts[:config.n_prompts]
    notes, items = [], []
    for fact in facts:
        span = subject_span(model, fact["prompt"], fact["subject"])
        if span is None:
            notes.append(f"dropped {fact['prompt']!r}: its subject is not a whole run of the prompt's tokens")
            continue
        ids, start, stop = span
        answer = None
        if config.answer == "fact":
            full = model.encode(fact["prompt"] + fact["answer"])
            if len(full) != len(ids) + 1 or full[:len(ids)] != ids:
                notes.append(f"dropped {fact['prompt']!r}: {fact['answer']!r} is not one token for this tokenizer")
                continue
            answer = full[-1]
        items.append(dict(ids=ids, start=start, stop=stop, answer=answer, fact=fact))
    return items, notes, len(facts)


def compute(model, config: TraceConfig, ctx: Context) -> TraceResult:
    sites = parse_sites(config.sites)
    with ctx.stage("data"):
        items, notes, n_candidates = prepare(model, config)
        if not items:
            raise LaminaError("no prompt of the set can be traced on this model (see the subject/answer tokens).")
    with ctx.stage("record"):
        stim = Stimuli([np.asarray(it["ids"]) for it in items],
                       next_ids=[-1 if it["answer"] is None else it["answer"] for it in items])
        rec = record(model, stim, sites=["hidden"], layers=0, positions="all", batch_size=16, progress=False)
        embeddings = rec.flat("hidden", 0)
        sd = float(np.std(embeddings, dtype=np.float64))
        last = rec.tokens.sort_values(["sequence", "position"]).groupby("sequence").tail(1)
        predicted = last["predicted_id"].to_numpy()
        if config.answer == "argmax":
            for it, top in zip(items, predicted):
                it["answer"] = int(top)
        else:
            wrong = [it for it, top in zip(items, predicted) if top != it["answer"]]
            if wrong:
                notes.append(f"dropped {len(wrong)} prompts whose answer is not the model's top next token")
            items = [it for it, top in zip(items, predicted) if top == it["answer"]]
            if not items:
                raise LaminaError(f"{model.name} answers none of the {n_candidates} facts correctly; "
                                  "use --set answer=argmax (the model's own top token as the answer).")
        forwards = len(stim)
        clean_p, corrupted_p, per_site = [], [], {site: [] for site in sites}
        raw_site = {site: [] for site in sites}
        width = embeddings.shape[-1]
        for it in items:
            start, stop, n = it["start"], it["stop"], len(it["ids"])
            noise = ctx.rng.normal(0.0, config.noise * sd, size=(config.samples, stop - start, width))
            p_clean, p_corrupt, restored = trace_prompt(model, it["ids"], start, stop, it["answer"], noise, sites,
                                                        config.window)
            m = n - start
            entries = {s: (model.n_layers + 1 if s == "hidden" else model.n_layers) for s in sites}
            forwards += 1 + config.samples * (1 + m * sum(entries.values()))
            corrupt = float(p_corrupt.mean())
            clean_p.append(p_clean)
            corrupted_p.append(corrupt)
            groups = classes_of(start, stop, n)
            for site in sites:
                raw, effect = prompt_effects(p_clean, p_corrupt, restored[site], groups)
                raw_site[site].append(raw)
                per_site[site].append(effect)
    with ctx.stage("stats"):
        traces = {site: summarise(np.array(per_site[site]), np.array(raw_site[site]), config.window, site, ctx.rng)
                  for site in sites}
        arrays = {s.replace(".", "_"): (np.array(per_site[s]) if s in sites else np.zeros((0, len(CLASSES), 0)))
                  for s in SITES}
        clean_p, corrupted_p = np.array(clean_p), np.array(corrupted_p)
    if config.noise == 0:
        notes.append("noise = 0: the corrupted run is the clean run, so clean − corrupted is 0 and the normalised "
                     "indirect effect is undefined (NaN); the raw effect is 0")
    return TraceResult(
        n_candidates=n_candidates, n_prompts=len(items), answer=config.answer, noise=config.noise,
        noise_sd=config.noise * sd, samples=config.samples, classes=CLASSES,
        clean_p=Interval(*interval(clean_p, skewed=True)),
        corrupted_p=Interval(*interval(corrupted_p, skewed=True)),
        normalised_prompts=int((clean_p - corrupted_p > GAP * clean_p).sum()), forwards=forwards, sites=traces,
        model=ModelFacts.of(model), prompts=tuple(it["fact"]["prompt"] for it in items),
        answers=tuple(model.decode([it["answer"]]) for it in items), data_notes=tuple(notes),
        per_prompt=PerPrompt(clean=clean_p, corrupted=corrupted_p,
                             subject_tokens=np.array([it["stop"] - it["start"] for it in items]), **arrays))
