"""You, Leskovec, He & Xie's relational-graph measures of a ticket: average clustering C and average
path length L ("Graph Structure of Neural Networks", ICML 2020), each against two nulls.

**The paper's graph.** A layer is one round of *message exchange* on a relational graph
``G = (V, E)``: in round ``r`` node ``v`` aggregates messages from every ``u`` in ``N(v)`` and from
itself (their Sec. 2), so a fixed-width MLP is the complete graph with node ``i`` = neuron ``i`` of
every layer; with fewer nodes than units a node is a set of neurons or channels (their Table 1).
Their code (``facebookresearch/graph2nn``, ``pycls/models/relation_graph.py``: ``get_mask``,
``compute_densemask``) turns an undirected ``G`` without self-loops into the mask ``(out, in)`` of
every stage layer: the layer's output units and its input units are each split into ``n``
contiguous groups whose sizes differ by at most one, and block ``(v, u)`` is kept whole iff
``u == v`` or ``u ~ v``. The stem (first layer, from the pixels) and the head (last layer) are
dense and not part of ``G``. C is the mean over all nodes of the local clustering coefficient, L
networkx's ``average_shortest_path_length``, both on ``G`` without self-loops
(``pycls/datasets/load_graph.py``: ``compute_stats``); their ``G`` is connected by construction.

**What ticketlab measures: that construction inverted, round by round.** A *round* is a masked
parameter whose source and destination are hidden tensors of the topology (neither its input nor
its output: the paper's stem and head are left out; an identity shortcut only adds the self-edges
``(v, v)``, which C and L ignore). Its relational graph has ``n = min(source units, destination
units)`` nodes: one unit of the narrower side, a contiguous group of the wider side's units,
grouped by the paper's rule (the first ``width % n`` groups one unit larger). Nodes ``u != v`` are
joined when the ticket keeps at least one weight from a unit of group ``u`` to a unit of group
``v``, or from ``v`` to ``u``, read from the per-parameter blocks of
:func:`ticketlab.network.unit_graph` (the one unit-graph builder: a conv kernel with any kept tap
is an edge). On a network that the paper's construction built from ``G`` with ``n`` nodes this
gives ``G`` back exactly (``relational_measures(t, nodes=n)``; tests/test_metrics_relational.py).

Where it departs from a transcription, and why:

1. *One graph per round.* The paper's network has the same ``G`` in every round; a ticket's rounds
   differ. Each round is a record of its own (``--per-layer``; layer = the parameter) and the
   whole-ticket value is the unweighted mean over the rounds where the measure is defined.
2. *Direction.* A ticket can keep ``u -> v`` without ``v -> u``; the paper's masks are symmetric.
   The graph is the symmetric closure: an edge is a message exchanged in either direction.
3. *Node identity across a layer.* The construction takes node ``i`` of a layer's input and node
   ``i`` of its output to be the same node. In a network built from ``G`` that is true by
   construction; in a mined ticket it is a labelling convention (no layer of an MLP, a VGG or a
   ResNet maps a tensor to itself; a residual stream ties units across a block, but each conv maps
   the stream to a hidden tensor or back), and relabelling a tensor's units, which changes no
   function, changes the graphs of its layers. So a raw C or L of a ticket means little; both
   nulls below keep the labelling, and the measures are always reported against them.
4. *Disconnected graphs.* A pruned round's graph is often disconnected (a unit that keeps no
   weight is an isolated node). L is the mean distance over the ordered pairs of distinct nodes
   joined by a path: networkx's ``average_shortest_path_length`` for a connected graph, else the
   components' values weighted by ``k (k - 1)`` (``k`` nodes each); ``None`` without an edge. The
   total's note gives the share of pairs joined. In C, nodes of degree < 2 count 0 (networkx's
   ``average_clustering``, the paper's ``compute_stats``).
5. *Node count.* The paper uses 64 nodes (fewer for narrower layers); ticketlab the finest grouping
   the layer allows. :func:`relational_measures` takes ``nodes=`` for the paper's choice.

Two other readings were not taken. The unit graph itself (:meth:`~ticketlab.ticket.Ticket.to_networkx`)
is the computational graph: layered, nearly bipartite, so its C is about 0 for any ticket. The
graph among one tensor's units joined by a shared neighbour does not depend on the labelling, but
on a network built from ``G`` it gives ``G`` squared (``d_G(u, v) <= 2``), so its C and L are not the
paper's.

**Chance.** Both nulls draw ``samples`` masks per round (``compare``'s ``null_samples``, seed and
curveball rounds; :class:`~ticketlab.metrics.degree.DegreeNull` in a direct call) and measure them
as the ticket: ``expected``, ``lift = value / expected``, ``z = (value - expected) / sd`` and the
add-one ``p = (1 + #{null >= value}) / (1 + samples)`` (``p_two_sided`` twice the smaller tail)
against random masks with the ticket's kept count in each layer
(:func:`ticketlab.metrics.align.random_mask`), and ``expected_degree``, ``lift_degree``,
``p_degree`` against the degree-preserving null (every unit keeps its kept-weight count in every
layer: the curveball samples of ``compare``'s degree null, :func:`ticketlab.metrics.degree.layer_samples`,
with the same seeds, so :func:`~ticketlab.metrics.degree.null_tickets` gives the same masks). A
total's null value is the mean over the same rounds of each sample's values. ``expected`` is a
Monte-Carlo mean here, not an exact expectation (standard error about ``sd / sqrt(samples)``).

**Scale.** A round of at most ``TICKETLAB_LIMIT_RELATIONAL_NODES`` nodes (1,024 by default) is
measured exactly: breadth-first search from every node, by products of dense 0/1 float32 matrices
(one per distance level, all sources at once; exact: counts stay far below 2^24) when the mean
degree is above 32, else scipy's sparse products and ``csgraph`` search. A larger round is
estimated from :data:`SAMPLE_NODES` nodes drawn without replacement, seeded by (seed, layer) and
shared by the ticket and its null samples: C by the mean local clustering of the sample, standard
error ``sd / sqrt(s) * sqrt(1 - s / n)``; L by the ratio estimator ``sum D_u / sum R_u`` over the
sampled sources ``u`` (``D_u`` the sum of their exact distances to every node they reach, ``R_u``
the number reached), standard error from the linearised ratio variance (Cochran 1977, *Sampling
Techniques*, 3rd ed., Sec. 6.4). The record's ``se`` field holds it (the total's: the rounds'
errors combined) and its ``note`` says which rounds were estimated.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> fc2 = np.array([[0, 0, 1, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]], bool)
    >>> t = Ticket(masks={"fc1": np.ones((4, 3), bool), "fc2": fc2, "fc3": np.ones((2, 4), bool)})
    >>> relational_graphs(t)["fc2"].toarray().astype(int).tolist()   # a triangle 0-1-2, and 2-3
    [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]]
    >>> m = measure(relational_graphs(t)["fc2"])
    >>> round(m.clustering, 4), round(m.path_length, 4)     # (1 + 1 + 1/3 + 0) / 4, 8 / 6
    (0.5833, 1.3333)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticketlab.errors import ConfigError
from ticketlab.metrics.base import TOTAL, Cache, as_cache, clean
from ticketlab.metrics.degree import DegreeNull, layer_samples
from ticketlab.metrics.registry import register
from ticketlab.network import Block, UnitGraph, unit_graph, unit_matrix
from ticketlab.streams import RELATIONAL_NODES, RELATIONAL_RANDOM, words_rng
from ticketlab.ticket import Ticket

#: Nodes drawn per round whose graph is larger than the ``relational_nodes`` limit.
SAMPLE_NODES = 256
#: Mean degree above which the search runs on dense matrices (below: sparse products, csgraph).
DENSE_DEGREE = 32
#: Most nodes of a graph held as a dense matrix (float32: 256 MiB).
DENSE_MAX_NODES = 8_192
#: Sources searched at once (rows of the dense frontier).
CHUNK = 512
#: The two measures, in record order.
MEASURES = ("clustering", "path_length")

NO_ROUNDS = ("no masked layer between two hidden tensors (the relational graph leaves out the layers "
             "from the input and to the output)")


# ------------------------------------------------------------------------------ the graph
def node_groups(width: int, nodes: int) -> np.ndarray:
    """Node of each of ``width`` units split into ``nodes`` contiguous groups whose sizes differ
    by at most one, the larger first (graph2nn's ``compute_count``).

    Example:
        >>> node_groups(5, 2).tolist()
        [0, 0, 0, 1, 1]
    """
    base, extra = divmod(int(width), int(nodes))
    sizes = np.full(int(nodes), base)
    sizes[:extra] += 1
    return np.repeat(np.arange(int(nodes)), sizes)


def node_count(n_src: int, n_dst: int, nodes: int | None = None) -> int:
    """Nodes of a round's relational graph: the narrower side's width, or ``nodes`` when smaller."""
    if nodes is None:
        return min(n_src, n_dst)
    if not isinstance(nodes, (int, np.integer)) or isinstance(nodes, bool) or nodes < 1:
        raise ConfigError(f"nodes must be a positive whole number, not {nodes!r}")
    return min(n_src, n_dst, int(nodes))


def relational_adjacency(matrix: Any, nodes: int | None = None) -> Any:
    """The relational graph of one round: symmetric 0/1 scipy CSR (float32) without self-loops.

    ``matrix[j, i]`` is the number of kept weights from source unit ``i`` to destination unit ``j``
    (a :class:`~ticketlab.network.Block`'s matrix); ``nodes`` defaults to the narrower side's
    width and is capped by it.

    Example:
        >>> relational_adjacency(np.array([[0, 0, 0, 1], [0, 0, 0, 0]]), nodes=2).toarray().tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    from scipy import sparse

    n_dst, n_src = matrix.shape
    n = node_count(n_src, n_dst, nodes)
    coo = sparse.coo_matrix(matrix)
    keep = coo.data > 0
    dst = node_groups(n_dst, n)[coo.row[keep]]
    src = node_groups(n_src, n)[coo.col[keep]]
    off = dst != src  # self-edges (v, v) carry no information for C and L
    rows, cols = np.concatenate([dst[off], src[off]]), np.concatenate([src[off], dst[off]])
    a = sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1.0
    return a


def rounds_of(g: UnitGraph) -> list[Block]:
    """The blocks of a unit graph that are rounds: masked parameters between two hidden tensors."""
    inp, out = g.topology["input"], g.topology["output"]
    return [b for b in g.blocks if b.param is not None and b.src != inp and b.dst != out]


def relational_graphs(t: Ticket, nodes: int | None = None) -> dict[str, Any]:
    """Parameter name -> relational graph (:func:`relational_adjacency`) of every round of ``t``;
    ``networkx.from_scipy_sparse_array`` turns one into a networkx graph."""
    g = unit_graph(t)
    return {b.param: relational_adjacency(b.matrix, nodes) for b in rounds_of(g)}  # type: ignore[misc]


# ------------------------------------------------------------------------------ C and L
@dataclass(frozen=True)
class Measures:
    """C and L of one graph (exact, or estimated from ``sampled`` nodes with standard errors).

    ``connected`` is the share of ordered pairs of distinct nodes joined by a path (estimated
    too); ``path_length`` is NaN when no pair is.
    """

    clustering: float
    path_length: float
    nodes: int
    sampled: int = 0  # 0: exact
    clustering_se: float = math.nan
    path_length_se: float = math.nan
    connected: float = math.nan

    def get(self, measure: str) -> tuple[float, float]:
        """``(value, standard error)`` of ``"clustering"`` or ``"path_length"``."""
        return getattr(self, measure), getattr(self, f"{measure}_se")


def _search(a: Any, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per source: twice its triangles, the sum of its distances to every node it reaches, and
    how many it reaches (itself not counted)."""
    n = a.shape[0]
    k = sources.size
    tri2, dsum, reach = np.zeros(k), np.zeros(k), np.zeros(k)
    if n <= DENSE_MAX_NODES and a.nnz > DENSE_DEGREE * n:
        dense = a.toarray()
        for lo in range(0, k, CHUNK):
            idx = sources[lo:lo + CHUNK]
            rows = dense[idx]  # distance 1
            two = rows @ dense  # walks of length 2 from each source
            tri2[lo:lo + idx.size] = np.einsum("ij,ij->i", two, rows, dtype=np.float64)
            seen = rows > 0
            seen[np.arange(idx.size), idx] = True
            found = rows.sum(axis=1, dtype=np.float64)
            d, r, level, walks = found.copy(), found.copy(), 1, two
            while True:  # breadth first, all sources of the chunk at once
                new = (walks > 0) & ~seen
                count = new.sum(axis=1, dtype=np.float64)
                if not count.any():
                    break
                level += 1
                d += level * count
                r += count
                seen |= new
                walks = new.astype(np.float32) @ dense
            dsum[lo:lo + idx.size], reach[lo:lo + idx.size] = d, r
        return tri2, dsum, reach
    from scipy.sparse import csgraph

    for lo in range(0, k, CHUNK):
        idx = sources[lo:lo + CHUNK]
        rows = a[idx]
        tri2[lo:lo + idx.size] = np.asarray((rows @ a).multiply(rows).sum(axis=1, dtype=np.float64)).ravel()
        dist = csgraph.shortest_path(a, method="D", directed=False, unweighted=True, indices=idx)
        ok = np.isfinite(dist) & (dist > 0)
        dsum[lo:lo + idx.size] = np.where(ok, dist, 0.0).sum(axis=1)
        reach[lo:lo + idx.size] = ok.sum(axis=1)
    return tri2, dsum, reach


def measure(a: Any, sample: np.ndarray | None = None) -> Measures:
    """C and L of the undirected simple graph of adjacency ``a`` (scipy sparse or numpy; read as
    symmetric 0/1 without self-loops: weights, directions and the diagonal are dropped), exactly,
    or estimated from the nodes ``sample`` (distinct indices) with standard errors (module docstring).

    Example:
        >>> from scipy import sparse
        >>> m = measure(sparse.csr_matrix(np.ones((3, 3)) - np.eye(3)))     # a triangle
        >>> m.clustering, m.path_length, m.connected
        (1.0, 1.0, 1.0)
    """
    from scipy import sparse

    a = sparse.csr_matrix(a, dtype=np.float32)
    a = (abs(a) + abs(a.T)).tocsr()  # an edge either way is one undirected edge
    a.setdiag(0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    n = a.shape[0]
    nodes = np.arange(n) if sample is None else np.asarray(sample, dtype=np.int64)
    s = nodes.size
    if s == 0:
        return Measures(math.nan, math.nan, n)
    deg = np.diff(a.indptr)[nodes].astype(np.float64)
    tri2, dsum, reach = _search(a, nodes)
    with np.errstate(divide="ignore", invalid="ignore"):
        local = np.where(deg >= 2, tri2 / (deg * (deg - 1)), 0.0)  # Watts & Strogatz 1998
    c = float(local.mean())
    joined = float(reach.sum())
    ell = float(dsum.sum()) / joined if joined else math.nan
    connected = joined / (s * (n - 1)) if n > 1 else math.nan
    if sample is None or s >= n:
        return Measures(c, ell, n, 0, connected=connected)
    fpc = 1.0 - s / n  # finite-population correction: sampling without replacement
    c_se = float(np.std(local, ddof=1)) * math.sqrt(fpc / s) if s > 1 else math.nan
    if joined and s > 1:  # ratio estimator's linearised variance (Cochran 1977, Sec. 6.4)
        resid = dsum - ell * reach
        l_se = math.sqrt(fpc / s * float(np.sum(resid ** 2)) / (s - 1)) / (joined / s)
    else:
        l_se = math.nan
    return Measures(c, ell, n, s, c_se, l_se, connected)


# ------------------------------------------------------------------------------ a ticket
@dataclass
class Round:
    """One round of a ticket: its parameter, node count, measures and both nulls' samples
    (``random[s]`` and ``degree[s]`` are the :class:`Measures` of null sample ``s``)."""

    param: str
    src: str
    dst: str
    nodes: int
    observed: Measures
    random: list[Measures] = field(default_factory=list)
    degree: list[Measures] = field(default_factory=list)


@dataclass
class RelationalAnalysis:
    """Every round of a ticket (see :func:`relational_measures`), the null's settings and the
    topology's note (a ticket read as a chain)."""

    rounds: list[Round]
    null: DegreeNull
    note: str | None = None

    def values(self, measure: str = "clustering") -> dict[str, float]:
        """Parameter -> the ticket's value of ``measure`` in that round."""
        return {r.param: r.observed.get(measure)[0] for r in self.rounds}


def relational_measures(t: Ticket, *, nodes: int | None = None, null: DegreeNull | None = None,
                        stream: int = 0, max_exact: int | None = None,
                        sample_nodes: int = SAMPLE_NODES) -> RelationalAnalysis:
    """C and L of every round of ``t`` and of ``null.samples`` masks of each null.

    ``nodes``: node count per round (default: the narrower side's width; the paper used 64).
    ``null``: samples, seed and curveball rounds of both nulls (default :class:`DegreeNull`).
    ``stream``: the ticket's stream of the degree null (``compare`` gives ticket ``i`` stream ``i``).
    ``max_exact``: rounds with more nodes are estimated from ``sample_nodes`` nodes (default: the
    ``relational_nodes`` limit, ``TICKETLAB_LIMIT_RELATIONAL_NODES``).

    Example:
        >>> t = Ticket(masks={"fc1": np.ones((4, 3), bool), "fc2": np.eye(4, k=1, dtype=bool),
        ...                   "fc3": np.ones((2, 4), bool)})
        >>> r = relational_measures(t, null=DegreeNull(samples=3)).rounds[0]     # a path 0-1-2-3
        >>> r.param, r.observed.clustering, r.observed.path_length, len(r.degree)
        ('fc2', 0.0, 1.6666666666666667, 3)
    """
    from ticketlab.limits import value
    from ticketlab.metrics.align import random_mask

    null = null or DegreeNull()
    if max_exact is None:
        max_exact = value("relational_nodes")
    if isinstance(max_exact, bool) or not isinstance(max_exact, int) or max_exact < 1:
        raise ConfigError(f"max_exact must be a positive whole number, not {max_exact!r}")
    if isinstance(sample_nodes, bool) or not isinstance(sample_nodes, int) or sample_nodes < 2:
        raise ConfigError(f"sample_nodes must be a whole number of at least 2, not {sample_nodes!r}")
    g = unit_graph(t)
    layer_index = {name: i for i, name in enumerate(t.masks)}
    out = []
    for b in rounds_of(g):
        n_src, n_dst = g.units[b.src], g.units[b.dst]
        param = str(b.param)
        layer = layer_index.get(param, -1)
        n = node_count(n_src, n_dst, nodes)
        sample = None
        if n > max_exact:  # one node sample per round, for the ticket and all its null samples
            rng = words_rng(null.seed, max(layer, 0), RELATIONAL_NODES)
            sample = np.sort(rng.choice(n, min(sample_nodes, n), replace=False))

        def of(matrix: Any) -> Measures:
            return measure(relational_adjacency(matrix, nodes), sample)

        observed = of(b.matrix)
        mask = t.masks.get(param)
        if mask is None:  # not masked: dense, so every null sample is the ticket itself
            rnd = deg = [observed] * null.samples
        else:
            edge = {"param": param, "group": b.group}
            rng = words_rng(null.seed, stream, layer, RELATIONAL_RANDOM)
            rnd = [of(unit_matrix(edge, random_mask(mask, rng), n_src, n_dst)) for _ in range(null.samples)]
            deg = [of(unit_matrix(edge, m, n_src, n_dst)) for m in layer_samples(mask, null, stream, layer)]
        out.append(Round(param, b.src, b.dst, n, observed, rnd, deg))
    return RelationalAnalysis(out, null, g.note)


def relational(t: Ticket, cache: Cache | None = None) -> RelationalAnalysis:
    """:func:`relational_measures` of ``t`` with the cache's null settings and stream (memoised)."""
    cache = as_cache(cache)
    return cache.get(("relational", id(t)),
                     lambda: relational_measures(t, null=cache.sampling, stream=cache.stream(t)))


# ------------------------------------------------------------------------------ records
def _null_fields(v: float, xs: np.ndarray, suffix: str) -> dict[str, Any]:
    """``expected``, ``lift``, ``z``, ``p``, ``p_two_sided`` (``suffix`` "") or
    ``expected_degree``, ``lift_degree``, ``p_degree`` of a value against its null samples."""
    xs = xs[np.isfinite(xs)]
    if not xs.size:
        return {}
    e = float(xs.mean())
    out: dict[str, Any] = {f"expected{suffix}": clean(e)}
    if not math.isfinite(v):
        return out
    tol = 1e-12 * max(1.0, abs(v))  # a null sample equal to the value counts as at least as large
    upper = (1 + np.count_nonzero(xs >= v - tol)) / (1 + xs.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[f"lift{suffix}"] = clean(np.divide(v, e))
        if not suffix:
            sd = float(np.std(xs, ddof=1)) if xs.size > 1 else math.nan
            out["z"] = clean(np.divide(v - e, sd))
    out[f"p{suffix}"] = clean(upper)
    if not suffix:
        lower = (1 + np.count_nonzero(xs <= v + tol)) / (1 + xs.size)
        out["p_two_sided"] = clean(min(1.0, 2.0 * min(upper, lower)))
    return out


def _record(v: float, se: float, rnd: np.ndarray, deg: np.ndarray, note: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": clean(v)}
    if math.isfinite(se):
        out["se"] = clean(se)
    out.update(_null_fields(v, rnd, ""))
    out.update(_null_fields(v, deg, "_degree"))
    if note:
        out["note"] = note
    return out


def relational_records(res: RelationalAnalysis, measure_name: str) -> dict[str, Any]:
    """The records of one measure: the mean over rounds (``__total__``) and every round."""
    if measure_name not in MEASURES:
        raise ConfigError(f"unknown relational measure '{measure_name}' (choose from: {', '.join(MEASURES)})")
    if not res.rounds:
        return {TOTAL: {"value": None, "note": "; ".join(x for x in (NO_ROUNDS, res.note) if x)}}
    obs = np.array([r.observed.get(measure_name) for r in res.rounds], dtype=np.float64)  # (rounds, 2)
    rnd = np.array([[m.get(measure_name)[0] for m in r.random] for r in res.rounds], dtype=np.float64).T
    deg = np.array([[m.get(measure_name)[0] for m in r.degree] for r in res.rounds], dtype=np.float64).T
    value, se = obs[:, 0], obs[:, 1]
    per: dict[str, Any] = {}
    for i, r in enumerate(res.rounds):
        notes = []
        if r.observed.sampled:
            notes.append(f"estimate from {r.observed.sampled:,} of {r.nodes:,} nodes")
        if measure_name == "path_length" and r.observed.connected < 1:
            notes.append(f"over the {100 * r.observed.connected:.3g} % of node pairs joined by a path")
        per[r.param] = _record(value[i], se[i], rnd[:, i], deg[:, i], "; ".join(notes) or None)
    ok = np.isfinite(value)
    with warnings.catch_warnings():  # the mean of a column that is all NaN stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        total = float(value[ok].mean()) if ok.any() else math.nan
        sampled = [r for r in res.rounds if r.observed.sampled]
        t_se = math.sqrt(float(np.nansum(se[ok] ** 2))) / ok.sum() if sampled and ok.any() else math.nan
        t_rnd = np.nanmean(rnd[:, ok], axis=1) if ok.any() else np.full(rnd.shape[0], np.nan)
        t_deg = np.nanmean(deg[:, ok], axis=1) if ok.any() else np.full(deg.shape[0], np.nan)
    notes = [f"relational graph (You et al. 2020) of {len(res.rounds)} layer(s) between hidden tensors, "
             f"mean over {int(ok.sum())} with a value; nulls: {res.null.samples} samples each"]
    if sampled:
        notes.append(f"{len(sampled)} layer(s) estimated from node samples (more than {_limit():,} nodes; se)")
    if measure_name == "path_length":
        joined = np.mean([r.observed.connected for r in res.rounds if math.isfinite(r.observed.connected)] or [np.nan])
        if joined < 1:
            notes.append(f"L over the node pairs joined by a path ({100 * joined:.3g} % of pairs, mean over layers)")
    notes.append(res.note or "")
    return {TOTAL: _record(total, t_se, t_rnd, t_deg, "; ".join(x for x in notes if x)), **per}


def _limit() -> int:
    from ticketlab.limits import value

    return value("relational_nodes")


@register("relational_clustering", kind="single", needs=("topology",), group="relational",
          description="You et al. 2020's average clustering C of each layer's relational graph, vs. two nulls")
def relational_clustering(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Average clustering coefficient C of the ticket's relational graphs (module docstring)."""
    return relational_records(relational(t, cache), "clustering")


@register("relational_path_length", kind="single", needs=("topology",), group="relational",
          description="You et al. 2020's average path length L of each layer's relational graph, vs. two nulls")
def relational_path_length(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Average shortest path length L of the ticket's relational graphs (module docstring)."""
    return relational_records(relational(t, cache), "path_length")


__all__ = [
    "MEASURES", "SAMPLE_NODES", "Measures", "RelationalAnalysis", "Round", "measure", "node_count", "node_groups",
    "relational", "relational_adjacency", "relational_graphs", "relational_measures", "relational_records",
    "rounds_of",
]
