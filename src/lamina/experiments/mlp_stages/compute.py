"""Seed 003: a token's geometry through the four MLP stages, one long sequence vs many short ones (compute).

Two sets of n items each, at every layer and stage (mlp.in, mlp.pre, mlp.post, mlp.out):

- one: positions 1..n of the first n + 1 tokens of the text (different tokens, one context);
- many: the last position of n short sequences ending in the target word (one token, n contexts).

Per layer, stage and set: participation ratio and effective dimensionality; per stage pair: RSA of
the cosine matrices, with a bootstrap interval over items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import data, stimuli
from ...data.local import read_text
from ...errors import LaminaError
from ...models.depth import check_layer_setting, layer_at
from ...record import record
from ...stats.bootstrap import percentile_ci, resample_counts, rsa_bootstrap
from ...stats.dimensionality import check_threshold, dimensionality
from ...stats.similarity import cosine_matrix, rsa_pairs
from ...stimuli.words import word_token
from ..base import Context, ModelFacts, profile_table
from .result import (CI_LEVEL, PAIR_NAMES, PAIRS, SETS, SITES, STAGES, Items, LayerEntry, MlpStagesResult,
                     StageActivations, StageDims, StageInfo)

_ACTIVATIONS = {"silu": "SiLU", "swish": "SiLU", "gelu": "GELU", "gelu_new": "GELU (tanh approximation)",
                "gelu_pytorch_tanh": "GELU (tanh approximation)", "gelu_fast": "GELU (fast approximation)",
                "relu": "ReLU"}


@dataclass
class MlpStagesConfig:
    book: str | None = "alice"  # lamina.data.book name, Gutenberg id or path; text_file / wikipedia replace it
    text_file: str | None = None  # a UTF-8 text file
    wikipedia: str | None = None  # an English Wikipedia title (seed: Coffee_production_in_Vietnam)
    word: str = " Alice"  # target; must be one token (seed: ' coffee')
    leading_space: bool = True  # add a leading space to the word when it has none
    context: int = 10  # tokens per short sequence, the target included (seed: nseq = 10)
    max_targets: int = 400  # more kept occurrences are thinned evenly to this many
    # Block of the detailed figures: an index, or a relative depth (models/depth.py); 0.5 is the
    # seed's n_layers // 2.
    focus_layer: int | float = 0.5
    threshold: float = 95.0  # percent variance for effective dimensionality
    n_boot: int = 1000  # bootstrap resamples of items per RSA interval
    batch_size: int = 64

    def check(self):
        check_layer_setting(self.focus_layer, setting="focus_layer")
        if self.text_file and self.wikipedia:
            raise LaminaError("give one text: text_file or wikipedia, not both.")
        if self.text_file or self.wikipedia:
            self.book = None  # the other source replaces the default book; config.json then says so
        elif not self.book:
            raise LaminaError("no text: set book (e.g. alice), text_file=PATH or wikipedia=TITLE.")
        if not self.word or not self.word.strip():
            raise LaminaError("word is empty; give a single-token word such as ' Alice'.")
        if self.context < 2:
            raise LaminaError(f"context must be at least 2 tokens (the word and what precedes it), not {self.context}.")
        if self.max_targets < 3:
            raise LaminaError(f"max_targets must be at least 3 (RSA needs 3 items), not {self.max_targets}.")
        check_threshold(self.threshold)
        if self.n_boot < 100:
            raise LaminaError(f"n_boot must be at least 100 for a {CI_LEVEL:.0f}% percentile interval, "
                              f"not {self.n_boot}.")
        if self.batch_size < 1:
            raise LaminaError(f"batch_size must be a positive integer, not {self.batch_size}.")

    def source(self) -> str:
        if self.text_file:
            return f"file {self.text_file}"
        if self.wikipedia:
            return f"Wikipedia: {self.wikipedia}"
        return f"book {self.book}"


def activation_name(model) -> str:
    cfg = model.config
    raw = getattr(cfg, "hidden_act", None) or getattr(cfg, "activation_function", None) or "nonlinearity"
    return _ACTIVATIONS.get(str(raw), str(raw))


def stage_meaning(model) -> dict[str, str]:
    """What each stage is on this model's MLP (docs/sites.md §4)."""
    act = activation_name(model)
    common = {"in": "MLP input: the residual stream after the pre-MLP norm",
              "out": "MLP output after the down projection, before it is added to the residual"}
    if model.adapter.mlp_kind == "gated":
        return {**common,
                "pre": f"gate projection gate_proj(x), the argument of the {act} (the up projection is not a stage)",
                "post": f"{act}(gate_proj(x)) * up_proj(x), the down projection's input; not a pointwise "
                        f"function of mlp.pre"}
    return {**common, "pre": f"expansion (up projection) before the {act}",
            "post": f"expansion after the {act}, the down projection's input"}


