"""Layer-wise density distributions and their exact per-layer counts (plain Python, no torch).

A *distribution* says how a global budget of kept weights is spread over the prunable layers.
Each function here is pure: layer shapes and the total kept count in, per-layer densities out;
:func:`allocate_counts` then turns densities into integer counts whose sum is exactly the
budget. The ``random`` miner's ``--distribution`` uses them; any other method may.

* ``uniform``: every layer at the same density ``K / N``.
* ``erk``: Erdős–Rényi-Kernel (Evci et al. 2020, "Rigging the Lottery", the ERK distribution): a layer's
  density is ``ε · (n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)``, i.e. the sum of the
  weight's dimensions over their product (a linear layer has no kernel terms: Erdős–Rényi,
  ``(n_in + n_out) / (n_in · n_out)``). ``ε`` is chosen so the layers keep the budget; a layer
  whose density would exceed 1 is kept dense and ``ε`` is solved again for the rest, until none
  exceeds 1.
* ``smart_ratio``: Su et al. 2020 ("Sanity-Checking Pruning Methods: Random Tickets can Win the
  Jackpot", the Smart-Ratio rule as issue 13 states it): layer ``l`` of ``L`` keeps a ratio proportional to
  ``(L − l + 1)² + (L − l + 1)``, the last layer keeps 0.3; the proportional layers are scaled to
  the budget with the same capping at 1 as ERK (overflow redistributed to the others).

**Counts.** The budget is ``K = keep_count(d, N)`` (:mod:`ticketlab.selection`), the same count a
global selection keeps. :func:`allocate_counts` gives each layer ``floor(d_l · n_l)`` and hands
the rest out one weight at a time by largest fractional part (ties: the earlier layer in
parameter order), so the counts always sum to ``K`` and depend only on the inputs.

Example:
    >>> shapes = {"fc1": (4, 4), "fc2": (2, 4)}
    >>> allocate_counts(uniform_densities(shapes, 6), {n: 16 if n == "fc1" else 8 for n in shapes}, 6)
    {'fc1': 4, 'fc2': 2}
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ticketlab.errors import ConfigError

#: ``--distribution`` values of the ``random`` miner (``like:FILE`` names a ticket file).
#: ``global`` is no layer-wise distribution: one ranking over all weights (the run's scope).
DISTRIBUTIONS = ("global", "uniform", "erk", "smart_ratio", "like:FILE")

#: Su et al. 2020's keep ratio of the last layer (Smart-Ratio).
SMART_RATIO_LAST = 0.3


def _size(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _check_budget(sizes: Mapping[str, int], kept: int) -> None:
    total = sum(sizes.values())
    if isinstance(kept, bool) or int(kept) != kept or not 0 <= kept <= total:
        raise ConfigError(f"cannot keep {kept} weights of {total}")


def scaled_densities(raw: Mapping[str, float], sizes: Mapping[str, int], kept: int,
                     fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """Densities ``min(1, ε · raw_l)`` that keep ``kept`` weights in all, layers in ``fixed`` at
    their given density (the ERK iteration of Evci et al. 2020: solve ``ε``, keep every layer
    that would exceed 1 dense, solve again for the others, until none exceeds 1).

    Example:
        >>> scaled_densities({"a": 1.0, "b": 6.0}, {"a": 10, "b": 10}, 12)  # b capped, a takes the rest
        {'a': 0.2, 'b': 1.0}
    """
    fixed = dict(fixed or {})
    _check_budget(sizes, kept)
    if any(not raw[n] > 0 for n in raw):
        raise ConfigError("a distribution's raw layer weights must be positive")
    left = kept - sum(fixed[n] * sizes[n] for n in fixed)
    free = [n for n in sizes if n not in fixed]
    room = sum(sizes[n] for n in free)
    if left < -1e-9 or left > room + 1e-9:
        raise ConfigError(f"the layers held at a fixed density keep {kept - left:.0f} weights, so the other "
                          f"layers would keep {left:.0f} of their {room}; ask for "
                          f"a {'higher' if left < 0 else 'lower'} density")
    dense: set[str] = set()
    while True:
        rest = [n for n in free if n not in dense]
        budget = left - sum(sizes[n] for n in dense)
        if not rest:
            break
        eps = budget / sum(raw[n] * sizes[n] for n in rest)
        over = {n for n in rest if eps * raw[n] > 1.0}
        if not over:
            break
        dense |= over
    out = {}
    for n in sizes:
        out[n] = fixed[n] if n in fixed else (1.0 if n in dense else max(0.0, eps * raw[n]))
    return out


def uniform_densities(shapes: Mapping[str, Sequence[int]], kept: int) -> dict[str, float]:
    """The same density ``kept / N`` in every layer.

    Example:
        >>> uniform_densities({"a": (2, 5), "b": (10,)}, 5)
        {'a': 0.25, 'b': 0.25}
    """
    sizes = {n: _size(s) for n, s in shapes.items()}
    _check_budget(sizes, kept)
    return {n: kept / sum(sizes.values()) for n in sizes}


def erk_raw(shape: Sequence[int]) -> float:
    """ERK's unscaled density of a weight: sum of its dimensions over their product (Evci et al.
    2020: ``(n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)`` for a conv layer,
    ``(n_in + n_out) / (n_in · n_out)`` for a linear one).

    Example:
        >>> erk_raw((16, 3, 3, 3)), erk_raw((10, 40))
        (0.05787037037037037, 0.125)
    """
    return float(sum(int(s) for s in shape)) / _size(shape)


def erk_densities(shapes: Mapping[str, Sequence[int]], kept: int) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities keeping ``kept`` weights (see the module docstring).

    Example:
        >>> d = erk_densities({"fc1": (8, 8), "fc2": (2, 8)}, 20)  # raw 1/4, 5/8; ε = 20 / (16 + 10)
        >>> {n: round(v, 4) for n, v in d.items()}
        {'fc1': 0.1923, 'fc2': 0.4808}
    """
    sizes = {n: _size(s) for n, s in shapes.items()}
    return scaled_densities({n: erk_raw(s) for n, s in shapes.items()}, sizes, kept)


