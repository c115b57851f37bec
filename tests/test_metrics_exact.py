"""The chance numbers against independent oracles: exact tails and the whole-network null.

* Hypergeometric and binomial tails (``_dist``) and the per-layer ``p`` of ``hypergeom_summary``
  against ``scipy.stats``, swept over both edges of the old summation window (mean +- (15 sd + 30),
  +-3 points, where the old code dropped the mass beyond the edge) and out into the extreme
  tails, and required to be monotone.
* The tolerance is one scipy itself meets: ``test_scipy_and_ours_against_high_precision``
  measures both against a 40-digit ``mpmath`` sum (mpmath comes with torch, through sympy);
  scipy is off by ~2e-9 (relative) at N = 2.56e7, ours by ~1e-14.
* The whole-network p under the per-layer null (a normal approximation) and its expected Jaccard
  (the delta method) against the exact law of the total, by convolving the layers' pmfs.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import stats

from ticketlab.metrics import _dist
from ticketlab.metrics.base import Counts
from ticketlab.metrics.chance import hypergeom_summary, null_stats

REL = 1e-8  # scipy's own error is ~2e-9 at N = 2.56e7 (see the mpmath test); ours ~1e-14
TINY = 1e-290  # below this scipy and we are in subnormal numbers: not compared

HYPER = [
    (25_600_000, 2_560_000, 2_560_000),  # the issue's case: a 25.6M-weight layer at density 0.1
    (10**6, 10**5, 2 * 10**5),  # the issue's non-monotone cdf
    (1000, 100, 300),
    (50_000, 10, 40_000),
    (10**6, 5, 7),
    (20_000, 19_000, 19_500),  # support starts well above 0
]


def _old_window(mean: float, sd: float, slo: int, shi: int) -> tuple[int, int]:
    w = math.ceil(15.0 * sd + 30.0)
    return max(slo, math.floor(mean) - w), min(shi, math.ceil(mean) + w)


def _sweep(slo: int, shi: int, mean: float, sd: float) -> list[int]:
    """Both old window edges +-3, the support's ends, the middle and points far out."""
    lo, hi = _old_window(mean, sd, slo, shi)
    xs = {*range(lo - 3, lo + 4), *range(hi - 3, hi + 4), slo, slo + 1, shi - 1, shi, int(mean), int(mean) + 1}
    xs |= {int(mean + k * sd) for k in (-40, -20, -5, -1, 1, 5, 20, 40)}
    return sorted(x for x in xs if slo - 1 <= x <= shi + 1)


def _close(got: float, want: float) -> bool:
    if want < TINY:
        return got < 1e-280
    return got == pytest.approx(want, rel=REL, abs=0)


@pytest.mark.parametrize("n,a,b", HYPER)
def test_hypergeom_tails_match_scipy_at_window_edges_and_far_out(n, a, b):
    slo, shi = _dist.hypergeom_support(n, a, b)
    mean, var = (float(v) for v in _dist.hypergeom_moments(n, a, b))
    bad = []
    for x in _sweep(slo, shi, mean, math.sqrt(var)):
        want_up, want_lo = float(stats.hypergeom.sf(x - 1, n, a, b)), float(stats.hypergeom.cdf(x, n, a, b))
        got_up, got_lo = _dist.hypergeom_sf(x, n, a, b), _dist.hypergeom_cdf(x, n, a, b)
        p_up, p_lo, _ = hypergeom_summary(x, n, a, b) if slo <= x <= shi else (got_up, got_lo, 0)
        for what, got, want in [("sf", got_up, want_up), ("cdf", got_lo, want_lo),
                                ("summary p", p_up, want_up), ("summary p_lower", p_lo, want_lo)]:
            if not _close(got, want):
                bad.append((what, x, got, want))
    assert not bad, bad


@pytest.mark.parametrize("n,p", [(10, 0.5), (100, 0.5), (10_000, 0.5), (2_000_000, 0.5), (100_000, 0.01)])
def test_binomial_tails_match_scipy_at_window_edges_and_far_out(n, p):
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    bad = []
    for k in _sweep(0, n, mean, sd):
        want_up, want_lo = float(stats.binom.sf(k - 1, n, p)), float(stats.binom.cdf(k, n, p))
        got_up, got_lo = _dist.binom_sf(k, n, p), _dist.binom_cdf(k, n, p)
        if not (_close(got_up, want_up) and _close(got_lo, want_lo)):
            bad.append((k, got_up, want_up, got_lo, want_lo))
    assert not bad, bad


