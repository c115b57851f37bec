"""You et al. (2020)'s relational-graph measures C and L (ticketlab.metrics.relational): hand-computed
tiny graphs, the paper's own construction inverted, networkx as the oracle on ``Ticket.to_networkx``
graphs, the node-sampled estimate, both nulls, ``compare`` records and ``ticketlab compare``."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

from ticketlab.cli.main import cli
from ticketlab.fileformat import save
from ticketlab.metrics import COMPARE_SCHEMA, compare, list_groups, validate_records
from ticketlab.metrics.degree import DegreeNull, null_tickets
from ticketlab.metrics.graph import CHAIN_NOTE
from ticketlab.metrics.relational import (
    NO_ROUNDS, measure, node_groups, relational_adjacency, relational_graphs, relational_measures,
)
from ticketlab.network import chain_topology
from ticketlab.ticket import Ticket
from topologies import residual_topology

TOTAL = "__total__"


def mlp(*masks, topology: bool = False) -> Ticket:
    masks_ = {f"fc{i + 1}.weight": np.asarray(m, bool) for i, m in enumerate(masks)}
    return Ticket(masks=masks_, provenance={"topology": chain_topology(masks_)} if topology else {})


def one(records, metric, layer=TOTAL):
    hits = [r for r in records if r["metric"] == metric and r["layer"] == layer]
    assert len(hits) == 1, hits
    return hits[0]


# ----------------------------------------------------------------------------- hand-computed
TRIANGLE_AND_PENDANT = [[0, 0, 1, 0],  # 2 -> 0
                        [1, 0, 1, 0],  # 0 -> 1, 2 -> 1
                        [0, 1, 0, 0],  # 1 -> 2 (and 2 -> 1: one undirected edge)
                        [0, 0, 1, 1]]  # 2 -> 3, and the self-edge 3 -> 3 (ignored)


def test_triangle_with_a_pendant_by_hand():
    t = mlp(np.ones((4, 3)), TRIANGLE_AND_PENDANT, np.ones((2, 4)))
    adj = relational_graphs(t)["fc2.weight"].toarray()
    assert adj.tolist() == [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]]
    m = measure(relational_graphs(t)["fc2.weight"])
    # C: nodes 0 and 1 close their only pair (1), node 2 one of its three pairs (1/3), node 3 has degree 1 (0)
    assert m.clustering == pytest.approx((1 + 1 + 1 / 3 + 0) / 4)
    # L: 0-1, 0-2, 1-2, 2-3 at 1; 0-3, 1-3 at 2: 8 / 6
    assert m.path_length == pytest.approx(8 / 6)
    assert (m.connected, m.sampled, m.nodes) == (1.0, 0, 4)
    assert math.isnan(m.clustering_se) and math.isnan(m.path_length_se)


def test_disconnected_graph_averages_over_the_pairs_joined_by_a_path():
    fc2 = np.zeros((7, 7), bool)
    for u, v in [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5)]:  # triangle 0-1-2, path 3-4-5, node 6 alone
        fc2[v, u] = True
    m = measure(relational_adjacency(fc2))
    # triangle: 6 ordered pairs at 1; path: 4 at 1, 2 at 2; 12 of 42 ordered pairs joined
    assert m.path_length == pytest.approx((6 * 1 + 4 * 1 + 2 * 2) / 12)
    assert m.connected == pytest.approx(12 / 42)
    assert m.clustering == pytest.approx(3 / 7)  # the triangle's nodes 1 each, the rest 0
    assert measure(3 * fc2.astype(float) + np.eye(7)) == m  # weights, directions, self-loops: all dropped
    empty = measure(relational_adjacency(np.eye(3, dtype=bool)))  # self-edges only: no edge at all
    assert empty.clustering == 0.0 and math.isnan(empty.path_length) and empty.connected == 0.0


def test_groups_of_the_wider_side_and_conv_kernels():
    assert node_groups(5, 2).tolist() == [0, 0, 0, 1, 1]  # graph2nn's compute_count: the larger first
    assert node_groups(4, 4).tolist() == [0, 1, 2, 3]
    conv = np.zeros((2, 4, 3, 3), bool)
    conv[0, 3, 2, 2] = True  # one tap of kernel (out 0, in 3): input group 1 -> output node 0
    conv[1, 2, 0, 0] = True  # in 2 (group 1) -> out 1 (node 1): a self-edge, ignored
    adj = relational_adjacency(conv.reshape(2, 4, 9).sum(axis=2))
    assert adj.toarray().tolist() == [[0, 1], [1, 0]]
    t = Ticket(masks={"c1": np.ones((4, 3, 3, 3), bool), "c2": conv, "fc": np.ones((3, 2), bool)})
    assert relational_graphs(t)["c2"].toarray().tolist() == [[0, 1], [1, 0]]
    assert relational_adjacency(np.ones((6, 9)), nodes=3).toarray().sum() == 6  # K3
    with pytest.raises(Exception, match="positive whole number"):
        relational_adjacency(np.ones((2, 2)), nodes=0)


def test_dense_rounds_are_complete_graphs_and_chance_agrees():
    t = mlp(np.ones((5, 3)), np.ones((5, 5)), np.ones((6, 5)), np.ones((2, 6)))
    recs = compare([t], "relational", per_layer=True, null_samples=4)
    for metric in ("relational_clustering", "relational_path_length"):
        r = one(recs, metric)
        assert r["value"] == 1.0 and r["expected"] == 1.0 and r["expected_degree"] == 1.0
        assert r["lift"] == 1.0 and r["p"] == 1.0 and r["p_degree"] == 1.0 and r["z"] is None  # sd 0
        assert {x["layer"] for x in recs if x["metric"] == metric} == {TOTAL, "fc2.weight", "fc3.weight"}


def test_no_round_between_hidden_tensors():
    recs = compare([mlp(np.ones((4, 3)), np.ones((2, 4)))], "relational")
    assert [r["value"] for r in recs] == [None, None]
    assert recs[0]["note"] == f"{NO_ROUNDS}; {CHAIN_NOTE}"


# ----------------------------------------------------------------------------- the paper's construction
def paper_mask(g: nx.Graph, n_out: int, n_in: int) -> np.ndarray:
    """graph2nn's compute_densemask: block (v, u) of the (out, in) mask kept iff u == v or u ~ v."""
    n = g.number_of_nodes()
    blocks = np.eye(n, dtype=bool) | nx.to_numpy_array(g, nodelist=range(n)).astype(bool)
    return blocks[node_groups(n_out, n)][:, node_groups(n_in, n)]


