"""Seed 003: a token's geometry through the four MLP stages, one long sequence vs many short ones.

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

from .. import data, stimuli
from ..data.local import read_text
from ..errors import LaminaError
from ..plots import figure
from ..plots.matrices import matrix_image
from ..plots.profiles import layer_profile
from ..plots.stages import (COLORS, MARKERS, bars_with_ci, central_range, density_curve, layer_colorbar,
                            layer_scatter, marker_legend, violins)
from ..record import record
from ..stats.bootstrap import percentile_ci, resample_counts, rsa_bootstrap
from ..stats.dimensionality import check_threshold, dimensionality
from ..stats.similarity import cosine_matrix, upper
from ..stimuli.words import word_token
from .base import Context, Experiment, Result

STAGES = ("in", "pre", "post", "out")
SITES = {stage: f"mlp.{stage}" for stage in STAGES}
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]  # the seed's order: 1v2, 1v3, 1v4, 2v3, 2v4, 3v4
PAIR_NAMES = [f"{STAGES[i]}-{STAGES[j]}" for i, j in PAIRS]
SETS = ("one", "many")
SET_TITLES = {"one": "One sequence", "many": "Many sequences"}
CI_LEVEL = 95.0
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
    focus_layer: int | None = None  # layer of the detailed figures; None = n_layers // 2 (seed)
    threshold: float = 95.0  # percent variance for effective dimensionality
    n_boot: int = 1000  # bootstrap resamples of items per RSA interval
    batch_size: int = 64

    def check(self):
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


def _kind_sentence(model) -> str:
    act = activation_name(model)
    if model.adapter.mlp_kind == "gated":
        return (f"{model.name} has a gated MLP: mlp.pre is the gate projection before the {act}, and mlp.post is "
                f"{act}(gate)·up, the down projection's input (not the {act} of mlp.pre alone).")
    return (f"{model.name} has a {act} MLP: mlp.pre is the expansion before the {act}, mlp.post the same "
            "expansion after it (the seed's 'Expa' and 'GELU' stages).")


def _text(config: MlpStagesConfig) -> str:
    if config.text_file:
        return read_text(config.text_file)
    if config.wikipedia:
        return data.wikipedia(config.wikipedia)
    return data.book(config.book)


def _focus(config: MlpStagesConfig, n_layers: int) -> int:
    focus = n_layers // 2 if config.focus_layer is None else config.focus_layer
    if not -n_layers <= focus < n_layers:
        raise LaminaError(f"focus_layer={focus} is outside this model's layers; use 0..{n_layers - 1} "
                          "(negative counts from the end).")
    return focus % n_layers


class MlpStagesExperiment(Experiment):
    name = "mlp-stages"
    title = "The MLP progression: geometry through the four MLP stages"
    description = "PR, effective dimensionality and RSA of mlp.in/pre/post/out; one long vs many short sequences"
    seed_notebook = "003"
    question = ("How does a token's representation change as it passes through the MLP: its input, the expansion "
                "before and after the nonlinearity, and the projection back? And does the geometry differ between "
                "different tokens in one long sequence and one word in many short contexts?")
    method = ("The text ({source}) is tokenized once. Every occurrence of {word!r} with at least {before} tokens "
              "before it gives one short sequence of {context} tokens that ends with it (more than {max_targets} "
              "are thinned evenly); with n such sequences, the long sequence is the first n + 1 tokens of the same "
              "text. mlp.in, mlp.pre, mlp.post and mlp.out are recorded at every layer, at positions 1..n of the "
              "long sequence and at the last position of each short one, so both sets have n items. Per layer, "
              "stage and set: the items' cosine-similarity matrix; participation ratio and effective "
              "dimensionality (components needed to pass {threshold}% variance) of the mean-centred items via "
              "SVD; RSA (Pearson r between the upper triangles of two stages' cosine matrices) for the six stage "
              "pairs, with a {level}% percentile bootstrap interval from {n_boot} resamples of items, and the "
              "interval of the one-minus-many difference. Detailed figures show layer {focus}.")
    Config = MlpStagesConfig

    def method_text(self, config: MlpStagesConfig) -> str:
        focus = "n_layers // 2 (the middle)" if config.focus_layer is None else str(config.focus_layer)
        return self.method.format(source=config.source(), word=config.word, before=config.context - 1,
                                  context=config.context, max_targets=config.max_targets,
                                  threshold=f"{config.threshold:g}", level=f"{CI_LEVEL:.0f}",
                                  n_boot=config.n_boot, focus=focus)

    def run(self, model, config: MlpStagesConfig, ctx: Context) -> Result:
        n_layers = model.n_layers
        focus = _focus(config, n_layers)
        with ctx.stage("data"):
            items = self._stimuli(model, config)
        with ctx.stage("record"):
            acts = self._record(model, items, config, ctx)
        with ctx.stage("stats"):
            stats = self._stats(acts, config, ctx, focus)
        with ctx.stage("figures"):
            figures = self._figures(model, acts, stats, focus)
        return self._result(model, config, items, stats, focus, figures)

    # ---- stimuli and recording --------------------------------------------------------
    def _stimuli(self, model, config) -> dict:
        text = _text(config)
        token_id = word_token(config.word, model, config.leading_space)
        shown = model.decode([token_id])
        tokens = np.asarray(model.encode(text), dtype=np.int64)
        many = stimuli.word_in_contexts(text, model, [config.word], config.context,
                                        leading_space=config.leading_space)
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

    def _record(self, model, items, config, ctx) -> dict:
        """set -> stage -> array of shape ``(n_layers, n, width)`` (float32)."""
        sites = list(SITES.values())
        n = items["n"]
        # The seed drops position 0 of the long sequence (no context; GPT-2's attention sink).
        one = record(model, items["one"], sites=sites, positions=[np.arange(1, n + 1)], batch_size=1,
                     progress=ctx.progress)
        many = record(model, items["many"], sites=sites, positions="last", batch_size=config.batch_size,
                      progress=ctx.progress)
        return {"one": {s: one[SITES[s]][:, 0] for s in STAGES},
                "many": {s: many[SITES[s]][:, :, 0] for s in STAGES}}

    # ---- statistics -------------------------------------------------------------------
    def _stats(self, acts, config, ctx, focus) -> dict:
        n_layers, n = acts["one"]["in"].shape[:2]
        pr = {s: np.zeros((n_layers, 4)) for s in SETS}
        effdim = {s: np.zeros((n_layers, 4), dtype=np.int64) for s in SETS}
        rsa = {s: np.zeros((n_layers, 6)) for s in SETS}
        boot = {s: np.zeros((config.n_boot, n_layers, 6)) for s in SETS}
        # One set of item resamples per sequence set, shared by all layers and pairs; the two sets hold
        # different items, so their resamples are independent and the difference's interval is valid.
        counts = {s: resample_counts(ctx.rng, n, config.n_boot) for s in SETS}
        focus_matrices = {}
        for layer in tqdm(range(n_layers), desc="mlp-stages stats", unit="layer",
                          disable=None if ctx.progress is None else not ctx.progress):
            for which in SETS:
                X = acts[which]
                mats = np.stack([cosine_matrix(X[s][layer]) for s in STAGES])  # (4, n, n)
                for i, s in enumerate(STAGES):
                    pr[which][layer, i], effdim[which][layer, i] = dimensionality(
                        X[s][layer], config.threshold, what=f"{SITES[s]} at layer {layer} ({which}-sequence set)")
                triangles = [upper(m) for m in mats]
                rsa[which][layer] = [np.corrcoef(triangles[a], triangles[b])[0, 1] for a, b in PAIRS]
                boot[which][:, layer] = rsa_bootstrap(mats, PAIRS, counts[which])
                if layer == focus:
                    focus_matrices[which] = mats
        ci = {s: percentile_ci(boot[s], CI_LEVEL) for s in SETS}  # (2, n_layers, 6)
        diff_ci = percentile_ci(boot["one"] - boot["many"], CI_LEVEL)
        return {"pr": pr, "effdim": effdim, "rsa": rsa, "ci": ci, "diff_ci": diff_ci,
                "differs": (diff_ci[0] > 0) | (diff_ci[1] < 0), "focus_matrices": focus_matrices}

    # ---- results ----------------------------------------------------------------------
    def _result(self, model, config, items, stats, focus, figures) -> Result:
        n_layers = model.n_layers
        pr, effdim, rsa, ci, diff_ci = (stats[k] for k in ("pr", "effdim", "rsa", "ci", "diff_ci"))
        meaning = stage_meaning(model)
        layers = []
        for layer in range(n_layers):
            entry = {"layer": layer, "stages": {
                s: {"pr_one": pr["one"][layer, i], "effdim_one": int(effdim["one"][layer, i]),
                    "pr_many": pr["many"][layer, i], "effdim_many": int(effdim["many"][layer, i])}
                for i, s in enumerate(STAGES)}}
            for which in SETS:
                entry[f"rsa_{which}"] = dict(zip(PAIR_NAMES, rsa[which][layer]))
            for which in SETS:
                entry[f"rsa_{which}_ci"] = {p: ci[which][:, layer, j] for j, p in enumerate(PAIR_NAMES)}
            entry["rsa_diff_ci"] = {p: diff_ci[:, layer, j] for j, p in enumerate(PAIR_NAMES)}
            layers.append(entry)
        n = items["n"]
        summary = {
            "word": items["word"], "token_id": items["token_id"], "text": config.source(),
            "n_occurrences": items["n_occurrences"], "n_dropped": items["n_dropped"],
            "n_capped": items["n_capped"], "n_targets": n, "long_sequence_tokens": n + 1,
            "context": config.context, "focus_layer": focus, "threshold": config.threshold,
            "n_boot": config.n_boot, "ci_level": CI_LEVEL, "mlp_kind": model.adapter.mlp_kind,
            "activation": activation_name(model), "stages": {s: {"site": SITES[s], "meaning": meaning[s]}
                                                             for s in STAGES},
            "layers": layers,
        }
        key_numbers = self._key_numbers(model, items, stats, focus)
        return Result(summary=summary, tables=self._tables(model, items, stats), figures=figures,
                      key_numbers=key_numbers, notes=self._notes(model, config, items))

    def _key_numbers(self, model, items, stats, focus) -> list:
        n = items["n"]
        pr, effdim, rsa, ci, diff_ci = (stats[k] for k in ("pr", "effdim", "rsa", "ci", "diff_ci"))
        rows = [
            ("Items per set", f"{n}: positions 1..{n} of one {n + 1}-token sequence; {n} sequences of "
                              f"{items['many'].lengths[0]} tokens ending in {items['word']!r}",
             f"{items['n_dropped']} of {items['n_occurrences']} occurrences dropped (too little context)"
             + (f", {items['n_capped']} thinned out" if items["n_capped"] else "")),
            ("MLP stages on this model", _kind_sentence(model), ""),
        ]
        for i, s in enumerate(STAGES):
            rows.append((f"Layer {focus} {SITES[s]}: PR / eff. dim.",
                         f"one {pr['one'][focus, i]:.1f} / {effdim['one'][focus, i]}; "
                         f"many {pr['many'][focus, i]:.1f} / {effdim['many'][focus, i]}", ""))
        for j, p in enumerate(PAIR_NAMES):
            lo, hi = diff_ci[:, focus, j]
            verdict = "differ" if stats["differs"][focus, j] else "no clear difference"
            one, many = (f"{w} {rsa[w][focus, j]:.3f} [{ci[w][0, focus, j]:.3f}, {ci[w][1, focus, j]:.3f}]"
                         for w in SETS)
            rows.append((f"Layer {focus} RSA {p}", f"{one}; {many}",
                         f"one − many: {CI_LEVEL:.0f}% CI [{lo:.3f}, {hi:.3f}], {verdict}"))
        k = int(stats["differs"].sum())
        rows.append(("RSA scores where one and many differ", f"{k} of {stats['differs'].size} (layer × pair)",
                     f"{CI_LEVEL:.0f}% bootstrap CI of one − many excludes 0; uncorrected for the "
                     f"{stats['differs'].size} comparisons"))
        return rows

    def _tables(self, model, items, stats) -> dict:
        n_layers = len(stats["pr"]["one"])
        dim_rows, rsa_rows = [], []
        for layer in range(n_layers):
            for which in SETS:
                for i, s in enumerate(STAGES):
                    ed = int(stats["effdim"][which][layer, i])
                    dim_rows.append((layer, SITES[s], which, stats["pr"][which][layer, i], ed, ed - 1))
                for j, p in enumerate(PAIR_NAMES):
                    lo, hi = stats["ci"][which][:, layer, j]
                    rsa_rows.append((layer, p, which, stats["rsa"][which][layer, j], lo, hi))
            for j, p in enumerate(PAIR_NAMES):
                lo, hi = stats["diff_ci"][:, layer, j]
                diff = stats["rsa"]["one"][layer, j] - stats["rsa"]["many"][layer, j]
                rsa_rows.append((layer, p, "one-many", diff, lo, hi))
        n = items["n"]
        one_ids = items["one"].ids[0][1:]
        many = items["many"]
        item_table = pd.concat([
            pd.DataFrame({"set": "one", "item": np.arange(n), "text_position": np.arange(1, n + 1),
                          "token": model.token_texts(one_ids), "context": ""}),
            pd.DataFrame({"set": "many", "item": np.arange(n), "text_position": many.meta["position"].to_numpy(),
                          "token": model.token_texts(many.meta["token"].to_numpy()),
                          "context": [model.decode(ids) for ids in many.ids]}),
        ], ignore_index=True)
        return {
            "dimensionality": pd.DataFrame(dim_rows, columns=["layer", "site", "set", "participation_ratio",
                                                              "effective_dim", "effective_dim_seed_index"]),
            "rsa": pd.DataFrame(rsa_rows, columns=["layer", "pair", "set", "r", "ci_low", "ci_high"]),
            "items": item_table,
        }

    def _notes(self, model, config, items) -> list[str]:
        meaning = stage_meaning(model)
        notes = list(items["many"].notes)
        if items["n_capped"]:
            notes.append(f"{items['n_capped']} of {items['n_capped'] + items['n']} usable occurrences were left out "
                         f"to keep max_targets={config.max_targets} (evenly spaced through the text); raise "
                         "max_targets to use more (bootstrap time grows with its square).")
        notes += [
            "Stages on this model: " + "; ".join(f"{SITES[s]} = {meaning[s]}" for s in STAGES) + ".",
            "Effective dimensionality here is the number of components needed to pass the threshold; the seed "
            "returns np.where(cumPctVar > 95)[0][0], a 0-based index, so the seed's value is ours minus one "
            "(tables/dimensionality.csv has both).",
            f"n_targets counts the short sequences kept ({items['n']}); the seed's ntargets counts every occurrence, "
            "including those whose slice tokens[idx-9:idx+1] breaks for lack of context. The long sequence has "
            "n_targets + 1 tokens so that both sets hold the same number of items.",
            "As in the seed, the long sequence is the start of the text, unrelated to the word: its items are "
            "different tokens in one context, the short set's are one token in different contexts.",
            "Bootstrap: items are resampled with replacement, the same resample for both stages of a pair; pairs "
            "of copies of one item are left out of the resampled triangle (their cosine is 1 in every stage and "
            "would inflate r). The one-minus-many interval uses independent resamples of the two sets.",
            "Statistics are computed in float64 (the seed works in float32); values agree to about 1e-6.",
            "Histogram x-ranges show the central 99% of the values (the seed fixed [-5, 5] for GPT-2), and the "
            "stage-vs-stage cosine figure covers both sets (the seed drew the one-sequence set only).",
        ]
        if model.prepend_bos:
            notes.append(f"{model.name} gets a BOS token before every sequence (its family's policy); it is never "
                         "recorded, and the long sequence's items are still positions 1..n of the text's tokens.")
        return notes

    # ---- figures ----------------------------------------------------------------------
    def _figures(self, model, acts, stats, focus) -> dict:
        kind = _kind_sentence(model)
        labels = [SITES[s] for s in STAGES]
        n_layers = len(stats["pr"]["one"])
        figures = {}

        fig, axes = figure(2, size=(12, 4))
        values = {w: [acts[w][s][focus] for s in STAGES] for w in SETS}
        xlim = central_range(values["one"] + values["many"])
        for ax, which, letter in zip(axes, SETS, "AB"):
            for i, s in enumerate(STAGES):
                density_curve(ax, values[which][i], label=f"L{focus} {SITES[s]}", color=COLORS[i])
            ax.set(xlabel="Activation value", ylabel="Density", xlim=xlim, title=f"{letter}) {SET_TITLES[which]}")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
        figures["activation_histograms"] = (fig, f"Distribution of activation values at layer {focus}, per MLP "
                                                 f"stage, for the one-sequence (A) and many-sequence (B) items. {kind}")

        fig, axes = figure(4, 2, size=(14, 7))
        for row, which in enumerate(SETS):
            axis_label = "Tokens" if which == "one" else "Occurrences"
            for i, s in enumerate(STAGES):
                matrix_image(axes[row, i], stats["focus_matrices"][which][i])
                axes[row, i].set(xticks=[], yticks=[], xlabel=axis_label, ylabel=axis_label,
                                 title=f"{SET_TITLES[which]}: L{focus} {SITES[s]}")
        figures["cosine_matrices"] = (fig, f"Cosine similarity between items at layer {focus}, per stage: different "
                                           "tokens of one sequence (top, in text order) and the target word in "
                                           "different short sequences (bottom, in text order).")

        fig, axes = figure(2, size=(12, 3.8))
        for ax, which, letter in zip(axes, SETS, "AB"):
            for i, s in enumerate(STAGES):
                density_curve(ax, upper(stats["focus_matrices"][which][i]), label=f"L{focus} {SITES[s]}",
                              color=COLORS[i])
            ax.set(xlabel="Cosine similarity", ylabel="Density", title=f"{letter}) {SET_TITLES[which]}")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
        figures["cosine_distributions"] = (fig, f"Distribution of the pairwise cosine similarities (upper "
                                                f"triangles) at layer {focus}, per stage.")

        figures["stage_vs_stage"] = self._stage_vs_stage(acts, focus, kind)
        figures["rsa_focus"] = self._rsa_focus(stats, focus)
        figures["dimensionality_focus"] = self._dimensionality_focus(stats, focus, labels)
        figures["laminar_profiles"] = self._profiles(stats, labels, n_layers)

        fig, axes = figure(4, size=(13, 3.3))
        titles = ["A) One-seq part. ratio", "B) One-seq eff. dim.", "C) Many-seq part. ratio", "D) Many-seq eff. dim."]
        for ax, (which, metric), title in zip(axes, [(w, m) for w in SETS for m in ("pr", "effdim")], titles):
            violins(ax, stats[metric][which], list(STAGES))
            ax.set(title=title, ylabel="Participation ratio" if metric == "pr" else "Effective dim.", xlabel="Stage")
        figures["dimensionality_violins"] = (fig, f"Participation ratio and effective dimensionality over all "
                                                  f"{n_layers} layers, per stage (in, pre, post, out = mlp.in, "
                                                  "mlp.pre, mlp.post, mlp.out).")
        return figures

    def _stage_vs_stage(self, acts, focus, kind):
        fig, axes = figure(3, 2, size=(12, 7.5))
        for row, which in enumerate(SETS):
            X = {s: acts[which][s][focus] for s in STAGES}
            in_out = cosine_matrix(X["in"], X["out"])
            pre_post = cosine_matrix(X["pre"], X["post"])
            for ax, matrix, (a, b), letter in zip(axes[row], (in_out, pre_post), (("in", "out"), ("pre", "post")),
                                                  "AB" if row == 0 else "DE"):
                low, high = central_range([matrix], symmetric=True)
                matrix_image(ax, matrix, vmin=low, vmax=high, cmap="plasma")
                ax.set(xticks=[], yticks=[], xlabel=f"Items ({SITES[b]})", ylabel=f"Items ({SITES[a]})",
                       title=f"{letter}) {SET_TITLES[which]}: {SITES[a]} vs {SITES[b]}")
            ax = axes[row, 2]
            density_curve(ax, in_out, label="mlp.in vs mlp.out", color=COLORS[0])
            density_curve(ax, pre_post, label="mlp.pre vs mlp.post", color=COLORS[1])
            ax.set(xlabel="Cosine similarity", ylabel="Density", title=f"{'CF'[row]}) Distributions")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
        return fig, (f"Cosine similarity between the items at two stages, layer {focus}: mlp.in vs mlp.out (both "
                     "d_model wide) and mlp.pre vs mlp.post (both d_mlp wide); the diagonal pairs an item with "
                     f"itself. Colour limits cover the central 99% of values. {kind}")

    def _rsa_focus(self, stats, focus):
        fig, (a, b) = figure(2, size=(12, 3.8))
        rsa, ci = stats["rsa"], stats["ci"]
        values = np.stack([rsa["one"][focus], rsa["many"][focus]], axis=1)
        low = np.stack([ci["one"][0, focus], ci["many"][0, focus]], axis=1)
        high = np.stack([ci["one"][1, focus], ci["many"][1, focus]], axis=1)
        bars_with_ci(a, values, low, high, PAIR_NAMES, [SET_TITLES[w] for w in SETS])
        bottom = float(np.nanmin(low))
        a.set(xlabel="Stage pair", ylabel="RSA score", ylim=(min(0.0, bottom - 0.05), 1.0),
              title=f"A) RSA at layer {focus}")
        a.legend(fontsize=8, loc="lower left")
        diff = rsa["one"][focus] - rsa["many"][focus]
        dlo, dhi = stats["diff_ci"][:, focus]
        b.axhline(0, color="k", linewidth=0.8, linestyle="--")
        b.errorbar(np.arange(6), diff, yerr=np.clip(np.vstack([diff - dlo, dhi - diff]), 0, None), fmt="o",
                   color="k", markerfacecolor="tab:green", markersize=8, capsize=4)
        b.set(xticks=range(6), xticklabels=PAIR_NAMES, xlabel="Stage pair", ylabel="RSA one − many",
              title="B) Difference")
        return fig, (f"RSA between the cosine matrices of two MLP stages at layer {focus} (A), with "
                     f"{CI_LEVEL:.0f}% bootstrap intervals over items, and the one-sequence minus many-sequence "
                     "difference with its interval (B): where it excludes the dashed zero line, the two designs "
                     "differ. in, pre, post, out = mlp.in, mlp.pre, mlp.post, mlp.out.")

    def _dimensionality_focus(self, stats, focus, labels):
        fig, axes = figure(3, 2, size=(12, 6))
        for row, which in enumerate(SETS):
            pr, ed = stats["pr"][which][focus], stats["effdim"][which][focus]
            axes[row, 0].bar(range(4), pr, color=COLORS[:4])
            axes[row, 1].bar(range(4), ed, color=COLORS[:4])
            for i in range(4):
                axes[row, 2].plot(pr[i], ed[i], MARKERS[i], color=COLORS[i], markersize=10, label=labels[i],
                                  markeredgecolor="k")
            letters = "ABC" if row == 0 else "DEF"
            axes[row, 0].set(xticks=range(4), xticklabels=labels, ylabel="PR",
                             title=f"{letters[0]}) {SET_TITLES[which]}: participation ratio")
            axes[row, 1].set(xticks=range(4), xticklabels=labels, ylabel="Eff. dim.",
                             title=f"{letters[1]}) {SET_TITLES[which]}: effective dim.")
            axes[row, 2].set(xlabel="Participation ratio", ylabel="Effective dim.", title=f"{letters[2]}) Comparison")
            axes[row, 2].legend(fontsize=8)
        fig.suptitle(f"Dimensionality at layer {focus}", fontweight="bold")
        return fig, (f"Participation ratio and effective dimensionality (components for the variance threshold; "
                     f"the seed's value + 1) of the items at layer {focus}, per stage.")

    def _profiles(self, stats, labels, n_layers):
        fig, axes = figure(3, 3, size=(14, 10))
        layers = np.arange(n_layers)
        for row, which in enumerate(SETS):
            for i in range(4):
                layer_profile(axes[row, 0], stats["pr"][which][:, i], color=COLORS[i], marker=MARKERS[i])
                layer_profile(axes[row, 1], stats["effdim"][which][:, i], color=COLORS[i], marker=MARKERS[i])
            for j, p in enumerate(PAIR_NAMES):
                lo, hi = stats["ci"][which][:, :, j]
                axes[row, 2].fill_between(layers, lo, hi, color=COLORS[j], alpha=0.15, linewidth=0)
                layer_profile(axes[row, 2], stats["rsa"][which][:, j], significant=stats["differs"][:, j],
                              color=COLORS[j], marker=MARKERS[j])
            letters = "ABC" if row == 0 else "DEF"
            axes[row, 0].set(ylabel="Participation ratio", title=f"{letters[0]}) {SET_TITLES[which]} (part. ratio)")
            axes[row, 1].set(ylabel="Effective dim.", title=f"{letters[1]}) {SET_TITLES[which]} (eff. dim.)")
            axes[row, 2].set(ylabel="RSA score", title=f"{letters[2]}) {SET_TITLES[which]} (RSA)")
            for col, names in enumerate((labels, labels, PAIR_NAMES)):
                marker_legend(axes[row, col], names, fontsize=7, ncol=2)
        for col, which in enumerate(SETS):
            ax = axes[2, col]
            for i in range(4):
                layer_scatter(ax, stats["pr"][which][:, i], stats["effdim"][which][:, i], marker=MARKERS[i],
                              n_layers=n_layers, label=labels[i])
            r = np.corrcoef(stats["pr"][which].ravel(), stats["effdim"][which].ravel())[0, 1]
            ax.set(xlabel="Participation ratio", ylabel="Effective dim.",
                   title=f"{'GH'[col]}) {SET_TITLES[which]}: comparison (r = {r:.2f})")
            layer_colorbar(ax, n_layers)
        ax = axes[2, 2]
        for j, p in enumerate(PAIR_NAMES):
            layer_scatter(ax, stats["rsa"]["one"][:, j], stats["rsa"]["many"][:, j], marker=MARKERS[j],
                          n_layers=n_layers, label=p)
        lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), 1.0]
        ax.plot(lims, lims, "k--", linewidth=0.6)
        ax.set(xlabel="RSA, one sequence", ylabel="RSA, many sequences", xlim=lims, ylim=lims,
               title="I) RSA comparison")
        layer_colorbar(ax, n_layers)
        return fig, ("Laminar profiles. Rows 1-2: participation ratio, effective dimensionality and RSA per layer "
                     f"for each set; RSA with its {CI_LEVEL:.0f}% bootstrap band, filled markers where one and many "
                     "sequences differ (interval of the difference excludes 0), hollow where not. Row 3: the two "
                     "dimensionality measures against each other and RSA of one vs many sequences, coloured by "
                     "layer (markers: stage or pair as in the legends above).")


EXPERIMENT = MlpStagesExperiment()
