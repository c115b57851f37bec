"""Validation of the ``topology`` a ticket's provenance records (pure Python, no torch).

The topology is the layered graph of the prunable layers that the graph metrics read
(:mod:`ticketlab.metrics.graph`; written by :func:`ticketlab.models.model_topology`)::

    {"tensors": {"input": 64, "t1": 300, ...},          # tensor name -> unit count (>= 1)
     "edges": [{"param": "fc1.weight", "src": "input", "dst": "t1", "kind": "linear",
                "group": 1, "shape": [300, 64]},        # one edge per prunable weight
               {"identity": true, "src": "t2", "dst": "t4"}, ...],   # residual shortcuts
     "input": "input", "output": "t3"}

A file's provenance is untrusted, so :func:`topology_problem` checks it against this schema
and against the ticket's masks *before* any metric allocates from its numbers: unit counts are
bounded, every masked parameter's shape equals what its edge wires (``shape[0]`` = units of
``dst``, ``shape[1]`` = units of ``src`` x ``group``), an unmasked edge's dense unit matrix is no
larger than ``max_units``, and the graph has no cycle. :func:`ticketlab.fileformat.load` drops
an invalid topology with a warning, so the graph metrics fall back to reading the masks as a
chain (and say so in their records).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Most tensors and edges a topology may hold (a ResNet-50 has ~170 edges).
MAX_EDGES = 100_000


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def topology_problem(topo: Any, shapes: Mapping[str, tuple[int, ...]], max_units: int) -> str | None:
    """Why ``topo`` is not a valid topology for masks of ``shapes``, or ``None`` when it is.

    ``max_units`` bounds every unit count and every unmasked edge's ``n_dst * n_src``.

    Example:
        >>> topo = {"tensors": {"in": 2, "out": 3}, "input": "in", "output": "out",
        ...         "edges": [{"param": "w", "src": "in", "dst": "out", "kind": "linear", "group": 1}]}
        >>> topology_problem(topo, {"w": (3, 2)}, 10**9) is None
        True
        >>> topology_problem(topo, {"w": (3, 4)}, 10**9)
        "edge 'w' wires 2 x 1 inputs to 3 units, but its mask has shape (3, 4)"
        >>> topology_problem("chain", {"w": (3, 2)}, 10**9)
        'it is a str, not an object'
    """
    if not isinstance(topo, dict):
        return f"it is a {type(topo).__name__}, not an object"
    for key in ("tensors", "edges", "input", "output"):
        if key not in topo:
            return f"it has no '{key}'"
    tensors, edges = topo["tensors"], topo["edges"]
    if not isinstance(tensors, dict) or not tensors or len(tensors) > MAX_EDGES + 1:
        return "'tensors' is not an object of at most 100001 tensors"
    for name, units in tensors.items():
        if not _int(units) or not 1 <= units <= max_units:
            return f"tensor '{name}' has {units!r} units, not a count from 1 to {max_units}"
    if not isinstance(edges, list) or len(edges) > MAX_EDGES:
        return f"'edges' is not a list of at most {MAX_EDGES} edges"
    for key in ("input", "output"):
        if not isinstance(topo[key], str) or topo[key] not in tensors:
            return f"its {key} {topo[key]!r} is not one of its tensors"
    for i, e in enumerate(edges):
        problem = _edge_problem(i, e, tensors, shapes, max_units)
        if problem:
            return problem
    return _cycle_problem(tensors, edges)


def _edge_problem(i: int, e: Any, tensors: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]],
                  max_units: int) -> str | None:
    if not isinstance(e, dict):
        return f"edge {i} is a {type(e).__name__}, not an object"
    src, dst = e.get("src"), e.get("dst")
    if not isinstance(src, str) or not isinstance(dst, str) or src not in tensors or dst not in tensors:
        return f"edge {i} does not join two of its tensors"
    if e.get("identity"):
        if tensors[src] != tensors[dst]:
            return f"identity edge {src} -> {dst} joins tensors of different widths"
        return None
    param, group = e.get("param"), e.get("group", 1)
    if not isinstance(param, str):
        return f"edge {i} names no parameter"
    if not _int(group) or not 1 <= group <= max_units:
        return f"edge '{param}' has group {group!r}, not a count from 1 to {max_units}"
    shape = e.get("shape")
    if shape is not None and (not isinstance(shape, list) or not 2 <= len(shape) <= 32
                              or not all(_int(d) and 0 <= d <= max_units for d in shape)):
        return f"edge '{param}' has a malformed shape {str(shape)[:80]}"
    n_src, n_dst = tensors[src], tensors[dst]
    if param in shapes:
        mask = tuple(shapes[param])
        if len(mask) < 2 or mask[0] != n_dst or mask[1] != n_src * group:
            return (f"edge '{param}' wires {n_src} x {group} inputs to {n_dst} units, "
                    f"but its mask has shape {mask}")
        if len(mask) > 2 and group != 1:
            return f"edge '{param}' of a {len(mask)}-d weight has group {group}, not 1"
    elif n_src * n_dst > max_units:  # dense unit matrix of an unmasked layer
        return f"unmasked edge '{param}' joins {n_dst} x {n_src} units, more than {max_units}"
    elif shape is not None and math.prod(shape) > max_units:
        return f"unmasked edge '{param}' has shape {shape}, more than {max_units} weights"
    return None


def kahn_order(tensors: Mapping[str, Any], edges: list[dict[str, Any]]) -> list[str]:
    """The tensors in topological order (Kahn 1962; first in, first out, so tensors keep the
    order they are listed in where the edges allow it). Shorter than ``tensors`` when the edges
    have a cycle. Every edge must name known tensors (the caller checks).

    Example:
        >>> kahn_order({"in": 4, "h": 3, "out": 2}, [{"src": "h", "dst": "out"}, {"src": "in", "dst": "h"}])
        ['in', 'h', 'out']
    """
    indeg = dict.fromkeys(tensors, 0)
    out: dict[str, list[str]] = {n: [] for n in tensors}
    for e in edges:
        indeg[e["dst"]] += 1
        out[e["src"]].append(e["dst"])
    todo = [n for n, d in indeg.items() if d == 0]
    order: list[str] = []
    while todo:
        n = todo.pop(0)
        order.append(n)
        for m in out[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                todo.append(m)
    return order


def _cycle_problem(tensors: Mapping[str, int], edges: list[dict[str, Any]]) -> str | None:
    """A layered network has no cycle."""
    return None if len(kahn_order(tensors, edges)) == len(tensors) else "it has a cycle, so it is not a layered network"
