"""Seed 003: a token's geometry through the four MLP stages, one long sequence vs many short ones (compute).

Two sets of n items each, at every layer and stage (mlp.in, mlp.pre, mlp.post, mlp.raw):

- one: positions 1..n of the first n + 1 tokens of the text (different tokens, one context);
- many: the last position of n short sequences ending in the target word (one token, n contexts).

Per layer, stage and set: participation ratio and effective dimensionality; per stage pair: RSA of
the cosine matrices, with bootstrap intervals (inference.py).

Replicates (``replicates = R``): the word's kept occurrences are cut into R runs of n / R consecutive
occurrences, parts of the text; replicate r holds one run as its short sequences and, as its long
sequence, the n / R + 1 tokens from where its part starts (replicate 0: the start of the text, the
seed's). With R = 1 this is the seed's design. The pooled statistics use every item of each set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import data, stimuli
from ...data.local import read_text
from ...errors import LaminaError
from ...models.depth import layer_at
from ...recording import record
from ...stats.dimensionality import one_blas_thread
from ...stimuli import Stimuli
from ...stimuli.words import word_token
from ..base import Context, ModelFacts
from .config import MlpStagesConfig
from . import inference
from .result import (ALPHA, CI_LEVEL, PAIR_NAMES, SETS, SITES, STAGES, Items, LayerEntry, MlpStagesResult,
                     Replicates, StageActivations, StageDims, StageInfo)

_ACTIVATIONS = {"silu": "SiLU", "swish": "SiLU", "gelu": "GELU", "gelu_new": "GELU (tanh approximation)",
                "gelu_pytorch_tanh": "GELU (tanh approximation)", "gelu_fast": "GELU (fast approximation)",
                "relu": "ReLU"}


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
    return layer_at(config.focus_layer, "mlp.raw", model.n_layers, setting="focus_layer", model=model.name)


def _windows(tokens, positions, n_rep: int, config) -> np.ndarray:
    """Start of each replicate's long sequence: 0 for replicate 0 (the seed's), else where the first
    short sequence of the replicate's run of occurrences starts."""
    starts = np.r_[0, positions[n_rep::n_rep] - (config.context - 1)].astype(np.int64)
    ends = np.r_[starts[1:], len(tokens)]
    if (starts + n_rep + 1 > ends).any():
        raise LaminaError(f"the {config.replicates} replicates' long sequences of {n_rep + 1} tokens would overlap "
                          f"(the word's occurrences are too close together); use fewer replicates.")
    return starts


def _stimuli(model, config) -> dict:
    text = _text(config)
    token_id = word_token(config.word, model, config.leading_space)
    shown = model.decode([token_id])
    tokens = np.asarray(model.encode(text), dtype=np.int64)
    many = stimuli.word_in_contexts(text, model, [config.word], config.context, leading_space=config.leading_space)
    n_occurrences = int((tokens == token_id).sum())
    n_kept, r = len(many), config.replicates
    n_rep = min(n_kept, config.max_targets) // r
    if n_rep < 3:
        raise LaminaError(f"only {n_kept} occurrence(s) of {shown!r} have {config.context - 1} tokens before them; "
                          f"RSA needs at least 3 per replicate ({3 * r} for replicates={r}). Use a text where the "
                          "word is more frequent, a smaller context or fewer replicates.")
    n = n_rep * r
    if n_kept > n:  # even thinning keeps the whole text represented
        many = many.subset(np.unique(np.linspace(0, n_kept - 1, n).round().astype(int)))
    bos = int(model.prepend_bos)
    if n_rep + 1 + bos > model.context_length:
        raise LaminaError(f"each long sequence needs {n_rep + 1} tokens (+{bos} BOS), more than {model.name}'s "
                          f"context length of {model.context_length}; set max_targets <= "
                          f"{(model.context_length - 1 - bos) * r}.")
    starts = _windows(tokens, many.meta["position"].to_numpy(), n_rep, config)
    meta = pd.DataFrame({"replicate": np.arange(r), "start": starts, "length": n_rep + 1})
    next_ids = [tokens[s + n_rep + 1] if s + n_rep + 1 < len(tokens) else -1 for s in starts]
    one = Stimuli([tokens[s:s + n_rep + 1] for s in starts], meta, np.asarray(next_ids))
    return {"one": one, "many": many, "token_id": token_id, "word": shown, "n_occurrences": n_occurrences,
            "n_dropped": n_occurrences - n_kept, "n_capped": n_kept - n, "n": n, "n_rep": n_rep, "starts": starts}


def _record(model, items, config, ctx) -> dict:
    """set -> stage -> array of shape ``(n_layers, n, width)`` (float32), replicate after replicate."""
    sites = list(SITES.values())
    n_rep, r = items["n_rep"], config.replicates
    # The seed drops position 0 of the long sequence (no context; GPT-2's attention sink). The long
    # sequences are one recording, the short ones another: one recording for both would pad every
    # short sequence to n_rep slots.
    one = record(model, items["one"], sites=sites, positions=[np.arange(1, n_rep + 1)] * r,
                 batch_size=max(1, min(r, config.batch_size)), progress=ctx.progress, loss=False)
    many = record(model, items["many"], sites=sites, positions="last", batch_size=config.batch_size,
                  progress=ctx.progress, loss=False)
    return {"one": {s: one[SITES[s]].reshape(one[SITES[s]].shape[0], r * n_rep, -1) for s in STAGES},
            "many": {s: many[SITES[s]][:, :, 0] for s in STAGES}}