@pytest.mark.parametrize("classes", [1, 2, 3, 7, 10, 100])
def test_binomial_quantiles_equal_scipys(classes):
    """health's chance band (the 0.5 % and 99.5 % quantiles) and a far tail, at every sample count
    to 300 and some to 10^6: the same integers as scipy.stats.binom.ppf. (Not at q = 1/2 with
    p = 1/2: there P(X <= k) = q exactly for odd n, and rounding decides, in scipy as here.)"""
    ns = np.unique(np.r_[np.arange(1, 301), np.geomspace(300, 10**6, 12).astype(int)])
    for q in (0.005, 0.995, 1e-9):
        want = stats.binom.ppf(q, ns, 1.0 / classes).astype(int).tolist()
        assert [_dist.binom_ppf(q, int(n), 1.0 / classes) for n in ns] == want, q


def test_the_issues_examples():
    n, a, b = 25_600_000, 2_560_000, 2_560_000
    assert _dist.hypergeom_sf(262861, n, a, b) == pytest.approx(2.99368271076e-51, rel=1e-10, abs=0)
    assert _dist.hypergeom_sf(262861, n, a, b) > _dist.hypergeom_sf(262862, n, a, b)
    assert _dist.hypergeom_cdf(18169, 10**6, 10**5, 2 * 10**5) > _dist.hypergeom_cdf(18168, 10**6, 10**5, 2 * 10**5)


@pytest.mark.parametrize("n,a,b", HYPER)
def test_hypergeom_tails_are_monotone(n, a, b):
    slo, shi = _dist.hypergeom_support(n, a, b)
    mean, var = (float(v) for v in _dist.hypergeom_moments(n, a, b))
    lo, hi = _old_window(mean, math.sqrt(var), slo, shi)
    xs = sorted({*range(max(slo, lo - 20), lo + 21), *range(hi - 20, min(shi, hi + 20) + 1),
                 *range(max(slo, int(mean) - 20), min(shi, int(mean) + 20) + 1)})
    sf = [_dist.hypergeom_sf(x, n, a, b) for x in xs]
    cdf = [_dist.hypergeom_cdf(x, n, a, b) for x in xs]
    summ = [hypergeom_summary(x, n, a, b) for x in xs]
    for i in range(len(xs) - 1):
        if xs[i + 1] == xs[i] + 1:
            assert sf[i] >= sf[i + 1] and cdf[i] <= cdf[i + 1], (xs[i], sf[i], sf[i + 1], cdf[i], cdf[i + 1])
            assert summ[i][0] >= summ[i + 1][0] and summ[i][1] <= summ[i + 1][1], xs[i]


