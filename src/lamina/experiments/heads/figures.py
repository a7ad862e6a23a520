"""Figures of ``heads``, drawn from its result (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...plots import figure
from ..base import Figure
from ..presentation import colormap
from .result import HeadsResult

PANELS = (("sink", "A) sink (position 0)", (0, 1)), ("previous", "B) previous token", (0, 1)),
          ("induction", "C) induction-like", (0, 1)), ("entropy", "D) entropy (nats)", None))


@dataclass
class HeadsOptions:
    colormap: str = colormap("viridis")  # the heatmaps' colour map
    log_ratio: bool = True  # the massive-activation ratio on a log axis


def _mark_local(ax, kinds, horizontal: bool):
    """Grey bands on local (sliding-window) layers: ``horizontal`` for a layer × head heatmap's rows."""
    for layer, kind in enumerate(kinds):
        if kind == "local":
            (ax.axhspan if horizontal else ax.axvspan)(layer - 0.5, layer + 0.5, color="0.5", alpha=0.12, lw=0)


def _label_local(ax, kinds):
    """Layer ticks of a layer × head heatmap, local layers labelled "L" (an overlay would hide the colours)."""
    if "local" in kinds:
        ax.set_yticks(range(len(kinds)), [f"{i}{' L' if k == 'local' else ''}" for i, k in enumerate(kinds)],
                      fontsize=6)


def figures(result: HeadsResult, config, options: HeadsOptions) -> dict[str, Figure]:
    n_layers, n_heads = result.sink.mean.shape
    local = "local" in result.attention_kind
    fig, axes = figure(4, size=(max(12.0, 3 + 1.5 * n_heads), 0.25 * n_layers + 2.5))
    for ax, (name, title, limits) in zip(np.atleast_1d(axes), PANELS):
        values = getattr(result, name).mean
        vmin, vmax = limits if limits else (0, float(np.log(result.window + int(result.first_is_bos))))
        im = ax.imshow(values, aspect="auto", origin="lower", cmap=options.colormap, vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(n_heads))
        _label_local(ax, result.attention_kind)
    where = "the BOS token" if result.first_is_bos else "the window's first token"
    kinds = (" Layers marked L use local (sliding-window) attention, the others global." if local else "")
    out = {"head_scores": Figure(fig, (
        f"Per layer and head, the mean over {result.n_replicates} windows of {result.window} tokens of each window's "
        f"mean over query positions: attention to position 0 ({where}; A), to the previous token (B), to the tokens "
        f"after earlier occurrences of the query's token (C), and the pattern's entropy in nats (D; the colour scale "
        f"ends at log of the window's positions, uniform attention at the last query).{kinds}"))}

    m = result.massive
    fig, ax = figure(1, size=(8, 4))
    entries = np.arange(len(m.ratio))
    ax.plot(entries, m.ratio, "o-", color="C3", markersize=4, label="max |x| / median |x|")
    first = m.position == 0
    ax.plot(entries[first], m.ratio[first], "o", color="k", markersize=7, mfc="none", label="max at position 0")
    if local:
        _mark_local(ax, (*result.attention_kind, "global"), horizontal=False)
    if options.log_ratio:
        ax.set_yscale("log")
    ax.set_xticks(entries[::max(1, len(entries) // 16)])
    ax.set(xlabel="resid entry (0 = embeddings; entry l = input of block l)", ylabel="ratio",
           title="Massive activations in the raw residual stream")
    ax.legend(fontsize=8)
    out["massive_activations"] = Figure(fig, (
        "Per resid entry, the largest |activation| over every window, position and dimension divided by the median "
        "|activation| of that entry; circled where the largest sits at position 0 "
        f"({where}).{' Grey bands: entries entering local layers.' if local else ''}"))

    if result.norm_difference is not None:
        d = result.norm_difference
        fig, ax = figure(1, size=(3 + 0.8 * n_heads, 0.25 * n_layers + 2))
        # t, not the raw difference: head output norms differ widely between layers and heads
        t = np.clip(np.nan_to_num(d.t), -10, 10)
        lim = float(np.abs(t).max()) or 1.0
        im = ax.imshow(t, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="t, correct − incorrect mean norm")
        ys, xs = np.nonzero(d.significant)
        ax.plot(xs, ys, "k*", markersize=6)
        ax.set(title="attn.heads norm: correct − incorrect", xlabel="head", ylabel="layer", xticks=range(n_heads))
        _label_local(ax, result.attention_kind)
        corr = "sign-flip max-|t|" if result.correction == "max" else "Holm"
        out["correct_incorrect"] = Figure(fig, (
            f"Per layer and head, the one-sample t (clipped at ±10) over {result.n_split_windows} windows of the "
            f"difference between the mean norm of the head's output on tokens the model predicts correctly and "
            f"incorrectly (red: larger on correct tokens; the differences with intervals: tables/heads.csv; first "
            f"{result.skip_first} tokens of each window left out); stars: significant family-wise over layer × head "
            f"({corr}, α = {result.alpha})."))
    return out
