"""demo-norms (compute): record the hidden entries on windows of a text, mean log norm per entry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import lamina
from lamina import LaminaError
from lamina.experiments import Context, ModelFacts
from lamina.experiments.across import across_tests
from lamina.experiments.base import profile_table

from .result import NormsResult

TEXT = (
    "The river ran low that summer, and the boats that had carried grain to the city lay on their sides in the "
    "mud. Children walked out on the dry bed to look for coins, and the old men on the bridge argued about "
    "whether the rain would come before the harvest. It did not. In the autumn the merchants raised their "
    "prices, the bakers made smaller loaves, and the council met every evening in the hall by the market to "
    "decide what should be done. Some wanted a canal from the northern lakes; others said the city should "
    "buy grain from the coast and carry it by road. In the end they did both, and neither was finished "
    "before the river rose again the next spring."
)


@dataclass
class NormsConfig:
    window: int = 8  # tokens per window
    replicates: int = 3  # windows: the unit of the intervals
    alpha: float = 0.05
    starts: tuple[int, ...] | None = None  # window starts (tokens); None: spread over the text

    def check(self):
        if self.window < 2:
            raise LaminaError(f"window must be at least 2 tokens, not {self.window}.")
        if self.replicates < 2:
            raise LaminaError(f"replicates must be at least 2 (an interval needs two windows), not {self.replicates}.")
        if not 0 < self.alpha < 1:
            raise LaminaError(f"alpha must be between 0 and 1, not {self.alpha}.")
        if self.starts is not None and len(self.starts) != self.replicates:
            raise LaminaError(f"starts gives {len(self.starts)} windows for replicates={self.replicates}.")


def _stimuli(model, config: NormsConfig) -> lamina.Stimuli:
    room = model.context_length - int(model.prepend_bos)
    if config.starts is None:
        return lamina.stimuli.windows(TEXT, model, config.window, config.replicates, max_length=room)
    tokens = np.asarray(lamina.stimuli.encode(model, TEXT), dtype=np.int64)
    if max(config.starts) + config.window > len(tokens) or min(config.starts) < 0:
        raise LaminaError(f"starts={config.starts}: a window of {config.window} tokens runs past the text "
                          f"({len(tokens)} tokens).")
    return lamina.Stimuli([tokens[s:s + config.window] for s in config.starts],
                          pd.DataFrame({"start": list(config.starts)}))


def compute(model, config: NormsConfig, ctx: Context) -> NormsResult:
    with ctx.stage("data"):
        stim = _stimuli(model, config)
    with ctx.stage("record"):
        rec = lamina.record(model, stim, sites=["hidden"], batch_size=len(stim), progress=ctx.progress, loss=False)
    with ctx.stage("stats"):
        hidden = np.asarray(rec["hidden"], dtype=np.float64)  # (entries, windows, positions, width)
        per_window = np.log(np.linalg.norm(hidden, axis=-1)).mean(axis=2).T  # (windows, entries)
        entries = across_tests(per_window, alpha=config.alpha)
    return NormsResult(window=config.window, replicates=len(stim), alpha=config.alpha,
                       starts=tuple(int(s) for s in stim.meta["start"]), entries=tuple(entries),
                       model=ModelFacts.of(model), per_window=per_window)


def tables(result: NormsResult) -> dict[str, pd.DataFrame]:
    n_windows, n_entries = result.per_window.shape
    norms = pd.DataFrame({"entry": np.arange(n_entries),
                          **{f: result.column(f) for f in ("mean", "ci_low", "ci_high", "t", "p", "p_corrected")},
                          "significant": [e.significant for e in result.entries]})
    windows = pd.DataFrame({"window": np.repeat(np.arange(n_windows), n_entries),
                            "start": np.repeat(result.starts, n_entries),
                            "entry": np.tile(np.arange(n_entries), n_windows),
                            "log_norm": result.per_window.ravel()})
    return {"norms": norms, "windows": windows}


def profiles(result: NormsResult) -> pd.DataFrame:
    """``log_norm`` per hidden entry: the windows' mean with its 95% t interval."""
    return profile_table(("hidden", "log_norm", result.column("mean"),
                          np.stack([result.column("ci_low"), result.column("ci_high")])))


def control_settings(trained_run) -> dict:
    """An untrained control in ``lamina compare`` reads the very windows its trained model's run read."""
    return {"starts": lamina.Run.load(trained_run).result.starts}
