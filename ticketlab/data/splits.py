"""Seeded, class-stratified splits of a labelled index set.

Every split in :mod:`ticketlab.data` goes through :func:`stratified_split`, so "same seed, same
split" holds everywhere and each part has (up to rounding) the class proportions of the whole.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> a, b = stratified_split(y, [4, 4], seed=0)
    >>> sorted(y[a].tolist()), sorted(y[b].tolist())
    ([0, 0, 1, 1], [0, 0, 1, 1])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Integer part sizes for ``n`` items that sum to ``n``.

    Part ``i > 0`` gets ``round(fractions[i] * n)`` items (half to even; at least 1 when
    ``n >= len(fractions)``) and part 0 gets the rest.

    Example:
        >>> split_sizes(1797, [0.6, 0.2, 0.2])
        [1079, 359, 359]
        >>> split_sizes(20, [0.9, 0.1])
        [18, 2]
    """
    rest = [round(f * n) for f in fractions[1:]]
    if n >= len(fractions):
        rest = [max(1, r) for r in rest]
    first = n - sum(rest)
    if first < 0:
        raise ValueError(f"fractions {list(fractions)} ask for more than {n} items")
    return [first, *rest]


def stratified_split(y: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Split the indices ``0 .. len(y)-1`` into disjoint parts of exactly ``sizes`` items each.

    Systematic stratified sampling: the items of each class are put in a random order (a
    ``numpy.random.Generator(PCG64(seed))`` permutation) and given the positions
    ``(rank + 0.5) / class_size`` in [0, 1); all items are sorted by position (ties in the random
    order) and cut into consecutive parts. Each part therefore holds each class in proportion to
    its size, within one item. Indices inside a part are sorted ascending.

    Example:
        >>> [p.tolist() for p in stratified_split(np.array([0, 1, 0, 1]), [2, 2], seed=1)]
        [[0, 1], [2, 3]]
    """
    y = np.asarray(y)
    n = len(y)
    if sum(sizes) != n or min(sizes, default=0) < 0:
        raise ValueError(f"split sizes {list(sizes)} do not add up to {n} items")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    position = np.empty(n, dtype=np.float64)
    y_perm = y[perm]
    for c in np.unique(y):
        members = perm[y_perm == c]  # class c in random order
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = perm[np.argsort(position[perm], kind="stable")]
    bounds = np.cumsum(sizes)[:-1]
    return [np.sort(part) for part in np.split(order, bounds)]


def train_val_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Carve a class-stratified validation part of ``round(val_fraction * n)`` items out of a
    training set of ``n`` items: :func:`split_sizes` + :func:`stratified_split`.

    Example:
        >>> train, val = train_val_split(np.arange(20) % 10, 0.1, seed=0)
        >>> len(train), len(val)
        (18, 2)
    """
    train, val = stratified_split(y, split_sizes(len(y), [1 - val_fraction, val_fraction]), seed)
    return train, val
