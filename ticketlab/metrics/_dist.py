"""Exact hypergeometric and binomial tails in plain numpy + :mod:`math` (no scipy.stats).

``scipy.stats`` takes ~0.8 s to import, which would eat most of ``ticketlab compare``'s start-up
budget, so the few distributions the metrics need are computed here. A probability mass
function is evaluated on a window of its support: the log-pmf at the window's first point comes
from :func:`math.lgamma`, the rest from the exact ratio of consecutive terms (a cumulative sum of
log-ratios). The window spans the mean +- (15 sd + 30), which leaves out a mass below 1e-40
(the hypergeometric tails are at least as light as the binomial's, Hoeffding 1963, Thm. 4); a
tail that starts outside the window gets a window of its own, so tiny p-values stay accurate.

Example:
    >>> round(hypergeom_sf(2, 6, 3, 2), 4)   # N=6 weights, a=3, b=2 kept: P(|A and B| >= 2) = 3/15
    0.2
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _width(sd: float) -> int:
    return int(math.ceil(15.0 * sd + 30.0))


# ------------------------------------------------------------------------------ hypergeometric
def hypergeom_support(N: int, a: int, b: int) -> tuple[int, int]:
    """Smallest and largest possible ``|A and B|`` for sets of sizes ``a``, ``b`` out of ``N``."""
    return max(0, a + b - N), min(a, b)


def hypergeom_moments(N: np.ndarray | int, a: np.ndarray | int, b: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``ab/N`` and variance ``ab(N-a)(N-b) / (N^2 (N-1))`` of ``|A and B|`` (vectorised).

    Example:
        >>> [float(v) for v in hypergeom_moments(6, 3, 2)]
        [1.0, 0.4]
    """
    N, a, b = (np.asarray(v, dtype=np.float64) for v in (N, a, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(N > 0, a * b / N, 0.0)
        var = np.where(N > 1, a * b * (N - a) * (N - b) / (N * N * (N - 1)), 0.0)
    return mean, var


def hypergeom_logpmf_range(N: int, a: int, b: int, lo: int, hi: int) -> np.ndarray:
    """``log P(|A and B| = k)`` for ``k = lo .. hi`` (clipped to the support by the caller)."""
    ks = np.arange(lo, hi, dtype=np.float64)
    start = _log_comb(a, lo) + _log_comb(N - a, b - lo) - _log_comb(N, b)
    # pmf(k+1) / pmf(k) = (a-k)(b-k) / ((k+1)(N-a-b+k+1))
    with np.errstate(divide="ignore"):
        steps = np.log((a - ks) * (b - ks)) - np.log((ks + 1) * (N - a - b + ks + 1))
    out = np.empty(hi - lo + 1)
    out[0] = start
    np.cumsum(steps, out=out[1:])
    out[1:] += start
    return out


def hypergeom_window(N: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Support points ``k`` around the mean and their probabilities (all but < 1e-40 of the mass)."""
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    w = _width(math.sqrt(var))
    lo, hi = max(slo, int(math.floor(mean)) - w), min(shi, int(math.ceil(mean)) + w)
    return np.arange(lo, hi + 1), np.exp(hypergeom_logpmf_range(N, a, b, lo, hi))


def _tail(
    x: int, upper: bool, slo: int, shi: int, mean: float, sd: float,
    logpmf_range: Callable[[int, int], np.ndarray],
) -> float:
    """``P(X >= x)`` (upper) or ``P(X <= x)`` of a unimodal discrete law on ``slo .. shi``."""
    if upper and x <= slo or not upper and x >= shi:
        return 1.0
    if upper and x > shi or not upper and x < slo:
        return 0.0
    w = _width(sd)
    lo, hi = max(slo, int(math.floor(mean)) - w), min(shi, int(math.ceil(mean)) + w)
    if upper:
        if x > hi:  # far upper tail: its own window, terms fall off faster than geometrically
            return float(np.exp(logpmf_range(x, min(shi, x + w))).sum())
        if x < lo:
            return 1.0 - _tail(x - 1, False, slo, shi, mean, sd, logpmf_range)
        return float(min(1.0, np.exp(logpmf_range(x, hi)).sum()))
    if x < lo:
        return float(np.exp(logpmf_range(max(slo, x - w), x)).sum())
    if x > hi:
        return 1.0 - _tail(x + 1, True, slo, shi, mean, sd, logpmf_range)
    return float(min(1.0, np.exp(logpmf_range(lo, x)).sum()))


def hypergeom_sf(x: int, N: int, a: int, b: int) -> float:
    """``P(|A and B| >= x)`` for random sets of sizes ``a`` and ``b`` out of ``N`` (exact)."""
    N, a, b, x = int(N), int(a), int(b), int(x)
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    return _tail(x, True, slo, shi, mean, math.sqrt(var), lambda lo, hi: hypergeom_logpmf_range(N, a, b, lo, hi))


def hypergeom_cdf(x: int, N: int, a: int, b: int) -> float:
    """``P(|A and B| <= x)`` for random sets of sizes ``a`` and ``b`` out of ``N`` (exact)."""
    N, a, b, x = int(N), int(a), int(b), int(x)
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    return _tail(x, False, slo, shi, mean, math.sqrt(var), lambda lo, hi: hypergeom_logpmf_range(N, a, b, lo, hi))


# ------------------------------------------------------------------------------------ binomial
def _binom_logpmf_range(n: int, p: float, lo: int, hi: int) -> np.ndarray:
    ks = np.arange(lo, hi, dtype=np.float64)
    start = _log_comb(n, lo) + lo * math.log(p) + (n - lo) * math.log1p(-p)
    # pmf(k+1) / pmf(k) = (n-k) / (k+1) * p / (1-p)
    steps = np.log(n - ks) - np.log(ks + 1) + (math.log(p) - math.log1p(-p))
    out = np.empty(hi - lo + 1)
    out[0] = start
    np.cumsum(steps, out=out[1:])
    out[1:] += start
    return out


def binom_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1`` (exact).

    Example:
        >>> binom_sf(2, 2, 0.5)
        0.25
    """
    k, n = int(k), int(n)
    return _tail(k, True, 0, n, n * p, math.sqrt(n * p * (1 - p)), lambda lo, hi: _binom_logpmf_range(n, p, lo, hi))


def binom_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1`` (exact)."""
    k, n = int(k), int(n)
    return _tail(k, False, 0, n, n * p, math.sqrt(n * p * (1 - p)), lambda lo, hi: _binom_logpmf_range(n, p, lo, hi))


# -------------------------------------------------------------------------------------- normal
def norm_sf(z: float) -> float:
    """``P(Z >= z)`` for a standard normal ``Z``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_sided(p_upper: float, p_lower: float) -> float:
    """Two-sided p-value as twice the smaller one-sided tail, capped at 1."""
    return min(1.0, 2.0 * min(p_upper, p_lower))