@pytest.mark.parametrize("widths", [(32, 32, 32), (32, 48, 40)])  # fixed and variable width
def test_networks_built_by_the_papers_construction_give_their_graph_back(widths):
    g = nx.connected_watts_strogatz_graph(16, 4, 0.3, seed=3)
    hidden = list(widths)
    masks = [np.ones((hidden[0], 10), bool)]
    masks += [paper_mask(g, hidden[i + 1], hidden[i]) for i in range(len(hidden) - 1)]
    masks.append(np.ones((5, hidden[-1]), bool))
    t = mlp(*masks)
    res = relational_measures(t, nodes=16, null=DegreeNull(samples=1))
    want_c = sum(nx.clustering(g).values()) / 16  # graph2nn's compute_stats
    want_l = nx.average_shortest_path_length(g)
    assert [r.param for r in res.rounds] == ["fc2.weight", "fc3.weight"]
    for r in res.rounds:
        assert r.nodes == 16
        assert r.observed.clustering == pytest.approx(want_c, abs=1e-12)
        assert r.observed.path_length == pytest.approx(want_l, abs=1e-12)
    adj = relational_graphs(t, nodes=16)["fc2.weight"]
    rows, cols = adj.nonzero()
    assert {frozenset(e) for e in zip(rows.tolist(), cols.tolist())} == {frozenset(e) for e in g.edges}


