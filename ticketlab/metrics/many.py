"""Many tickets at once: a pairwise matrix of any registered pair metric, hierarchical clustering,
a 2-D embedding and a heatmap.

Count-based overlap metrics (those registered with ``from_counts``: jaccard, dice, ...) take a
fast path: each ticket's masks are bit-packed once (``np.packbits``, every layer padded to whole
64-bit words), and each pair costs one AND and one popcount (``np.bitwise_count``) over the packed
words, summed per layer with ``np.add.reduceat``. Every other metric is called once per pair.

Clustering works on distances: ``1 - value`` for a similarity (1 = identical), the value itself
for a distance; an asymmetric matrix is symmetrised as ``(D + D^T) / 2``. Linkage is scipy's
(average by default, optimal leaf ordering); the embedding is scikit-learn's metric MDS on the
precomputed distances with a fixed seed.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> ts = [Ticket(masks={"w": np.array(m, bool)}) for m in ([1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1])]
    >>> mat = pairwise_matrix(ts, "jaccard")
    >>> mat.values.tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> c = mat.clusters(2)
    >>> c[0] == c[1] != c[2]
    True
"""

from __future__ import annotations

import inspect
import io
import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, Cache, clean
from ticketlab.metrics.registry import Metric, get_metric
from ticketlab.progress import NullProgress
from ticketlab.ticket import Ticket

