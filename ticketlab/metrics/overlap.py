"""Weight-level overlap of two tickets, each value with its chance expectation (see chance.py).

All metrics are functions of the per-layer counts ``n`` (layer size), ``a``, ``b`` (kept) and
``ab`` (kept by both); the formulas below are registered with ``from_counts`` so the pairwise
matrix can feed them bit-packed popcounts.

===================  ===================================  ===========
metric               formula                              orientation
===================  ===================================  ===========
intersection         ``ab``                               --
jaccard              ``ab / (a + b - ab)``                similarity
dice                 ``2 ab / (a + b)``                   similarity
overlap_coef         ``ab / min(a, b)``                   similarity
rel_intersection     ``ab / a`` (asymmetric)              similarity
hamming              ``(a + b - 2 ab) / n``               distance
kappa                Cohen's kappa of the two masks       similarity
===================  ===================================  ===========

With a :class:`~ticketlab.metrics.degree.DegreeNull` in the cache (``compare(..., null="degree")``)
every record also gets ``expected_degree``, ``lift_degree`` and ``p_degree`` (degree.py).

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> a = Ticket(masks={"w": np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)})
    >>> b = Ticket(masks={"w": np.array([1, 1, 0, 0, 0, 0, 0, 0], bool)})
    >>> jaccard(a, b)["__total__"]["value"]     # nested: density 2/8 inside 4/8 -> 0.25/0.5
    0.5
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ticketlab.metrics.align import aligned_null
from ticketlab.metrics.base import Cache, as_cache, pair_counts
from ticketlab.metrics.chance import chance_result, null_stats
from ticketlab.metrics.degree import add_degree_fields, add_sampled_fields
from ticketlab.metrics.formulas import (  # noqa: F401  (re-exported: metrics.overlap.f_* are public)
    f_dice, f_hamming, f_intersection, f_jaccard, f_kappa, f_overlap_coef, f_rel_intersection,
)
from ticketlab.metrics.registry import register
from ticketlab.ticket import Ticket


def overlap_metric(a: Ticket, b: Ticket, formula: Callable[..., Any], *, increasing: bool = True,
                   jaccard: bool = False, lift: bool = True, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Weight-level records of ``formula`` with its chance fields (total, means, layers).

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
        >>> overlap_metric(t, t, f_dice)["w"]["value"]
        1.0
    """
    cache = as_cache(cache)
    counts = pair_counts(a, b, cache)
    stats = null_stats(counts, cache, key=("weight", *sorted((id(a), id(b)))))
    out = chance_result(counts, formula, stats, increasing=increasing, jaccard=jaccard, lift=lift)
    if cache.degree_null is not None:  # the degree-preserving null's fields too (degree.py)
        add_degree_fields(out, a, b, counts, formula, cache, lift=lift)
    if id(b) in cache.aligned:  # b is an aligned ticket: the aligned null's fields (align.py)
        xs = aligned_null(a, b, cache)
        add_sampled_fields(out, counts, xs, formula, lift=lift, suffix="aligned", sd=True)
    return out


def _reg(name: str, formula: Callable[..., Any], orientation: str | None, description: str,
         symmetric: bool = True) -> Callable[..., Any]:
    return register(
        name, kind="pair", symmetric=symmetric, orientation=orientation, default=True, group="overlap",
        description=f"{description}, vs. chance", from_counts=formula,
    )


@_reg("intersection", f_intersection, None, "weights both keep, |A and B|")
def intersection(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Number of weights kept by both tickets, with chance fields."""
    return overlap_metric(a, b, f_intersection, cache=cache)


@_reg("jaccard", f_jaccard, "similarity", "Jaccard index |A and B| / |A or B|")
def jaccard(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Jaccard index of the masks, with the exact expected Jaccard under the nulls."""
    return overlap_metric(a, b, f_jaccard, jaccard=True, cache=cache)


@_reg("dice", f_dice, "similarity", "Dice coefficient 2 |A and B| / (|A| + |B|)")
def dice(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Dice coefficient of the masks, with chance fields."""
    return overlap_metric(a, b, f_dice, cache=cache)


@_reg("overlap_coef", f_overlap_coef, "similarity", "overlap coefficient |A and B| / min(|A|, |B|)")
def overlap_coef(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Overlap coefficient of the masks, with chance fields."""
    return overlap_metric(a, b, f_overlap_coef, cache=cache)


@_reg("rel_intersection", f_rel_intersection, "similarity", "share of a's kept weights that b keeps, |A and B| / |A|",
      symmetric=False)
def rel_intersection(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Share of a's kept weights that b keeps too, with chance fields."""
    return overlap_metric(a, b, f_rel_intersection, cache=cache)


@_reg("hamming", f_hamming, "distance", "normalised Hamming distance |A xor B| / n")
def hamming(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Normalised Hamming distance of the masks, with chance fields (z < 0: closer than chance)."""
    return overlap_metric(a, b, f_hamming, increasing=False, cache=cache)


@_reg("kappa", f_kappa, "similarity", "Cohen's kappa of the keep / prune decisions")
def kappa(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, dict[str, Any]]:
    """Cohen's kappa of the masks, with chance fields (no lift: kappa is chance-corrected)."""
    return overlap_metric(a, b, f_kappa, lift=False, cache=cache)
