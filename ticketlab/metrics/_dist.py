"""Exact hypergeometric and binomial tails in plain numpy + :mod:`math` (no scipy.stats).

``scipy.stats`` takes ~0.8 s to import, which would eat most of ``ticketlab compare``'s start-up
budget, so the few distributions the metrics need are computed here.

How a tail is summed. The pmf is evaluated on runs of consecutive support points: the log-pmf at
a run's first point by Loader's saddle-point form (below), the rest by the exact ratio of
consecutive terms (a cumulative sum of log-ratios). A tail is summed directly from ``x`` outward
when ``x`` lies on the tail's side of the mean; otherwise it is one minus the opposite tail (then
at least about 1/2, so nothing small is lost to cancellation). The sum goes out block by block
and stops only when the mass beyond its last term is provably negligible: both laws are
log-concave (the ratio ``r(k) = pmf(k+1) / pmf(k)`` falls with ``k``), so once the last term ``t``
is past the mode the rest is at most the geometric series ``t r / (1 - r)``; the sum stops when
that bound is below ``1e-17`` of the sum (or at the end of the support). No mass is cut off at a
fixed window, so the tails are exact up to rounding -- a relative error of about ``1e-12``
(checked against scipy and exact rational arithmetic in the tests) -- and monotone in ``x``.
Tails below the smallest double (~1e-308) come out as 0.

The first term of a run. ``log C(n, k)`` from :func:`math.lgamma` loses ~1e-7 (relative) at
``n ~ 1e7``, since ``lgamma(n)`` itself is ~4e8. Instead this follows Loader, C. (2000), "Fast
and accurate computation of binomial probabilities":
``log b(k; n, p) = stirlerr(n) - stirlerr(k) - stirlerr(n-k) - bd0(k, np) - bd0(n-k, nq)
+ log sqrt(n / (2 pi k (n-k)))`` with ``stirlerr`` the error of Stirling's formula and
``bd0(x, m) = x log(x/m) + m - x`` (a series when ``x ~ m``); and the hypergeometric pmf as
``b(k; a, p) b(b-k; N-a, p) / b(b; N, p)`` with ``p = b/N``.

Example:
    >>> round(hypergeom_sf(2, 6, 3, 2), 4)   # N=6 weights, a=3, b=2 kept: P(|A and B| >= 2) = 3/15
    0.2
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Callable

import numpy as np

_EPS = 1e-17  # a tail sum stops when the mass beyond it is provably below _EPS of the sum
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# stirlerr(1 .. 15) from its definition, evaluated here once with 50-digit mpmath and rounded to
# doubles (the lgamma form loses ~1e-14 to cancellation, the series is not accurate yet)
_STIRLERR_SMALL = (
    0.08106146679532726, 0.0413406959554093, 0.02767792568499834, 0.020790672103765093,
    0.016644691189821193, 0.013876128823070748, 0.01189670994589177, 0.010411265261972096,
    0.009255462182712733, 0.00833056343336287, 0.007573675487951841, 0.00694284010720953,
    0.006408994188004207, 0.0059513701127588475, 0.005554733551962801,
)


def _width(sd: float) -> int:
    """First block length of a tail sum: long enough that one block almost always suffices."""
    return int(math.ceil(10.0 * sd + 30.0))


# ------------------------------------------------------------------ Loader (2000) log-pmf terms
def _stirlerr(n: int) -> float:
    """``log n! - log(sqrt(2 pi n) (n/e)^n)`` (Loader 2000, sec. 2), for ``n >= 1``."""
    if n <= 15:
        return _STIRLERR_SMALL[n - 1]
    # Stirling's series 1/(12n) - 1/(360n^3) + 1/(1260n^5) - 1/(1680n^7) + 1/(1188n^9)
    n2 = 1.0 / (n * n)
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - n2 / 1188) * n2) * n2) * n2) / n


def _bd0(x: float, m: float) -> float:
    """Deviance term ``x log(x/m) + m - x`` (Loader 2000, sec. 3), accurate when ``x ~ m``."""
    if abs(x - m) < 0.1 * (x + m):
        # with v = (x-m)/(x+m): x log(x/m) = 2x (v + v^3/3 + v^5/5 + ...), so
        # bd0 = (x-m) v + 2x sum_{j>=1} v^(2j+1) / (2j+1)
        v = (x - m) / (x + m)
        s, term, j = (x - m) * v, 2.0 * x * v, 1
        while True:
            term *= v * v
            s_next = s + term / (2 * j + 1)
            if s_next == s:
                return s
            s, j = s_next, j + 1
    return x * math.log(x / m) + m - x


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    """``log P(X = k)`` for ``X ~ Binomial(n, p)`` and ``0 <= k <= n`` (Loader 2000, eq. 6)."""
    if k == 0:
        return 0.0 if n == 0 else n * math.log1p(-p)
    if k == n:
        return n * math.log(p)
    return (_stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * (1.0 - p))
            + 0.5 * math.log(n / (k * (n - k))) - _LOG_SQRT_2PI)


def _log_hypergeom_pmf(k: int, N: int, a: int, b: int) -> float:
    """``log P(|A and B| = k)`` for ``k`` in the support: ``b(k; a, p) b(b-k; N-a, p) / b(b; N, p)``."""
    p = b / N
    return _log_binom_pmf(k, a, p) + _log_binom_pmf(b - k, N - a, p) - _log_binom_pmf(b, N, p)


def _run(start: float, steps: np.ndarray) -> np.ndarray:
    """Log-pmf of a run: ``start`` at its first point, then the cumulative log-ratios ``steps``."""
    out = np.empty(len(steps) + 1)
    out[0] = start
    np.cumsum(steps, out=out[1:])
    out[1:] += start
    return out


# ------------------------------------------------------------------------------ tail summation
def _negligible(last: float, r: float, total: float) -> bool:
    """Is the mass beyond a last term ``last`` below ``_EPS * total``? ``r``: next term / ``last``.

    For a log-concave law the ratio only falls further out, so past the mode (``r < 1``) the rest
    is at most ``last (r + r^2 + ...) = last r / (1 - r)``.
    """
    return r < 1.0 and last * r <= _EPS * total * (1.0 - r)


def _sum_out(
    x: int, up: bool, end: int, w: int,
    logpmf_range: Callable[[int, int], np.ndarray], ratio: Callable[[int], float],
) -> np.ndarray:
    """pmf at ``x, x+1, ..`` (``up``) or ``x, x-1, ..`` towards ``end``, as far as any mass is left.

    Blocks of ``w``, ``2w``, ``4w`` .. points; stops at ``end`` or when the rest is below ``_EPS``
    of the sum so far by the geometric bound (valid for log-concave laws once past the mode).
    ``ratio(k)`` is ``pmf(k+1) / pmf(k)``. The points come back in the order walked.
    """
    blocks, total, k = [], 0.0, x
    while True:
        lo, hi = (k, min(end, k + w)) if up else (max(end, k - w), k)
        p = np.exp(logpmf_range(lo, hi))
        if not up:
            p = p[::-1]
        blocks.append(p)
        total += float(p.sum())
        edge = hi if up else lo
        if edge == end:
            break
        if _negligible(p[-1], ratio(edge) if up else 1.0 / ratio(edge - 1), total):
            break
        k, w = (edge + 1 if up else edge - 1), 2 * w
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _tail(
    x: int, upper: bool, slo: int, shi: int, mean: float, sd: float,
    logpmf_range: Callable[[int, int], np.ndarray], ratio: Callable[[int], float],
) -> float:
    """``P(X >= x)`` (upper) or ``P(X <= x)`` of a log-concave discrete law on ``slo .. shi``."""
    if upper and x <= slo or not upper and x >= shi:
        return 1.0
    if upper and x > shi or not upper and x < slo:
        return 0.0
    w = _width(sd)
    if upper:
        if x > mean:
            return float(min(1.0, _sum_out(x, True, shi, w, logpmf_range, ratio).sum()))
        return max(0.0, 1.0 - float(_sum_out(x - 1, False, slo, w, logpmf_range, ratio).sum()))
    if x < mean:
        return float(min(1.0, _sum_out(x, False, slo, w, logpmf_range, ratio).sum()))
    return max(0.0, 1.0 - float(_sum_out(x + 1, True, shi, w, logpmf_range, ratio).sum()))


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


def _hypergeom_ratio(N: int, a: int, b: int) -> Callable[[int], float]:
    # pmf(k+1) / pmf(k) = (a-k)(b-k) / ((k+1)(N-a-b+k+1))
    return lambda k: (a - k) * (b - k) / ((k + 1) * (N - a - b + k + 1))


def hypergeom_logpmf_range(N: int, a: int, b: int, lo: int, hi: int) -> np.ndarray:
    """``log P(|A and B| = k)`` for ``k = lo .. hi`` (clipped to the support by the caller)."""
    ks = np.arange(lo, hi, dtype=np.float64)
    with np.errstate(divide="ignore"):  # the ratio's numerator is 0 at the support's top
        steps = np.log((a - ks) * (b - ks)) - np.log((ks + 1) * (N - a - b + ks + 1))
    return _run(_log_hypergeom_pmf(lo, N, a, b), steps)


def hypergeom_window(N: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Support points ``k`` around the mode and their probabilities, holding all of the mass.

    The window starts as the mode +- (10 sd + 30) and grows on a side until the mass left out
    there is below ``1e-17`` of the window's (the geometric bound of the module docstring), so
    ``pmf.sum()`` is 1 up to rounding.

    Example:
        >>> ks, pmf = hypergeom_window(6, 3, 2)
        >>> ks.tolist(), [round(float(p) * 15) for p in pmf]
        ([0, 1, 2], [3, 9, 3])
    """
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    w, mode = _width(math.sqrt(var)), min(shi, max(slo, int(math.floor((a + 1) * (b + 1) / (N + 2)))))
    rng = lambda lo, hi: hypergeom_logpmf_range(N, a, b, lo, hi)  # noqa: E731
    ratio = _hypergeom_ratio(N, a, b)
    lo, hi = max(slo, mode - w), min(shi, mode + w)
    pmf = np.exp(rng(lo, hi))
    total = float(pmf.sum())
    parts = [pmf]
    if hi < shi and not _negligible(pmf[-1], ratio(hi), total):
        parts.append(_sum_out(hi + 1, True, shi, 2 * w, rng, ratio))
    if lo > slo and not _negligible(pmf[0], 1.0 / ratio(lo - 1), total):
        down = _sum_out(lo - 1, False, slo, 2 * w, rng, ratio)[::-1]
        parts.insert(0, down)
        lo -= len(down)
    pmf = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.arange(lo, lo + len(pmf)), pmf