_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass
class PairwiseMatrix:
    """``values[i, j]`` = ``metric(ticket i, ticket j)`` at ``layer`` (row = first argument)."""

    metric: str
    layer: str
    labels: list[str]
    values: np.ndarray
    orientation: str | None

    def distances(self) -> np.ndarray:
        """Symmetric distance matrix with a zero diagonal (see the module docstring)."""
        if self.orientation is None:
            raise ConfigError(
                f"metric '{self.metric}' is neither a similarity nor a distance, so it cannot be clustered"
            )
        d = 1.0 - self.values if self.orientation == "similarity" else self.values.copy()
        d = 0.5 * (d + d.T)
        np.fill_diagonal(d, 0.0)
        if not np.isfinite(d).all():
            raise ConfigError(
                f"the '{self.metric}' matrix has undefined entries (empty tickets?), so it cannot be clustered"
            )
        return np.clip(d, 0.0, None)

    def linkage(self, method: str = "average") -> np.ndarray:
        """scipy hierarchical-clustering linkage of :meth:`distances` (optimal leaf order)."""
        from scipy.cluster.hierarchy import linkage
        from scipy.spatial.distance import squareform

        if len(self.labels) < 2:
            raise ConfigError("clustering needs at least two tickets")
        return linkage(squareform(self.distances(), checks=False), method=method, optimal_ordering=True)

    def order(self, method: str = "average") -> list[int]:
        """Ticket indices in the clustering's leaf order (the heatmap's order)."""
        if len(self.labels) < 2:
            return list(range(len(self.labels)))
        from scipy.cluster.hierarchy import leaves_list

        return [int(i) for i in leaves_list(self.linkage(method))]

    def clusters(self, k: int, method: str = "average") -> list[int]:
        """Cluster id (1..k) of every ticket when the tree is cut into ``k`` clusters."""
        from scipy.cluster.hierarchy import fcluster

        return [int(c) for c in fcluster(self.linkage(method), t=k, criterion="maxclust")]

    def embedding(self, seed: int = 0) -> np.ndarray:
        """2-D metric MDS coordinates (N x 2) of the tickets, seeded."""
        n = len(self.labels)
        if n < 3:  # one or two points: on the x axis, as far apart as their distance
            gap = self.distances()[0, -1] if n == 2 else 0.0
            return np.column_stack([np.arange(n, dtype=float) * gap, np.zeros(n)])
        from sklearn.manifold import MDS

        params = inspect.signature(MDS).parameters
        kw: dict[str, Any] = {"n_components": 2, "random_state": seed, "n_init": 4, "max_iter": 300}
        if "metric_mds" in params:  # scikit-learn >= 1.8
            kw["metric"] = "precomputed"
        else:
            kw["dissimilarity"] = "precomputed"
        if "init" in params:
            kw["init"] = "random"
        return MDS(**kw).fit_transform(self.distances())

    def to_records(self) -> list[dict[str, Any]]:
        """Tidy records ``{a, b, metric, layer, value}`` for every ordered pair (diagonal included)."""
        return [
            {"a": la, "b": lb, "metric": self.metric, "layer": self.layer, "value": clean(self.values[i, j])}
            for i, la in enumerate(self.labels) for j, lb in enumerate(self.labels)
        ]

    def to_csv(self) -> str:
        """The matrix as CSV text: a header of labels, then one row per ticket."""
        import csv

        from ticketlab.text import csv_cell

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["", *(csv_cell(label) for label in self.labels)])
        for label, row in zip(self.labels, self.values):
            w.writerow([csv_cell(label), *("" if not math.isfinite(v) else repr(float(v)) for v in row)])
        return buf.getvalue()

    def plot(self, path: str | os.PathLike[str] | None = None, *, cluster: bool = True,
             method: str = "average", annotate: bool | None = None) -> Any:
        """Heatmap of the matrix; written to ``path`` (PNG) when given. Returns the matplotlib Figure.

        With ``cluster`` (and a metric that is a similarity or a distance) rows and columns are in
        the leaf order of :meth:`linkage` ``(method)``, and that tree is drawn as a dendrogram above
        the columns and left of the rows (leaf ``i`` over column ``i``). ``annotate`` (default:
        up to 12 tickets) writes each value in its cell, in black or white, whichever contrasts
        more with the cell's colour.
        """
        from ticketlab.metrics._plot import new_figure, plain, save_figure

        n = len(self.labels)
        tree = None
        if cluster and self.orientation is not None and n >= 2:
            from scipy.cluster.hierarchy import dendrogram

            tree = dendrogram(self.linkage(method), no_plot=True)
            order = [int(i) for i in tree["leaves"]]  # = self.order(method): the same linkage
        else:
            order = list(range(n))
        vals = self.values[np.ix_(order, order)]
        labels = [plain(self.labels[i]) for i in order]
        size = min(16.0, 2.5 + 0.45 * n)
        den = 0.18 * size if tree is not None else 0.0
        fig = new_figure(size + 1.2 + den, size + den)
        grid = fig.add_gridspec(2, 3, width_ratios=[den or 1e-6, size, 0.35], height_ratios=[den or 1e-6, size])
        ax = fig.add_subplot(grid[1, 1])
        im = ax.imshow(vals, cmap="viridis" if self.orientation != "distance" else "viridis_r", aspect="auto")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.yaxis.tick_right()
        what = self.metric + ("" if self.layer == TOTAL else f" ({self.layer})")
        scale = what + {"similarity": ", 1 = identical", "distance": ", 0 = identical"}.get(str(self.orientation), "")
        if tree is not None:
            what += f", clustered ({method} linkage of {'1 - value' if self.orientation == 'similarity' else 'value'})"
            self._dendrograms(fig, grid, ax, tree)
        fig.suptitle(plain(what), fontsize=9)
        fig.colorbar(im, cax=fig.add_subplot(grid[1, 2])).set_label(plain(scale), fontsize=8)
        if annotate if annotate is not None else n <= 12:
            for i in range(n):
                for j in range(n):
                    if math.isfinite(vals[i, j]):
                        r, g, b, _ = im.cmap(im.norm(vals[i, j]))
                        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5  # relative luminance (ITU-R BT.601)
                        ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=6,
                                color="black" if light else "white")
        if path is not None:
            save_figure(fig, path)
        return fig

    @staticmethod
    def _dendrograms(fig: Any, grid: Any, ax: Any, tree: dict[str, Any]) -> None:
        """Draw scipy's dendrogram ``tree`` above the columns and left of the rows of ``ax``.

        scipy puts leaf ``k`` at ``5 + 10 k``; mapped to ``k`` it sits over the heatmap's cell ``k``
        (the axes share that coordinate).
        """
        top = fig.add_subplot(grid[0, 1], sharex=ax)
        left = fig.add_subplot(grid[1, 0], sharey=ax)
        for xs, hs in zip(tree["icoord"], tree["dcoord"]):
            pos = [(x - 5.0) / 10.0 for x in xs]
            top.plot(pos, hs, color="0.3", linewidth=0.8)
            left.plot(hs, pos, color="0.3", linewidth=0.8)
        for a in (top, left):
            a.set_axis_off()
        height = max(max(h) for h in tree["dcoord"]) * 1.02 or 1.0
        top.set_ylim(0.0, height)
        left.set_xlim(height, 0.0)  # the root on the far left, the leaves next to the rows


# ------------------------------------------------------------------------------ fast path
def _pack(t: Ticket) -> tuple[np.ndarray, np.ndarray]:
    """Bit-packed masks as uint64 words (each layer padded to whole words) and layer offsets."""
    parts, offsets, pos = [], [], 0
    for m in t.masks.values():
        packed = np.packbits(m.reshape(-1))
        pad = (-packed.size) % 8
        if pad:
            packed = np.concatenate([packed, np.zeros(pad, np.uint8)])
        parts.append(packed)
        offsets.append(pos)
        pos += packed.size // 8
    words = np.concatenate(parts).view(np.uint64) if parts else np.zeros(0, np.uint64)
    return words, np.array(offsets, dtype=np.intp)


