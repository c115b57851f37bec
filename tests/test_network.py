"""ticketlab.network: the unit-level network (unit_graph) and Ticket.to_networkx.

Hand-built tickets with edges counted by hand, then real models' tickets checked edge by edge
against their masks and topology."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

from ticketlab.limits import LimitError
from ticketlab.metrics import compare
from ticketlab.network import unit_graph
from ticketlab.ticket import Ticket
from topologies import residual_topology


def edges(g) -> dict:
    return {(u, v): (d["multiplicity"], d["parameter"]) for u, v, d in g.edges(data=True)}


# ----------------------------------------------------------------------------- hand-built
def mlp() -> Ticket:
    # input 2 -> t1 3 -> t2 1; nodes: input 0-1, t1 2-4, t2 5; hidden unit 2 (node 4) receives nothing
    return Ticket(masks={"fc1.weight": np.array([[1, 0], [1, 1], [0, 0]], bool),
                         "fc2.weight": np.array([[1, 1, 1]], bool)})


def test_mlp_edges_multiplicities_and_node_attributes():
    g = mlp().to_networkx()
    assert edges(g) == {(0, 2): (1, "fc1.weight"), (0, 3): (1, "fc1.weight"), (1, 3): (1, "fc1.weight"),
                        (2, 5): (1, "fc2.weight"), (3, 5): (1, "fc2.weight"), (4, 5): (1, "fc2.weight")}
    assert dict(g.nodes(data=True)) == {
        0: {"tensor": "input", "unit": 0, "depth": 0}, 1: {"tensor": "input", "unit": 1, "depth": 0},
        2: {"tensor": "t1", "unit": 0, "depth": 1}, 3: {"tensor": "t1", "unit": 1, "depth": 1},
        4: {"tensor": "t1", "unit": 2, "depth": 1}, 5: {"tensor": "t2", "unit": 0, "depth": 2}}


def test_effective_only_and_undirected():
    g = mlp().to_networkx(effective_only=True)  # node 4 is on no input-to-output path
    assert sorted(g.nodes) == [0, 1, 2, 3, 5] and (4, 5) not in edges(g) and g.number_of_edges() == 5
    u = mlp().to_networkx(undirected=True)
    assert not u.is_directed() and u.has_edge(5, 2) and u.number_of_edges() == 6


def test_adjacency_and_labels_are_what_networkx_gets():
    import networkx as nx

    ug = unit_graph(mlp())
    a = ug.adjacency()
    assert a.toarray().tolist() == [[0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1],
                                    [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]
    g = mlp().to_networkx()
    assert (nx.to_scipy_sparse_array(g, nodelist=range(6), weight="multiplicity") != a).nnz == 0
    assert ug.labels()["unit"].tolist() == [0, 1, 0, 1, 2, 0]


def test_conv_kernel_collapses_to_one_edge_with_its_kept_count():
    m = np.zeros((2, 2, 3, 3), bool)  # out 2 x in 2 channels
    m[0, 1, :2, :2] = True  # kernel (0, 1) keeps 4
    m[1, 0, 2, 2] = True  # kernel (1, 0) keeps 1; kernels (0, 0) and (1, 1) keep nothing
    g = Ticket(masks={"c.weight": m}).to_networkx()
    # nodes: input channels 0-1, t1 channels 2-3
    assert edges(g) == {(1, 2): (4, "c.weight"), (0, 3): (1, "c.weight")}


def test_residual_shortcut_is_an_identity_edge():
    conv1 = np.ones((2, 1, 1, 1), bool)
    conv2 = np.zeros((2, 2, 1, 1), bool)  # the block's convs keep nothing: only the shortcut carries
    fc = np.zeros((1, 8), bool)
    fc[0, :3] = True  # 3 of channel 0's 4 columns (group 4); channel 1 feeds nothing
    t = Ticket(masks={"conv1.weight": conv1, "conv2.weight": conv2, "fc.weight": fc},
               provenance={"topology": residual_topology(1, 2, 1)})
    g = t.to_networkx()  # nodes: input 0, t1 1-2, t2 3-4, t3 5
    assert edges(g) == {(0, 1): (1, "conv1.weight"), (0, 2): (1, "conv1.weight"),
                        (1, 3): (1, None), (2, 4): (1, None), (3, 5): (3, "fc.weight")}
    assert [g.nodes[i]["depth"] for i in range(6)] == [0, 1, 1, 2, 2, 3]  # a shortcut adds no depth
    assert sorted(t.to_networkx(effective_only=True).nodes) == [0, 1, 3, 5]


def test_two_topology_edges_on_one_unit_pair_make_one_edge():
    topo = {"tensors": {"in": 1, "out": 2}, "input": "in", "output": "out",
            "edges": [{"param": "a", "src": "in", "dst": "out", "kind": "linear", "group": 1},
                      {"param": "b", "src": "in", "dst": "out", "kind": "linear", "group": 1}]}
    t = Ticket(masks={"a": np.array([[1], [1]], bool), "b": np.array([[1], [0]], bool)}, provenance={"topology": topo})
    assert edges(t.to_networkx()) == {(0, 1): (2, ("a", "b")), (0, 2): (1, "a")}
    assert unit_graph(t).adjacency().toarray().tolist() == [[0, 2, 1], [0, 0, 0], [0, 0, 0]]


def test_size_limit_refuses_with_one_line(monkeypatch):
    with pytest.raises(LimitError) as err:
        mlp().to_networkx(max_edges=5)
    msg = str(err.value)
    assert "\n" not in msg and "6 edges" in msg and "max_edges=N" in msg and "TICKETLAB_LIMIT_GRAPH_EDGES" in msg
    assert mlp().to_networkx(max_edges=6).number_of_edges() == 6
    monkeypatch.setenv("TICKETLAB_LIMIT_GRAPH_EDGES", "5")
    with pytest.raises(LimitError, match="more than the limit of 5"):
        mlp().to_networkx()
    assert mlp().to_networkx(effective_only=True).number_of_edges() == 5  # the limit counts what is built


def test_docstring_examples():
    from ticketlab import network

    result = doctest.testmod(network, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_unit_graph_is_top_level_and_networkx_is_not_imported_by_it():
    code = ("import sys, numpy as np, ticketlab; "
            "g = ticketlab.unit_graph(ticketlab.Ticket(masks={'w': np.ones((2, 3), bool)})); "
            "print(g.adjacency().nnz, 'networkx' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["6", "False", "False"]


# ----------------------------------------------------------------------------- real models
@pytest.mark.parametrize("model,shape", [("lenet_300_100", (1, 8, 8)), ("conv4", (3, 32, 32)),
                                         ("resnet20", (3, 32, 32))])
def test_real_ticket_graph_matches_masks_and_topology(model, shape):
    from ticketlab import models  # here: the hand-built tests need no torch
    from ticketlab.data.base import DataSpec

    spec = DataSpec("cifar10" if shape[0] == 3 else "digits", "tensor", shape, 10)
    net = models.create_model(model, spec, seed=0)
    topo = models.model_topology(net, spec)
    rng = np.random.default_rng(0)
    masks = {n: rng.random(tuple(p.shape)) < 0.05 for n, p in models.prunable_parameters(net).items()}
    t = Ticket(masks=masks, provenance={"topology": topo})
    g = t.to_networkx()
    units = topo["tensors"]
    assert g.number_of_nodes() == sum(units.values())
    node = {(d["tensor"], d["unit"]): i for i, d in g.nodes(data=True)}
    start = {n: node[(n, 0)] for n in units}
    assert all(node[(n, u)] == start[n] + u for n in units for u in range(units[n]))
    if model != "resnet20":  # a chain: tensor t<i> is at depth i
        assert all(d["depth"] == (0 if d["tensor"] == "input" else int(d["tensor"][1:])) for _, d in g.nodes(data=True))
    # expected edges, straight from the masks: kept weights per (src unit, dst unit) of each edge
    want: dict = {}
    for e in topo["edges"]:
        s0, d0 = start[e["src"]], start[e["dst"]]
        if e.get("identity"):
            want.update({(s0 + i, d0 + i): (1, None) for i in range(units[e["src"]])})
            continue
        m = masks[e["param"]]
        kept = m.reshape(m.shape[0], units[e["src"]], -1).sum(axis=2)  # conv taps or `group` columns
        for j, i in zip(*np.nonzero(kept)):
            want[(s0 + int(i), d0 + int(j))] = (int(kept[j, i]), e["param"])
    got = edges(g)
    assert got == want
    per_param = {n: 0 for n in masks}
    for mult, p in got.values():
        if p is not None:
            per_param[p] += mult
    assert per_param == {n: int(m.sum()) for n, m in masks.items()}  # every kept weight, once
    if model == "resnet20":
        assert sum(p is None for _, p in got.values()) == sum(units[e["src"]] for e in topo["edges"] if e.get("identity")) > 0
    eff = t.to_networkx(effective_only=True)
    assert eff.number_of_nodes() == compare([t], ["effective_nodes"])[0]["value"]


# ----------------------------------------------------------------------------- the docs page
def test_ticket_graphs_page_runs(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ticket_graphs.md").read_text()
    monkeypatch.chdir(tmp_path)
    sections = [s for s in re.split(r"^## ", doc, flags=re.M) if "```python" in s]
    assert len(sections) == 2  # the custom study; the relational-graph measures
    for section in sections:  # each section's code, on its own, prints what the section shows
        scope: dict = {}
        for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
            exec(compile(block, "ticket_graphs.md", "exec"), scope)
        printed = re.findall(r"```text\n(.*?)```", section, flags=re.S)[0]
        assert capsys.readouterr().out == printed, section.splitlines()[0]
    assert (tmp_path / "ticket_graphs.png").read_bytes()[:4] == b"\x89PNG"


def test_null_tickets_keep_unit_degrees_and_are_compares_samples():
    from ticketlab.metrics import DegreeNull, null_tickets
    from ticketlab.metrics.degree import layer_samples

    rng = np.random.default_rng(3)
    t = Ticket(masks={"fc1": rng.random((6, 5)) < 0.4, "fc2": rng.random((4, 6)) < 0.5})
    null = DegreeNull(samples=4, seed=2)
    samples = null_tickets(t, null)
    g = t.to_networkx()
    assert len(samples) == 4 and any(not np.array_equal(s.masks["fc1"], t.masks["fc1"]) for s in samples)
    for s in samples:
        h = s.to_networkx()  # linear layers: every unit keeps its in- and out-degree
        assert dict(h.in_degree()) == dict(g.in_degree()) and dict(h.out_degree()) == dict(g.out_degree())
    assert np.array_equal(samples[1].masks["fc2"], layer_samples(t.masks["fc2"], null, 0, 1)[1])