def _stats(acts, config, ctx, windows=None) -> dict:
    """The pooled statistics with their bootstrap intervals (:func:`inference.pooled`)."""
    return inference.pooled(acts, config, ctx, windows)


def _layer(layer, st, across) -> LayerEntry:
    pr, effdim, rsa, ci, pr_ci = st["pr"], st["effdim"], st["rsa"], st["ci"], st["pr_ci"]
    differs = inference.decisions(st["diff_p_bh"])
    return LayerEntry(
        layer=layer, block_one=st["block"][layer],
        stages={s: StageDims(pr_one=pr["one"][layer, i], effdim_one=effdim["one"][layer, i],
                             pr_many=pr["many"][layer, i], effdim_many=effdim["many"][layer, i],
                             pr_one_ci=pr_ci["one"][:, layer, i], pr_many_ci=pr_ci["many"][:, layer, i])
                for i, s in enumerate(STAGES)},
        rsa_one=dict(zip(PAIR_NAMES, rsa["one"][layer])), rsa_many=dict(zip(PAIR_NAMES, rsa["many"][layer])),
        rsa_one_ci={p: ci["one"][:, layer, j] for j, p in enumerate(PAIR_NAMES)},
        rsa_many_ci={p: ci["many"][:, layer, j] for j, p in enumerate(PAIR_NAMES)},
        rsa_diff_ci={p: st["diff_ci"][:, layer, j] for j, p in enumerate(PAIR_NAMES)},
        rsa_diff_p=dict(zip(PAIR_NAMES, st["diff_p"][layer])),
        rsa_diff_p_bh=dict(zip(PAIR_NAMES, st["diff_p_bh"][layer])),
        rsa_differs=dict(zip(PAIR_NAMES, differs[layer].tolist())), across=None if across is None else across[layer])


def compute(model, config: MlpStagesConfig, ctx: Context) -> MlpStagesResult:
    focus = _focus(config, model)
    with ctx.stage("data"):
        items = _stimuli(model, config)
    with ctx.stage("record"):
        acts = _record(model, items, config, ctx)
    n, n_rep, r, many = items["n"], items["n_rep"], config.replicates, items["many"]
    replicate = np.repeat(np.arange(r), n_rep)
    # One BLAS thread for the statistics: hundreds of products of a few hundred rows, and on shared cores
    # two threads wait on each other (3x slower for the pooled statistics, 10x for the replicates').
    with ctx.stage("stats"), one_blas_thread():
        st = _stats(acts, config, ctx, windows=replicate)
        # With one replicate, it is the pooled sample.
        per = (inference.per_replicate(acts, r, config.threshold) if r > 1 else
               {f"{m}_{w}": st[m][w][None] for m in ("pr", "effdim", "rsa") for w in SETS})
        across = inference.across(per) if r > 1 else None
    meaning = stage_meaning(model)
    focus_acts = {w: StageActivations(**{f"mlp_{s}": acts[w][s][focus] for s in STAGES}) for w in SETS}
    positions = many.meta["position"].to_numpy()
    one_positions = (items["starts"][:, None] + np.arange(1, n_rep + 1)[None]).ravel()
    one_ids = np.concatenate([ids[1:] for ids in items["one"].ids])
    return MlpStagesResult(
        word=items["word"], token_id=items["token_id"], text=config.source(), n_occurrences=items["n_occurrences"],
        n_dropped=items["n_dropped"], n_capped=items["n_capped"], n_targets=n, replicates=r, n_per_replicate=n_rep,
        long_sequence_tokens=n_rep + 1, context=config.context, focus_layer=focus, threshold=config.threshold,
        n_boot=config.n_boot, ci_level=CI_LEVEL, alpha=ALPHA, mlp_kind=model.adapter.mlp_kind,
        activation=activation_name(model), stages={s: StageInfo(site=SITES[s], meaning=meaning[s]) for s in STAGES},
        layers=tuple(_layer(layer, st, across) for layer in range(model.n_layers)),
        per_replicate=Replicates(window_start=items["starts"], first_occurrence=positions[::n_rep],
                                 last_occurrence=positions[n_rep - 1::n_rep],
                                 **per),
        model=ModelFacts.of(model), data_notes=tuple(many.notes),
        items=Items(one_tokens=np.array(model.token_texts(one_ids), dtype=str), one_positions=one_positions,
                    one_replicate=replicate, many_positions=positions, many_replicate=replicate,
                    many_tokens=np.array(model.token_texts(many.meta["token"].to_numpy()), dtype=str),
                    many_contexts=np.array([model.decode(ids) for ids in many.ids], dtype=str),
                    one=focus_acts["one"], many=focus_acts["many"]))
