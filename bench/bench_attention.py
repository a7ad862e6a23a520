"""Issue 27: what recording ``attn.pattern`` (and ``attn.heads``) at one layer costs against the bare forward pass.

    python bench/bench_attention.py --model smollm2          # 8 x 256 tokens, layer 15, interleaved rounds

Not part of ``bench/run.py`` yet; docs/sites.md quotes its output. Contenders, on one batch of 8 sequences of
256 tokens (BOS in front for SmolLM2), the same ids for all:

    bare            hf(ids).logits, sdpa attention, no hooks
    attn.out        lamina.record(sites=["attn.out"], layers=15): what any one-layer recording costs
    attn.pattern    lamina.record(sites=["attn.pattern"], layers=15): sdpa everywhere, plus eager's
                    probabilities computed beside layer 15 only
    attn.heads      lamina.record(sites=["attn.heads"], layers=15)
    hf-eager        the whole model switched to eager attention with output_attentions=True: HF's own way
                    to get the probabilities (every layer's, as HF has no per-layer switch)

Every lamina case keeps the loss (the LM head runs, no early stop), like ``bare``.
"""

from __future__ import annotations

import argparse

import common

LAYER, BATCH, SEQ = 15, 8, 256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    common.setup()
    import lamina
    import torch

    model = common.load_model(args.model)
    batches = common.token_batches(model, 1, BATCH, SEQ)
    stimuli = common.stimuli_of(batches)
    (ids,) = common.model_inputs(model, batches)
    hf = model.hf

    def bare():
        return hf(input_ids=ids, use_cache=False).logits

    def record(site):
        return lambda: lamina.record(model, stimuli, sites=[site], layers=LAYER, batch_size=BATCH, progress=False)

    def hf_eager():
        before = model.text_config._attn_implementation
        hf.set_attn_implementation("eager")
        try:
            return hf(input_ids=ids, use_cache=False, output_attentions=True).attentions[LAYER]
        finally:
            hf.set_attn_implementation(before)

    fns = {"bare": bare, "attn.out": record("attn.out"), "attn.pattern": record("attn.pattern"),
           "attn.heads": record("attn.heads"), "hf-eager": hf_eager}
    wall, cpu = common.interleaved(fns, args.repeats)
    result = {"model": args.model, "layer": LAYER, "batch": BATCH, "seq": SEQ, "repeats": args.repeats,
              "median_s": {k: common.median(v) for k, v in wall.items()},
              "paired_vs_bare": {k: common.paired_ratio(v, wall["bare"]) for k, v in wall.items() if k != "bare"},
              "cpu_s": {k: common.median(v) for k, v in cpu.items()},
              "pattern_mb": BATCH * model.n_heads * SEQ * (SEQ + int(model.prepend_bos)) * 4 / 2 ** 20,
              "threads": torch.get_num_threads(), "machine": common.machine()}
    common.emit(result)


if __name__ == "__main__":
    main()
