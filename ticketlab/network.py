"""A ticket's unit-level network: the one builder behind the graph metrics and ``to_networkx``.

A *unit* is a neuron or a channel of an activation tensor of the ticket's topology
(``ticket.provenance["topology"]``, format in :mod:`ticketlab.topology`). Every masked parameter
is an edge of that topology; at unit level it links unit ``i`` of its source tensor to unit ``j``
of its destination with *multiplicity* = the number of kept weights between them:

* linear / GCN weight ``(out, in)``: ``mask[j, i]`` (0 or 1);
* conv weight ``(out, in, kh, kw)``: the kept count of kernel ``(j, i)``, so a kernel collapses to
  one channel-to-channel edge;
* ``group`` > 1 (a linear layer reading a flattened ``(channel, h, w)`` map): the kept count of the
  ``group`` consecutive input columns of channel ``i``;
* a parameter of the topology without a mask: dense (multiplicity ``group`` x kernel size);
* an identity edge (a residual shortcut): unit ``i`` to unit ``i``, multiplicity 1, no parameter.

A ticket without a topology is read as a sequential chain of its masks, in order (the graph
metrics' records say so in their ``note``). The graph metrics (:mod:`ticketlab.metrics.graph`)
propagate over the per-parameter blocks of :func:`unit_graph`; :meth:`UnitGraph.adjacency` joins
the blocks into one sparse matrix over all units and :func:`to_networkx` into a networkx graph.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> g = unit_graph(Ticket(masks={"fc1": np.array([[1, 0], [1, 1]], bool),
    ...                              "fc2": np.array([[0, 1]], bool)}))
    >>> g.adjacency().toarray().tolist()       # units: input 0-1, t1 0-1, t2 0
    [[0, 0, 1, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    >>> g.labels()["tensor"].tolist(), g.labels()["depth"].tolist()
    (['input', 'input', 't1', 't1', 't2'], [0, 0, 1, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ticketlab.errors import IncompatibleError
from ticketlab.topology import kahn_order

if TYPE_CHECKING:  # networkx and the Ticket are only needed when called
    import networkx as nx

    from ticketlab.ticket import Ticket

CHAIN_NOTE = "no topology in the ticket's provenance, so its masks were read as a sequential chain"


# ------------------------------------------------------------------------------ topology
def chain_topology(masks: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """A sequential-chain topology for masks in order (conv weights have >= 3 dims; a linear
    weight after a conv reads the flattened map, ``group`` = in_features / channels).

    Example:
        >>> chain_topology({"c": np.ones((4, 3, 3, 3), bool), "fc": np.ones((2, 16), bool)})["edges"][1]
        {'param': 'fc', 'src': 't1', 'dst': 't2', 'kind': 'linear', 'group': 4}
    """
    tensors: dict[str, int] = {}
    edges: list[dict[str, Any]] = []
    src, src_conv = "input", False
    for i, (name, m) in enumerate(masks.items(), start=1):
        if m.ndim < 2:
            raise IncompatibleError(f"cannot read the masks as a chain: '{name}' has {m.ndim} dimension(s)")
        conv = m.ndim >= 3
        if i == 1:
            tensors[src] = int(m.shape[1])
        group = 1
        if not conv and src_conv and tensors[src] and m.shape[1] % tensors[src] == 0:
            group = m.shape[1] // tensors[src]
        if group * tensors[src] != m.shape[1]:
            raise IncompatibleError(
                f"cannot read the masks as a chain: '{name}' has {m.shape[1]} inputs but the previous "
                f"layer has {tensors[src]} units"
            )
        dst = f"t{i}"
        tensors[dst] = int(m.shape[0])
        edges.append({"param": name, "src": src, "dst": dst, "kind": "conv" if conv else "linear", "group": group})
        src, src_conv = dst, conv
    return {"tensors": tensors, "edges": edges, "input": "input", "output": src}


def topology_of(t: Ticket) -> tuple[dict[str, Any], str | None]:
    """The ticket's topology and ``None``, or the chain fallback and a note saying so."""
    topo = t.provenance.get("topology")
    if topo:
        return topo, None
    return chain_topology(t.masks), CHAIN_NOTE


def tensor_order(topo: Mapping[str, Any]) -> list[str]:
    """Tensors in topological order (Kahn); a cycle is an error."""
    units = topo["tensors"]
    for e in topo["edges"]:
        if e["src"] not in units or e["dst"] not in units:
            raise IncompatibleError(f"the topology's edge {e['src']} -> {e['dst']} names an unknown tensor")
    order = kahn_order(units, topo["edges"])
    if len(order) != len(units):
        raise IncompatibleError("the topology has a cycle, so it is not a layered network")
    return order