# ----------------------------------------------------------------------------- networkx as the oracle
def _groups(width: int, n: int) -> list[int]:
    sizes = [width // n + (i < width % n) for i in range(n)]
    return [k for k, s in enumerate(sizes) for _ in range(s)]


def networkx_measures(t: Ticket, param: str) -> tuple[float, float]:
    """C and L of a round rebuilt from ``t.to_networkx()`` with networkx alone."""
    g = t.to_networkx()
    pairs = [(u, v) for u, v, p in g.edges(data="parameter") if p == param]
    src, dst = g.nodes[pairs[0][0]]["tensor"], g.nodes[pairs[0][1]]["tensor"]
    width = {name: sum(1 for _, x in g.nodes(data="tensor") if x == name) for name in (src, dst)}
    n = min(width.values())
    gs, gd = _groups(width[src], n), _groups(width[dst], n)
    rel = nx.Graph()
    rel.add_nodes_from(range(n))
    rel.add_edges_from((gs[g.nodes[u]["unit"]], gd[g.nodes[v]["unit"]]) for u, v in pairs)
    rel.remove_edges_from(list(nx.selfloop_edges(rel)))
    comps = [rel.subgraph(c) for c in nx.connected_components(rel) if len(c) > 1]
    pairs_joined = sum(len(c) * (len(c) - 1) for c in comps)
    ell = sum(nx.average_shortest_path_length(c) * len(c) * (len(c) - 1) for c in comps) / pairs_joined
    return nx.average_clustering(rel), ell


def _model_ticket(model: str, density: float) -> Ticket:
    from ticketlab import models
    from ticketlab.data.base import DataSpec

    spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
    net = models.create_model(model, spec, seed=0)
    rng = np.random.default_rng(1)
    masks = {n: rng.random(tuple(p.shape)) < density for n, p in models.prunable_parameters(net).items()}
    return Ticket(masks=masks, provenance={"topology": models.model_topology(net, spec)})


def _hand_tickets(density: float) -> list[Ticket]:
    rng = np.random.default_rng(int(density * 1000))
    a = mlp(*(rng.random(s) < density for s in [(20, 12), (20, 20), (15, 20), (3, 15)]))
    conv = {"c1": (8, 3, 3, 3), "c2": (8, 8, 3, 3), "c3": (12, 8, 3, 3), "fc": (4, 48)}
    b = Ticket(masks={n: rng.random(s) < density for n, s in conv.items()})  # chain: fc reads 4 columns a channel
    res = residual_topology(1, 9, 2)
    c = Ticket(masks={"conv1.weight": rng.random((9, 1, 3, 3)) < 0.5, "conv2.weight": rng.random((9, 9, 3, 3)) < density,
                      "fc.weight": rng.random((2, 36)) < 0.5}, provenance={"topology": res})
    return [a, b, c]


@pytest.mark.parametrize("density", [0.03, 0.15, 0.6])
def test_networkx_oracle_on_hand_built_tickets(density):
    for t in _hand_tickets(density):
        res = relational_measures(t, null=DegreeNull(samples=1))
        assert res.rounds
        for r in res.rounds:
            c, ell = networkx_measures(t, r.param)
            assert r.observed.clustering == pytest.approx(c, abs=1e-12), r.param
            assert r.observed.path_length == pytest.approx(ell, abs=1e-12), r.param


@pytest.mark.parametrize("model,density", [("conv4", 0.02), ("resnet20", 0.01), ("resnet20", 0.3)])
def test_networkx_oracle_on_model_tickets(model, density):
    t = _model_ticket(model, density)
    res = relational_measures(t, null=DegreeNull(samples=1))
    topo = t.provenance["topology"]
    hidden = set(topo["tensors"]) - {topo["input"], topo["output"]}
    assert {r.param for r in res.rounds} == {e["param"] for e in topo["edges"]
                                            if "param" in e and e["src"] in hidden and e["dst"] in hidden}
    for r in res.rounds:
        c, ell = networkx_measures(t, r.param)
        assert r.observed.clustering == pytest.approx(c, abs=1e-12), r.param
        assert r.observed.path_length == pytest.approx(ell, abs=1e-12), r.param


def test_dense_and_sparse_searches_agree():
    from scipy import sparse

    import ticketlab.metrics.relational as rel

    rng = np.random.default_rng(5)
    a = np.triu(rng.random((300, 300)) < 0.3, 1)
    a = sparse.csr_matrix(a | a.T)
    dense = measure(a)
    old = rel.DENSE_DEGREE
    rel.DENSE_DEGREE = 10**9  # force the sparse path
    try:
        assert measure(a) == dense
    finally:
        rel.DENSE_DEGREE = old


# ----------------------------------------------------------------------------- the estimate
def test_past_the_limit_the_estimate_is_seeded_with_its_standard_error(monkeypatch):
    rng = np.random.default_rng(2)
    t = mlp(np.ones((300, 8)), rng.random((300, 300)) < 0.01, np.ones((4, 300)))
    exact = relational_measures(t, null=DegreeNull(samples=2)).rounds[0].observed
    monkeypatch.setenv("TICKETLAB_LIMIT_RELATIONAL_NODES", "100")
    est = relational_measures(t, null=DegreeNull(samples=2), sample_nodes=120).rounds[0]
    assert est.observed.sampled == 120 and all(m.sampled == 120 for m in est.random + est.degree)
    for name in ("clustering", "path_length"):
        value, se = est.observed.get(name)
        assert 0 < se < 0.2 * value and abs(value - exact.get(name)[0]) < 4 * se, name
    again = relational_measures(t, null=DegreeNull(samples=2), sample_nodes=120).rounds[0]
    assert again.observed == est.observed
    other = relational_measures(t, null=DegreeNull(samples=2, seed=1), sample_nodes=120).rounds[0]
    assert other.observed != est.observed  # the node sample follows the seed
    assert relational_measures(t, null=DegreeNull(samples=2), sample_nodes=300).rounds[0].observed == exact
    recs = compare([t], "relational", per_layer=True, null_samples=2)
    rec = one(recs, "relational_path_length", "fc2.weight")
    assert rec["se"] > 0 and rec["note"].startswith("estimate from 256 of 300 nodes")
    assert "1 layer(s) estimated from node samples (more than 100 nodes; se)" in one(recs, "relational_path_length")["note"]


def test_exact_records_have_no_se():
    t = mlp(np.ones((6, 3)), np.eye(6, dtype=bool) | np.eye(6, k=1, dtype=bool), np.ones((2, 6)))
    for r in compare([t], "relational", per_layer=True, null_samples=3):
        assert "se" not in r


# ----------------------------------------------------------------------------- the nulls
def test_degree_null_samples_are_null_tickets_and_random_ones_keep_the_counts():
    rng = np.random.default_rng(4)
    t = mlp(rng.random((12, 5)) < 0.5, rng.random((12, 12)) < 0.2, rng.random((10, 12)) < 0.2,
            rng.random((3, 10)) < 0.5, topology=True)
    null = DegreeNull(samples=4, seed=9, rounds=5)
    res = relational_measures(t, null=null, stream=2)
    for s, nt in enumerate(null_tickets(t, null, stream=2)):  # compare's degree-null masks, same seeds
        for r, mine in zip(res.rounds, relational_measures(nt, null=DegreeNull(samples=1)).rounds):
            assert r.degree[s] == mine.observed
    from ticketlab.metrics.align import random_mask

    for layer, r in zip((1, 2), res.rounds):  # the random-count null: random_mask, seeded (seed, stream, layer, 26)
        gen = np.random.default_rng(np.random.SeedSequence([9, 2, layer, 26]))
        mask = t.masks[r.param]
        for s in range(4):
            m = random_mask(mask, gen)
            assert m.sum() == mask.sum()
            rt = relational_measures(Ticket(masks={**t.masks, r.param: m}, provenance=t.provenance),
                                     null=DegreeNull(samples=1))
            assert r.random[s] == next(x for x in rt.rounds if x.param == r.param).observed


def test_relabelling_hidden_units_changes_the_graphs_but_not_the_random_null():
    """Departure 3 of the module docstring: node identity across a layer is a labelling convention."""
    from ticketlab.metrics.align import permute_ticket

    rng = np.random.default_rng(8)
    t = mlp(rng.random((24, 6)) < 0.5, rng.random((24, 24)) < 0.15, rng.random((24, 24)) < 0.15,
            rng.random((3, 24)) < 0.5, topology=True)
    topo = t.provenance["topology"]
    perms = {n: (rng.permutation(k) if n in ("t1", "t2", "t3") else np.arange(k)) for n, k in topo["tensors"].items()}
    u = permute_ticket(t, perms, topo)  # the same function, its hidden units relabelled
    assert sorted(d for _, d in u.to_networkx().degree()) == sorted(d for _, d in t.to_networkx().degree())
    a, b = (compare([x], "relational_clustering", per_layer=True, null_samples=5) for x in (t, u))
    assert [r["value"] for r in a] != [r["value"] for r in b]
    assert [r["expected"] for r in a] == [r["expected"] for r in b]  # random masks see counts and shapes only


def test_records_against_both_nulls_follow_the_schema_and_the_seed():
    rng = np.random.default_rng(6)
    t = mlp(rng.random((16, 6)) < 0.5, rng.random((16, 16)) < 0.1, rng.random((16, 16)) < 0.3,
            rng.random((3, 16)) < 0.5)
    recs = compare([t], "relational", per_layer=True, null_samples=6, seed=3)
    validate_records(json.loads(json.dumps(recs)))
    res = relational_measures(t, null=DegreeNull(samples=6, seed=3))
    for metric, name in (("relational_clustering", "clustering"), ("relational_path_length", "path_length")):
        total = one(recs, metric)
        per = [one(recs, metric, p) for p in ("fc2.weight", "fc3.weight")]
        assert total["value"] == pytest.approx(np.mean([r["value"] for r in per]))
        for key in ("expected", "lift", "z", "p", "p_two_sided", "expected_degree", "lift_degree", "p_degree"):
            assert all(key in r for r in [total, *per]), key
        rnd = np.array([[m.get(name)[0] for m in r.random] for r in res.rounds])  # (rounds, samples)
        deg = np.array([[m.get(name)[0] for m in r.degree] for r in res.rounds])
        assert total["expected"] == pytest.approx(rnd.mean(axis=0).mean())
        assert total["z"] == pytest.approx((total["value"] - rnd.mean()) / rnd.mean(axis=0).std(ddof=1))
        assert total["p"] == (1 + np.sum(rnd.mean(axis=0) >= total["value"])) / 7
        assert per[1]["expected_degree"] == pytest.approx(deg[1].mean())
        assert per[1]["lift_degree"] == pytest.approx(per[1]["value"] / deg[1].mean())
        assert "relational graph (You et al. 2020) of 2 layer(s) between hidden tensors" in total["note"]
    assert compare([t], "relational", null_samples=6, seed=3) == [r for r in recs if r["layer"] == TOTAL]
    assert compare([t], "relational", null_samples=6, seed=4) != [r for r in recs if r["layer"] == TOTAL]
    assert list_groups()["relational"] == ["relational_clustering", "relational_path_length"]
    assert "se" in COMPARE_SCHEMA["items"]["properties"]


def test_disconnected_rounds_say_how_many_pairs_l_covers():
    fc2 = np.zeros((6, 6), bool)
    fc2[1, 0] = fc2[3, 2] = True  # two separate edges: L = 1 over 4 of 30 ordered pairs
    recs = compare([mlp(np.ones((6, 2)), fc2, np.ones((2, 6)))], "relational_path_length", per_layer=True,
                   null_samples=2)
    assert one(recs, "relational_path_length", "fc2.weight")["note"] == "over the 13.3 % of node pairs joined by a path"
    assert "L over the node pairs joined by a path (13.3 % of pairs, mean over layers)" in recs[0]["note"]


# ----------------------------------------------------------------------------- the command
def test_cli_compare_metric_relational_and_its_json(tmp_path):
    t = _model_ticket("conv4", 0.05)
    path = save(t, tmp_path / "t.h5")
    res = CliRunner().invoke(cli, ["compare", str(path), "--metric", "relational", "--null-samples", "3"],
                            env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "t.h5, against chance" in out
    for word in ("relational_clustering", "relational_path_length", "expected", "exp_degree", "p_degree"):
        assert word in out, word
    assert "relational_*: expected, lift, z, p from random masks with the same per-layer counts" in out
    res = CliRunner().invoke(cli, ["compare", str(path), "--metric", "relational", "--null-samples", "3",
                                   "--json", "--per-layer"])
    assert res.exit_code == 0, res.output
    records = json.loads(res.output)
    validate_records(records)
    assert records == compare([path], "relational", per_layer=True, labels=["t.h5"], null_samples=3)
    assert {r["metric"] for r in records} == {"relational_clustering", "relational_path_length"}
    assert all(r["expected"] is not None and r["expected_degree"] is not None for r in records)


def test_one_real_process_gives_the_records_without_importing_torch(tmp_path):
    import subprocess
    import sys

    path = save(mlp(np.ones((5, 3)), np.eye(5, k=1, dtype=bool), np.ones((2, 5)), topology=True), tmp_path / "t.h5")
    code = ("import json, sys; from ticketlab.metrics import compare; "
            f"r = compare([{str(path)!r}], 'relational', null_samples=2); "
            "print(json.dumps([x['value'] for x in r], separators=(',', ':')), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert json.loads(out[0]) == [0.0, pytest.approx(2.0)] and out[1] == "False"  # a path 0-1-2-3-4: C 0, L 2
    res = subprocess.run([sys.executable, "-m", "ticketlab", "compare", str(path), "--metric", "relational",
                          "--null-samples", "2", "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    validate_records(json.loads(res.stdout))