def hypergeom_sf(x: int, N: int, a: int, b: int) -> float:
    """``P(|A and B| >= x)`` for random sets of sizes ``a`` and ``b`` out of ``N`` (exact).

    Example:
        >>> f"{hypergeom_sf(262861, 25_600_000, 2_560_000, 2_560_000):.4e}"   # 15.4 sd above the mean
        '2.9937e-51'
    """
    N, a, b, x = int(N), int(a), int(b), int(x)
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    return _tail(x, True, slo, shi, mean, math.sqrt(var), lambda lo, hi: hypergeom_logpmf_range(N, a, b, lo, hi),
                 _hypergeom_ratio(N, a, b))


def hypergeom_cdf(x: int, N: int, a: int, b: int) -> float:
    """``P(|A and B| <= x)`` for random sets of sizes ``a`` and ``b`` out of ``N`` (exact)."""
    N, a, b, x = int(N), int(a), int(b), int(x)
    slo, shi = hypergeom_support(N, a, b)
    mean, var = (float(v) for v in hypergeom_moments(N, a, b))
    return _tail(x, False, slo, shi, mean, math.sqrt(var), lambda lo, hi: hypergeom_logpmf_range(N, a, b, lo, hi),
                 _hypergeom_ratio(N, a, b))


# ------------------------------------------------------------------------------------ binomial
def _binom_logpmf_range(n: int, p: float, lo: int, hi: int) -> np.ndarray:
    ks = np.arange(lo, hi, dtype=np.float64)
    # pmf(k+1) / pmf(k) = (n-k) / (k+1) * p / (1-p)
    steps = np.log(n - ks) - np.log(ks + 1) + (math.log(p) - math.log1p(-p))
    return _run(_log_binom_pmf(lo, n, p), steps)