def test_binomial_tails_are_monotone():
    n = 10_000
    w = math.ceil(15 * math.sqrt(n / 4) + 30)
    ks = range(n // 2 - w - 20, n // 2 + w + 21)
    sf = [_dist.binom_sf(k, n, 0.5) for k in ks]
    cdf = [_dist.binom_cdf(k, n, 0.5) for k in ks]
    assert all(x >= y for x, y in zip(sf, sf[1:])) and all(x <= y for x, y in zip(cdf, cdf[1:]))


def _mp_hyper_tail(x: int, n: int, a: int, b: int, upper: bool) -> mpmath.mpf:
    """P(X >= x) or P(X <= x) by a 40-digit sum of the pmf (an oracle independent of _dist)."""
    with mpmath.workdps(40):
        lg = mpmath.loggamma
        t = mpmath.exp(lg(a + 1) - lg(x + 1) - lg(a - x + 1) + lg(n - a + 1) - lg(b - x + 1)
                       - lg(n - a - b + x + 1) - lg(n + 1) + lg(b + 1) + lg(n - b + 1))
        s, k = t, x
        while t > s * mpmath.mpf(10) ** -30:
            if upper:
                t, k = t * (a - k) * (b - k) / ((k + 1) * (n - a - b + k + 1)), k + 1
            else:
                t, k = t * k * (n - a - b + k) / ((a - k + 1) * (b - k + 1)), k - 1
            s += t
        return s


@pytest.mark.parametrize("x,upper", [(262858, True), (262861, True), (262864, True), (258000, True),
                                     (249139, False), (249136, False), (254000, False)])
def test_scipy_and_ours_against_high_precision(x, upper):
    n, a, b = 25_600_000, 2_560_000, 2_560_000
    exact = _mp_hyper_tail(x, n, a, b, upper)
    ours = _dist.hypergeom_sf(x, n, a, b) if upper else _dist.hypergeom_cdf(x, n, a, b)
    theirs = float(stats.hypergeom.sf(x - 1, n, a, b) if upper else stats.hypergeom.cdf(x, n, a, b))
    assert abs(float((theirs - exact) / exact)) < REL / 2  # the tolerance is one scipy meets
    assert abs(float((ours - exact) / exact)) < 1e-12


def test_exact_against_big_integer_arithmetic():
    # small enough for exact rationals: P(X >= x) = sum_k C(a,k) C(n-a,b-k) / C(n,b)
    n, a, b = 3000, 300, 400
    total = math.comb(n, b)
    for x in (0, 40, 70, 100, 150, 250, 300):
        num = sum(math.comb(a, k) * math.comb(n - a, b - k) for k in range(x, min(a, b) + 1))
        assert _dist.hypergeom_sf(x, n, a, b) == pytest.approx(num / total, rel=1e-12, abs=0)
        num_lo = sum(math.comb(a, k) * math.comb(n - a, b - k) for k in range(0, x + 1))
        assert _dist.hypergeom_cdf(x, n, a, b) == pytest.approx(num_lo / total, rel=1e-12, abs=0)


# --------------------------------------------------------------- whole network, per-layer null
def _exact_total_law(ns, as_, bs) -> np.ndarray:
    """pmf of the sum of independent Hypergeom(n_i, a_i, b_i), by convolving exact pmfs."""
    law = np.array([1.0])
    for n, a, b in zip(ns, as_, bs):
        ks = np.arange(0, min(a, b) + 1)
        law = np.convolve(law, stats.hypergeom.pmf(ks, n, a, b))
    return law


CASES = [  # (n, a, b) per layer: small layers of a few sizes and densities
    ([200, 300, 50], [40, 90, 10], [60, 60, 20]),
    ([1000, 400, 80, 80], [100, 200, 8, 40], [300, 100, 40, 8]),
    ([500] * 6, [50, 100, 150, 200, 250, 300], [250, 200, 150, 100, 50, 25]),
]


@pytest.mark.parametrize("ns,as_,bs", CASES)
def test_whole_network_p_and_expected_jaccard_against_convolution(ns, as_, bs):
    law = _exact_total_law(ns, as_, bs)
    ks = np.arange(len(law))
    s = sum(as_) + sum(bs)
    exact_ej = float(np.sum(law * ks / (s - ks)))
    mean = float(np.sum(law * ks))
    sd = math.sqrt(float(np.sum(law * (ks - mean) ** 2)))
    worst_p = 0.0
    for x in sorted({int(mean + k * sd) for k in (-3, -2, -1, 0, 1, 2, 3)}):
        ab, left = [], x  # any split of x over the layers: only the total enters these fields
        for a, b in zip(as_, bs):
            ab.append(min(left, a, b))
            left -= ab[-1]
        counts = Counts(tuple(f"l{i}" for i in range(len(ns))), np.array(ns), np.array(as_), np.array(bs), np.array(ab))
        st = null_stats(counts)
        assert st.total_mean == pytest.approx(mean, rel=1e-9) and math.sqrt(st.total_var) == pytest.approx(sd, rel=1e-9)
        exact_up, exact_lo = float(law[x:].sum()), float(law[: x + 1].sum())
        # normal approximation with continuity correction: within 0.0035 here (without it: 0.02 .. 0.04)
        worst_p = max(worst_p, abs(st.total_p_upper - exact_up), abs(st.total_p_lower - exact_lo))
        # the second-order delta method: 5e-6 off here (the first-order term alone: 3e-4 .. 3e-3)
        assert st.total_e_jaccard == pytest.approx(exact_ej, rel=5e-5)
    assert worst_p < 0.01