def _popcounts(x: np.ndarray, y: np.ndarray, offsets: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Per-layer popcount of ``x & y`` (uint64 words; layers start at ``offsets``)."""
    np.bitwise_and(x, y, out=buf)
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        bits = np.bitwise_count(buf)
        return np.add.reduceat(bits, offsets, dtype=np.int64) if bits.size else np.zeros(len(offsets), np.int64)
    bits = _POPCOUNT_TABLE[buf.view(np.uint8)]
    return np.add.reduceat(bits, offsets * 8, dtype=np.int64) if bits.size else np.zeros(len(offsets), np.int64)


def _layer_value(metric: Metric, n: np.ndarray, a: np.ndarray, b: np.ndarray, ab: np.ndarray,
                 layer: str, index: int | None) -> float:
    f = metric.from_counts
    assert f is not None
    with np.errstate(divide="ignore", invalid="ignore"):
        if layer == TOTAL:
            return float(f(n.sum(), a.sum(), b.sum(), ab.sum()))
        if index is not None:
            return float(f(n[index], a[index], b[index], ab[index]))
        per = np.asarray(f(n, a, b, ab), dtype=np.float64)
        ok = np.isfinite(per)
        if not ok.any():
            return math.nan
        return float(per[ok].mean() if layer == MEAN else np.average(per[ok], weights=n[ok]))


def _count_matrix(tickets: list[Ticket], metric: Metric, layer: str, progress: Any) -> np.ndarray:
    names = list(tickets[0].masks)
    index = None
    if layer not in (TOTAL, MEAN, WMEAN):
        index = names.index(layer)
    packed = [_pack(t) for t in tickets]
    offsets = packed[0][1]
    n = np.array([m.size for m in tickets[0].masks.values()], dtype=np.int64)
    kept = [np.array([np.count_nonzero(m) for m in t.masks.values()], dtype=np.int64) for t in tickets]
    buf = np.empty_like(packed[0][0])
    k = len(tickets)
    out = np.full((k, k), math.nan)
    with progress.task(f"{metric.name} matrix", total=k * (k + 1) // 2) as task:
        for i in range(k):
            for j in range(i, k):
                ab = kept[i] if i == j else _popcounts(packed[i][0], packed[j][0], offsets, buf)
                out[i, j] = _layer_value(metric, n, kept[i], kept[j], ab, layer, index)
                if i != j and metric.symmetric:
                    out[j, i] = out[i, j]
                elif i != j:
                    out[j, i] = _layer_value(metric, n, kept[j], kept[i], ab, layer, index)
                task.advance()
    return out


# ------------------------------------------------------------------------------ generic path
def _pick(result: Any, layer: str) -> float:
    if not isinstance(result, dict):
        return math.nan if result is None or layer != TOTAL else float(result)
    v = result.get(layer)
    if isinstance(v, dict):
        v = v.get("value")
    return math.nan if v is None else float(v)


def _generic_matrix(tickets: list[Ticket], metric: Metric, layer: str, progress: Any) -> np.ndarray:
    cache = Cache()
    k = len(tickets)
    out = np.full((k, k), math.nan)
    pairs = [(i, j) for i in range(k) for j in range(k) if metric.symmetric is False or i <= j]
    with progress.task(f"{metric.name} matrix", total=len(pairs)) as task:
        for i, j in pairs:
            out[i, j] = _pick(metric(tickets[i], tickets[j], cache=cache), layer)
            if metric.symmetric:
                out[j, i] = out[i, j]
            task.advance()
    return out


def pairwise_matrix(
    tickets: Sequence[Ticket | str | os.PathLike[str]],
    metric: str = "jaccard",
    *,
    layer: str = TOTAL,
    labels: Sequence[str] | None = None,
    common_only: bool = False,
    progress: NullProgress | None = None,
) -> PairwiseMatrix:
    """The N x N matrix of a registered pair ``metric`` over ``tickets`` (objects or file paths).

    ``layer`` picks ``"__total__"`` (default), ``"__mean__"``, ``"__wmean__"`` or a parameter
    name. Raises :class:`~ticketlab.errors.IncompatibleError` for tickets of different
    architectures unless ``common_only``.

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
        >>> pairwise_matrix([t, t], "hamming").values.tolist()
        [[0.0, 0.0], [0.0, 0.0]]
    """
    from ticketlab.metrics.compare import prepare

    m = get_metric(metric)
    if m.kind != "pair":
        raise ConfigError(f"metric '{metric}' describes one ticket; a matrix needs a pair metric")
    progress = progress or NullProgress()
    loaded, names = prepare(tickets, [m], labels=labels, common_only=common_only)
    if not loaded:
        raise ConfigError("a pairwise matrix needs at least one ticket")
    layers = list(loaded[0].masks)
    if layer not in (TOTAL, MEAN, WMEAN) and layer not in layers:
        raise ConfigError(f"unknown layer '{layer}' (choose from: {TOTAL}, {MEAN}, {WMEAN}, {', '.join(layers)})")
    if m.from_counts is not None:
        values = _count_matrix(loaded, m, layer, progress)
    else:
        values = _generic_matrix(loaded, m, layer, progress)
    return PairwiseMatrix(metric=metric, layer=layer, labels=names, values=values, orientation=m.orientation)
