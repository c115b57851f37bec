"""Two groups of numbers compared: a permutation test, what it can resolve, and an interval.

The study report compares, per method, the lifts of its tickets at different seeds (within) with
those of its tickets beside other methods' at the same seed (across). With three seeds the within
group holds three numbers, so the report states what the test can resolve
(:func:`permutation_resolution`) and gives the effect, the difference of the means, with an
interval (:func:`bootstrap_difference`), rather than a bare p.

Example:
    >>> permutation_resolution(3, 18, 0.01)
    (1330, 13)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def permutation_test(x: Sequence[float], y: Sequence[float], n_permutations: int = 10_000,
                     seed: int = 0) -> float:
    """Two-sided permutation p of ``mean(x) - mean(y)``: ``(1 + #{|d*| >= |d|}) / (1 + N)`` over
    ``N`` random splits of the pooled values (``numpy.random.default_rng(seed)``); NaN when a
    group is empty.

    Example:
        >>> permutation_test([5.0, 5.1, 4.9, 5.2], [1.0, 1.1, 0.9, 1.0], 2000) < 0.05
        True
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    pooled = np.concatenate([x, y])
    nx, m = len(x), len(pooled)
    if nx == 0 or nx == m:
        return math.nan
    obs = abs(x.mean() - y.mean())
    tol = 1e-12 * max(1.0, obs)
    rng = np.random.default_rng(seed)
    total, hits, done = pooled.sum(), 0, 0
    chunk = max(1, min(n_permutations, 2_000_000 // m))
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        idx = rng.permuted(np.broadcast_to(np.arange(m), (b, m)), axis=1)[:, :nx]
        sx = pooled[idx].sum(axis=1)
        d = np.abs(sx / nx - (total - sx) / (m - nx))
        hits += int(np.count_nonzero(d >= obs - tol))
        done += b
    return (1 + hits) / (1 + n_permutations)


def permutation_resolution(nx: int, ny: int, alpha: float) -> tuple[int, int]:
    """``(splits, extreme)``: the number of ways ``C(nx + ny, nx)`` to split the pooled values into
    groups of ``nx`` and ``ny``, and how many of them may be at least as extreme as the observed
    split for the exact test's p to stay below ``alpha`` (``ceil(alpha * splits) - 1``).

    With 3 and 18 values there are 1,330 splits: p < 0.01 needs the observed one to be among the
    13 most extreme, i.e. the 3 values lie beyond nearly all of the 18. Zero ``extreme`` means
    the test cannot reach ``alpha`` at all.

    Example:
        >>> permutation_resolution(2, 2, 0.05)  # 6 splits: p is at least 1/6
        (6, 0)
    """
    splits = math.comb(nx + ny, nx)
    return splits, max(0, math.ceil(alpha * splits) - 1)


def bootstrap_difference(x: Sequence[float], y: Sequence[float], level: float = 0.95,
                         n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean(x) - mean(y), lo, hi)``: the difference of the means and its percentile bootstrap
    interval at ``level`` (each group resampled with replacement on its own, seeded). Rough with a
    handful of values: with 3 values a group has only 10 distinct resamples. NaNs when a group is
    empty.

    Example:
        >>> d, lo, hi = bootstrap_difference([3.0, 3.2, 2.9], [1.0, 1.1, 0.9, 1.2])
        >>> round(d, 3), lo < d < hi, lo > 1.5
        (1.983, True, True)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not len(x) or not len(y):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, len(x), (n_resamples, len(x)))].mean(axis=1)
    by = y[rng.integers(0, len(y), (n_resamples, len(y)))].mean(axis=1)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(bx - by, [tail, 100.0 - tail])
    return float(x.mean() - y.mean()), float(lo), float(hi)


__all__ = ["bootstrap_difference", "permutation_resolution", "permutation_test"]
