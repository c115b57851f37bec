"""Graph properties of a ticket seen as a layered network of units (neurons / channels).

The network comes from ``ticket.provenance["topology"]`` (the JSON layered graph written by the
miners, format in the common brief and README): activation tensors with unit counts, one edge per
masked parameter and identity edges for residual shortcuts. A parameter edge links unit ``i`` of
its source tensor to unit ``j`` of its destination with multiplicity = the number of kept weights
between them (linear / GCN weight ``(out, in)``: ``mask[j, i]``; conv ``(out, in, k, k)``: the kept
count of kernel ``(j, i)``; ``group`` > 1: ``group`` consecutive input columns per source unit).
A ticket without a topology is read as a sequential chain of its masks, in order (the records
say so in their ``note``); a parameter of the topology without a mask counts as dense. That
network is built by :func:`ticketlab.network.unit_graph`, the same builder behind
``Ticket.to_networkx``; this module only propagates over its per-parameter blocks.

Computed with scipy sparse matrix-vector products on unit level (networkx would be far slower):

* forward reachability from every input unit, backward reachability from every output unit; a
  kept weight is *effective* when its source unit is reachable from the input and its
  destination unit reaches the output, i.e. it lies on some input-to-output path (the
  "effective sparsity" of Vysogorets & Kempe 2023);
* *dead* units: not reachable from the input (they receive nothing); *disconnected* units:
  reachable from the input but with no path to the output (their output is never used);
  *effective nodes*: units on some input-to-output path (input and output units included);
  *collapsed layers*: masked parameters with no effective weight (Tanaka et al. 2020);
* the number of input-to-output paths, each kept weight a distinct edge (so a dense MLP has
  the product of its widths), propagated as ``p_dst = C p_src`` in float64 with a separate
  base-10 exponent per tensor (rescaled after every tensor), reported as ``log10_paths``;
* per layer, the binary bipartite graph (unit edge where any weight is kept): degree statistics
  and the Ramanujan spectral gap ``Delta = 2 sqrt(d - 1) - lambda2`` (Hoang et al. 2023, Sec. 3)
  with ``d`` the mean degree ``2E / (n_src + n_dst)`` and ``lambda2`` the second largest
  eigenvalue of the bipartite adjacency ``[[0, B], [B^T, 0]]``, i.e. the second largest singular
  value of the biadjacency ``B`` (dense eigenvalues of the smaller Gram matrix ``B B^T`` when the
  layer has at most 4M unit pairs, else ARPACK ``svds`` with a fixed start vector).

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> t = Ticket(masks={"fc1.weight": np.ones((3, 2), bool), "fc2.weight": np.ones((4, 3), bool)})
    >>> round(10 ** analyze(t).log10_paths)       # dense MLP 2-3-4: 2 * 3 * 4 paths
    24
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ticketlab.metrics.base import TOTAL, Cache, as_cache, check_pair, clean, counts_of
from ticketlab.metrics.formulas import f_jaccard
from ticketlab.metrics.registry import register
from ticketlab.network import CHAIN_NOTE, Block, UnitGraph, build, chain_topology, tensor_order, topology_of, unit_graph  # noqa: F401
from ticketlab.ticket import Ticket

# The unit-level network is built in one place, ticketlab.network; these names stay importable here.
_order = tensor_order


# ------------------------------------------------------------------------------ analysis
@dataclass
class GraphAnalysis:
    """Reachability, effective masks and path count of one ticket (see the module docstring)."""

    topology: dict[str, Any]
    note: str | None
    forward: dict[str, np.ndarray]  # tensor -> units reachable from the input
    backward: dict[str, np.ndarray]  # tensor -> units that reach the output
    effective: dict[str, np.ndarray]  # parameter -> effective mask
    log10_paths: float  # -inf when no path exists
    matrices: dict[str, Any] = field(default_factory=dict, repr=False)  # parameter -> unit CSR

    @property
    def effective_nodes(self) -> int:
        """Units on at least one input-to-output path, over all tensors."""
        return int(sum(np.count_nonzero(self.forward[n] & self.backward[n]) for n in self.forward))

    def dead_units(self) -> dict[str, int]:
        """Per tensor (except the input): units not reachable from the input."""
        inp = self.topology["input"]
        return {n: int(np.count_nonzero(~f)) for n, f in self.forward.items() if n != inp}

    def disconnected_units(self) -> dict[str, int]:
        """Per tensor: units reachable from the input that have no path to the output."""
        return {n: int(np.count_nonzero(f & ~self.backward[n])) for n, f in self.forward.items()}


def _propagate(
    order: list[str], edges: list[Block], units: Mapping[str, int], inp: str
) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, np.ndarray]]:
    """Forward reachability, and path counts into every unit as ``vec[t] * 10 ** exp10[t]``."""
    incoming: dict[str, list[Block]] = {n: [] for n in units}
    for e in edges:
        incoming[e.dst].append(e)
    reach = {inp: np.ones(units[inp], bool)}
    vec = {inp: np.ones(units[inp])}
    exp10 = {inp: 0.0}
    for n in order:
        if n == inp:
            continue
        r = np.zeros(units[n], bool)
        parts = []
        for e in incoming[n]:
            if e.param is None:
                r |= reach[e.src]
                parts.append((vec[e.src], exp10[e.src]))
            else:
                r |= (e.matrix @ reach[e.src].astype(np.float64)) > 0
                parts.append((e.matrix @ vec[e.src], exp10[e.src]))
        parts = [(v, s) for v, s in parts if v.any()]
        if parts:
            top = max(s for _, s in parts)
            v = sum(p * 10.0 ** (s - top) for p, s in parts)
            peak = float(v.max())
            vec[n], exp10[n] = v / peak, top + math.log10(peak)
        else:
            vec[n], exp10[n] = np.zeros(units[n]), 0.0
        reach[n] = r
    return reach, exp10, vec


def _analyze(masks: Mapping[str, np.ndarray], topo: Mapping[str, Any], note: str | None) -> GraphAnalysis:
    return analyze_graph(build(masks, topo, note), masks)


def analyze_graph(g: UnitGraph, masks: Mapping[str, np.ndarray] | None = None) -> GraphAnalysis:
    """Reachability, effective masks (of ``masks``, when given) and path count of a unit graph."""
    units, topo, note = g.units, g.topology, g.note
    inp, outp = topo["input"], topo["output"]
    order, edges = g.order, g.blocks
    forward, exp10, vec = _propagate(order, edges, units, inp)
    total = float(vec[outp].sum())
    log10_paths = exp10[outp] + math.log10(total) if total > 0 else -math.inf
    outgoing: dict[str, list[Block]] = {n: [] for n in units}
    for e in edges:
        outgoing[e.src].append(e)
    backward = {outp: np.ones(units[outp], bool)}
    for n in reversed(order):
        if n == outp:
            continue
        r = np.zeros(units[n], bool)
        for e in outgoing[n]:
            if e.param is None:
                r |= backward[e.dst]
            else:
                r |= (e.matrix.T @ backward[e.dst].astype(np.float64)) > 0
        backward[n] = r
    effective = {}
    for e in edges:
        if masks is None or e.param is None or e.param not in masks:
            continue
        m = masks[e.param]
        ok = backward[e.dst][:, None] & np.repeat(forward[e.src], e.group)[None, :]
        effective[e.param] = m & ok.reshape(ok.shape + (1,) * (m.ndim - 2))
    matrices = {e.param: e.matrix for e in edges if e.param is not None}
    return GraphAnalysis(dict(topo), note, forward, backward, effective, log10_paths, matrices)


def analyze(t: Ticket, cache: Cache | None = None) -> GraphAnalysis:
    """The :class:`GraphAnalysis` of a ticket (memoised in ``cache``)."""

    def make() -> GraphAnalysis:
        return analyze_graph(unit_graph(t), t.masks)

    return as_cache(cache).get(("graph", id(t)), make)


def effective_mask(t: Ticket) -> dict[str, np.ndarray]:
    """Kept weights that lie on at least one input-to-output path.

    Example:
        >>> m1 = np.array([[1, 1], [0, 0]], bool)      # hidden unit 1 receives nothing
        >>> m2 = np.array([[1, 1]], bool)              # ... so its outgoing weight is ineffective
        >>> effective_mask(Ticket(masks={"fc1": m1, "fc2": m2}))["fc2"].tolist()
        [[True, False]]
    """
    return analyze(t).effective


def log10_paths(t: Ticket) -> float:
    """log10 of the number of input-to-output paths (``-inf`` when there are none)."""
    return analyze(t).log10_paths


# ------------------------------------------------------------------------------ spectra
def _one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def top_singular_values(b: Any, k: int = 2) -> np.ndarray:
    """The ``k`` largest singular values of a (sparse or dense) matrix, descending, zero-padded.

    Example:
        >>> top_singular_values(np.ones((3, 3))).round(6).tolist()     # K_{3,3}: 3 and 0
        [3.0, 0.0]
    """
    from scipy import sparse

    rows, cols = b.shape
    small = min(rows, cols)
    if small == 0:
        return np.zeros(k)
    if rows * cols <= 4_000_000 or small <= k + 1:
        dense = b.toarray() if sparse.issparse(b) else np.asarray(b)
        dense = dense.astype(np.float64)
        with _one_blas_thread():  # small problems: threads only add contention on a busy machine
            gram = dense @ dense.T if rows <= cols else dense.T @ dense
            vals = np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None))
    else:
        from scipy.sparse.linalg import svds

        v0 = np.random.default_rng(0).random(small) + 0.5  # fixed start vector: same result every run
        vals = np.sort(svds(sparse.csr_matrix(b, dtype=np.float64), k=k, v0=v0, return_singular_vectors=False))[::-1]
    out = np.zeros(k)
    out[: min(k, len(vals))] = vals[:k]
    return out


def bipartite_stats(b: Any) -> dict[str, float]:
    """Degree statistics and Ramanujan gap of a binary biadjacency ``b`` (dst x src).

    Example:
        >>> s = bipartite_stats(np.ones((3, 3)))       # K_{3,3}: d = 3, lambda2 = 0
        >>> s["mean_degree"], round(s["spectral_gap"], 6)
        (3.0, 2.828427)
    """
    from scipy import sparse

    b = sparse.csr_matrix(b, dtype=np.float64)
    b.data[:] = 1.0
    b.eliminate_zeros()
    n_dst, n_src = b.shape
    edges = int(b.nnz)
    d = 2.0 * edges / (n_src + n_dst) if n_src + n_dst else 0.0
    lam1, lam2 = (float(v) for v in top_singular_values(b))
    bound = 2.0 * math.sqrt(d - 1.0) if d >= 1.0 else math.nan
    out: dict[str, float] = {"n_src": n_src, "n_dst": n_dst, "edges": edges, "mean_degree": d}
    for side, axis in (("in", 1), ("out", 0)):  # in-degree of dst units, out-degree of src units
        deg = np.asarray(b.sum(axis=axis)).ravel()
        for stat in ("mean", "min", "max", "std"):
            out[f"{side}_degree_{stat}"] = float(getattr(deg, stat)()) if deg.size else math.nan
    out.update({"lambda1": lam1, "lambda2": lam2, "ramanujan_bound": bound, "spectral_gap": bound - lam2})
    return out


def layer_graph_stats(t: Ticket, cache: Cache | None = None) -> dict[str, dict[str, float]]:
    """:func:`bipartite_stats` of every masked parameter's unit-level bipartite graph."""
    cache = as_cache(cache)

    def make() -> dict[str, dict[str, float]]:
        g = analyze(t, cache)
        return {name: bipartite_stats(g.matrices[name]) for name in t.masks if name in g.matrices}

    return cache.get(("bipartite", id(t)), make)


