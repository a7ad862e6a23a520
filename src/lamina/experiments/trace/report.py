"""Report text of ``trace``: method, key numbers (estimate first), notes on cost, from the result."""

from __future__ import annotations

from ..base import KeyNumber, Report
from .result import Peak, TraceResult


def _ci(low: float, high: float, kind: str = "t interval") -> str:
    return "no interval (one prompt)" if low != low else f"95% {kind} [{low:.2f}, {high:.2f}] over prompts"


def _chosen(peak: Peak, layers: int) -> str:
    """A chosen layer's t interval, then the band that holds for a chosen layer."""
    if peak.ci_low != peak.ci_low:
        return "no interval (one prompt)"
    return (f"95% t interval [{peak.ci_low:.2f}, {peak.ci_high:.2f}] over prompts at that layer; the layer is chosen "
            f"by its mean, so: [{peak.band_low:.2f}, {peak.band_high:.2f}] simultaneous over the {layers} layers")


def _peak(peak: Peak) -> str:
    if peak.layer < 0:
        return "undefined (no prompt with clean > corrupted)"
    return f"layer {peak.layer}: {peak.mean:.2f}"


def method(result: TraceResult, config) -> str:
    source = ("the model's own top next token (answer=argmax) is the answer of each prompt" if result.answer == "argmax"
              else "prompts whose set answer is not the model's top next token are dropped")
    return (f"Causal tracing after Meng et al. (2022), Fig. 1, on {result.n_prompts} of the {result.n_candidates} "
            f"factual prompts shipped in lamina/data/facts.json ({source}). Clean run: p(answer) after the last "
            f"token. Corrupted runs: Gaussian noise of SD {result.noise:g} × the embeddings' SD (= {result.noise_sd:.3g}; "
            "the SD of hidden entry 0 over every prompt token) is added to each subject token's embedding (an add edit "
            f"of hidden at entry 0), {result.samples} seeded samples per prompt. Restored runs: each corrupted run with "
            "one site at one layer and one position patched back to its clean value (a patch edit from the clean "
            "recording); attn.out and mlp.out restore a window of "
            f"{config.window} layer(s) centred on the layer, hidden one entry (hidden entry l = the residual stream "
            "entering block l). The indirect effect of a (site, layer, position) is (restored − corrupted) / (clean − "
            "corrupted) p(answer), noise samples averaged, per prompt; positions are grouped in the paper's classes "
            "(first, middle and last subject token, first subsequent token, further tokens, last token), the prompts "
            "are the replicates: mean and 95% Student t interval. Tokens before the subject are never changed by the "
            "corruption (causal attention), so they are not restored.")


def _windowed_note(result: TraceResult, config) -> list[str]:
    """The known excesses of windowed attn.out / mlp.out restoration (docs/calibration.md, trace), where this run has
    it."""
    windowed = [s for s in ("attn.out", "mlp.out") if s in result.sites]
    if config.window <= 1 or not windowed:
        return []
    return [f"Windowed restoration ({' and '.join(windowed)}, window {config.window}): neighbouring layers restore "
            "mostly the same blocks and one block often carries the effect (SmolLM2-135M: block 0's MLP at the last "
            "subject token, block 23's attention at the last token), so most prompts' effects lie close together "
            "while the few whose restoration beats their own clean run carry much of the mean. Simulated on curves "
            "shaped on such runs (docs/calibration.md, trace), with 12 prompts the t interval at a fixed layer misses "
            "its mean about 8% (mlp.out, last subject token) to 20% (attn.out, last token); at the first layer past "
            "half at the last token the t interval misses about 19% and even the band about 8%; at the peak the band "
            "holds (under 1%). The misses fall almost all on one side (attn.out 207 of 207, mlp.out 75 of 83): the mean "
            "lies above the interval when the 12 prompts hold none of the few that beat their clean run, so the "
            "interval understates the restoration; no interval computed from such a sample does better short of being 2.5 times as wide "
            "(calibration/studies/trace_intervals.md). With bounded effects (Gemma-3-270M-like, window 6, no prompt "
            "beating its clean run) the last token's intervals hold (4–5%)."]


def report(result: TraceResult, config) -> Report:
    keys = []
    for site, trace in result.sites.items():
        ls, last, layers = trace.peak_last_subject, trace.peak_last, trace.mean.shape[1]
        keys.append(KeyNumber(f"{site}: peak effect at the last subject token", _peak(ls), _chosen(ls, layers)))
        keys.append(KeyNumber(f"{site}: first layer restoring more than half at the last token",
                              _peak(last).replace("undefined (no prompt with clean > corrupted)", "none"),
                              _chosen(last, layers)))
    skewed = "skewness-corrected t interval (Hall 1992)"
    keys += [KeyNumber("p(answer), clean", f"{result.clean_p.mean:.3f}",
                       _ci(result.clean_p.ci_low, result.clean_p.ci_high, skewed)),
             KeyNumber("p(answer), subject corrupted", f"{result.corrupted_p.mean:.3f}",
                       _ci(result.corrupted_p.ci_low, result.corrupted_p.ci_high, skewed)),
             KeyNumber("Prompts traced", f"{result.n_prompts} of {result.n_candidates}",
                       f"{result.normalised_prompts} with clean > corrupted (normalised effect defined)")]
    notes = ["Intervals: per position class and layer, a Student t interval over prompts (the tables, figure B): "
             "pointwise, it is for a layer fixed in advance. The peak and the first layer past half are chosen by "
             "their means, which favours a layer whose mean erred upwards, so their key numbers also give the "
             "class's simultaneous band (sign flips of whole prompts, max |t| over the layers), which holds for any "
             "layer however chosen. p(answer) is skewed across prompts (corrupted p spans orders of magnitude), so "
             "its intervals are Hall's skewness-corrected t intervals. The levels of all of them, simulated with "
             "per-prompt effects as skewed and heavy-tailed as real runs', are in docs/calibration.md (trace): a few "
             "prompts whose restoration beats their own clean run (a low clean p) make t intervals miss their mean "
             "somewhat more than 5% (6–8%), with 12 or 40 prompts; at the first layer past half at the last token, "
             "prompts split into those whose answer has already moved to the last token and those whose has not, "
             "and 12 prompts' t interval there misses about 1 time in 10 (the band: 2 in 100); corrupted p's "
             "interval misses about 9% with 12 prompts (a plain t interval: 14%), 7% with 40.",
             *_windowed_note(result, config),
             f"Cost: {result.forwards} sequences through the model (record calls batch the positions of one prompt); "
             "it grows with samples × prompts × layers × (subject and later tokens) per site.",
             "Null: restoring a state the corruption did not change gives restored = corrupted, an effect of 0 at "
             "every layer; restoring every position of one hidden entry gives back the clean run (effect 1).",
             "Meng et al. use 10 noise samples, window 10 for attention and MLP, and GPT-2 XL / GPT-J; this run "
             f"used {result.samples} samples and window {config.window} (lamina's defaults: 2 and 1, and 12 prompts, for CPU "
             "cost; --set n_prompts=none samples=10 for the paper's sampling)."]
    notes += list(result.data_notes)
    return Report(method=method(result, config), key_numbers=tuple(keys), notes=tuple(notes))
