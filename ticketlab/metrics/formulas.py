"""The overlap formulas ``f(n, a, b, ab)`` of two masks, in one place: ``n`` weights, ``a`` and
``b`` kept by each mask, ``ab`` kept by both (scalars or arrays, e.g. a null's samples).

Every weight-, unit- and edge-level overlap metric applies one of these to its counts (and to
the counts of its chance models), so a formula is written once.

Example:
    >>> float(f_jaccard(10, 4, 4, 2)), float(f_dice(10, 4, 4, 2))
    (0.3333333333333333, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _f(x: Any) -> Any:
    return np.asarray(x, dtype=np.float64)


def f_intersection(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """``|A and B|``."""
    return _f(ab)


def f_jaccard(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Jaccard index ``|A and B| / |A or B|`` (Jaccard 1901); NaN when both are empty."""
    return _f(ab) / (_f(a) + _f(b) - _f(ab))


def f_dice(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Dice (Sorensen) coefficient ``2 |A and B| / (|A| + |B|)``."""
    return 2.0 * _f(ab) / (_f(a) + _f(b))


def f_overlap_coef(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Overlap (Szymkiewicz-Simpson) coefficient ``|A and B| / min(|A|, |B|)``."""
    return _f(ab) / np.minimum(_f(a), _f(b))


def f_rel_intersection(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Relative intersection ``|A and B| / |A|``: the share of A's weights that B keeps too."""
    return _f(ab) / _f(a)


def f_hamming(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Normalised Hamming distance ``|A xor B| / n`` = ``(a + b - 2 ab) / n``."""
    return (_f(a) + _f(b) - 2.0 * _f(ab)) / _f(n)


def f_kappa(n: Any, a: Any, b: Any, ab: Any) -> Any:
    """Cohen's kappa (Cohen 1960) of the two masks seen as raters of keep / prune.

    ``p_o = (n - a - b + 2 ab) / n`` (agreement), ``p_e = (ab_chance + (n-a)(n-b)/n) / n`` with
    ``ab_chance = a b / n``; ``kappa = (p_o - p_e) / (1 - p_e)``.
    """
    n, a, b, ab = _f(n), _f(a), _f(b), _f(ab)
    po = (n - a - b + 2.0 * ab) / n
    pe = (a * b + (n - a) * (n - b)) / (n * n)
    return (po - pe) / (1.0 - pe)