def unit_matrix(e: Mapping[str, Any], mask: np.ndarray | None, n_src: int, n_dst: int) -> Any:
    """Unit-level multiplicities ``C[dst unit, src unit]`` of a parameter edge (scipy CSR, float64).

    Example:
        >>> m = np.zeros((1, 2, 3, 3), bool); m[0, 1, :2, :2] = True     # kernel (0, 1) keeps 4
        >>> unit_matrix({"param": "c", "group": 1}, m, 2, 1).toarray().tolist()
        [[0.0, 4.0]]
    """
    from scipy import sparse

    group = int(e.get("group", 1))
    if mask is None:  # not masked: dense; multiplicity from the edge's shape when it has one
        shape = e.get("shape")
        per = int(np.prod(shape[2:])) if shape and len(shape) > 2 else 1
        return sparse.csr_matrix(np.full((n_dst, n_src), float(group * per)))
    if mask.ndim < 2 or mask.ndim >= 3 and group != 1:
        raise IncompatibleError(f"mask '{e['param']}' of shape {mask.shape} cannot be a topology edge with group {group}")
    if mask.shape[0] != n_dst or mask.shape[1] != n_src * group:
        raise IncompatibleError(
            f"mask '{e['param']}' has shape {mask.shape} but the topology wires {n_src} x {group} "
            f"inputs to {n_dst} units"
        )
    if mask.ndim >= 3:
        counts = np.count_nonzero(mask.reshape(mask.shape[0], mask.shape[1], -1), axis=2)
    elif group > 1:
        counts = np.count_nonzero(mask.reshape(n_dst, n_src, group), axis=2)
    else:
        counts = mask
    return sparse.csr_matrix(counts, dtype=np.float64)


