"""Study (not a calibration topic: scripts/calibration.py reads calibration/*.py only): candidate 95% intervals for
trace's per-(class, layer) mean effect over prompts, measured on calibration/trace.py's scenarios. Results and
conclusions: calibration/studies/trace_intervals.md.

    PYTHONPATH=src python calibration/studies/trace_intervals.py GROUP N   # one JSON line

GROUP: smol12 smol40 undef gemma12 gemma40 loose (hidden, window 1), mlp attn gattn mlp40 attn40 gattn40 (windowed).
Per simulation and row (last subject token, last token), each candidate's interval is evaluated at the population's
peak layer ("fixed"), at a random layer ("any"), at the sample's peak (last subject token, "peak") and at the sample's
first layer past 0.5 (last token, "first"); the output gives per cell and candidate [miss rate, mean width, misses
below the truth, misses above it]."""
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from calibration import trace as T  # noqa: E402
from lamina.stats.replicates import simultaneous_t_band, skew_t_interval, t_interval  # noqa: E402

B = 1999

def hall(v, c):
    """Hall's transform with critical value c (array per test or scalar)."""
    n = len(v); mean = v.mean(0); sd = v.std(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(sd > 0, ((v - mean) ** 3).mean(0) / sd ** 3, 0.0)
    a, b = g / (3 * np.sqrt(n)), g / (6 * np.sqrt(n))
    def inv(y):
        r = np.cbrt(1 + 3 * a * (y - b)); return 3 * (y - b) / (r * r + r + 1)
    se = sd / np.sqrt(n)
    return mean - inv(c) * se, mean - inv(-c) * se

def boot(v, rng):
    """bootstrap-t pointwise, bootstrap-t max band (asymmetric, 2.5% each side), percentile, BCa."""
    n, L = v.shape; mean = v.mean(0); se = v.std(0, ddof=1) / np.sqrt(n)
    idx = rng.integers(0, n, (B, n)); bs = v[idx]  # (B, n, L)
    m = bs.mean(1); s = bs.std(1, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(s > 0, (m - mean) / s, np.where(m == mean, 0.0, np.sign(m - mean) * np.inf))
    qlo, qhi = np.quantile(t, [0.025, 0.975], axis=0)
    out = {"boot_t": (mean - qhi * se, mean - qlo * se)}
    ok = se > 0
    tt = np.where(ok, t, 0.0)
    c_up = np.quantile(tt.max(1), 0.975); c_dn = np.quantile((-tt).max(1), 0.975)
    out["bootband"] = (mean - c_up * se, mean + c_dn * se)
    out["perc"] = tuple(np.quantile(m, [0.025, 0.975], axis=0))
    # BCa
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = sps.norm.ppf((m < mean).mean(0) + 0.5 * (m == mean).mean(0))
        jack = (v.sum(0) - v) / (n - 1); d = jack.mean(0) - jack
        acc = np.where((d ** 2).sum(0) > 0, (d ** 3).sum(0) / (6 * (d ** 2).sum(0) ** 1.5), 0.0)
        lo_hi = []
        for z in sps.norm.ppf([0.025, 0.975]):
            p = sps.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
            p = np.nan_to_num(p, nan=0.5)
            ms = np.sort(m, 0); at = np.clip(np.round(p * (B - 1)).astype(int), 0, B - 1)
            lo_hi.append(ms[at, np.arange(L)])
    out["bca"] = tuple(lo_hi)
    return out

def candidates(row, rng):
    v = row[np.isfinite(row).all(1)]
    n = len(v)
    mean, tl, th = t_interval(v)
    out = {"t": (tl, th), "hall": skew_t_interval(v)[1:]}
    _, bl, bh, c = simultaneous_t_band(v, rng=rng)
    out["band"] = (bl, bh)
    out["hallband"] = hall(v, c)
    out.update(boot(v, rng))
    # t with a wider critical value (t quantile at 99%), as a width-cost reference
    q = sps.t.ppf(0.995, n - 1) * v.std(0, ddof=1) / np.sqrt(n); out["t99"] = (mean - q, mean + q)
    return mean, out

GROUPS = {"smol12": (T.SMOLLM2, 12), "smol40": (T.SMOLLM2, 40), "undef": (T.UNDEFINED, 12),
          "gemma12": (T.GEMMA, 12), "gemma40": (T.GEMMA, 40), "loose": (T.LOOSE, 12), "mlp": (T.MLP, 12),
          "attn": (T.ATTN, 12), "gattn": (T.GEMMA_ATTN, 12), "mlp40": (T.MLP, 40), "attn40": (T.ATTN, 40),
          "gattn40": (T.GEMMA_ATTN, 40)}

def main(group, nsim):
    s, prompts = GROUPS[group]
    truth = T._truth(s)[0]
    fixed = {r: int(np.nanargmax(truth[r])) for r in (T.SUBJECT, T.LAST)}
    rng = np.random.default_rng(7)
    res = {}  # cell -> cand -> [misses, width sum, count]
    def add(cell, name, lo, hi, mu):
        if not np.isfinite(lo): return
        d = res.setdefault(cell, {}).setdefault(name, [0, 0.0, 0, 0, 0])
        d[0] += not (lo <= mu <= hi); d[1] += hi - lo; d[2] += 1; d[3] += mu < lo; d[4] += mu > hi
    t0 = time.time()
    for _ in range(nsim):
        c, k, r = T._prompts(rng, prompts, s)
        _, e = T.prompt_effects(c, k, r, T.GROUPS)
        rows = {rw: candidates(e[:, rw], rng) for rw in (T.SUBJECT, T.LAST)}
        anyrow = (T.SUBJECT, T.LAST)[rng.integers(2)]; anylayer = int(rng.integers(truth.shape[1]))
        for rw in (T.SUBJECT, T.LAST):
            mean, out = rows[rw]
            chosen = {"fixed": fixed[rw]}
            if rw == T.SUBJECT:
                chosen["peak"] = int(np.nanargmax(mean))
            else:
                above = np.flatnonzero(mean > 0.5)
                if len(above): chosen["first"] = int(above[0])
            if rw == anyrow: chosen["any"] = anylayer
            for kind, l in chosen.items():
                for name, (lo, hi) in out.items():
                    add(f"{kind}-{'subj' if rw == T.SUBJECT else 'last'}", name, lo[l], hi[l], truth[rw, l])
    print(json.dumps({"group": group, "n": nsim, "sec": round(time.time() - t0, 1),
                      "cells": {cell: {nm: [round(d[0] / d[2], 4), round(d[1] / d[2], 4), int(d[3]), int(d[4])] for nm, d in v.items()}
                                for cell, v in res.items()}}))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