def _text(config: MlpStagesConfig) -> str:
    if config.text_file:
        return read_text(config.text_file)
    if config.wikipedia:
        return data.wikipedia(config.wikipedia)
    return data.book(config.book)


def _focus(config: MlpStagesConfig, model) -> int:
    return layer_at(config.focus_layer, "mlp.out", model.n_layers, setting="focus_layer", model=model.name)


def _stimuli(model, config) -> dict:
    text = _text(config)
    token_id = word_token(config.word, model, config.leading_space)
    shown = model.decode([token_id])
    tokens = np.asarray(model.encode(text), dtype=np.int64)
    many = stimuli.word_in_contexts(text, model, [config.word], config.context, leading_space=config.leading_space)
    n_occurrences = int((tokens == token_id).sum())
    n_kept = len(many)
    if n_kept > config.max_targets:  # even thinning keeps the whole text represented
        many = many.subset(np.unique(np.linspace(0, n_kept - 1, config.max_targets).round().astype(int)))
    n = len(many)
    if n < 3:
        raise LaminaError(f"only {n} occurrence(s) of {shown!r} have {config.context - 1} tokens before them; "
                          "RSA needs at least 3. Use a text where the word is more frequent, or a smaller context.")
    bos = int(model.prepend_bos)
    if n + 1 + bos > model.context_length:
        raise LaminaError(f"the long sequence needs {n + 1} tokens (+{bos} BOS), more than {model.name}'s "
                          f"context length of {model.context_length}; set max_targets <= "
                          f"{model.context_length - 1 - bos}.")
    one = stimuli.one_long_sequence(text, model, n + 1, max_length=model.context_length - bos)
    return {"one": one, "many": many, "token_id": token_id, "word": shown, "n_occurrences": n_occurrences,
            "n_dropped": n_occurrences - n_kept, "n_capped": n_kept - n, "n": n}


def _record(model, items, config, ctx) -> dict:
    """set -> stage -> array of shape ``(n_layers, n, width)`` (float32)."""
    sites = list(SITES.values())
    n = items["n"]
    # The seed drops position 0 of the long sequence (no context; GPT-2's attention sink).
    one = record(model, items["one"], sites=sites, positions=[np.arange(1, n + 1)], batch_size=1,
                 progress=ctx.progress)
    many = record(model, items["many"], sites=sites, positions="last", batch_size=config.batch_size,
                  progress=ctx.progress)
    return {"one": {s: one[SITES[s]][:, 0] for s in STAGES}, "many": {s: many[SITES[s]][:, :, 0] for s in STAGES}}


def _stats(acts, config, ctx) -> dict:
    n_layers, n = acts["one"]["in"].shape[:2]
    pr = {s: np.zeros((n_layers, 4)) for s in SETS}
    effdim = {s: np.zeros((n_layers, 4), dtype=np.int64) for s in SETS}
    rsa = {s: np.zeros((n_layers, 6)) for s in SETS}
    boot = {s: np.zeros((config.n_boot, n_layers, 6)) for s in SETS}
    # One set of item resamples per sequence set, shared by all layers and pairs; the two sets hold
    # different items, so their resamples are independent and the difference's interval is valid.
    counts = {s: resample_counts(ctx.rng, n, config.n_boot) for s in SETS}
    for layer in tqdm(range(n_layers), desc="mlp-stages stats", unit="layer",
                      disable=None if ctx.progress is None else not ctx.progress):
        for which in SETS:
            X = acts[which]
            mats = np.stack([cosine_matrix(X[s][layer]) for s in STAGES])  # (4, n, n)
            for i, s in enumerate(STAGES):
                pr[which][layer, i], effdim[which][layer, i] = dimensionality(
                    X[s][layer], config.threshold, what=f"{SITES[s]} at layer {layer} ({which}-sequence set)")
            rsa[which][layer] = rsa_pairs(mats, PAIRS)
            boot[which][:, layer] = rsa_bootstrap(mats, PAIRS, counts[which])
    ci = {s: percentile_ci(boot[s], CI_LEVEL) for s in SETS}  # (2, n_layers, 6)
    return {"pr": pr, "effdim": effdim, "rsa": rsa, "ci": ci,
            "diff_ci": percentile_ci(boot["one"] - boot["many"], CI_LEVEL)}


def _layer(layer, st) -> LayerEntry:
    pr, effdim, rsa, ci = st["pr"], st["effdim"], st["rsa"], st["ci"]
    return LayerEntry(
        layer=layer,
        stages={s: StageDims(pr_one=pr["one"][layer, i], effdim_one=effdim["one"][layer, i],
                             pr_many=pr["many"][layer, i], effdim_many=effdim["many"][layer, i])
                for i, s in enumerate(STAGES)},
        rsa_one=dict(zip(PAIR_NAMES, rsa["one"][layer])), rsa_many=dict(zip(PAIR_NAMES, rsa["many"][layer])),
        rsa_one_ci={p: ci["one"][:, layer, j] for j, p in enumerate(PAIR_NAMES)},
        rsa_many_ci={p: ci["many"][:, layer, j] for j, p in enumerate(PAIR_NAMES)},
        rsa_diff_ci={p: st["diff_ci"][:, layer, j] for j, p in enumerate(PAIR_NAMES)})


