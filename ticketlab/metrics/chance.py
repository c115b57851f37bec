"""What overlap would chance give? Hypergeometric nulls for two masks with fixed kept counts.

If ticket B kept its ``b`` weights of a layer of ``n`` uniformly at random, independently of
A's ``a``, the intersection ``X = |A and B|`` would be hypergeometric: mean ``ab/n``, variance
``ab(n-a)(n-b) / (n^2 (n-1))``. Every overlap metric of this package is a monotone function of
``X`` for fixed ``(n, a, b)``, so one null distribution serves all of them:

* **per-layer null** (the default in records): each layer is shuffled within itself, so the
  random masks keep the tickets' per-layer densities. Per layer the law is exact; for the whole
  network ``X`` is a sum of independent hypergeometrics, whose mean and variance are the sums of
  the layers' and whose tails use a normal approximation with continuity correction.
* **global null** (``*_global`` fields of total records): the kept weights are spread over the
  whole network, ignoring the layer allocation; exact hypergeometric law on the pooled counts.

``p`` is the one-sided ``P(X >= observed)`` (small: more shared than chance), ``p_two_sided``
twice the smaller tail. ``z = (X - E X) / sd X``, signed like the metric (negative for a distance
such as Hamming when the overlap exceeds chance). The expected value of a metric that is linear
in ``X`` (Dice, overlap coefficient, relative intersection, Hamming, Cohen's kappa) is the metric
at ``E X``. The expected Jaccard index ``E[X / (a + b - X)]`` is computed exactly by summing the
hypergeometric pmf (on a window around the mode holding all of the mass up to rounding, see
``_dist``); the per-layer tails are exact too. For the whole network under
the per-layer null it uses the second-order delta approximation
``E f(X) ~ f(mu) + f''(mu) var / 2`` with ``f(x) = x / (s - x)``, ``f'' = 2s / (s - x)^3``.

Example:
    >>> import numpy as np
    >>> from ticketlab.metrics.base import Counts
    >>> c = Counts(("w",), np.array([6]), np.array([3]), np.array([2]), np.array([2]))
    >>> s = null_stats(c)
    >>> float(s.mean[0]), round(float(s.var[0]), 6), round(float(s.p_upper[0]), 6)
    (1.0, 0.4, 0.2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ticketlab.metrics import _dist
from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, Cache, Counts, as_cache, clean


@dataclass(frozen=True)
class NullStats:
    """Null distribution summaries of ``X = |A and B|`` per layer and for the whole network."""

    mean: np.ndarray  # per layer, E X
    var: np.ndarray  # per layer, Var X
    p_upper: np.ndarray  # per layer, exact P(X >= x)
    p_lower: np.ndarray  # per layer, exact P(X <= x)
    e_jaccard: np.ndarray  # per layer, exact E[X / (a + b - X)]
    # whole network, per-layer null (normal approximation)
    total_mean: float
    total_var: float
    total_p_upper: float
    total_p_lower: float
    total_e_jaccard: float
    # whole network, global null (exact)
    global_mean: float
    global_var: float
    global_p_upper: float
    global_p_lower: float
    global_e_jaccard: float


# The window leaves out up to 1e-17 of the mass beyond each edge: a tail smaller than this is
# summed on its own from x outward (as _dist does), larger ones come from the window directly.
_WINDOW_TAIL = 1e-3


def hypergeom_summary(x: int, n: int, a: int, b: int) -> tuple[float, float, float]:
    """``(P(X >= x), P(X <= x), E[X / (a + b - X)])`` for ``X ~ Hypergeom(n, a, b)``, exactly.

    Example:
        >>> [round(v, 4) for v in hypergeom_summary(1, 6, 3, 2)]
        [0.8, 0.8, 0.2833]
    """
    ks, pmf = _dist.hypergeom_window(n, a, b)
    mass = pmf.sum()
    s = a + b - ks
    with np.errstate(divide="ignore", invalid="ignore"):
        ej = float(np.sum(pmf * np.where(s > 0, ks / np.where(s > 0, s, 1), np.nan)) / mass)
    if not ks[0] <= x <= ks[-1]:
        return _dist.hypergeom_sf(x, n, a, b), _dist.hypergeom_cdf(x, n, a, b), ej
    # As in _dist: sum the tail on x's side of the mean, the other one is its complement.
    i = int(x - ks[0])
    mean = a * b / n
    if x > mean:
        up = float(pmf[i:].sum())
        lo = max(0.0, 1.0 - float(pmf[i + 1:].sum()))
        if up < _WINDOW_TAIL:  # the mass the window leaves out may matter: sum from x outward
            up = _dist.hypergeom_sf(x, n, a, b)
    else:
        lo = float(pmf[: i + 1].sum())
        up = max(0.0, 1.0 - float(pmf[:i].sum()))
        if lo < _WINDOW_TAIL:
            lo = _dist.hypergeom_cdf(x, n, a, b)
    return min(1.0, up), min(1.0, lo), ej


def expected_jaccard_delta(mean: Any, var: Any, s: Any) -> Any:
    """Second-order delta approximation of ``E[X / (s - X)]`` given the mean and variance of X
    (NaN where ``s <= 0`` or ``s <= mean``); floats give a float, arrays an array.

    Example:
        >>> round(expected_jaccard_delta(1.0, 0.4, 4.0), 4)
        0.3926
    """
    mean, var, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (mean, var, s)))
    ok = (s > 0) & (s - mean > 0)
    gap = np.where(ok, s - mean, 1.0)
    out = np.where(ok, mean / gap + s * var / gap ** 3, np.nan)
    return float(out) if out.ndim == 0 else out


def _normal_tails(x: float, mean: float, var: float) -> tuple[float, float]:
    if var > 0:
        sd = math.sqrt(var)
        return _dist.norm_sf((x - 0.5 - mean) / sd), _dist.norm_sf((mean - x - 0.5) / sd)
    return float(x >= mean), float(x <= mean)


def normal_tails(x: Any, mean: Any, var: Any) -> tuple[Any, Any]:
    """``(P(X >= x), P(X <= x))`` by the normal approximation with continuity correction (a step
    where ``var`` is 0): the whole-network p of the per-layer null, for one pair or elementwise.

    Example:
        >>> [round(float(p), 4) for p in normal_tails(3, 1.0, 0.4)]
        [0.0089, 1.0]
    """
    up, lo = np.vectorize(_normal_tails, otypes=[np.float64, np.float64])(x, mean, var)
    return (float(up), float(lo)) if np.ndim(up) == 0 else (up, lo)


def expected_jaccard_matrix(kept: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(E X, Var X, E J)`` of every pair of tickets under the per-layer null, from their kept
    counts ``kept`` (tickets x layers) and the layer sizes ``sizes``.

    ``X`` is the whole-network intersection of two random masks with the tickets' per-layer kept
    counts, a sum of independent hypergeometric laws: ``E X_ij = sum_l K_il K_jl / n_l`` and
    ``Var X_ij = sum_l U_il U_jl / (n_l^2 (n_l - 1))`` with ``U = K (n - K)`` (two matrix
    products); ``E J`` is :func:`expected_jaccard_delta`, so that each entry is what
    ``compare`` gives that pair as the whole network's expected Jaccard.

    Example:
        >>> e_x, var_x, e_j = expected_jaccard_matrix(np.array([[1], [1]]), np.array([4]))
        >>> float(e_x[0, 1]), float(var_x[0, 1]), round(float(e_j[0, 1]), 4)  # exact E J: 0.25
        (0.25, 0.1875, 0.2128)
    """
    k = np.asarray(kept, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    k = k.reshape(len(k), len(n))
    mean = (k / n) @ k.T
    u = k * (n - k)
    denom = n * n * (n - 1.0)
    var = (u / np.where(denom > 0, denom, np.inf)) @ u.T
    tot = k.sum(axis=1)
    return mean, var, expected_jaccard_delta(mean, var, tot[:, None] + tot[None, :])


def null_stats(counts: Counts, cache: Cache | None = None, key: Any = None) -> NullStats:
    """Both nulls for a pair's :class:`Counts` (memoised in ``cache`` under ``key``).

    The null laws are symmetric in ``a`` and ``b``, so a key should not depend on the pair's order.
    """
    if key is not None:
        return as_cache(cache).get(("null", key), lambda: null_stats(counts))
    mean, var = _dist.hypergeom_moments(counts.n, counts.a, counts.b)
    k = len(counts.layers)
    p_up, p_lo, ej = np.empty(k), np.empty(k), np.empty(k)
    for i, (x_i, n_i, a_i, b_i) in enumerate(zip(counts.ab.tolist(), counts.n.tolist(), counts.a.tolist(), counts.b.tolist())):
        p_up[i], p_lo[i], ej[i] = hypergeom_summary(x_i, n_i, a_i, b_i)
    n, a, b, x = counts.total()
    t_mean, t_var = float(mean.sum()), float(var.sum())
    t_up, t_lo = _normal_tails(x, t_mean, t_var)
    g_mean, g_var = (float(v) for v in _dist.hypergeom_moments(n, a, b))
    g_up, g_lo, g_ej = hypergeom_summary(x, n, a, b)
    return NullStats(
        mean, var, p_up, p_lo, ej, t_mean, t_var, t_up, t_lo, expected_jaccard_delta(t_mean, t_var, a + b),
        g_mean, g_var, g_up, g_lo, g_ej,
    )


def _ratio(x: Any, y: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(x, y)


def _z(x: Any, mean: Any, var: Any, sign: float) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return sign * (np.asarray(x, float) - mean) / np.sqrt(var)


def overlap_lift_z(counts: Counts, index: int | None = None) -> tuple[float, float]:
    """Lift ``X / E X`` and standard score ``(X - E X) / sd X`` of the overlap count
    ``X = |A and B|`` under the per-layer null: for the whole network (``index`` None: the layers'
    means and variances summed, as in :func:`chance_result`'s total) or for layer ``index``.

    They are the records' ``lift`` of intersection, dice, overlap_coef and rel_intersection (each
    is ``c X`` for fixed counts) and the ``z`` of every overlap record (Hamming's negated); a
    Jaccard lift differs a little, since ``E[J]`` is not ``J(E X)``. Used by the ``lift`` and ``z``
    pairwise matrices. NaN where the null has no spread or no expected overlap.

    Example:
        >>> import numpy as np
        >>> c = Counts(("w",), np.array([6]), np.array([3]), np.array([2]), np.array([2]))
        >>> lift, z = overlap_lift_z(c)   # E X = 3*2/6 = 1, Var X = 0.4
        >>> lift, round(z, 4)             # 2 / 1, (2 - 1) / sqrt(0.4)
        (2.0, 1.5811)
    """
    mean, var = _dist.hypergeom_moments(counts.n, counts.a, counts.b)
    if index is None:
        x, mu, v = float(counts.ab.sum()), float(np.sum(mean)), float(np.sum(var))
    else:
        x, mu, v = float(counts.ab[index]), float(mean[index]), float(var[index])
    lift, z = float(_ratio(x, mu)), float(_z(x, mu, v, 1.0))
    return (lift if math.isfinite(lift) else math.nan), (z if math.isfinite(z) else math.nan)


def chance_result(
    counts: Counts,
    formula: Callable[..., Any],
    stats: NullStats,
    *,
    increasing: bool = True,
    jaccard: bool = False,
    lift: bool = True,
) -> dict[str, dict[str, Any]]:
    """Records for one overlap metric: value, expected, lift, z, p per layer and in total.

    ``formula(n, a, b, ab)`` is the metric as a function of the counts (vectorised); it must be
    linear in ``ab`` unless ``jaccard`` is set (then the exact expected Jaccard is used).
    ``lift=False`` leaves out the lift (for chance-corrected metrics whose expectation is ~0).
    Layer keys: ``__total__`` (pooled; per-layer null, plus the global null in ``*_global``),
    ``__mean__`` and ``__wmean__`` (unweighted and size-weighted means of the layer values) and
    each layer name.
    """
    sign = 1.0 if increasing else -1.0
    n, a, b, x = counts.n, counts.a, counts.b, counts.ab
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.asarray(formula(n, a, b, x), dtype=np.float64)
        expected = stats.e_jaccard if jaccard else np.asarray(formula(n, a, b, stats.mean), dtype=np.float64)
    lifts = _ratio(value, expected)
    z = _z(x, stats.mean, stats.var, sign)
    p_two = np.minimum(1.0, 2.0 * np.minimum(stats.p_upper, stats.p_lower))

    tn, ta, tb, tx = counts.total()
    with np.errstate(divide="ignore", invalid="ignore"):
        t_value = float(formula(tn, ta, tb, tx))
        t_exp = stats.total_e_jaccard if jaccard else float(formula(tn, ta, tb, stats.total_mean))
        g_exp = stats.global_e_jaccard if jaccard else float(formula(tn, ta, tb, stats.global_mean))
    out: dict[str, dict[str, Any]] = {
        TOTAL: {
            "value": clean(t_value), "expected": clean(t_exp), "lift": clean(_ratio(t_value, t_exp)),
            "z": clean(_z(tx, stats.total_mean, stats.total_var, sign)), "p": clean(stats.total_p_upper),
            "p_two_sided": clean(_dist.two_sided(stats.total_p_upper, stats.total_p_lower)),
            "expected_global": clean(g_exp), "lift_global": clean(_ratio(t_value, g_exp)),
            "z_global": clean(_z(tx, stats.global_mean, stats.global_var, sign)),
            "p_global": clean(stats.global_p_upper),
        }
    }
    ok = np.isfinite(value)
    if ok.any():
        w = n[ok].astype(np.float64)
        for key, (v, e) in {
            MEAN: (value[ok].mean(), expected[ok].mean()),
            WMEAN: (np.average(value[ok], weights=w) if w.sum() else math.nan,
                    np.average(expected[ok], weights=w) if w.sum() else math.nan),
        }.items():
            out[key] = {"value": clean(v), "expected": clean(e), "lift": clean(_ratio(v, e))}
    for i, layer in enumerate(counts.layers):
        out[layer] = {
            "value": clean(value[i]), "expected": clean(expected[i]), "lift": clean(lifts[i]),
            "z": clean(z[i]), "p": clean(stats.p_upper[i]), "p_two_sided": clean(p_two[i]),
        }
    if not lift:
        for rec in out.values():
            rec.pop("lift", None)
            rec.pop("lift_global", None)
    return out
