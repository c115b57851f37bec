"""Graph metrics: paths, effective masks, dead units, spectral gaps (hand-checked and brute force)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.metrics import analyze, compare, effective_mask, log10_paths
from ticketlab.metrics.graph import CHAIN_NOTE, bipartite_stats, chain_topology, top_singular_values
from ticketlab.ticket import Ticket
from topologies import residual_topology

TOTAL = "__total__"


def one(records, metric, layer=TOTAL, a=None):
    hits = [r for r in records if r["metric"] == metric and r["layer"] == layer and (a is None or r["a"] == a)]
    assert len(hits) == 1, hits
    return hits[0]


def mlp(*masks) -> Ticket:
    return Ticket(masks={f"fc{i + 1}.weight": np.asarray(m, bool) for i, m in enumerate(masks)})


def residual_net(conv1, conv2, fc) -> Ticket:
    """input(1 ch) -conv1-> t1(2) -conv2-> t2(2) <-identity- t1; t2 -fc (4 columns per channel)-> t3(1)."""
    topo = residual_topology(1, 2, 1)
    masks = {"conv1.weight": conv1, "conv2.weight": conv2, "fc.weight": fc}
    return Ticket(masks={k: np.asarray(v, bool) for k, v in masks.items()}, provenance={"topology": topo})


# ----------------------------------------------------------------------------- paths
def test_dense_mlp_path_count_is_product_of_widths():
    t = mlp(np.ones((4, 5)), np.ones((3, 4)), np.ones((2, 3)))
    assert 10 ** log10_paths(t) == pytest.approx(5 * 4 * 3 * 2)
    rec = compare([t], ["log10_paths"])[0]
    assert rec["value"] == pytest.approx(math.log10(120)) and rec["note"] == CHAIN_NOTE


def test_path_count_beyond_float_range():
    # 200 dense layers of width 100: 100**201 = 1e402 paths, far beyond float64's 1.8e308
    t = mlp(*[np.ones((100, 100), bool)] * 200)
    assert log10_paths(t) == pytest.approx(402.0, abs=1e-9)


def test_hand_built_mlp_with_dead_and_disconnected_neurons():
    fc1 = [[1, 1], [0, 0], [1, 0]]  # hidden 1 receives nothing (dead)
    fc2 = [[1, 1, 0], [0, 1, 0]]  # hidden 2 feeds nothing (disconnected); output 1 only hears hidden 1
    t = mlp(fc1, fc2)
    eff = effective_mask(t)
    assert eff["fc1.weight"].tolist() == [[True, True], [False, False], [False, False]]
    assert eff["fc2.weight"].tolist() == [[True, False, False], [False, False, False]]
    g = analyze(t)
    assert 10 ** g.log10_paths == pytest.approx(2)  # in0 -> h0 -> o0 and in1 -> h0 -> o0
    assert g.dead_units() == {"t1": 1, "t2": 1}
    assert g.disconnected_units() == {"input": 0, "t1": 1, "t2": 0}
    assert g.effective_nodes == 4
    recs = compare([t], ["effective_sparsity", "dead_units", "disconnected_units", "effective_nodes", "collapsed_layers"],
                   per_layer=True)
    assert one(recs, "effective_sparsity")["value"] == pytest.approx(1 - 3 / 12)
    assert one(recs, "effective_sparsity", "fc2.weight")["value"] == pytest.approx(1 - 1 / 6)
    assert one(recs, "dead_units")["value"] == 2 and one(recs, "dead_units", "t1")["value"] == 1
    assert one(recs, "disconnected_units")["value"] == 1
    assert one(recs, "effective_nodes")["value"] == 4
    assert one(recs, "collapsed_layers")["value"] == 0


def test_residual_connection_keeps_a_pruned_block_connected():
    conv1 = np.ones((2, 1, 3, 3))
    fc = np.ones((1, 8))
    t = residual_net(conv1, np.zeros((2, 2, 3, 3)), fc)
    # t1 = [9, 9]; t2 = identity only = [9, 9]; output = 4 * 9 + 4 * 9
    assert 10 ** log10_paths(t) == pytest.approx(72)
    rec = compare([t], ["collapsed_layers"], per_layer=True)
    assert one(rec, "collapsed_layers")["value"] == 1 and "conv2.weight" in one(rec, "collapsed_layers")["note"]
    conv2 = np.zeros((2, 2, 3, 3))
    conv2[1, 0, 0, :2] = True  # kernel (out 1 <- in 0) keeps 2 weights
    t = residual_net(conv1, conv2, fc)
    # t2 = [9, 9 + 2 * 9]; output = 4 * 9 + 4 * 27
    assert 10 ** log10_paths(t) == pytest.approx(144)
    assert effective_mask(t)["conv2.weight"].sum() == 2


def test_collapsed_network_has_no_paths():
    t = mlp(np.ones((3, 2)), np.zeros((2, 3)))
    rec = compare([t], ["log10_paths", "collapsed_layers"])
    assert rec[0]["value"] is None and "collapsed" in rec[0]["note"]
    assert rec[1]["value"] == 2  # fc2 is empty, so fc1's weights lead nowhere either


def _brute_force(t: Ticket) -> tuple[float, dict[str, np.ndarray]]:
    """Paths and effective weights on the weight-level multigraph with networkx."""
    topo = t.provenance["topology"]
    g = nx.MultiDiGraph()
    for name, n in topo["tensors"].items():
        g.add_nodes_from((name, i) for i in range(n))
    for e in topo["edges"]:
        if e.get("identity"):
            for i in range(topo["tensors"][e["src"]]):
                g.add_edge((e["src"], i), (e["dst"], i))
            continue
        m = t.masks[e["param"]]
        for idx in zip(*np.nonzero(m)):
            g.add_edge((e["src"], int(idx[1]) // e["group"]), (e["dst"], int(idx[0])), key=(e["param"], idx))
    ins = [(topo["input"], i) for i in range(topo["tensors"][topo["input"]])]
    outs = {(topo["output"], i) for i in range(topo["tensors"][topo["output"]])}
    count = {}
    for node in nx.topological_sort(g):
        count[node] = 1 if node in ins else sum(count[u] for u, _ in g.in_edges(node))
    fwd = set(ins).union(*(nx.descendants(g, s) for s in ins))
    bwd = set(outs).union(*(nx.ancestors(g, s) for s in outs))
    eff = {n: np.zeros_like(m) for n, m in t.masks.items()}
    for u, v, key in g.edges(keys=True):
        if isinstance(key, tuple) and u in fwd and v in bwd:
            eff[key[0]][key[1]] = True
    return float(sum(count[o] for o in outs)), eff


@pytest.mark.parametrize("seed", range(6))
def test_paths_and_effective_mask_match_networkx_brute_force(seed):
    rng = np.random.default_rng(seed)
    t = residual_net(rng.random((2, 1, 2, 2)) < 0.5, rng.random((2, 2, 2, 2)) < 0.3, rng.random((1, 8)) < 0.4)
    paths, eff = _brute_force(t)
    got = log10_paths(t)
    assert (10 ** got if math.isfinite(got) else 0.0) == pytest.approx(paths)
    mine = effective_mask(t)
    for name in t.masks:
        assert np.array_equal(mine[name], eff[name]), name


# ----------------------------------------------------------------------------- topology handling
def test_chain_fallback_reads_flattened_conv_output():
    conv = np.ones((2, 1, 3, 3), bool)
    fc = np.ones((3, 8), bool)  # 2 channels x 4 positions
    topo = chain_topology({"c": conv, "fc": fc})
    assert topo["edges"][1]["group"] == 4 and topo["tensors"] == {"input": 1, "t1": 2, "t2": 3}
    t = Ticket(masks={"c": conv, "fc": fc})
    assert 10 ** log10_paths(t) == pytest.approx(9 * 2 * 4 * 3)


def test_chain_fallback_error_for_non_chaining_masks():
    t = mlp(np.ones((3, 2)), np.ones((2, 5)))
    with pytest.raises(IncompatibleError, match="has 5 inputs but the previous layer has 3 units"):
        analyze(t)
    with pytest.raises(ConfigError, match="needs a topology; ticket 'ticket0' has none"):
        compare([t], ["log10_paths"])


def test_topology_that_does_not_fit_the_masks():
    t = residual_net(np.ones((2, 1, 3, 3)), np.ones((2, 2, 3, 3)), np.ones((1, 8)))
    bad = dict(t.provenance["topology"])
    bad["tensors"] = {**bad["tensors"], "t1": 3}
    with pytest.raises(IncompatibleError, match="mask 'conv1.weight' has shape"):
        analyze(Ticket(masks=t.masks, provenance={"topology": bad}))


def test_unmasked_parameter_counts_as_dense():
    full = residual_net(np.ones((2, 1, 3, 3)), np.zeros((2, 2, 3, 3)), np.ones((1, 8)))
    topo = full.provenance["topology"]
    edges = [dict(e, shape=[2, 1, 3, 3]) if e.get("param") == "conv1.weight" else e for e in topo["edges"]]
    part = Ticket(masks={k: v for k, v in full.masks.items() if k != "conv1.weight"},
                  provenance={"topology": {**topo, "edges": edges}})
    assert log10_paths(part) == pytest.approx(log10_paths(full))


# ----------------------------------------------------------------------------- two tickets
def test_effective_overlap_and_shared_paths():
    a = mlp(np.ones((2, 2)), np.ones((1, 2)))  # 4 paths
    b = mlp([[1, 1], [0, 0]], np.ones((1, 2)))  # hidden 1 dead: 2 paths
    recs = compare([a, b], ["effective_jaccard", "shared_paths"])
    assert one(recs, "effective_jaccard")["value"] == pytest.approx(3 / 6)
    assert one(recs, "shared_paths", a="ticket0")["value"] == pytest.approx(0.5)
    assert one(recs, "shared_paths", a="ticket1")["value"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- spectra
@pytest.mark.parametrize("d", [2, 4, 7])
def test_spectral_gap_of_complete_bipartite_graph(d):
    s = bipartite_stats(np.ones((d, d)))
    assert s["mean_degree"] == d and s["lambda1"] == pytest.approx(d) and s["lambda2"] == pytest.approx(0, abs=1e-6)
    assert s["spectral_gap"] == pytest.approx(2 * math.sqrt(d - 1))
    rec = compare([mlp(np.ones((d, d)))], ["spectral_gap", "mean_degree"])
    assert rec[0]["value"] == pytest.approx(2 * math.sqrt(d - 1)) and rec[1]["value"] == d


def test_spectral_gap_of_even_cycle():
    # C_8 as a bipartite graph: B = I + P (4 x 4), singular values 2|cos(pi k / 4)| = 2, sqrt2, 0, sqrt2
    b = np.eye(4) + np.roll(np.eye(4), 1, axis=1)
    s = bipartite_stats(b)
    assert s["mean_degree"] == 2 and s["lambda2"] == pytest.approx(math.sqrt(2))
    assert s["spectral_gap"] == pytest.approx(2 - math.sqrt(2))
    assert s["in_degree_min"] == s["in_degree_max"] == 2 and s["out_degree_std"] == 0


def test_spectral_gap_sparse_solver_on_large_disjoint_union():
    from scipy import sparse

    # 800 disjoint copies of K_{3,3}: 2400 x 2400 (> 4M pairs, so ARPACK); lambda1 = lambda2 = 3
    b = sparse.block_diag([np.ones((3, 3))] * 800, format="csr")
    assert top_singular_values(b).tolist() == pytest.approx([3.0, 3.0], abs=1e-6)
    assert bipartite_stats(b)["spectral_gap"] == pytest.approx(2 * math.sqrt(2) - 3, abs=1e-6)


# ----------------------------------------------------------------------------- real models
@pytest.mark.parametrize("model", ["resnet20", "vgg11"])
def test_dense_real_models_are_fully_effective(model):
    from ticketlab import models  # here, not at the top: the rest of the file needs no torch
    from ticketlab.data.base import DataSpec

    spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
    net = models.create_model(model, spec, seed=0)
    topo = models.model_topology(net, spec)
    shapes = {n: tuple(p.shape) for n, p in models.prunable_parameters(net).items()}
    t = Ticket(masks={n: np.ones(s, bool) for n, s in shapes.items()}, provenance={"topology": topo})
    g = analyze(t)
    assert all(m.all() for m in g.effective.values()) and sum(g.dead_units().values()) == 0
    masks = dict(t.masks)
    last = list(masks)[-1]
    masks[last] = np.zeros(shapes[last], bool)
    rec = compare([Ticket(masks=masks, provenance={"topology": topo})], ["log10_paths", "effective_sparsity"])
    assert rec[0]["value"] is None and rec[1]["value"] == 1.0
