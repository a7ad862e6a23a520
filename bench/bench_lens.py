"""Item 9 (issue 27): the logit lens's decoding of every ``hidden`` entry against the same LM-head
applications written directly in torch.

    python bench/bench_lens.py --mode time --model smollm2-135m                 # both, interleaved, + check
    python bench/bench_lens.py --mode memory --model gemma3-270m --lib direct   # one contender: peak memory

The workload: 8 disjoint windows × 256 tokens of Alice (``lamina.stimuli.windows``, as the lens
experiment takes them; BOS in front), recorded once at every ``hidden`` entry (SmolLM2: 31 entries,
Gemma-3: 19) into one ``(entries, tokens, d_model)`` float32 array, and the next token of each
position. Both contenders decode that same array, so only the decoding is timed; per token and
entry each gives the lens's four metrics: cross-entropy against the next token, KL(final || entry),
top-1 agreement with the final entry's prediction and the entry's entropy.

    lamina   lamina.experiments.lens.decode.token_metrics: what the lens experiment calls (the
             softmax streamed over vocabulary chunks of 8,192 ids, tokens in blocks of
             max(1, 2^23 / (entries × chunk)); the final entry decoded twice, once for KL's
             log-normaliser: entries + 1 LM-head applications)
    direct   what a user writes with torch: the final entry's log_softmax(lm_head(x)) once (the KL
             reference, reused as the last entry's), then per entry norm → lm_head → log_softmax
             over all 2,048 tokens and the four metrics from it (F.kl_div with log_target, argmax,
             −Σ p log p); one entry's logits at a time besides the final one: entries applications

Time: interleaved rounds after a first round whose results are the check (``--mode check``: that round
alone): every metric of the two within ``--tolerance`` relative to max(1, |value|), no top-1 agreement
different; both are also compared with the metrics computed in float64 at the first 64 tokens (Gemma-3's
early entries have logits in the hundreds, where two float32 pipelines differ by more than 1e-4 nats).
Memory (``--mode memory``): one contender in a fresh process; after the model is loaded, the entries
recorded and the head's weights paged in (the recording skips the LM head; in case the weights are
memory-mapped and untouched), the kernel's
high-water mark of resident memory is reset (``/proc/self/clear_refs``), so the peak above that
baseline is the decoding's own. The issue's bound is one layer's full logits, tokens × V float32:
SmolLM2 2,048 × 49,152 × 4 B = 403 MB, Gemma-3 2,048 × 262,144 × 4 B = 2.1 GB.
"""

from __future__ import annotations

import argparse
import gc
import os

import numpy as np
import torch

import common

MODELS = ["smollm2-135m", "gemma3-270m"]
LIBS = ["lamina", "direct"]
WINDOW, WINDOWS = 256, 8
METRIC_NAMES = ["cross_entropy", "kl", "top1_agreement", "entropy"]
REF_TOKENS = 64  # tokens whose metrics are also computed in float64 (the check)


def prepare(name: str, windows: int = WINDOWS, n_entries: int | None = None):
    """The model, its lens head, every ``hidden`` entry ``(E, N, d)`` at the tokens and their next ids
    (``n_entries``: only the first ``n_entries - 1`` and the final one)."""
    import lamina
    from lamina.experiments.lens import compute
    from lamina.models.head import lm_head

    model = lamina.load(name)
    stim = lamina.stimuli.windows(lamina.data.book("alice"), model, WINDOW, windows,
                                  max_length=model.context_length - int(model.prepend_bos))
    assert (np.asarray(stim.next_ids) >= 0).all() and (stim.lengths == WINDOW).all()
    rec = lamina.record(model, stim, sites=["hidden"], loss=False, batch_size=windows, progress=False)
    known = rec.tokens["next_id"].to_numpy() >= 0
    targets = rec.tokens["next_id"].to_numpy()[known].astype(np.int64)
    hidden = compute.entries(rec, known, model.n_layers + 1)
    if n_entries is not None and n_entries < len(hidden):
        hidden = np.ascontiguousarray(np.concatenate([hidden[:n_entries - 1], hidden[-1:]]))
    del rec
    gc.collect()
    return model, lm_head(model), hidden, targets


