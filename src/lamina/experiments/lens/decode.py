"""Decoding every ``hidden`` entry through the LM head, token block by token block (no figures here).

For E entries (``hidden`` 0..n_layers) at N tokens, :func:`token_metrics` gives the lens's per-token
metrics. An entry below the last goes through the model's final norm (after the tuned lens's
translator, when there is one); the last entry is the final norm's output already and goes to the
head alone. The softmax over the vocabulary is streamed (:func:`lamina.stats.softmax.streamed_softmax`),
so no token's full row of logits exists at any time.

Memory bound: tokens go in blocks of ``Nb = max(1, STEP_FLOATS // (E · chunk))``; one step holds the
block's E prepared vectors (``E · Nb · d_model`` floats), one ``(E, Nb, chunk)`` float32 chunk of logits
and at most three temporaries of that shape: about ``4 · STEP_FLOATS`` floats (128 MiB) plus a float32
copy of ``chunk × d_model`` head weights, whatever the vocabulary (Gemma-3's 262,144 ids included).
"""

from __future__ import annotations

import numpy as np
import torch

from ...stats.softmax import streamed_softmax

#: floats in one (entries × tokens × vocabulary chunk) step of the streamed softmax (32 MiB in float32)
STEP_FLOATS = 1 << 23


def token_block(n_entries: int, chunk: int) -> int:
    """Tokens per block so that one step's logits hold at most :data:`STEP_FLOATS` floats."""
    return max(1, STEP_FLOATS // (n_entries * chunk))


def prepared(head, hidden: torch.Tensor, translate=None) -> torch.Tensor:
    """``(E, N, d)`` hidden entries -> what the output embeddings read, ``(E, N, d)`` float32.

    Entries ``0..E-2`` are residual-stream vectors: ``translate(entries, h)`` (the tuned lens; None: the
    identity), then the final norm. Entry ``E-1`` is the final norm's output: it is not normed again."""
    below = hidden[:-1]
    if translate is not None:
        below = translate(below)
    return torch.cat([head.prepared(head.normed(below)), head.prepared(hidden[-1:])])


def block_metrics(head, x: torch.Tensor, targets: torch.Tensor, chunk: int):
    """Per-token metrics of E prepared lenses ``x`` ``(E, N, d)`` whose last is the model's own output.

    Returns:
        ``(metrics, top1)``: ``metrics`` ``(4, E, N)`` float64: cross-entropy against ``targets``, KL(final ||
        lens), top-1 agreement with the final prediction (0/1), entropy; ``top1`` ``(2, E, N)``: the argmax id and
        its probability (float64).
    """
    vocab = head.vocab_size
    # pass 1: the final distribution's log-normaliser, which the KL sum of pass 2 needs from its first chunk
    final = streamed_softmax(lambda a, b: head.logits(x[-1:], a, b), vocab, chunk, targets)
    stats = streamed_softmax(lambda a, b: head.logits(x, a, b), vocab, chunk, targets, reference=(len(x) - 1,
                                                                                                  final.lse[0]))
    agree = (stats.argmax == stats.argmax[-1:]).double()
    metrics = torch.stack([stats.cross_entropy, stats.kl, agree, stats.entropy])
    top1 = torch.stack([stats.argmax.double(), torch.exp(stats.top - stats.lse)])
    return metrics.cpu().numpy(), top1.cpu().numpy()


def final_cross_entropy(head, final: torch.Tensor, targets: torch.Tensor, chunk: int) -> np.ndarray:
    """``(N,)``: −log softmax(head(final))[target], the last entry decoded by the head alone (the check)."""
    with torch.inference_mode():
        x = head.prepared(final)[None]
        stats = streamed_softmax(lambda a, b: head.logits(x, a, b), head.vocab_size, chunk, targets)
    return stats.cross_entropy[0].cpu().numpy()


def token_metrics(head, hidden: np.ndarray, targets: np.ndarray, chunk: int, translate=None):
    """The lens at every entry, for every token, in token blocks (memory bound: the module docstring).

    Args:
        head: the model's :class:`~lamina.models.head.Head`.
        hidden: ``(E, N, d)``: ``hidden`` entries 0..n_layers at N tokens.
        targets: ``(N,)`` the next token's id at each token (all known).
        chunk: vocabulary ids per step.
        translate: the tuned lens's translators, ``(E - 1, n, d) -> (E - 1, n, d)``, or None (logit lens).

    Returns:
        ``(metrics (4, E, N), top1 (2, E, N))`` as :func:`block_metrics`.
    """
    n_entries, n = hidden.shape[:2]
    step = token_block(n_entries, chunk)
    metrics, top1 = np.empty((4, n_entries, n)), np.empty((2, n_entries, n))
    with torch.inference_mode():
        for a in range(0, n, step):
            h = torch.as_tensor(hidden[:, a:a + step])
            y = torch.as_tensor(targets[a:a + step], dtype=torch.int64)
            metrics[:, :, a:a + step], top1[:, :, a:a + step] = block_metrics(head, prepared(head, h, translate),
                                                                              y, chunk)
    return metrics, top1