def _binom_args(n: int, p: float) -> tuple[float, float, Callable[[int, int], np.ndarray], Callable[[int], float]]:
    odds = p / (1.0 - p)
    return (n * p, math.sqrt(n * p * (1 - p)), lambda lo, hi: _binom_logpmf_range(n, p, lo, hi),
            lambda k: (n - k) / (k + 1) * odds)


def binom_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1`` (exact).

    Example:
        >>> binom_sf(2, 2, 0.5)
        0.25
    """
    k, n = int(k), int(n)
    return _tail(k, True, 0, n, *_binom_args(n, p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1`` (exact)."""
    k, n = int(k), int(n)
    return _tail(k, False, 0, n, *_binom_args(n, p))


def binom_ppf(q: float, n: int, p: float) -> int:
    """The smallest ``k`` with ``P(X <= k) >= q`` for ``X ~ Binomial(n, p)``, ``0 < q < 1``, ``0 < p <= 1``:
    ``scipy.stats.binom.ppf``'s quantile, by stepping :func:`binom_cdf` from the normal approximation.
    Where ``P(X <= k)`` equals ``q`` exactly (``q = 1/2``, ``p = 1/2``, odd ``n``), rounding decides
    between ``k`` and ``k + 1``, as it does in scipy.

    Example:
        >>> binom_ppf(0.2, 2, 0.5), binom_ppf(0.7, 2, 0.5), binom_ppf(0.8, 2, 0.5)  # P(X <= k): 1/4, 3/4, 1
        (0, 1, 2)
    """
    n = int(n)
    if p >= 1.0:
        return n
    k = int(math.floor(n * p + NormalDist().inv_cdf(q) * math.sqrt(n * p * (1.0 - p))))
    k = min(n, max(0, k))
    while k > 0 and binom_cdf(k - 1, n, p) >= q:
        k -= 1
    while k < n and binom_cdf(k, n, p) < q:
        k += 1
    return k


# -------------------------------------------------------------------------------------- normal
def norm_sf(z: float) -> float:
    """``P(Z >= z)`` for a standard normal ``Z``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_sided(p_upper: float, p_lower: float) -> float:
    """Two-sided p-value as twice the smaller one-sided tail, capped at 1."""
    return min(1.0, 2.0 * min(p_upper, p_lower))