def make_lamina(model, head, hidden, targets):
    from lamina.experiments.lens import compute, decode

    chunk = compute.LensConfig().vocab_chunk

    def run():
        return decode.token_metrics(head, hidden, targets, chunk)[0]
    return run


def make_direct(model, head, hidden, targets):
    """norm → lm_head → log_softmax per entry, as a torch user writes it (the model's own modules)."""
    import torch.nn.functional as F
    from lamina.models.sites import get_module

    hf = model.hf
    norm = get_module(hf, model.adapter.final_norm)  # hf.model.norm for both models
    out_emb = hf.get_output_embeddings()  # hf.lm_head
    cap = getattr(model.text_config, "final_logit_softcapping", None)  # None for both embedded models
    h = torch.from_numpy(hidden)
    y = torch.from_numpy(targets)[:, None]
    n_entries = len(h)

    def log_probs(x):
        logits = out_emb(x)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return torch.log_softmax(logits, dim=-1)

    def run():
        out = np.empty((4, n_entries, h.shape[1]))
        with torch.inference_mode():
            final = log_probs(h[-1])  # entry E-1 is the final norm's output already
            final_top = final.argmax(-1)
            for e in range(n_entries):
                logp = final if e == n_entries - 1 else log_probs(norm(h[e]))
                out[0, e] = -logp.gather(-1, y)[:, 0].numpy()
                out[1, e] = F.kl_div(logp, final, reduction="none", log_target=True).sum(-1).numpy()
                out[2, e] = (logp.argmax(-1) == final_top).numpy()
                out[3, e] = -(logp.exp() * logp).sum(-1).numpy()
                del logp
        return out
    return run


def make(lib: str, *prepared):
    return {"lamina": make_lamina, "direct": make_direct}[lib](*prepared)


