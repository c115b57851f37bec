"""Unit-level overlap: a neuron, output channel or kernel is *alive* if it keeps any weight.

Levels: ``"unit"`` (output neuron of a linear/GCN weight ``(out, in)``, output channel of a conv
weight ``(out, in, k, k)``: row ``o`` alive if ``mask[o].any()``) and ``"kernel"`` (conv only:
kernel ``(o, c)`` alive if ``mask[o, c].any()``). The chance fields treat the alive sets like
masks: random alive sets of the same sizes (hypergeometric, see chance.py).

``empty_kernels`` compares the share of empty kernels in each conv layer with chance: if the
layer's ``a`` kept weights of ``n`` were spread at random, a kernel of ``K = k*k`` weights would
be empty with probability ``C(n-K, a) / C(n, a)`` (exact, hypergeometric), which tends to
``(1-d)^K`` with ``d = a/n`` for large layers.

Example:
    >>> import numpy as np
    >>> alive_units(np.array([[1, 0], [0, 0], [0, 1]], bool)).tolist()
    [True, False, True]
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, Cache, Counts, as_cache, check_pair, clean, counts_of
from ticketlab.metrics.chance import chance_result, null_stats
from ticketlab.metrics.formulas import f_jaccard
from ticketlab.metrics.registry import register
from ticketlab.ticket import Ticket

LEVELS = ("unit", "kernel")


def alive_units(mask: np.ndarray) -> np.ndarray:
    """Output units (axis 0) that keep at least one weight; a 1-d mask is its own unit array."""
    if mask.ndim == 1:
        return mask
    return mask.reshape(mask.shape[0], -1).any(axis=1)


def alive_kernels(mask: np.ndarray) -> np.ndarray:
    """Kernels ``(out, in)`` of a conv weight that keep at least one of their ``k*k`` weights."""
    return mask.reshape(mask.shape[0], mask.shape[1], -1).any(axis=2)


def alive(t: Ticket, level: str, cache: Cache | None = None) -> dict[str, np.ndarray]:
    """Alive arrays per parameter at ``level`` (kernel level: conv parameters only)."""
    if level not in LEVELS:
        raise ConfigError(f"unit level must be 'unit' or 'kernel', not '{level}'")

    def make() -> dict[str, np.ndarray]:
        if level == "unit":
            return {n: alive_units(m) for n, m in t.masks.items()}
        return {n: alive_kernels(m) for n, m in t.masks.items() if m.ndim >= 3}

    return as_cache(cache).get(("alive", level, id(t)), make)


def unit_counts(a: Ticket, b: Ticket, level: str = "unit", cache: Cache | None = None) -> Counts:
    """:class:`Counts` of the alive sets of two tickets at ``level``."""
    cache = as_cache(cache)
    if id(a) > id(b):  # one count per unordered pair
        return unit_counts(b, a, level, cache).swapped()

    def make() -> Counts:
        check_pair(a, b)
        return counts_of(alive(a, level, cache), alive(b, level, cache))

    return cache.get(("unit_counts", level, id(a), id(b)), make)


def unit_overlap(a: Ticket, b: Ticket, formula: Callable[..., Any] = f_jaccard, *, level: str = "unit",
                 cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Any count formula of overlap.py on alive units or kernels, with chance fields.

    Example:
        >>> t = Ticket(masks={"w": np.array([[1, 0], [0, 0]], bool)})
        >>> unit_overlap(t, t)["__total__"]["value"]
        1.0
    """
    cache = as_cache(cache)
    counts = unit_counts(a, b, level, cache)
    if not counts.layers:
        return {TOTAL: {"value": None, "note": f"no parameters with {level}s (convolutions) to compare"}}
    stats = null_stats(counts, cache, key=(level, *sorted((id(a), id(b)))))
    return chance_result(counts, formula, stats, jaccard=formula is f_jaccard)


@register("unit_jaccard", orientation="similarity", default=True, group="units",
          description="Jaccard index of alive output units (neurons / channels)")
def unit_jaccard(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Jaccard index of the alive output units (a unit is alive if it keeps any weight)."""
    return unit_overlap(a, b, f_jaccard, level="unit", cache=cache)


@register("kernel_jaccard", orientation="similarity", default=True, group="units",
          description="Jaccard index of alive conv kernels")
def kernel_jaccard(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Jaccard index of the alive conv kernels (a kernel is alive if it keeps any weight)."""
    return unit_overlap(a, b, f_jaccard, level="kernel", cache=cache)


def p_empty_kernel(n: int, a: int, k: int) -> float:
    """Chance that a given kernel of ``k`` weights keeps none when ``a`` of ``n`` are kept at random.

    Exact: ``C(n-k, a) / C(n, a)`` (hypergeometric); about ``(1 - a/n) ** k`` for large ``n``.

    Example:
        >>> p_empty_kernel(4, 2, 2)     # C(2, 2) / C(4, 2)
        0.16666666666666666
    """
    if n - k < a:
        return 0.0
    if k <= 1024:  # C(n-k, a) / C(n, a) = prod_{i<k} (n-a-i) / (n-i)
        return math.prod((n - a - i) / (n - i) for i in range(k))
    return math.exp(math.lgamma(n - k + 1) - math.lgamma(n - k - a + 1) - math.lgamma(n + 1) + math.lgamma(n - a + 1))


@register("empty_kernels", kind="single", orientation=None, default=True, group="units",
          description="share of empty conv kernels vs. chance C(n-k*k, a)/C(n, a) ~ (1-d)^(k*k)")
def empty_kernels(t: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Share of conv kernels that keep no weight, with its chance expectation and lift.

    Example:
        >>> m = np.zeros((1, 2, 1, 2), bool); m[0, 0, 0, 0] = True
        >>> r = empty_kernels(Ticket(masks={"conv": m}))["conv"]
        >>> r["value"], r["expected"]          # C(2, 1) / C(4, 1) = 0.5
        (0.5, 0.5)
    """
    kernels = alive(t, "kernel", cache)
    if not kernels:
        return {TOTAL: {"value": None, "note": "no convolution parameters"}}
    out: dict[str, dict[str, Any]] = {}
    tot_k = tot_empty = tot_exp = 0.0
    vals, exps, sizes = [], [], []
    for name, ker in kernels.items():
        m = t.masks[name]
        k = int(np.prod(m.shape[2:]))
        empty = float(ker.size - np.count_nonzero(ker))
        p = p_empty_kernel(m.size, int(np.count_nonzero(m)), k)
        value = empty / ker.size if ker.size else math.nan
        out[name] = {"value": clean(value), "expected": clean(p), "lift": clean(value / p if p else math.nan)}
        tot_k, tot_empty, tot_exp = tot_k + ker.size, tot_empty + empty, tot_exp + p * ker.size
        vals.append(value), exps.append(p), sizes.append(m.size)
    v, e = tot_empty / tot_k, tot_exp / tot_k
    summary = {TOTAL: {"value": clean(v), "expected": clean(e), "lift": clean(v / e if e else math.nan)}}
    mv, me = float(np.mean(vals)), float(np.mean(exps))
    wv, we = float(np.average(vals, weights=sizes)), float(np.average(exps, weights=sizes))
    summary[MEAN] = {"value": clean(mv), "expected": clean(me), "lift": clean(mv / me if me else math.nan)}
    summary[WMEAN] = {"value": clean(wv), "expected": clean(we), "lift": clean(wv / we if we else math.nan)}
    return {**summary, **out}