def compute(model, config: MlpStagesConfig, ctx: Context) -> MlpStagesResult:
    focus = _focus(config, model)
    with ctx.stage("data"):
        items = _stimuli(model, config)
    with ctx.stage("record"):
        acts = _record(model, items, config, ctx)
    with ctx.stage("stats"):
        st = _stats(acts, config, ctx)
    n, many = items["n"], items["many"]
    meaning = stage_meaning(model)
    focus_acts = {w: StageActivations(**{f"mlp_{s}": acts[w][s][focus] for s in STAGES}) for w in SETS}
    return MlpStagesResult(
        word=items["word"], token_id=items["token_id"], text=config.source(), n_occurrences=items["n_occurrences"],
        n_dropped=items["n_dropped"], n_capped=items["n_capped"], n_targets=n, long_sequence_tokens=n + 1,
        context=config.context, focus_layer=focus, threshold=config.threshold, n_boot=config.n_boot,
        ci_level=CI_LEVEL, mlp_kind=model.adapter.mlp_kind, activation=activation_name(model),
        stages={s: StageInfo(site=SITES[s], meaning=meaning[s]) for s in STAGES},
        layers=tuple(_layer(layer, st) for layer in range(model.n_layers)),
        model=ModelFacts.of(model), data_notes=tuple(many.notes),
        items=Items(one_tokens=np.array(model.token_texts(items["one"].ids[0][1:]), dtype=str),
                    many_positions=many.meta["position"].to_numpy(),
                    many_tokens=np.array(model.token_texts(many.meta["token"].to_numpy()), dtype=str),
                    many_contexts=np.array([model.decode(ids) for ids in many.ids], dtype=str),
                    one=focus_acts["one"], many=focus_acts["many"]))


def tables(result: MlpStagesResult) -> dict[str, pd.DataFrame]:
    dim_rows, rsa_rows = [], []
    for entry in result.layers:
        for which in SETS:
            for s in STAGES:
                dims = entry.stages[s]
                ed = getattr(dims, f"effdim_{which}")
                dim_rows.append((entry.layer, SITES[s], which, getattr(dims, f"pr_{which}"), ed, ed - 1))
            for p in PAIR_NAMES:
                lo, hi = getattr(entry, f"rsa_{which}_ci")[p]
                rsa_rows.append((entry.layer, p, which, getattr(entry, f"rsa_{which}")[p], lo, hi))
        for p in PAIR_NAMES:
            lo, hi = entry.rsa_diff_ci[p]
            rsa_rows.append((entry.layer, p, "one-many", entry.rsa_one[p] - entry.rsa_many[p], lo, hi))
    n, items = result.n_targets, result.items
    item_table = pd.concat([
        pd.DataFrame({"set": "one", "item": np.arange(n), "text_position": np.arange(1, n + 1),
                      "token": items.one_tokens, "context": ""}),
        pd.DataFrame({"set": "many", "item": np.arange(n), "text_position": items.many_positions,
                      "token": items.many_tokens, "context": items.many_contexts}),
    ], ignore_index=True)
    return {
        "dimensionality": pd.DataFrame(dim_rows, columns=["layer", "site", "set", "participation_ratio",
                                                          "effective_dim", "effective_dim_seed_index"]),
        "rsa": pd.DataFrame(rsa_rows, columns=["layer", "pair", "set", "r", "ci_low", "ci_high"]),
        "items": item_table,
    }


def profiles(result: MlpStagesResult) -> pd.DataFrame:
    """Per block: each stage's participation ratio and effective dimensionality per set
    (``pr_one[mlp.pre]``, ...), and each stage pair's RSA per set and one − many with the bootstrap
    intervals (``rsa_one[in-pre]``, ``rsa_diff[in-pre]``; site ``mlp``: the whole block)."""
    parts = []
    for which in SETS:
        for metric in ("pr", "effdim"):
            dims = result.dims(metric, which)
            parts += [(SITES[s], f"{metric}_{which}[{SITES[s]}]", dims[:, i], None) for i, s in enumerate(STAGES)]
    for which in (*SETS, "diff"):
        values = result.rsa("one") - result.rsa("many") if which == "diff" else result.rsa(which)
        ci = result.ci(which)
        parts += [("mlp", f"rsa_{which}[{p}]", values[:, j], ci[:, :, j]) for j, p in enumerate(PAIR_NAMES)]
    return profile_table(*parts)
