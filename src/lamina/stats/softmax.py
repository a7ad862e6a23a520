"""Softmax statistics streamed over vocabulary chunks: cross-entropy, entropy, argmax and KL per token
without ever holding a token's whole row of logits.

The logits ``z`` of E distributions (lenses) at N tokens come from a callable, C vocabulary ids at a
time. One pass keeps, per (lens, token), the running maximum ``m`` (which is also the running argmax's
value), ``s = Σ exp(z − m)`` and ``t = Σ exp(z − m)(z − m)``, both rescaled when ``m`` grows (the online
logsumexp of Milakov & Gimelshein 2018, with the entropy's sum shifted by ``m`` so it never cancels),
and the logit of each token's target. Then

* ``log Σ exp z = m + log s`` (the log-normaliser),
* cross-entropy ``−log softmax(z)[y] = lse − z[y]``,
* entropy ``H(softmax z) = log s − t / s``,
* argmax: the first index of the maximum, as ``torch.argmax`` (chunks come in order and only a strictly
  larger value replaces the running one).

``KL(p || q)`` from a reference distribution ``p`` (one of the E, e.g. the model's own final one) needs
``p``'s log-normaliser before the sum over the vocabulary can start, so it takes two passes: a first
(the reference alone) gives ``lse_p``, the second sums ``Σ p (z_p − z)`` per lens, and
``KL = Σ p (z_p − z) − lse_p + lse``. The difference ``z_p − z`` is formed before summing, so a lens close
to the reference loses no precision to two large sums cancelling.

Memory: the callable's chunk ``(E, N, C)`` and at most three temporaries of that shape in float32; sums
are float64 ``(E, N)``. Nothing of the vocabulary's size is ever allocated unless ``C = V``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import LaminaError


@dataclass(frozen=True)
class SoftmaxStats:
    """Per lens and token, each ``(E, N)``: float64 except ``argmax`` (int64).

    ``top`` is the largest logit (so ``exp(top − lse)`` is the top-1 probability); ``target`` is NaN (and so
    ``cross_entropy``) where a token has no target; ``kl`` is None when no reference was given."""

    lse: torch.Tensor
    top: torch.Tensor
    target: torch.Tensor
    entropy: torch.Tensor
    argmax: torch.Tensor
    kl: torch.Tensor | None = None

    @property
    def cross_entropy(self) -> torch.Tensor:
        return self.lse - self.target


def streamed_softmax(logits: Callable[[int, int], torch.Tensor], vocab_size: int, chunk: int, targets, *,
                     reference: tuple[int, torch.Tensor] | None = None) -> SoftmaxStats:
    """Softmax statistics of E distributions at N tokens, over the vocabulary in chunks (see the module docstring).

    Args:
        logits: ``(start, stop) -> (E, N, stop - start)`` tensor: the logits of vocabulary ids
            ``start..stop-1`` (any float dtype; used in float32).
        vocab_size: V, the number of logits per token.
        chunk: vocabulary ids per call (C >= 1); the last call may be shorter.
        targets: ``(N,)`` int ids (-1: no target) that the cross-entropy is taken against.
        reference: ``(r, lse_r)``: lens ``r`` is the reference distribution p and ``lse_r`` (``(N,)``) its
            log-normaliser from a first pass (``streamed_softmax(...).lse[0]`` on it alone); ``kl`` is then
            ``KL(p || lens)`` for every lens (0 for ``r`` itself, to rounding).

    Returns:
        :class:`SoftmaxStats`, each field ``(E, N)``.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise LaminaError(f"chunk must be a positive number of vocabulary ids, not {chunk!r}.")
    if vocab_size < 1:
        raise LaminaError(f"vocab_size must be at least 1, not {vocab_size}.")
    targets = torch.as_tensor(targets, dtype=torch.int64)
    state = None
    for start in range(0, vocab_size, chunk):
        stop = min(start + chunk, vocab_size)
        z = logits(start, stop).float()
        if z.dim() != 3 or z.shape[-1] != stop - start or z.shape[1] != len(targets):
            raise LaminaError(f"logits({start}, {stop}) gave shape {tuple(z.shape)}, not (lenses, {len(targets)}, "
                              f"{stop - start}).")
        if state is None:
            state = _State.empty(z.shape[0], z.shape[1], targets.to(z.device))
        state.update(z, start, reference)
    return state.result(reference)


class _State:
    """Running sums of :func:`streamed_softmax` (float64 ``(E, N)`` unless said)."""

    def __init__(self, m, s, t, arg, target, cross, targets):
        self.m, self.s, self.t, self.arg, self.target, self.cross, self.targets = m, s, t, arg, target, cross, targets

    @classmethod
    def empty(cls, e: int, n: int, targets: torch.Tensor) -> _State:
        dev = targets.device
        f64 = dict(dtype=torch.float64, device=dev)
        return cls(m=torch.full((e, n), -torch.inf, **f64), s=torch.zeros((e, n), **f64),
                   t=torch.zeros((e, n), **f64), arg=torch.zeros((e, n), dtype=torch.int64, device=dev),
                   target=torch.full((e, n), torch.nan, **f64), cross=torch.zeros((e, n), **f64), targets=targets)

    def update(self, z: torch.Tensor, start: int, reference) -> None:
        c = z.shape[-1]
        top, where = z.max(-1)
        top64 = top.double()
        larger = top64 > self.m  # strictly: an equal maximum in a later chunk keeps the earlier index
        self.arg = torch.where(larger, where + start, self.arg)
        m_new = torch.maximum(self.m, top64)
        # rescale the sums to the new maximum; where nothing was summed yet (s = 0) the old terms are 0
        scale = torch.exp(self.m - m_new)
        old_t = torch.where(self.s > 0, self.t + (self.m - m_new) * self.s, torch.zeros_like(self.t))
        w = z - m_new.float()[..., None]  # <= 0
        e = torch.exp(w)
        self.s = self.s * scale + e.sum(-1).double()
        self.t = scale * old_t + torch.linalg.vecdot(e, w).double()
        self.m = m_new
        del e, w
        inside = (self.targets >= start) & (self.targets < start + c)
        if inside.any():
            idx = (self.targets - start).clamp(0, c - 1)
            picked = z.gather(-1, idx.view(1, -1, 1).expand(z.shape[0], -1, 1))[..., 0].double()
            self.target = torch.where(inside, picked, self.target)
        if reference is not None:
            r, lse_r = reference
            p = torch.exp(z[r] - lse_r.to(z.device).float()[:, None])  # (N, C): the reference's probabilities
            diff = z[r][None] - z  # (E, N, C)
            self.cross += torch.linalg.vecdot(diff, p[None].expand_as(diff)).double()

    def result(self, reference) -> SoftmaxStats:
        log_s = torch.log(self.s)
        lse = self.m + log_s
        entropy = log_s - self.t / self.s
        kl = None if reference is None else self.cross - reference[1].to(lse).double()[None] + lse
        return SoftmaxStats(lse=lse, top=self.m, target=self.target, entropy=entropy, argmax=self.arg, kl=kl)
