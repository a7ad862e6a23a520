"""Functions copied verbatim from the seed notebooks, shared by parity tests and benchmarks.

Oracles only: lamina computes none of its numbers with them.
"""

import numpy as np
import torch
import torch.nn.functional as F


def symmetric_KL(d1, d2, nbins=31):  # noqa: N802 -- seed 001's function, verbatim
    minmax = [min(min(d1), min(d2)), max(max(d1), max(d2))]
    histbins = torch.linspace(minmax[0], minmax[1], nbins)
    yd1, _ = torch.histogram(d1, bins=histbins)
    yd2, _ = torch.histogram(d2, bins=histbins)
    yd1 = yd1 / yd1.sum()
    yd2 = yd2 / yd2.sum()
    pAve = (yd1 + yd2) / 2  # noqa: N806
    symKL = F.kl_div(torch.log(yd1 + 1e-15), pAve, reduction='batchmean') + \
        F.kl_div(torch.log(yd2 + 1e-15), pAve, reduction='batchmean')  # noqa: N806
    return symKL / 2


def seed_pair_codes(labels):
    """Seed 004's category mask ``np.triu(labels[:, None] * labels[None, :], 1)`` for integer labels 1..k:
    products 1, 4, 9 are within-category pairs and 2, 3, 6 across, for three categories."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.triu(labels[:, None] * labels[None, :], 1)
