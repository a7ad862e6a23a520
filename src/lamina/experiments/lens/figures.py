"""Figures of ``lens``, drawn from its result (no model needed)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator

from ...plots import figure
from ...plots.profiles import replicate_band
from ..base import Figure
from ..settings import setting
from .result import METRICS, LensResult

COLORS = {"logit": "C0", "tuned": "C1"}
TITLES = {"cross_entropy": "A) Cross-entropy with the next token", "kl": "B) KL(final ‖ lens)",
          "top1_agreement": "C) Top-1 agreement with the final prediction", "entropy": "D) Entropy of the lens"}
LABELS = {"cross_entropy": "nats", "kl": "nats", "top1_agreement": "percent of tokens", "entropy": "nats"}


@dataclass
class LensOptions:
    show_windows: bool = True  # each window's profile as a faint line behind the mean
    # cross-entropy and KL on log axes (KL: symlog, linear below 0.01): the embeddings' entry can be orders
    # of magnitude above the rest (a tied head decodes a token's embedding as that token, with certainty)
    log_scale: bool = True
    # at most this many entries (evenly spread, the last always) in the predictions figure
    grid_rows: int = setting(32, ge=2)
    token_chars: int = setting(8, ge=1)  # characters of a token's text shown in a cell


def figures(result: LensResult, config, options: LensOptions) -> dict[str, Figure]:
    return {"lens_profile": _profiles(result, options), "predictions": _predictions(result, options)}


def _profiles(result: LensResult, options: LensOptions) -> Figure:
    fig, axes = figure(2, 2, size=(13, 8.5))
    for ax, (i, metric) in zip(axes.ravel(), enumerate(METRICS)):
        k_scale = 100.0 if metric == "top1_agreement" else 1.0
        for k, lens in enumerate(result.lenses):
            p = getattr(lens, metric)
            reps = result.windows.values[k, i].T * k_scale if options.show_windows else None
            replicate_band(ax, p.mean * k_scale, p.ci_low * k_scale, p.ci_high * k_scale, replicates=reps,
                           label=f"{lens.kind} lens", color=COLORS.get(lens.kind, f"C{k}"), level=result.level)
        ax.set(title=TITLES[metric], ylabel=LABELS[metric], xlabel="hidden entry (0 = embeddings)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "cross_entropy":
            ax.axhline(result.check.model_loss, color="k", linewidth=0.6, linestyle="--", label="model's own loss")
        if metric == "top1_agreement":
            ax.axhline(50, color="k", linewidth=0.6, linestyle=":")
        if options.log_scale and metric == "kl":
            ax.set_yscale("symlog", linthresh=1e-2)
        if options.log_scale and metric == "cross_entropy":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    lenses = " and the tuned lens (orange)" if len(result.lenses) > 1 else ""
    text = (f"The laminar profile of prediction: each hidden entry decoded by the logit lens (blue){lenses} at every "
            f"token of {result.n_replicates} windows of {result.window} tokens; per entry the mean over windows with "
            f"its {result.level:g}% t interval shaded (windows as the unit)"
            f"{'; faint lines: each window' if options.show_windows else ''}. A) −log q(next token), dashed: the "
            f"model's own mean loss; B) KL from the model's final distribution; C) how often the lens's top token is "
            f"the model's own top token (dotted: 50%); D) the lens distribution's entropy. The last entry is the "
            f"model's output: KL 0, agreement 100% by construction.")
    return Figure(fig, text)


def _rows(n_entries: int, at_most: int) -> np.ndarray:
    """Entries shown in the predictions grid: all, or ``at_most`` evenly spread with the last kept."""
    if n_entries <= at_most:
        return np.arange(n_entries)
    return np.unique(np.linspace(0, n_entries - 1, at_most).round().astype(int))


@functools.cache
def _has_glyph(char: str) -> bool:
    """Whether the figures' font draws ``char`` (a token of another script would print a warning per glyph)."""
    from matplotlib import font_manager

    return font_manager.get_font(font_manager.findfont("DejaVu Sans")).get_char_index(ord(char)) != 0


def _short(text: str, chars: int) -> str:
    """A token's text for a cell: control characters escaped, glyphs the font lacks as □, at most ``chars``."""
    text = text.replace("\n", "\\n").replace("\t", "\\t").replace("$", r"\$")
    text = "".join(c if _has_glyph(c) else "□" for c in text)
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _predictions(result: LensResult, options: LensOptions) -> Figure:
    g, text = result.grid, result.token_texts
    rows = _rows(g.top1_id.shape[1], options.grid_rows)
    n_cols = len(g.position)
    fig, axes = figure(len(result.lenses), 1, size=(1.1 * n_cols * len(result.lenses) + 1.5, 0.32 * len(rows) + 2))
    axes = np.atleast_1d(axes)
    for ax, (k, lens) in zip(axes, enumerate(result.lenses)):
        prob = g.top1_p[k][rows]
        image = ax.imshow(prob, vmin=0, vmax=1, cmap="Blues", aspect="auto", origin="lower", interpolation="nearest")
        for r, entry in enumerate(rows):
            for c in range(n_cols):
                tid = g.top1_id[k, entry, c]
                hit = tid == g.next_id[c]
                ax.text(c, r, _short(text.get(str(tid), "?"), options.token_chars), ha="center", va="center",
                        fontsize=6.5, color="white" if prob[r, c] > 0.6 else "black",
                        fontweight="bold" if hit else "normal")
        ax.set_yticks(range(len(rows)), [str(e) for e in rows], fontsize=7)
        ax.set_xticks(range(n_cols), [_short(text.get(str(t), "?"), options.token_chars) for t in g.token_id],
                      fontsize=7, rotation=45, ha="right")
        top = ax.secondary_xaxis("top")
        top.set_xticks(range(n_cols), [_short(text.get(str(t), "?"), options.token_chars) for t in g.next_id],
                       fontsize=7, rotation=45, ha="left")
        ax.set(ylabel="hidden entry", title=f"{lens.kind} lens")
        ax.spines[["top", "right"]].set_visible(True)
    fig.colorbar(image, ax=list(axes), label="top-1 probability under the lens", shrink=0.6)
    caption = (f"What each lens predicts at the last {n_cols} tokens of window 0 (positions {g.position[0]}–"
               f"{g.position[-1]}): the top-1 token of the lens at each hidden entry (rows), shaded by its probability "
               f"under the lens, bold where it is the actual next token. Bottom: the input token; top: the next token. "
               "The top row is the model's own prediction. □: a character the figure's font cannot draw.")
    return Figure(fig, caption)
