"""Proportions and means over items that come in clusters (the positions of one context), the cluster
as the unit.

Items of one cluster (the five decoded positions of one HellaSwag context) share the context and may
depend on each other; clusters are independent. A binomial test over items treats all of them as
independent. With clusters as the unit, each cluster's mean is one observation: the overall mean (over
items, equal cluster sizes) is the mean of the cluster means, and its interval and test come from their
spread (a t interval and one-sample t test over clusters, the cluster-robust analogue for a mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LaminaError
from .replicates import across_replicates


@dataclass(frozen=True)
class ClusterMean:
    """The mean over items, its t interval over clusters and a one-sample t test against ``null``.

    Attributes:
        mean, ci_low, ci_high: over items; ``level`` percent.
        t, p: the t test of the cluster means against ``null`` (``alternative``), G − 1 degrees of freedom.
        n_clusters, n_items.
    """

    mean: float
    ci_low: float
    ci_high: float
    t: float
    p: float
    null: float
    alternative: str
    level: float
    n_clusters: int
    n_items: int


def cluster_mean(values, *, null: float = 0.0, alternative: str = "two-sided", level: float = 95.0) -> ClusterMean:
    """Mean of ``values`` with the cluster (row) as the unit.

    Args:
        values: shape ``(n_clusters, items_per_cluster)``: e.g. 1.0 where a context's position was
            decoded correctly, else 0.0. Every cluster has the same number of items.
        null: the mean under H0 (e.g. chance accuracy).
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.

    Returns:
        :class:`ClusterMean`.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 1:
        raise LaminaError(f"values must have shape (n_clusters, items_per_cluster), not {values.shape}.")
    if len(values) < 2:
        raise LaminaError(f"a mean over clusters needs at least 2 clusters, not {len(values)}.")
    res = across_replicates(values.mean(axis=1), null=null, alternative=alternative, level=level, correction="none")
    return ClusterMean(mean=float(res.mean[0]), ci_low=float(res.ci_low[0]), ci_high=float(res.ci_high[0]),
                       t=float(res.t[0]), p=float(res.p[0]), null=null, alternative=alternative, level=level,
                       n_clusters=len(values), n_items=values.size)