def smart_ratio_densities(shapes: Mapping[str, Sequence[int]], kept: int, *,
                          positions: Mapping[str, int] | None = None, layers: int | None = None,
                          last: float = SMART_RATIO_LAST) -> dict[str, float]:
    """Smart-Ratio densities keeping ``kept`` weights (Su et al. 2020, the rule as issue 13 states it).

    Layer ``l`` (1-based) of ``L`` gets ``ε · ((L − l + 1)² + (L − l + 1))`` and layer ``L``
    exactly ``last`` (0.3); ``ε`` keeps the budget, with ERK's capping at 1. ``positions`` gives
    each layer's ``l`` in the whole network and ``layers`` its ``L``, so a layer left dense by
    ``--skip-last-layer`` still counts (then no pruned layer is the last, and none is fixed);
    by default the layers are ``1..len(shapes)`` in order.

    Example:
        >>> d = smart_ratio_densities({"a": (10, 10), "b": (10, 10), "c": (10, 10)}, 90)
        >>> {n: round(v, 4) for n, v in d.items()}   # raw 12 and 6, c fixed at 0.3
        {'a': 0.4, 'b': 0.2, 'c': 0.3}
    """
    names = list(shapes)
    positions = dict(positions) if positions is not None else {n: i + 1 for i, n in enumerate(names)}
    L = int(layers) if layers is not None else len(names)
    if set(positions) != set(names) or any(not 1 <= positions[n] <= L for n in names):
        raise ConfigError(f"smart_ratio needs every layer's position in 1..{L}")
    sizes = {n: _size(s) for n, s in shapes.items()}
    fixed = {n: float(last) for n in names if positions[n] == L and len(names) > 1}
    raw = {n: float((L - positions[n] + 1) ** 2 + (L - positions[n] + 1)) for n in names if n not in fixed}
    _check_budget(sizes, kept)
    left = kept - sum(fixed[n] * sizes[n] for n in fixed)
    room = sum(sizes[n] for n in raw)
    if left < -1e-9 or left > room + 1e-9:
        raise ConfigError(f"smart_ratio keeps the last layer at density {last} "
                          f"({sum(fixed[n] * sizes[n] for n in fixed):.0f} weights), so the other layers "
                          f"would keep {left:.0f} of their {room}; ask for a {'higher' if left < 0 else 'lower'} density")
    return scaled_densities(raw, sizes, kept, fixed)


def selection_density(count: int, size: int) -> float:
    """A density that :func:`ticketlab.selection.keep_count` maps to exactly ``count`` of ``size``:
    ``count / size``, or ``1 / (4 · size)`` for a count of 0 (a round's densities must be positive,
    and ``floor(1/4 + 1/2) = 0``).

    Example:
        >>> from ticketlab.selection import keep_count
        >>> [keep_count(selection_density(k, 7), 7) for k in range(8)]
        [0, 1, 2, 3, 4, 5, 6, 7]
    """
    if not 0 <= count <= size:
        raise ConfigError(f"cannot keep {count} weights of {size}")
    return count / size if count else 1.0 / (4 * size)


def allocate_counts(densities: Mapping[str, float], sizes: Mapping[str, int], kept: int,
                    caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Integer per-layer counts that sum to exactly ``kept``, following ``densities``.

    Each layer first gets ``floor(d_l · n_l)`` (at most its cap); the remaining weights go one at
    a time to the layers with the largest fractional parts ``d_l · n_l − floor(d_l · n_l)``, ties to
    the earlier layer (largest-remainder rounding; rounds again while weights are left). ``caps``
    (default: the layer sizes) bounds every count, e.g. by the previous round's so masks only
    shrink: largest remainders alone can give a layer *more* weights at a smaller total (the
    Alabama paradox of apportionment: sizes 1, 3, 3 keep 0, 2, 2 of 4 but 1, 1, 1 of 3).

    Example:
        >>> allocate_counts({"a": 0.25, "b": 0.25, "c": 0.25}, {"a": 2, "b": 2, "c": 2}, 2)
        {'a': 1, 'b': 1, 'c': 0}
    """
    names = list(sizes)
    caps = {n: int(sizes[n]) for n in names} if caps is None else {n: min(int(caps[n]), int(sizes[n])) for n in names}
    if set(densities) != set(names):
        raise ConfigError("densities and layer sizes cover different layers")
    if isinstance(kept, bool) or int(kept) != kept or not 0 <= kept <= sum(caps.values()):
        raise ConfigError(f"cannot keep {kept} weights: the layers hold at most {sum(caps.values())}")
    ideal = {n: max(0.0, float(densities[n])) * sizes[n] for n in names}
    counts = {n: min(caps[n], int(math.floor(ideal[n]))) for n in names}
    frac = {n: ideal[n] - math.floor(ideal[n]) for n in names}
    by_frac = sorted(names, key=lambda n: (-frac[n], names.index(n)))
    left = int(kept) - sum(counts.values())
    while left > 0:  # largest remainders first; a second pass only when caps or float error need it
        for n in by_frac:
            if left and counts[n] < caps[n]:
                counts[n] += 1
                left -= 1
    while left < 0:  # float error only: take back from the smallest remainders
        for n in reversed(by_frac):
            if left and counts[n] > 0:
                counts[n] -= 1
                left += 1
    return counts