@dataclass
class Block:
    """One topology edge at unit level: ``matrix[j, i]`` kept weights from unit ``i`` of ``src`` to
    unit ``j`` of ``dst`` (``param`` and ``matrix`` are ``None`` for an identity shortcut)."""

    src: str
    dst: str
    param: str | None
    matrix: Any = None  # CSR, dst x src
    group: int = 1
    kind: str = "identity"

    def pairs(self, n_src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src unit, dst unit, multiplicity)`` of every unit edge (multiplicity > 0)."""
        if self.matrix is None:
            i = np.arange(n_src)
            return i, i, np.ones(n_src, np.int64)
        coo = self.matrix.tocoo()
        keep = coo.data > 0
        return coo.col[keep], coo.row[keep], coo.data[keep].astype(np.int64)


# ------------------------------------------------------------------------------ the graph
@dataclass
class UnitGraph:
    """The unit-level network of a ticket (see the module docstring).

    Units are numbered tensor by tensor in topological order: unit ``u`` of tensor ``t`` is
    node ``offsets[t] + u``. ``depth`` of a tensor is the largest number of parameter edges on a
    path from the input to it (identity shortcuts add none), so ``input`` is 0.
    """

    topology: dict[str, Any]
    note: str | None
    order: list[str]
    units: dict[str, int]
    blocks: list[Block]

    @property
    def offsets(self) -> dict[str, int]:
        """Index of each tensor's unit 0 among all units."""
        starts = np.cumsum([0] + [self.units[n] for n in self.order])
        return {n: int(s) for n, s in zip(self.order, starts)}

    @property
    def n_units(self) -> int:
        """Number of units (nodes) over all tensors."""
        return int(sum(self.units.values()))

    def depths(self) -> dict[str, int]:
        """Tensor -> depth (parameter edges on the longest path from the input)."""
        depth = dict.fromkeys(self.order, 0)
        for n in self.order:  # topological order: a block's source is final before its destination
            for b in self.blocks:
                if b.src == n:
                    depth[b.dst] = max(depth[b.dst], depth[n] + (b.param is not None))
        return depth

    def labels(self) -> dict[str, np.ndarray]:
        """Per unit (node index order): ``tensor`` name, ``unit`` index within it, ``depth``."""
        depth = self.depths()
        sizes = [self.units[n] for n in self.order]
        return {
            "tensor": np.repeat(np.array(self.order, dtype=object), sizes),
            "unit": np.concatenate([np.arange(s) for s in sizes]),
            "depth": np.repeat([depth[n] for n in self.order], sizes),
        }

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(source node, destination node, multiplicity, block index)`` of every unit edge, block
        by block (two blocks joining the same unit pair give two rows)."""
        off = self.offsets
        parts = []
        for k, b in enumerate(self.blocks):
            s, d, m = b.pairs(self.units[b.src])
            parts.append((s + off[b.src], d + off[b.dst], m, np.full(m.size, k)))
        if not parts:
            return tuple(np.zeros(0, np.int64) for _ in range(4))  # type: ignore[return-value]
        return tuple(np.concatenate(c).astype(np.int64) for c in zip(*parts))  # type: ignore[return-value]

    def adjacency(self) -> Any:
        """``A[u, v]`` = multiplicity of the edge from node ``u`` to node ``v`` (scipy CSR, int64;
        blocks joining the same pair add up)."""
        from scipy import sparse

        s, d, m, _ = self.edges()
        n = self.n_units
        return sparse.csr_matrix((m, (s, d)), shape=(n, n), dtype=np.int64)


def build(masks: Mapping[str, np.ndarray], topo: Mapping[str, Any], note: str | None = None) -> UnitGraph:
    """The :class:`UnitGraph` of ``masks`` wired by the topology ``topo``."""
    units = {k: int(v) for k, v in topo["tensors"].items()}
    if topo["input"] not in units or topo["output"] not in units:
        raise IncompatibleError("the topology's input or output names an unknown tensor")
    order = tensor_order(topo)
    blocks = []
    for e in topo["edges"]:
        if e.get("identity"):
            if units[e["src"]] != units[e["dst"]]:
                raise IncompatibleError(f"identity edge {e['src']} -> {e['dst']} joins tensors of different widths")
            blocks.append(Block(e["src"], e["dst"], None))
        else:
            m = unit_matrix(e, masks.get(e["param"]), units[e["src"]], units[e["dst"]])
            blocks.append(Block(e["src"], e["dst"], e["param"], m, int(e.get("group", 1)), str(e.get("kind", ""))))
    return UnitGraph(dict(topo), note, order, units, blocks)


def unit_graph(t: Ticket) -> UnitGraph:
    """The unit-level network of a ticket: per-parameter blocks, :meth:`UnitGraph.adjacency`
    (scipy sparse, multiplicity = kept weights between two units) and :meth:`UnitGraph.labels`.

    Example:
        >>> from ticketlab.ticket import Ticket
        >>> g = unit_graph(Ticket(masks={"c": np.ones((2, 3, 3, 3), bool)}))   # one dense conv
        >>> g.adjacency().sum(), g.adjacency().nnz        # 54 weights on 6 channel pairs
        (np.int64(54), 6)
    """
    topo, note = topology_of(t)
    return build(t.masks, topo, note)


# ------------------------------------------------------------------------------ networkx
def to_networkx(t: Ticket, *, effective_only: bool = False, undirected: bool = False,
                max_edges: int | None = None) -> nx.DiGraph | nx.Graph:
    """The ticket's unit graph as a networkx graph (see :meth:`ticketlab.ticket.Ticket.to_networkx`)."""
    import networkx as nx

    from ticketlab.limits import LIMITS, LimitError

    g = unit_graph(t)
    src, dst, mult, block = g.edges()
    if effective_only:  # units on an input-to-output path: the graph metrics' own reachability
        from ticketlab.metrics.graph import analyze_graph

        a = analyze_graph(g)
        on_path = np.concatenate([a.forward[n] & a.backward[n] for n in g.order])
        nodes = np.flatnonzero(on_path)
        keep = on_path[src] & on_path[dst]
        src, dst, mult, block = src[keep], dst[keep], mult[keep], block[keep]
    else:
        nodes = np.arange(g.n_units)
    limit = LIMITS["graph_edges"]
    most = limit.value() if max_edges is None else int(max_edges)
    if src.size > most:
        raise LimitError(f"the ticket's unit graph has {src.size:,} edges, more than the limit of {most:,} "
                         f"(raise it with max_edges=N or {limit.env}=N)")
    labels = g.labels()
    out = nx.DiGraph()
    out.add_nodes_from((int(i), {"tensor": str(labels["tensor"][i]), "unit": int(labels["unit"][i]),
                                 "depth": int(labels["depth"][i])}) for i in nodes)
    params = [b.param for b in g.blocks]
    key = src * g.n_units + dst
    if np.unique(key).size == key.size:  # the usual case: every unit pair from one topology edge
        out.add_edges_from((u, v, {"multiplicity": m, "parameter": params[k]})
                           for u, v, m, k in zip(src.tolist(), dst.tolist(), mult.tolist(), block.tolist()))
    else:
        for u, v, m, k in zip(src.tolist(), dst.tolist(), mult.tolist(), block.tolist()):
            old = out.get_edge_data(u, v)
            if old is None:
                out.add_edge(u, v, multiplicity=m, parameter=params[k])
            else:  # two topology edges join the same unit pair: one edge, both parameters
                old["multiplicity"] += m
                old["parameter"] = (*_as_tuple(old["parameter"]), params[k])
    return out.to_undirected(as_view=True) if undirected else out


def _as_tuple(p: Any) -> tuple[Any, ...]:
    return p if isinstance(p, tuple) else (p,)