# ------------------------------------------------------------------------------ metrics
def _with_note(out: dict[str, Any], *notes: str | None) -> dict[str, Any]:
    """Attach the non-empty ``notes`` (joined by '; ') to the total record."""
    note = "; ".join(n for n in notes if n)
    if note:
        total = out.get(TOTAL)
        out[TOTAL] = {**(total if isinstance(total, dict) else {"value": total}), "note": note}
    return out


@register("effective_sparsity", kind="single", needs=("topology",), group="graph",
          description="fraction of weights not on any input-to-output path")
def effective_sparsity(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """1 - (effective weights / all weights), in total and per layer."""
    g = analyze(t, cache)
    sizes = {n: m.size for n, m in t.masks.items()}
    kept = {n: int(np.count_nonzero(g.effective[n])) for n in t.masks if n in g.effective}
    out: dict[str, Any] = {TOTAL: clean(1.0 - sum(kept.values()) / sum(sizes[n] for n in kept)) if kept else None}
    out.update({n: clean(1.0 - k / sizes[n]) for n, k in kept.items()})
    return _with_note(out, g.note)


@register("log10_paths", kind="single", needs=("topology",), group="graph",
          description="log10 of the number of input-to-output paths")
def log10_paths_metric(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """log10 of the number of input-to-output paths (None with a note when there are none)."""
    g = analyze(t, cache)
    value = clean(g.log10_paths)
    collapsed = "no input-to-output path: the network is collapsed" if value is None else None
    return _with_note({TOTAL: value}, collapsed, g.note)


@register("effective_nodes", kind="single", needs=("topology",), group="graph",
          description="units on at least one input-to-output path")
def effective_nodes(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Number of units on some input-to-output path, in total and per tensor."""
    g = analyze(t, cache)
    out: dict[str, Any] = {TOTAL: g.effective_nodes}
    out.update({n: int(np.count_nonzero(f & g.backward[n])) for n, f in g.forward.items()})
    return _with_note(out, g.note)


@register("dead_units", kind="single", needs=("topology",), group="graph",
          description="units not reachable from the input (per tensor)")
def dead_units(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Units that receive no path from the input, in total and per tensor."""
    per = analyze(t, cache).dead_units()
    return _with_note({TOTAL: sum(per.values()), **per}, analyze(t, cache).note)


@register("disconnected_units", kind="single", needs=("topology",), group="graph",
          description="units reachable from the input with no path to the output (per tensor)")
def disconnected_units(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Units whose output never reaches the network output, in total and per tensor."""
    per = analyze(t, cache).disconnected_units()
    return _with_note({TOTAL: sum(per.values()), **per}, analyze(t, cache).note)


@register("collapsed_layers", kind="single", needs=("topology",), group="graph",
          description="masked parameters without any effective weight (layer collapse)")
def collapsed_layers(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Number of masked parameters with no effective weight; per layer 1 (collapsed) or 0."""
    g = analyze(t, cache)
    per = {n: float(not g.effective[n].any()) for n in t.masks if n in g.effective}
    dead = [n for n, v in per.items() if v]
    return _with_note({TOTAL: sum(per.values()), **per}, f"collapsed: {', '.join(dead)}" if dead else None, g.note)


@register("mean_degree", kind="single", needs=("topology",), group="graph",
          description="mean degree 2E/(n_src+n_dst) of each layer's unit bipartite graph")
def mean_degree(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Mean degree per layer; the total is the unweighted mean over layers."""
    stats = layer_graph_stats(t, cache)
    per = {n: s["mean_degree"] for n, s in stats.items()}
    total = float(np.mean(list(per.values()))) if per else math.nan
    return {TOTAL: clean(total), **{n: clean(v) for n, v in per.items()}}


@register("spectral_gap", kind="single", needs=("topology",), group="graph",
          description="Ramanujan gap 2*sqrt(d-1) - lambda2 per layer (Hoang et al. 2023)")
def spectral_gap(t: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """``2 sqrt(d - 1) - lambda2`` per layer; the total is the unweighted mean over defined layers."""
    stats = layer_graph_stats(t, cache)
    per = {n: clean(s["spectral_gap"]) for n, s in stats.items()}
    ok = [v for v in per.values() if v is not None]
    out: dict[str, Any] = {TOTAL: {"value": clean(float(np.mean(ok)) if ok else math.nan),
                                   "note": "mean over layers with mean degree >= 1"}}
    out.update(per)
    return out


@register("effective_jaccard", orientation="similarity", needs=("topology",), group="graph",
          description="Jaccard index of the two effective masks")
def effective_jaccard(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Jaccard index of the effective masks, in total and per layer."""
    check_pair(a, b)
    ea, eb = analyze(a, cache).effective, analyze(b, cache).effective
    names = [n for n in a.masks if n in ea and n in eb]
    c = counts_of({n: ea[n] for n in names}, {n: eb[n] for n in names})
    with np.errstate(divide="ignore", invalid="ignore"):
        per = f_jaccard(c.n, c.a, c.b, c.ab)
        tot = f_jaccard(*c.total())
    return {TOTAL: clean(tot), **{n: clean(v) for n, v in zip(names, per.tolist())}}


@register("shared_paths", symmetric=False, orientation="similarity", needs=("topology",), group="graph",
          description="paths of the intersection network / paths of a")
def shared_paths(a: Ticket, b: Ticket, *, cache: Cache | None = None) -> dict[str, Any]:
    """Share of a's input-to-output paths that survive in the intersection ``a and b``
    (a's topology). The note gives both log10 path counts."""
    check_pair(a, b)
    cache = as_cache(cache)
    ga = analyze(a, cache)

    def inter() -> float:
        masks = {n: a.masks[n] & b.masks[n] for n in a.masks}
        return _analyze(masks, ga.topology, ga.note).log10_paths

    li = cache.get(("paths_and", *sorted((id(a), id(b)))), inter)  # same for (a, b) and (b, a)
    la = ga.log10_paths
    value = 10.0 ** (li - la) if math.isfinite(la) and math.isfinite(li) else (0.0 if math.isfinite(la) else math.nan)
    def fmt(x: float) -> str:
        return f"{x:.6g}" if math.isfinite(x) else "none (no path)"

    return _with_note({TOTAL: clean(value)}, f"log10 paths: intersection {fmt(li)}, a {fmt(la)}", ga.note)