def hwm_reset() -> float:
    """Reset this process's resident-memory high-water mark (VmHWM) to its current RSS; return that, MB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def compare(mine: np.ndarray, theirs: np.ndarray) -> dict:
    """max |difference| of the continuous metrics (and relative to max(1, |value|)); how many top-1
    agreements differ."""
    cont = [i for i in range(4) if i != 2]
    diff = {METRIC_NAMES[i]: float(np.abs(mine[i] - theirs[i]).max()) for i in cont}
    rel = {METRIC_NAMES[i]: float((np.abs(mine[i] - theirs[i]) / np.maximum(1.0, np.abs(theirs[i]))).max())
           for i in cont}
    return {"max_abs_diff": diff, "max_rel_diff": rel, "top1_mismatches": int((mine[2] != theirs[2]).sum()),
            "values": int(mine[2].size)}


def reference(model, head, hidden, targets, n_tokens: int) -> np.ndarray:
    """The four metrics at the first ``n_tokens`` tokens in float64 from the final norm's float32 output on (the
    norm's rounding is common to both contenders): which of the two float32 pipelines is nearer the exact
    values where they differ (early entries of Gemma-3 have logits in the hundreds)."""
    from lamina.experiments.lens import decode

    with torch.inference_mode():
        x = decode.prepared(head, torch.from_numpy(hidden[:, :n_tokens])).double()  # (E, n, d)
        w = head.weight.detach().double()
        b = None if head.bias is None else head.bias.detach().double()
        y = torch.from_numpy(targets[:n_tokens])[:, None]

        def logp_of(e):
            z = torch.nn.functional.linear(x[e], w, b)
            if head.softcap:
                z = torch.tanh(z / head.softcap) * head.softcap
            return torch.log_softmax(z, -1)

        final = logp_of(len(x) - 1)
        out = np.empty((4, len(x), n_tokens))
        for e in range(len(x)):
            logp = final if e == len(x) - 1 else logp_of(e)
            out[0, e] = -logp.gather(-1, y)[:, 0].numpy()
            out[1, e] = (final.exp() * (final - logp)).sum(-1).numpy()
            out[2, e] = (logp.argmax(-1) == final.argmax(-1)).numpy()
            out[3, e] = -(logp.exp() * logp).sum(-1).numpy()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["time", "memory", "check"], required=True)
    p.add_argument("--model", default="smollm2-135m", choices=MODELS)
    p.add_argument("--lib", default="lamina", choices=LIBS, help="memory mode: the contender")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--windows", type=int, default=WINDOWS, help="windows of 256 tokens (the issue: 8)")
    p.add_argument("--entries", type=int, default=None,
                   help="decode only the first ENTRIES-1 entries and the final one (default: all); the peak "
                        "memory does not depend on it (one token block / one entry at a time), the time does")
    args = p.parse_args()
    common.setup()
    info = {"item": "lens", "mode": args.mode, "model": args.model, "loadavg_start": list(os.getloadavg())}
    prepared = prepare(args.model, args.windows, args.entries)
    model, head, hidden, targets = prepared
    n_entries, n_tokens = hidden.shape[:2]
    logits_mb = n_tokens * head.vocab_size * 4 / 1e6
    info.update(entries=n_entries, tokens=n_tokens, shape=[args.windows, WINDOW], all_entries=args.entries is None,
                vocab=head.vocab_size, d_model=hidden.shape[2], hidden_mb=hidden.nbytes / 1e6,
                layer_logits_mb=logits_mb,
                head_applications={"lamina": n_entries + 1, "direct": n_entries})

    if args.mode == "memory":
        fn = make(args.lib, *prepared)
        # The recording ran without the LM head: page the head weights in first in case they are memory-mapped
        # and untouched, or the decoding's peak would count the output embeddings (Gemma-3: 671 MB) as its own
        float(head.weight.sum())
        gc.collect()
        baseline = hwm_reset()
        fn()
        peak = _status_mb("VmHWM")
        info.update(lib=args.lib, rss_baseline_mb=baseline, peak_mb=peak, peak_over_baseline_mb=peak - baseline,
                    peak_rss_mb=common.peak_rss_mb(), below_layer_logits=peak - baseline < logits_mb)
        common.emit(info)
        return

    fns = {lib: make(lib, *prepared) for lib in LIBS}
    results = {lib: fn() for lib, fn in fns.items()}  # the first round: the check
    check = compare(results["lamina"], results["direct"])
    ref = reference(model, head, hidden, targets, REF_TOKENS)
    exact = {lib: compare(results[lib][..., :REF_TOKENS], ref) for lib in LIBS}
    ok = all(d <= args.tolerance for d in check["max_rel_diff"].values()) and check["top1_mismatches"] == 0
    info.update(check=check, vs_float64=exact, ref_tokens=REF_TOKENS, tolerance=args.tolerance, ok=ok,
                mean_metrics={m: float(results["lamina"][i].mean()) for i, m in enumerate(METRIC_NAMES)})
    if args.mode == "check":
        common.emit(info)
        return
    wall, cpu = common.interleaved(fns, args.repeats, warmup=0)
    med = {lib: common.median(v) for lib, v in wall.items()}
    info.update(repeats=args.repeats, seconds=wall, cpu_seconds=cpu, median_s=med,
                ratio=med["lamina"] / med["direct"], paired_ratio=common.paired_ratio(wall["lamina"], wall["direct"]),
                cpu_ratio=common.median(cpu["lamina"]) / common.median(cpu["direct"]),
                threads=torch.get_num_threads(), loadavg_end=list(os.getloadavg()), machine=common.machine())
    common.emit(info)


if __name__ == "__main__":
    main()
