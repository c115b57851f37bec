"""Per-layer sparsity profiles: density per layer, allocation of the kept weights, distances.

The *allocation share* of a layer is the fraction of the ticket's kept weights that lie in it
(sums to 1 over layers). Two tickets' allocation profiles are compared with the L1 distance
``sum |s_A - s_B|`` (0 .. 2) and the Jensen-Shannon distance (square root of the JS divergence
with base-2 logarithms, 0 .. 1; Lin 1991, Endres & Schindelin 2003).

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> t = Ticket(masks={"a": np.array([1, 1, 0, 0], bool), "b": np.array([1, 1], bool)})
    >>> allocation_shares(t)
    {'a': 0.5, 'b': 0.5}
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.metrics.base import TOTAL, Cache, check_pair, clean, kept_counts
from ticketlab.metrics.registry import register
from ticketlab.ticket import Ticket


def density_profile(t: Ticket) -> dict[str, float]:
    """Density (kept / size) of each masked parameter."""
    return {n: float(v) for n, v in t.layer_density().items()}


def allocation_shares(t: Ticket, cache: Cache | None = None) -> dict[str, float]:
    """Share of the ticket's kept weights in each layer (NaN everywhere for an empty ticket)."""
    kept = kept_counts(t, cache).astype(np.float64)
    total = kept.sum()
    shares = kept / total if total else np.full(len(kept), math.nan)
    return dict(zip(t.masks, shares.tolist()))


def js_matrix(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distances (base 2) between every row of ``p`` and every row of ``q``.

    Example:
        >>> js_matrix(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
        [[1.0, 0.0]]
    """
    a = np.asarray(p, dtype=np.float64)[:, None, :]
    b = np.asarray(q, dtype=np.float64)[None, :, :]
    mid = 0.5 * (a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ka = np.where(a > 0, a * np.log2(a / mid), 0.0).sum(axis=-1)
        kb = np.where(b > 0, b * np.log2(b / mid), 0.0).sum(axis=-1)
    return np.sqrt(np.clip(0.5 * ka + 0.5 * kb, 0.0, None))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance of two probability vectors, base 2 (0 = equal, 1 = disjoint).

    Example:
        >>> js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
        1.0
    """
    return float(js_matrix(np.asarray(p)[None, :], np.asarray(q)[None, :])[0, 0])


@register("density", kind="single", default=True, group="sparsity",
          description="fraction of weights kept, in total and per layer")
def density(t: Ticket, *, cache: Cache | None = None) -> dict[str, float | None]:
    """Kept fraction of the whole ticket and of each layer."""
    kept = kept_counts(t, cache)
    sizes = [m.size for m in t.masks.values()]
    out: dict[str, float | None] = {TOTAL: clean(kept.sum() / sum(sizes))}
    out.update({n: clean(k / s if s else math.nan) for n, k, s in zip(t.masks, kept.tolist(), sizes)})
    return out


@register("allocation", kind="single", default=True, group="sparsity",
          description="share of the kept weights in each layer (per-layer records only)")
def allocation(t: Ticket, *, cache: Cache | None = None) -> dict[str, float | None]:
    """Allocation share per layer (no total: the shares sum to 1)."""
    return {n: clean(v) for n, v in allocation_shares(t, cache).items()}


@register("profile_l1", orientation="distance", default=True, group="sparsity",
          description="L1 distance between the allocation profiles (0..2)")
def profile_l1(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, float | None]:
    """L1 distance of the allocation shares; per layer the layer's term ``|s_A - s_B|``."""
    check_pair(a, b)
    sa, sb = allocation_shares(a, cache), allocation_shares(b, cache)
    terms = {n: abs(sa[n] - sb[n]) for n in sa}
    return {TOTAL: clean(sum(terms.values())), **{n: clean(v) for n, v in terms.items()}}


@register("profile_js", orientation="distance", default=True, group="sparsity",
          description="Jensen-Shannon distance between the allocation profiles (0..1)")
def profile_js(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> float | None:
    """Jensen-Shannon distance (base 2) of the two allocation profiles."""
    check_pair(a, b)
    p = np.array(list(allocation_shares(a, cache).values()))
    q = np.array(list(allocation_shares(b, cache).values()))
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        return None
    return js_distance(p, q)


def plot_profiles(
    tickets: Sequence[Ticket],
    path: str | os.PathLike[str] | None = None,
    *,
    labels: Sequence[str] | None = None,
    value: str = "density",
    log: bool = False,
) -> Any:
    """Bar chart of the per-layer ``value`` (``"density"`` or ``"allocation"``) of several tickets
    side by side; written to ``path`` (PNG) when given. Returns the matplotlib Figure.

    Example:
        >>> t = Ticket(masks={"a": np.array([1, 0], bool), "b": np.array([1, 1], bool)})
        >>> fig = plot_profiles([t, t], labels=["x", "y"])
        >>> fig.axes[0].get_ylabel()
        'density'
    """
    from ticketlab.metrics._plot import new_figure, plain, save_figure

    if value not in ("density", "allocation"):
        raise ConfigError(f"plot_profiles: value must be 'density' or 'allocation', not '{value}'")
    tickets = list(tickets)
    labels = list(labels) if labels is not None else [f"ticket{i}" for i in range(len(tickets))]
    names = list(tickets[0].masks)
    for t, lab in zip(tickets[1:], labels[1:]):
        check_pair(tickets[0], t, labels[0], lab)
    fig_width = max(6.0, 0.35 * len(names) * max(1, len(tickets)) / 2 + 2)
    fig = new_figure(fig_width, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(tickets)
    x = np.arange(len(names))
    for i, (t, lab) in enumerate(zip(tickets, labels)):
        prof = density_profile(t) if value == "density" else allocation_shares(t)
        overall = f" (density {t.density:.3g})" if value == "density" else ""
        ax.bar(x + (i - (len(tickets) - 1) / 2) * width, [prof[n] for n in names], width,
               label=plain(f"{lab}{overall}"))
    # names side by side while they fit under their bars (about 0.065 in a character at 8 pt), else slanted
    fits = max(len(n) for n in names) * 0.065 < 0.8 * fig_width / len(names)
    ax.set_xticks(x, [plain(n) for n in names], fontsize=8, rotation=0 if fits else 45,
                  ha="center" if fits else "right", rotation_mode="anchor")
    ax.set_xlabel("layer (prunable parameter)")
    ax.set_ylabel(value if value == "density" else "share of the ticket's kept weights")
    ax.set_title("kept fraction of each layer's weights" if value == "density" else
                 "where each ticket's kept weights are", fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig
