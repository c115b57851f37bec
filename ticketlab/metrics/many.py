"""Many tickets at once: a pairwise matrix of any registered pair metric, hierarchical clustering,
a 2-D embedding and a heatmap.

Count-based overlap metrics (those registered with ``from_counts``: jaccard, dice, ...) take a
fast path: each ticket's masks are bit-packed once (``np.packbits``, every layer padded to whole
64-bit words), and each pair costs one AND and one popcount (``np.bitwise_count``) over the packed
words, summed per layer with ``np.add.reduceat``. Every other metric is called once per pair.

Besides the registered pair metrics, two matrices read the overlap count ``X = |A and B|``
against the per-layer chance model (:func:`ticketlab.metrics.chance.overlap_lift_z`): ``"lift"``,
``X / E X`` (1 = chance; the records' ``lift`` of intersection, dice, ...), and ``"z"``, its
standard score (the records' ``z``). Unlike raw Jaccard they do not grow with the tickets'
densities. Their diagonal (a ticket against itself) is left undefined (NaN), so that it does not
set the colour scale; they are not clustered (neither a similarity nor a distance). Cohen's
``"kappa"`` is a registered metric and clusters like any similarity.

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

from ticketlab.errors import ConfigError, UnknownNameError
from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, Cache, Counts, clean
from ticketlab.metrics.registry import CHANCE_MATRICES, Metric, get_metric
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
    #: the value of chance (1 for lift, 0 for z): the heatmap's colours diverge from it
    center: float | None = None

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
        """Heatmap of the matrix (:func:`plot_heatmap`); written to ``path`` (PNG) when given.
        Returns the matplotlib Figure.

        With ``cluster`` (and a metric that is a similarity or a distance) rows and columns are in
        the leaf order of :meth:`linkage` ``(method)``, and that tree is drawn as a dendrogram above
        the columns and left of the rows (leaf ``i`` over column ``i``). ``annotate`` (default:
        up to 12 tickets) writes each value in its cell.
        """
        from ticketlab.metrics._plot import save_figure

        tree = None
        if cluster and self.orientation is not None and len(self.labels) >= 2:
            tree = self.linkage(method)
        what = self.metric + ("" if self.layer == TOTAL else f" ({self.layer})")
        scale = what + {"similarity": ", 1 = identical", "distance": ", 0 = identical"}.get(str(self.orientation), "")
        if tree is not None:
            what += f", clustered ({method} linkage of {'1 - value' if self.orientation == 'similarity' else 'value'})"
        lift, centred = self.center == 1.0 and self.metric == "lift", self.center is not None
        fig = plot_heatmap(self.values, self.labels, linkage=tree, title=what, annotate=annotate,
                           colorbar_label=scale, ratio=lift, center=None if lift else self.center,
                           diagonal=not centred,
                           cmap="RdBu_r" if centred else ("viridis" if self.orientation != "distance" else "viridis_r"))
        if path is not None:
            save_figure(fig, path)
        return fig


def plot_heatmap(values: np.ndarray, labels: Sequence[str], *, linkage: np.ndarray | None = None, title: str = "",
                 colorbar_label: str | None = None, cmap: str = "viridis", ratio: bool = False,
                 diagonal: bool = True, annotate: bool | None = None, fontsize: float = 7.0,
                 max_size: float = 16.0, center: float | None = None) -> Any:
    """The heatmap of a square matrix of tickets (``compare --matrix`` and the study report draw
    theirs with it). Returns the matplotlib Figure.

    With a scipy ``linkage`` of the tickets, rows and columns are in its leaf order and the tree is
    drawn as a dendrogram above the columns and left of the rows (leaf ``i`` over column ``i``).
    ``ratio`` (for a lift over chance) colours on a log scale symmetric around 1, so that half and
    twice chance are equally far from its middle (a diverging ``cmap`` suits it; values <= 0 take the
    lowest colour); ``center`` (e.g. 0 for a z score) colours linearly and symmetric around it;
    ``diagonal=False`` leaves the diagonal grey. ``annotate`` (default: up to 12
    tickets) writes each value in its cell, in black or white, whichever contrasts more with the
    cell's colour.
    Labels, title and colour bar use ``fontsize`` (points); the matrix is at most ``max_size``
    inches wide.

    Example:
        >>> fig = plot_heatmap(np.array([[1.0, 0.2], [0.2, 1.0]]), ["a", "b"], colorbar_label="Jaccard")
        >>> fig.axes[-1].get_ylabel()
        'Jaccard'
    """
    from ticketlab.metrics._plot import new_figure, plain

    n = len(labels)
    tree = None
    if linkage is not None:
        from scipy.cluster.hierarchy import dendrogram

        tree = dendrogram(linkage, no_plot=True)
        order = [int(i) for i in tree["leaves"]]
    else:
        order = list(range(n))
    vals = np.array(values, dtype=np.float64)[np.ix_(order, order)]
    if not diagonal:
        np.fill_diagonal(vals, np.nan)
    shown = [plain(labels[i]) for i in order]
    size = min(max_size, 2.5 + 0.45 * n * fontsize / 7.0)
    den = 0.18 * size if tree is not None else 0.0
    fig = new_figure(size + 1.2 + den, size + den)
    grid = fig.add_gridspec(2, 3, width_ratios=[den or 1e-6, size, 0.35], height_ratios=[den or 1e-6, size])
    ax = fig.add_subplot(grid[1, 1])
    norm, shown_vals = None, vals
    if ratio:
        from matplotlib.colors import LogNorm

        pos = vals[np.isfinite(vals) & (vals > 0)]
        top = max(1.05, float(np.max(np.maximum(pos, 1.0 / pos)))) if pos.size else 2.0
        norm = LogNorm(vmin=1.0 / top, vmax=top)
        shown_vals = np.where(np.isfinite(vals), np.clip(vals, 1.0 / top, top), np.nan)
    elif center is not None and np.isfinite(vals).any():
        from matplotlib.colors import Normalize

        r = float(np.nanmax(np.abs(vals - center))) or 1.0
        norm = Normalize(vmin=center - r, vmax=center + r)
    from matplotlib import colormaps

    colours = colormaps[cmap].with_extremes(bad="0.72")  # undefined cells (and a hidden diagonal) grey
    im = ax.imshow(shown_vals, cmap=colours, norm=norm, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n), shown, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), shown, fontsize=fontsize)
    ax.yaxis.tick_right()
    if tree is not None:
        _dendrograms(fig, grid, ax, tree)
    fig.suptitle(plain(title), fontsize=fontsize + 2)
    bar = fig.colorbar(im, cax=fig.add_subplot(grid[1, 2]))
    bar.ax.tick_params(labelsize=fontsize + 2)
    if ratio:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        bar.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
    if colorbar_label:
        bar.set_label(plain(colorbar_label), fontsize=fontsize)
    if annotate if annotate is not None else n <= 12:
        for i in range(n):
            for j in range(n):
                if math.isfinite(vals[i, j]):
                    r, g, b, _ = im.cmap(im.norm(shown_vals[i, j]))
                    light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5  # relative luminance (ITU-R BT.601)
                    ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=fontsize - 1,
                            color="black" if light else "white")
    return fig


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


def _count_matrix(tickets: list[Ticket], name: str, value: Any, symmetric: bool, diagonal: bool,
                  progress: Any) -> np.ndarray:
    """``value(n, a, b, ab)`` (per-layer count arrays) for every ordered pair; the diagonal NaN
    unless ``diagonal``."""
    packed = [_pack(t) for t in tickets]
    offsets = packed[0][1]
    n = np.array([m.size for m in tickets[0].masks.values()], dtype=np.int64)
    kept = [np.array([np.count_nonzero(m) for m in t.masks.values()], dtype=np.int64) for t in tickets]
    buf = np.empty_like(packed[0][0])
    k = len(tickets)
    out = np.full((k, k), math.nan)
    with progress.task(f"{name} matrix", total=k * (k + 1) // 2) as task:
        for i in range(k):
            for j in range(i, k):
                if i != j or diagonal:
                    ab = kept[i] if i == j else _popcounts(packed[i][0], packed[j][0], offsets, buf)
                    out[i, j] = value(n, kept[i], kept[j], ab)
                    if i != j and symmetric:
                        out[j, i] = out[i, j]
                    elif i != j:
                        out[j, i] = value(n, kept[j], kept[i], ab)
                task.advance()
    return out


def _metric_value(metric: Metric, layer: str, index: int | None) -> Any:
    return lambda n, a, b, ab: _layer_value(metric, n, a, b, ab, layer, index)


def _chance_value(which: str, layers: list[str], layer: str, index: int | None) -> Any:
    from ticketlab.metrics.chance import overlap_lift_z

    if layer in (MEAN, WMEAN):
        raise ConfigError(f"the '{which}' matrix is for the whole network ({TOTAL}) or one layer, not {layer}")
    pick = 0 if which == "lift" else 1
    return lambda n, a, b, ab: overlap_lift_z(Counts(tuple(layers), n, a, b, ab), index)[pick]


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
    """The N x N matrix of a registered pair ``metric`` over ``tickets`` (objects or file paths),
    or of ``"lift"`` / ``"z"``: the overlap count against chance (see the module docstring).

    ``layer`` picks ``"__total__"`` (default), ``"__mean__"``, ``"__wmean__"`` or a parameter
    name. Raises :class:`~ticketlab.errors.IncompatibleError` for tickets of different
    architectures unless ``common_only``.

    Example:
        >>> import numpy as np
        >>> t = Ticket(masks={"w": np.array([1, 0, 1, 0], bool)})
        >>> pairwise_matrix([t, t], "hamming").values.tolist()
        [[0.0, 0.0], [0.0, 0.0]]
        >>> pairwise_matrix([t, t], "lift").values.tolist()   # X = 2, E X = 2 * 2 / 4
        [[nan, 2.0], [2.0, nan]]
    """
    from ticketlab.metrics.compare import prepare

    chance = metric in CHANCE_MATRICES
    m = None if chance else _matrix_metric(metric)
    if m is not None and m.kind != "pair":
        raise ConfigError(f"metric '{metric}' describes one ticket; a matrix needs a pair metric")
    progress = progress or NullProgress()
    loaded, names = prepare(tickets, [m] if m is not None else [], labels=labels, common_only=common_only)
    if not loaded:
        raise ConfigError("a pairwise matrix needs at least one ticket")
    layers = list(loaded[0].masks)
    if layer not in (TOTAL, MEAN, WMEAN) and layer not in layers:
        raise ConfigError(f"unknown layer '{layer}' (choose from: {TOTAL}, {MEAN}, {WMEAN}, {', '.join(layers)})")
    index = layers.index(layer) if layer in layers else None
    if m is None:
        values = _count_matrix(loaded, metric, _chance_value(metric, layers, layer, index), True, False, progress)
        return PairwiseMatrix(metric=metric, layer=layer, labels=names, values=values, orientation=None,
                              center=1.0 if metric == "lift" else 0.0)
    if m.from_counts is not None:
        values = _count_matrix(loaded, m.name, _metric_value(m, layer, index), m.symmetric, True, progress)
    else:
        values = _generic_matrix(loaded, m, layer, progress)
    return PairwiseMatrix(metric=metric, layer=layer, labels=names, values=values, orientation=m.orientation)


def _matrix_metric(name: str) -> Metric:
    """The registered metric ``name``; an unknown name's error also offers the chance matrices."""
    try:
        return get_metric(name)
    except UnknownNameError as exc:
        raise UnknownNameError(f"{exc}; or the overlap count against chance: {', '.join(CHANCE_MATRICES)}") from None
