"""The tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens"): one affine translator per ``hidden`` entry below the last, fitted so that decoding the
translated residual stream through the model's own final norm and head matches the model's final
distribution (no figures here).

Translator of entry l: ``h ↦ h + A_l h + b_l`` (``A_l`` d × d, ``b_l`` d), initialised at ``A = 0, b = 0`` (the
identity: step 0 is the logit lens). Loss: the mean over a batch of tokens of ``KL(p_final || q_l)``, each
entry's own term (the translators do not share parameters, so their gradients are independent); Adam,
the learning rate decayed linearly to 0. The model's parameters are frozen while it trains. The training
text is windows of the same book disjoint from the evaluated windows (:func:`training_windows`).

Cost: each step decodes ``batch`` tokens at every entry through the whole vocabulary and back
(``≈ 4 · batch · d_model · V`` floating-point operations per entry), so the full-vocabulary logits of one
batch exist during training, for a group of entries at a time (``entries × batch × V ≤ TRAIN_FLOATS``, 64
MiB, and a few temporaries of that size), never more. The default 250 steps of 32 tokens took
16 min for SmolLM2-135M and 56 min for Gemma-3 270M on 2 CPU cores shared with other jobs
(docs/results.md); fitted translators are cached (:func:`cache_key`), so a second run of the same
settings does not fit them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from ..._progress import progress_bar
from ...cache import cache_dir
from ...errors import LaminaError
from ...stimuli import Stimuli, encode

#: bump when the training changes, so older cached translators are not reused
FORMAT = 1
#: floats in one group of entries' training logits (entries × batch × V; 64 MiB in float32)
TRAIN_FLOATS = 1 << 24


def training_windows(text: str, model, length: int, evaluated: Stimuli, n: int) -> Stimuli:
    """``n`` windows of ``length`` tokens from the parts of ``text`` no evaluated window touches.

    A window and the token after it (its last position's target) lie in a gap between evaluated windows
    (each with its own next token); the candidates tile the gaps, and ``n`` of them are taken evenly
    spread over the book (deterministic: no seed involved).

    Returns:
        ``Stimuli`` with ``n`` sequences of ``(length,)``; ``meta``: ``start``, ``length``.
    """
    tokens = np.asarray(encode(model, text), dtype=np.int64)
    taken = np.zeros(len(tokens) + 1, bool)
    for start in evaluated.meta["start"].to_numpy():
        taken[start:start + length + 1] = True
    taken[len(tokens)] = True  # the text's last token has no next token
    candidates, run = [], 0
    for i, busy in enumerate(taken):
        run = 0 if busy else run + 1
        if run == length + 1:  # a free span of length + 1 tokens ends at i
            candidates.append(i - length)
            run = 0
    if len(candidates) < n:
        raise LaminaError(f"the book has room for {len(candidates)} training windows of {length} tokens outside "
                          f"the evaluated windows, not tuned_windows={n}; use fewer (--set tuned_windows=...), "
                          "shorter windows or fewer replicates.")
    pick = np.asarray(candidates)[np.linspace(0, len(candidates) - 1, n).round().astype(int)]
    meta = pd.DataFrame({"start": pick, "length": length}, dtype=np.int64)
    return Stimuli([tokens[s:s + length] for s in pick], meta, tokens[pick + length])


def cache_key(identity: str, model, train: Stimuli, config, seed: int) -> str:
    """sha256 of what decides the translators: the weights, the training tokens, the training settings."""
    key = {"format": FORMAT, "weights": identity, "tokens": train.fingerprint(), "bos": model.bos_id
           if model.prepend_bos else None, "dtype": str(model.dtype), "steps": config.tuned_steps,
           "batch": config.tuned_batch, "lr": config.tuned_lr, "seed": seed}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def load_cached(key: str) -> dict | None:
    path = cache_dir("tuned-lens") / f"{key[:32]}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError):  # a damaged file is fitted again and replaced
        return None


def save_cached(key: str, fitted: dict) -> str:
    """Write the translators under the cache (atomically: a reader never sees half a file); its name."""
    folder = cache_dir("tuned-lens")
    name = f"{key[:32]}.npz"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **fitted)
    os.replace(tmp, folder / name)
    return name


@contextmanager
def frozen(module: torch.nn.Module):
    """The module's parameters take no gradient inside (restored after)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def translator(a: torch.Tensor, b: torch.Tensor):
    """``(E - 1, n, d) -> (E - 1, n, d)``: ``h + h A_lᵀ + b_l`` per entry l (a: ``(E-1, d, d)``, b: ``(E-1, d)``)."""
    def translate(h):
        return h + torch.baddbmm(b[:, None, :], h, a.transpose(1, 2))
    return translate


def entry_group(batch: int, vocab_size: int) -> int:
    """Entries fitted in one matrix product: their ``entries × batch × V`` logits stay under :data:`TRAIN_FLOATS`."""
    return max(1, TRAIN_FLOATS // (batch * vocab_size))


def fit(model, head, hidden: np.ndarray, *, steps: int, batch: int, lr: float, seed: int,
        progress: bool | None = None) -> dict:
    """Fit the translators on recorded training tokens (see the module docstring).

    Args:
        model: the lamina Model (its parameters are frozen while fitting).
        head: its :class:`~lamina.models.head.Head`.
        hidden: ``(E, N, d)``: ``hidden`` entries 0..n_layers at the N training tokens.
        steps, batch, lr, seed: Adam steps, tokens per step (drawn with replacement), peak learning rate, the
            seed of the draws.
        progress: a bar over the steps (None: only when stderr is a terminal).

    Returns:
        ``{"a": (E-1, d, d), "b": (E-1, d), "kl_first": (E-1,), "kl_last": (E-1,)}`` float32 / float64 arrays:
        the translators, each entry's training KL at step 0 and its mean over the last tenth of the steps.
    """
    n_entries, n, d = hidden.shape
    h = torch.as_tensor(hidden, dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    a = torch.zeros((n_entries - 1, d, d), requires_grad=True)
    b = torch.zeros((n_entries - 1, d), requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / steps)
    losses = np.zeros((steps, n_entries - 1))
    group = entry_group(batch, head.vocab_size)
    with frozen(model.hf):
        final = head.prepared(h[-1])
        for step in progress_bar(range(steps), progress=progress, desc="tuned lens", unit="step"):
            idx = torch.randint(n, (batch,), generator=gen)
            with torch.no_grad():
                log_p = torch.log_softmax(head.logits(final[idx]), -1)  # (batch, V): the target distribution
                p = log_p.exp()
            opt.zero_grad(set_to_none=True)
            # a few entries per matrix product (each entry's loss depends on its own translator only)
            for first in range(0, n_entries - 1, group):
                es = slice(first, min(first + group, n_entries - 1))
                x = h[es, idx]
                x = x + torch.baddbmm(b[es, None, :], x, a[es].transpose(1, 2))
                log_q = torch.log_softmax(head.logits(head.prepared(head.normed(x))), -1)
                kl = (p * (log_p - log_q)).sum(-1).mean(-1)  # (entries,)
                kl.sum().backward()
                losses[step, es] = kl.detach().numpy()
            opt.step()
            sched.step()
    tail = max(1, steps // 10)
    return {"a": a.detach().numpy(), "b": b.detach().numpy(), "kl_first": losses[0],
            "kl_last": losses[-tail:].mean(axis=0)}
