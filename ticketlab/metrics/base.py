"""Shared plumbing of the metrics: layer keys, result fields, the per-call cache, and counts.

Every overlap-type metric is a function of four numbers per layer: the layer's size ``n``, the
kept counts ``a`` and ``b`` of the two tickets and their intersection ``ab``. :func:`pair_counts`
computes them once per pair (``np.count_nonzero`` on boolean arrays, no torch) and every
metric derives its value from them.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
    >>> b = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
    >>> c = pair_counts(a, b)
    >>> c.n.tolist(), c.a.tolist(), c.b.tolist(), c.ab.tolist()
    ([4], [2], [2], [1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar, Union

import numpy as np

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.ticket import Ticket

#: Layer key of a whole-network value (all layers pooled).
TOTAL = "__total__"
#: Layer key of the unweighted mean of the per-layer values.
MEAN = "__mean__"
#: Layer key of the mean of the per-layer values weighted by layer size (parameter count).
WMEAN = "__wmean__"
#: Layer keys that are summaries rather than parameter or tensor names.
SUMMARY_KEYS = (TOTAL, MEAN, WMEAN)

#: Fields a metric may return for one layer, besides ``value`` (see docs/compare_schema.md).
FIELDS = (
    "value", "expected", "lift", "z", "p", "p_two_sided",
    "expected_global", "lift_global", "z_global", "p_global",
    "expected_degree", "lift_degree", "p_degree",
    "expected_aligned", "sd_aligned", "lift_aligned", "p_aligned", "se", "note",
)

#: What a metric returns: one number (the total), or layer key -> number or field dict.
MetricResult = Union[float, int, None, Mapping[str, Union[float, int, None, Mapping[str, Any]]]]

#: Global curveball rounds from the ticket to the hub, and from the hub to each sample.
DEFAULT_ROUNDS = 30
#: Null samples when none are asked for.
DEFAULT_SAMPLES = 20
#: Most null samples one comparison may ask for.
MAX_SAMPLES = 100_000


@dataclass(frozen=True)
class DegreeNull:
    """Settings of the degree-preserving null (:mod:`ticketlab.metrics.degree`) and of the other
    sampled nulls.

    Attributes:
        samples: null samples per ticket (``N``); p-values are multiples of ``1 / (N + 1)``.
        seed: seed of every sample; the same seed gives the same samples.
        rounds: global curveball rounds from the ticket's mask to the hub state, and from the
            hub to each sample (Besag & Clifford's parallel scheme).
    """

    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    rounds: int = DEFAULT_ROUNDS

    def __post_init__(self) -> None:
        for name, lo, hi in (("samples", 1, MAX_SAMPLES), ("rounds", 1, 10_000)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(f"degree null: {name} must be an integer from {lo} to {hi}, not {v!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"degree null: seed must be a non-negative integer, not {self.seed!r}")



T = TypeVar("T")


class Cache:
    """Memo for one :func:`~ticketlab.metrics.compare` call (counts, alive units, graphs).

    Keys hold ``id()`` of tickets, which is safe because the cache lives no longer than the
    call that holds the tickets. ``degree_null`` (a :class:`~ticketlab.metrics.degree.DegreeNull`)
    asks the overlap metrics for the degree-preserving null fields too; ``sampling`` (also a
    ``DegreeNull``: samples, seed, rounds) is what metrics that always sample their nulls use
    (the relational-graph measures), by default ``degree_null`` or the defaults; :meth:`stream`
    numbers the tickets in the order first seen, which tells their null samples apart.
    """

    def __init__(self, degree_null: Any = None, sampling: Any = None) -> None:
        self._items: dict[Any, Any] = {}
        self.degree_null = degree_null
        if sampling is None:
            sampling = degree_null if degree_null is not None else DegreeNull()
        self.sampling = sampling
        self._streams: dict[int, int] = {}
        #: id of an aligned ticket B' -> (A, B, by, samples, seed): compare(align=...) fills it
        self.aligned: dict[int, tuple[Any, ...]] = {}

    def stream(self, t: Any) -> int:
        """The stream number of ticket ``t``: 0, 1, ... in the order tickets are first seen."""
        return self._streams.setdefault(id(t), len(self._streams))

    def get(self, key: Any, make: Callable[[], T]) -> T:
        """The value stored under ``key``, made by ``make()`` the first time."""
        try:
            return self._items[key]
        except KeyError:
            value = self._items[key] = make()
            return value


def as_cache(cache: Cache | None) -> Cache:
    """``cache`` itself, or a fresh one for a direct (uncached) call."""
    return cache if cache is not None else Cache()


def clean(x: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become ``None``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def check_pair(a: Ticket, b: Ticket, label_a: str = "a", label_b: str = "b") -> None:
    """Raise :class:`IncompatibleError` naming the first parameter where ``a`` and ``b`` differ.

    Example:
        >>> t = Ticket(masks={"w": np.ones(2, bool)})
        >>> check_pair(t, Ticket(masks={"w": np.ones(3, bool)}))
        Traceback (most recent call last):
        ...
        ticketlab.errors.IncompatibleError: tickets 'a' and 'b' differ at parameter 'w' (shape (2,) vs (3,)); ...
    """
    na, nb = list(a.masks), list(b.masks)
    hint = "compare the shared parameters with common_only (--common-only)"
    for i in range(max(len(na), len(nb))):
        x = na[i] if i < len(na) else None
        y = nb[i] if i < len(nb) else None
        if x != y:
            what = f"'{x}' vs '{y}'" if x and y else f"'{x or y}' only in '{label_a if x else label_b}'"
            raise IncompatibleError(
                f"tickets '{label_a}' and '{label_b}' differ at parameter {i + 1} ({what}); {hint}"
            )
        sa, sb = a.masks[x].shape, b.masks[x].shape
        if sa != sb:
            raise IncompatibleError(
                f"tickets '{label_a}' and '{label_b}' differ at parameter '{x}' (shape {sa} vs {sb}); {hint}"
            )


# ---------------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class Counts:
    """Per-layer counts of a pair of sets: sizes ``n``, kept ``a`` and ``b``, intersection ``ab``.

    All four are int64 arrays aligned with ``layers``.
    """

    layers: tuple[str, ...]
    n: np.ndarray
    a: np.ndarray
    b: np.ndarray
    ab: np.ndarray

    def total(self) -> tuple[int, int, int, int]:
        """Pooled ``(n, a, b, ab)`` over all layers."""
        return int(self.n.sum()), int(self.a.sum()), int(self.b.sum()), int(self.ab.sum())

    def swapped(self) -> "Counts":
        """The counts of the pair in the other order (``a`` and ``b`` exchanged)."""
        return Counts(self.layers, self.n, self.b, self.a, self.ab)


def kept_counts(t: Ticket, cache: Cache | None = None) -> np.ndarray:
    """Kept count per masked parameter of ``t`` (int64, in mask order)."""
    return as_cache(cache).get(
        ("kept", id(t)), lambda: np.array([np.count_nonzero(m) for m in t.masks.values()], dtype=np.int64)
    )


def counts_of(
    a_sets: Mapping[str, np.ndarray], b_sets: Mapping[str, np.ndarray],
    a_kept: np.ndarray | None = None, b_kept: np.ndarray | None = None,
) -> Counts:
    """:class:`Counts` of two aligned mappings of boolean arrays (same keys and shapes)."""
    names = tuple(a_sets)
    size = max((m.size for m in a_sets.values()), default=0)
    buf = np.empty(size, dtype=np.bool_)
    ab = np.empty(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        x, y = a_sets[name], b_sets[name]
        out = buf[: x.size].reshape(x.shape)
        np.logical_and(x, y, out=out)
        ab[i] = np.count_nonzero(out)
    n = np.array([m.size for m in a_sets.values()], dtype=np.int64)
    if a_kept is None:
        a_kept = np.array([np.count_nonzero(m) for m in a_sets.values()], dtype=np.int64)
    if b_kept is None:
        b_kept = np.array([np.count_nonzero(m) for m in b_sets.values()], dtype=np.int64)
    return Counts(names, n, a_kept, b_kept, ab)


def pair_counts(a: Ticket, b: Ticket, cache: Cache | None = None) -> Counts:
    """Weight-level :class:`Counts` of two tickets of the same architecture (computed once)."""
    cache = as_cache(cache)
    if id(a) > id(b):  # one count per unordered pair; (b, a) is the same counts swapped
        return pair_counts(b, a, cache).swapped()

    def make() -> Counts:
        check_pair(a, b)
        return counts_of(a.masks, b.masks, kept_counts(a, cache), kept_counts(b, cache))

    return cache.get(("counts", id(a), id(b)), make)
