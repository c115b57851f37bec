"""Permutation alignment (ticketlab.metrics.align, issue 14 section 1): a random relabelling is
recovered exactly on MLP, conv and residual toy networks; inputs and outputs are never permuted;
residual tensors share one permutation; the aligned network computes the same function (torch);
compare(align=...) records with the aligned null, and the CLI."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from click.testing import CliRunner

from ticketlab.errors import ConfigError
from ticketlab.metrics import align as align_module
from ticketlab.metrics import compare, validate_records
from ticketlab.metrics.align import align, match_units, permute_state, permute_ticket, unit_groups
from ticketlab.metrics.graph import chain_topology
from ticketlab.ticket import Ticket
from topologies import residual_topology

MLP_SHAPES = {"fc1.weight": (24, 16), "fc2.weight": (12, 24), "fc3.weight": (4, 12)}
CONV_SHAPES = {"conv1.weight": (6, 3, 3, 3), "conv2.weight": (8, 6, 3, 3), "fc.weight": (5, 8 * 4)}
RES_SHAPES = {"conv1.weight": (6, 2, 3, 3), "conv2.weight": (6, 6, 3, 3), "fc.weight": (3, 24)}
CASES = {
    "mlp": (MLP_SHAPES, chain_topology({n: np.ones(s, bool) for n, s in MLP_SHAPES.items()})),
    "conv": (CONV_SHAPES, chain_topology({n: np.ones(s, bool) for n, s in CONV_SHAPES.items()})),
    "residual": (RES_SHAPES, residual_topology(2, 6, 3)),
}


def make_ticket(shapes, topo, seed, density=0.3):
    rng = np.random.default_rng(seed)
    masks = {n: rng.random(s) < density for n, s in shapes.items()}
    init = {n: rng.standard_normal(s) for n, s in shapes.items()}
    final = {n: (w + 0.3 * rng.standard_normal(w.shape)) * masks[n] for n, w in init.items()}
    scores = {n: rng.random(s) for n, s in shapes.items()}
    return Ticket(masks=masks, provenance={"topology": topo}, weights={"init": init, "final": final}, scores=scores)


def random_perms(topo, seed):
    """A random relabelling of every free group (residual groups share one permutation)."""
    rng = np.random.default_rng(seed)
    of, members, fixed = unit_groups(topo)
    per_group = {g: (np.arange(topo["tensors"][m[0]]) if g in fixed else rng.permutation(topo["tensors"][m[0]]))
                 for g, m in enumerate(members)}
    return {t: per_group[of[t]] for t in topo["tensors"]}


def test_docstring_examples():
    result = doctest.testmod(align_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("by", ["masks", "weights"])
def test_alignment_recovers_a_random_permutation_exactly(case, by):
    shapes, topo = CASES[case]
    for seed in range(3):
        a = make_ticket(shapes, topo, seed)
        perms = random_perms(topo, 100 + seed)
        b = permute_ticket(a, perms, topo)
        assert any((b.masks[n] != a.masks[n]).any() for n in shapes)  # the control really is shuffled
        res = align(a, b, by, seed=seed)
        for n in shapes:
            assert (res.ticket.masks[n] == a.masks[n]).all(), (case, by, n)
            assert np.array_equal(res.ticket.weights["final"][n], a.weights["final"][n])
            assert np.array_equal(res.ticket.weights["init"][n], a.weights["init"][n])
            assert np.array_equal(res.ticket.scores[n], a.scores[n])
        rec = compare([a, b], ["jaccard"], align=by, null_samples=3, seed=seed)[0]
        assert rec["value"] == 1.0


@pytest.mark.parametrize("case", sorted(CASES))
def test_inputs_and_outputs_are_never_permuted_and_residuals_share_one(case):
    shapes, topo = CASES[case]
    a, b = make_ticket(shapes, topo, 1), make_ticket(shapes, topo, 2)
    res = align(a, b, "masks")
    for t in (topo["input"], topo["output"]):
        assert np.array_equal(res.perms[t], np.arange(topo["tensors"][t]))
    for e in topo["edges"]:
        if e.get("identity"):
            assert np.array_equal(res.perms[e["src"]], res.perms[e["dst"]])
    for t, p in res.perms.items():
        assert sorted(p.tolist()) == list(range(topo["tensors"][t]))  # a permutation
    # the output layer's rows (the logits) keep their order: only its columns move
    out_edge = next(e for e in topo["edges"] if e.get("dst") == topo["output"])
    kept_rows = sorted(b.masks[out_edge["param"]].sum(axis=1).tolist())
    assert res.ticket.masks[out_edge["param"]].sum(axis=1).tolist() == b.masks[out_edge["param"]].sum(axis=1).tolist()
    assert sorted(res.ticket.masks[out_edge["param"]].sum(axis=1).tolist()) == kept_rows


def test_mask_alignment_never_lowers_the_overlap_and_stops():
    """Aligning by masks is coordinate ascent on |A and B'|: never lower than before, strictly higher
    on independent tickets (their hidden units' masks are not in their best order by chance), and
    B' is B relabelled: each hidden unit keeps its own row and column counts, only moved."""
    shapes, topo = CASES["mlp"]
    for seed in range(5):
        a, b = make_ticket(shapes, topo, seed), make_ticket(shapes, topo, 50 + seed)
        res = align(a, b, "masks", seed=seed)
        before = sum(int((a.masks[n] & b.masks[n]).sum()) for n in shapes)
        after = sum(int((a.masks[n] & res.ticket.masks[n]).sum()) for n in shapes)
        assert after > before and res.sweeps < align_module.MAX_SWEEPS
        h1, h2 = res.perms["t1"], res.perms["t2"]  # the two hidden tensors' permutations
        assert sorted(h1.tolist()) == list(range(24)) and not np.array_equal(h1, np.arange(24))
        fc1, fc2, fc3 = (res.ticket.masks[f"fc{i}.weight"] for i in (1, 2, 3))
        bm = b.masks
        # per-row and per-column sums move with their unit: fc1's rows and fc2's columns by h1,
        # fc2's rows and fc3's columns by h2, fc1's columns (the input) and fc3's rows (the output) not at all
        assert np.array_equal(fc1.sum(axis=1), bm["fc1.weight"].sum(axis=1)[h1])
        assert np.array_equal(fc1.sum(axis=0), bm["fc1.weight"].sum(axis=0))
        assert np.array_equal(fc2.sum(axis=1), bm["fc2.weight"].sum(axis=1)[h2])
        assert np.array_equal(fc2.sum(axis=0), bm["fc2.weight"].sum(axis=0)[h1])
        assert np.array_equal(fc3.sum(axis=1), bm["fc3.weight"].sum(axis=1))
        assert np.array_equal(fc3.sum(axis=0), bm["fc3.weight"].sum(axis=0)[h2])
        assert np.array_equal(fc2, bm["fc2.weight"][h2][:, h1])


def test_match_units_hand_case():
    """Two hidden units swapped: unit 0 of B is A's unit 1 and vice versa."""
    topo = {"tensors": {"in": 3, "h": 2, "out": 1}, "input": "in", "output": "out",
            "edges": [{"param": "w1", "src": "in", "dst": "h"}, {"param": "w2", "src": "h", "dst": "out"}]}
    a = {"w1": np.array([[1, 0, 0], [0, 1, 1]], float), "w2": np.array([[1, 0]], float)}
    b = {"w1": np.array([[0, 1, 1], [1, 0, 0]], float), "w2": np.array([[0, 1]], float)}
    perms, sweeps = match_units(a, b, topo)
    assert perms["h"].tolist() == [1, 0] and perms["in"].tolist() == [0, 1, 2] and sweeps == 1


# -------------------------------------------------------------------- same function (torch)
def test_aligned_mlp_computes_the_same_function():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    shapes, topo = CASES["mlp"]
    a, b = make_ticket(shapes, topo, 3), make_ticket(shapes, topo, 4)
    res = align(a, b, "weights")
    rng = np.random.default_rng(0)
    state = {}
    for n in shapes:  # the network of B: its final weights and some biases, in module order
        state[n] = b.weights["final"][n]
        state[n.replace("weight", "bias")] = rng.standard_normal(shapes[n][0])
    aligned = permute_state(state, res.perms, topo)
    for n in shapes:
        assert np.array_equal(aligned[n], res.ticket.weights["final"][n])
    assert any(not np.array_equal(aligned[n], state[n]) for n in state)

    def forward(s, x):
        for i in (1, 2, 3):
            x = x @ torch.as_tensor(s[f"fc{i}.weight"]).T + torch.as_tensor(s[f"fc{i}.bias"])
            x = torch.relu(x) if i < 3 else x
        return x

    x = torch.as_tensor(rng.standard_normal((32, 16)))
    assert torch.allclose(forward(state, x), forward(aligned, x), rtol=1e-12, atol=1e-12)


def _conv_bn_net(torch, seed):
    """Conv-BN-ReLU x2, then a linear layer (the functional :func:`_forward` below), with running
    statistics that are not the defaults; and its input batch."""
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 5))
    x = torch.randn(16, 3, 8, 8)
    net.train()
    net(x)
    net.eval()
    return net, x


def test_aligned_conv_bn_network_computes_the_same_function():
    torch = pytest.importorskip("torch")
    net, x = _conv_bn_net(torch, 0)
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    weights = {k: state[k] for k in ("0.weight", "3.weight", "7.weight")}
    topo = chain_topology({k: np.ones(v.shape, bool) for k, v in weights.items()})
    perms = random_perms(topo, 7)
    permuted = permute_state(state, perms, topo)
    assert not np.array_equal(permuted["1.running_mean"], state["1.running_mean"])
    with torch.no_grad():
        ref = net(x)
    assert torch.allclose(_forward(state, x, torch), ref, rtol=1e-5, atol=1e-6)  # the reference is the net
    assert torch.allclose(_forward(permuted, x, torch), ref, rtol=1e-5, atol=1e-6)
    # and aligning the permuted masks back recovers the original exactly
    t = Ticket(masks={k: np.abs(v) > 0.1 for k, v in weights.items()}, provenance={"topology": topo})
    res = align(t, permute_ticket(t, perms, topo), "masks")
    assert all((res.ticket.masks[k] == t.masks[k]).all() for k in weights)


def test_permute_ticket_moves_a_trained_state_snapshot_with_its_layers():
    """A ``final`` snapshot holding the whole trained state (retraining.final_snapshot: biases,
    batch norm) is relabelled consistently: the relabelled ticket's network is the same function."""
    torch = pytest.importorskip("torch")

    from ticketlab.retraining import final_snapshot

    net, x = _conv_bn_net(torch, 1)
    names = ("0.weight", "3.weight", "7.weight")
    masks = {k: torch.rand_like(net.state_dict()[k]) < 0.7 for k in names}
    snap = final_snapshot(net, masks)
    assert list(snap) == list(net.state_dict())  # module order: what lets biases follow their layer
    topo = chain_topology({k: np.ones(tuple(v.shape), bool) for k, v in masks.items()})
    t = Ticket(masks={k: m.numpy() for k, m in masks.items()}, weights={"final": snap}, provenance={"topology": topo})
    perms = random_perms(topo, 3)
    moved = permute_ticket(t, perms, topo).weights["final"]
    assert not np.array_equal(moved["1.running_var"], snap["1.running_var"])
    with torch.no_grad():
        assert torch.allclose(_forward(moved, x, torch), _forward(snap, x, torch), rtol=1e-5, atol=1e-6)


def _forward(s, x, torch):
    """The conv-bn net of the test above as functional torch calls on a state dict."""
    import torch.nn.functional as F

    def t(k):
        return torch.as_tensor(s[k])

    def bn(h, p):
        return F.batch_norm(h, t(f"{p}.running_mean"), t(f"{p}.running_var"), t(f"{p}.weight"), t(f"{p}.bias"),
                            training=False)

    with torch.no_grad():
        h = torch.relu(bn(F.conv2d(x, t("0.weight"), t("0.bias"), padding=1), "1"))
        h = torch.relu(bn(F.conv2d(h, t("3.weight"), t("3.bias"), padding=1, stride=2), "4"))
        return F.linear(h.flatten(1), t("7.weight"), t("7.bias"))


# --------------------------------------------------------------------------- records
def test_compare_align_records_and_aligned_null():
    shapes, topo = CASES["residual"]
    a = make_ticket(shapes, topo, 5)
    b = permute_ticket(a, random_perms(topo, 9), topo)
    c = make_ticket(shapes, topo, 6)
    recs = compare([a, b, c], "overlap", per_layer=True, align="masks", null_samples=6, seed=1)
    validate_records(json.loads(json.dumps(recs, allow_nan=False)))
    jac = {(r["a"], r["b"], r["layer"]): r for r in recs if r["metric"] == "jaccard"}
    control = jac["ticket0", "ticket1", "__total__"]
    assert control["value"] == 1.0 and control["p_aligned"] == pytest.approx(1 / 7)
    assert control["expected_aligned"] < 0.5 and control["sd_aligned"] > 0
    assert "aligned to 'ticket0' by masks" in control["note"]
    assert {"expected_aligned", "sd_aligned", "p_aligned"} <= set(jac["ticket0", "ticket2", "conv2.weight"])
    kappa = next(r for r in recs if r["metric"] == "kappa")
    assert "lift_aligned" not in kappa and "expected_aligned" in kappa
    assert recs == compare([a, b, c], "overlap", per_layer=True, align="masks", null_samples=6, seed=1)
    plain = compare([a, b], ["jaccard"])
    assert not any(k.endswith("_aligned") for r in plain for k in r)


def _null_counts_by_hand(a, b, by, samples, seed, topo):
    """The aligned null re-derived from its parts: the seed stream (seed, 14), A's then B's random
    masks per sample (``random_masks``), aligned with :func:`align` as real tickets (with A's and
    B's own snapshots when ``by="weights"``), counted. Also the counts of the same masks unaligned."""
    from ticketlab.metrics.align import random_masks

    rng = np.random.default_rng(np.random.SeedSequence([seed, 14]))
    aligned, plain = [], []
    for _ in range(samples):
        ma, mb = random_masks(a, rng), random_masks(b, rng)
        ta = Ticket(masks=ma, provenance={"topology": topo}, weights={"final": a.weights["final"]})
        tb = Ticket(masks=mb, provenance={"topology": topo}, weights={"final": b.weights["final"]})
        moved = align(ta, tb, by, seed=seed).ticket.masks
        aligned.append([int((ma[n] & moved[n]).sum()) for n in a.masks])
        plain.append([int((ma[n] & mb[n]).sum()) for n in a.masks])
    return np.array(aligned), np.array(plain)


@pytest.mark.parametrize("by", ["masks", "weights"])
def test_aligned_null_equals_its_counts_re_derived_by_hand(by):
    """The aligned null's counts are those of random masks with the tickets' layer counts *after
    alignment*: equal, sample by sample, to the counts re-derived from random_masks and align();
    above the same masks' unaligned counts in total and in most samples (aligning random masks
    finds overlap: the null is not the hypergeometric one); and the records' expected_aligned,
    sd_aligned and p_aligned are the mean, sd and add-one p of those counts."""
    shapes, topo = CASES["residual"]
    a = make_ticket(shapes, topo, 5)
    b = make_ticket(shapes, topo, 6)
    samples, seed = 12, 3
    want, plain = _null_counts_by_hand(a, b, by, samples, seed, topo)
    got = align_module.aligned_null_counts(a, b, by, samples, seed)
    assert got.shape == (samples, len(shapes)) and np.array_equal(got, want)
    # (not sample by sample: the descent starts from the forward pass, not from the identity, so a
    # sample can end a little below its unaligned overlap; on 12 samples, most end well above it)
    assert want.sum() > plain.sum() and (want.sum(axis=1) > plain.sum(axis=1)).sum() >= samples // 2
    recs = compare([a, b], ["jaccard", "intersection"], per_layer=True, align=by, null_samples=samples, seed=seed)
    n = np.array([a.masks[k].size for k in shapes])
    ka, kb = (np.array([t.masks[k].sum() for k in shapes]) for t in (a, b))
    for layer, i in (*((k, [j]) for j, k in enumerate(shapes)), ("__total__", list(range(len(shapes))))):
        x = want[:, i].sum(axis=1)
        jac = x / (ka[i].sum() + kb[i].sum() - x)
        rj = next(r for r in recs if r["metric"] == "jaccard" and r["layer"] == layer)
        ri = next(r for r in recs if r["metric"] == "intersection" and r["layer"] == layer)
        assert rj["expected_aligned"] == pytest.approx(jac.mean(), rel=1e-12)
        assert rj["sd_aligned"] == pytest.approx(jac.std(ddof=1), rel=1e-12)
        assert ri["expected_aligned"] == pytest.approx(x.mean(), rel=1e-12)
        assert rj["p_aligned"] == ri["p_aligned"] == pytest.approx((1 + (x >= ri["value"]).sum()) / (samples + 1))
    if by == "weights":  # matching weights gains less overlap: the bound below is for masks
        return
    # with 40 samples the aligned null's Jaccard lies clearly above the unaligned chance value
    # (hypergeometric: E[X] = ka kb / n per layer), by more than 4 of its standard errors
    total = next(r for r in compare([a, b], ["jaccard"], align=by, null_samples=40, seed=seed)
                 if r["layer"] == "__total__")
    chance_x = float((ka * kb / n).sum())
    chance = chance_x / (ka.sum() + kb.sum() - chance_x)
    assert total["expected_aligned"] > chance + 4 * total["sd_aligned"] / np.sqrt(40)


def test_align_errors():
    shapes, topo = CASES["mlp"]
    a = make_ticket(shapes, topo, 1)
    bare = Ticket(masks=a.masks, provenance=a.provenance)
    with pytest.raises(ConfigError, match="unknown alignment"):
        compare([a, a], ["jaccard"], align="weight")
    with pytest.raises(ConfigError, match="needs 'final' or 'init' weights"):
        compare([a, bare], ["jaccard"], align="weights")


def test_cli_align(tmp_path):
    from ticketlab.cli.main import cli
    from ticketlab.fileformat import save

    shapes, topo = CASES["mlp"]
    a = make_ticket(shapes, topo, 1)
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    save(a, paths[0])
    save(permute_ticket(a, random_perms(topo, 3), topo), paths[1])
    runner = CliRunner()
    for by in ("masks", "weights"):
        res = runner.invoke(cli, ["compare", *map(str, paths), "--metric", "jaccard", "--align", by,
                                  "--null-samples", "3", "--json"])
        assert res.exit_code == 0, res.output
        rec = json.loads(res.output)[0]
        assert rec["value"] == 1.0 and rec["p_aligned"] == pytest.approx(0.25)
    res = runner.invoke(cli, ["compare", *map(str, paths), "--metric", "jaccard", "--align", "masks",
                              "--null-samples", "3"])
    assert res.exit_code == 0 and "p_aligned" in res.output and "aligned the same" in res.output


# ------------------------------------------------------------ exact and incremental similarity
def test_packed_rows_give_exact_counts_even_at_the_bound():
    """_pack_rows puts 53 // bits counts in one float64; the products come back exactly, also when
    every count is the largest a row can have (all ones) and the row count is not a multiple."""
    from ticketlab.metrics.align import _pack_rows, _unpack_rows

    rng = np.random.default_rng(0)
    for rows, m, k, dens in ((7, 5, 3, 0.5), (13, 64, 9, 1.0), (3, 1, 1, 1.0), (11, 300, 1, 0.2)):
        x, y = rng.random((rows, m, k)) < dens, rng.random((6, m * k)) < dens
        packed, bits, slots = _pack_rows(x)
        most = int(x.reshape(rows, -1).sum(axis=1).max())
        assert bits * slots <= 53 and packed.shape[0] == -(-rows // slots) and (1 << bits) > most
        assert (1 << (bits - 1)) <= max(most, 1)  # no more bits than the fullest row needs
        got = _unpack_rows(packed.reshape(packed.shape[0], -1) @ y.T.astype(np.float64), rows, bits, slots)
        assert np.array_equal(got, x.reshape(rows, -1).astype(np.int64) @ y.T.astype(np.int64))
    full = np.ones((13, 64, 9), bool)  # 576 per count: 10 bits, 5 slots, carries would show
    packed, bits, slots = _pack_rows(full)
    assert (bits, slots) == (10, 5)
    assert (_unpack_rows(packed.reshape(3, -1) @ np.ones((2, 576)).T, 13, bits, slots) == 576).all()
    # a sparse x: fewer bits, more slots; against all-ones rows every count is its row's sum, and
    # the fullest row's sum (63: 6 bits, 8 slots) is the largest count any row can reach
    sparse = np.zeros((17, 64, 9), bool)
    for i in range(17):
        sparse[i].reshape(-1)[rng.choice(576, 63 - i, replace=False)] = True
    packed, bits, slots = _pack_rows(sparse)
    assert (bits, slots) == (6, 8)
    got = _unpack_rows(packed.reshape(packed.shape[0], -1) @ np.ones((2, 576)).T, 17, bits, slots)
    assert (got == (63 - np.arange(17))[:, None]).all()


def _reference_match(a, b, topo, seed=0, max_sweeps=align_module.MAX_SWEEPS):
    """Weight matching as first written (before the cached, integer similarities): every
    similarity from scratch in float64, every group solved in every sweep."""
    from scipy.optimize import linear_sum_assignment

    of, members, fixed = unit_groups(topo)
    units = topo["tensors"]
    sizes = [int(units[m[0]]) for m in members]
    perm = [np.arange(n) for n in sizes]
    views = []
    for e in align_module._param_edges(topo):
        n_dst, n_src = int(units[e["dst"]]), int(units[e["src"]])
        xa, xb = (np.asarray(x[e["param"]], dtype=np.float64).reshape(n_dst, n_src, -1) for x in (a, b))
        views.append((of[e["src"]], of[e["dst"]], xa, xb))
    free = [g for g in range(len(members)) if g not in fixed and sizes[g] > 1]

    def similarity(g, outgoing=True, sources=None):
        s = np.zeros((sizes[g], sizes[g]))
        for src, dst, xa, xb in views:
            if dst == g and (sources is None or src in sources):
                s += xa.reshape(xa.shape[0], -1) @ xb[:, perm[src]].reshape(xb.shape[0], -1).T
            if src == g and outgoing:
                s += (xa.transpose(1, 0, 2).reshape(xa.shape[1], -1)
                      @ xb[perm[dst]].transpose(1, 0, 2).reshape(xb.shape[1], -1).T)
        return s

    first = {}
    for i, t in enumerate(align_module._topological(topo)):
        first.setdefault(of[t], i)
    done = set(fixed)
    for g in sorted(free, key=first.__getitem__):
        perm[g] = linear_sum_assignment(similarity(g, outgoing=False, sources=done), maximize=True)[1]
        done.add(g)
    rng = np.random.default_rng(seed)
    for sweeps in range(1, max_sweeps + 1):
        changed = False
        for g in rng.permutation(free).tolist():
            s = similarity(g)
            cols = linear_sum_assignment(s, maximize=True)[1]
            idx = np.arange(sizes[g])
            if not np.array_equal(cols, perm[g]) and s[idx, cols].sum() > s[idx, perm[g]].sum():
                perm[g], changed = cols, True
        if not changed:
            break
    return {t: perm[of[t]] for t in units}, sweeps


@pytest.mark.parametrize("case", sorted(CASES))
def test_cached_integer_matching_equals_the_from_scratch_reference(case):
    """The cached terms, the skipped solves and the packed integer counts change nothing: boolean
    masks, the same masks as floats and weights give the reference's permutations and sweeps.
    (The residual case has a parameter edge inside one group: conv2 joins t1 and t2.)"""
    shapes, topo = CASES[case]
    changed = 0
    for seed in range(8):
        a, b = make_ticket(shapes, topo, seed, 0.4), make_ticket(shapes, topo, 30 + seed, 0.4)
        for xa, xb in ((a.masks, b.masks), ({n: m.astype(float) for n, m in a.masks.items()},
                                            {n: m.astype(float) for n, m in b.masks.items()}),
                       (a.weights["final"], b.weights["final"])):
            want, want_sweeps = _reference_match(xa, xb, topo, seed=seed)
            got, sweeps = match_units(xa, xb, topo, seed=seed)
            assert sweeps == want_sweeps and all(np.array_equal(got[t], want[t]) for t in want), (case, seed)
            changed += sweeps > 1  # the descent really moved after the forward pass
    assert changed > 0


def test_edge_terms_follow_the_permutation_they_are_given():
    """A cached term is reused only for the version it was computed for, and every term equals
    the from-scratch sum of the module docstring (integer counts for masks)."""
    rng = np.random.default_rng(3)
    xa, xb = rng.random((5, 4, 3)) < 0.5, rng.random((5, 4, 3)) < 0.5
    edge = align_module._Edge(0, 1, xa, xb, exact=True)
    p, q = rng.permutation(4), rng.permutation(5)
    fresh = np.einsum("ick,jck->ij", xa.astype(int), xb[:, p].astype(int))
    assert np.array_equal(edge.term("in", p, 7), fresh)
    assert np.array_equal(edge.term("in", np.arange(4), 7), fresh)  # same version: the cached term
    assert np.array_equal(edge.term("in", np.arange(4), 8), np.einsum("ick,jck->ij", xa.astype(int), xb.astype(int)))
    assert np.array_equal(edge.term("out", q, 0), np.einsum("ick,idk->cd", xa.astype(int), xb[q].astype(int)))
    weights = align_module._Edge(0, 1, xa * 1.5, xb - 0.25, exact=False)
    assert np.allclose(weights.term("out", q, 0), np.einsum("ick,idk->cd", xa * 1.5, (xb - 0.25)[q]))


def test_random_masks_keep_every_layer_count_and_are_uniform():
    """The aligned null's random masks: exact per-layer counts (below and above half kept), the
    same for the same seed, and every position equally likely (chi-square on many draws)."""
    from ticketlab.metrics.align import random_masks

    t = Ticket(masks={"a": np.arange(12).reshape(3, 4) < 3, "b": np.arange(10) < 8, "c": np.zeros(5, bool)})
    draws = [random_masks(t, np.random.default_rng(np.random.SeedSequence([s, 14]))) for s in range(3000)]
    for d in draws[:50]:
        assert [int(d[n].sum()) for n in t.masks] == [3, 8, 0]
        assert all(d[n].shape == t.masks[n].shape and d[n].dtype == bool for n in t.masks)
    again = random_masks(t, np.random.default_rng(np.random.SeedSequence([0, 14])))
    assert all(np.array_equal(again[n], draws[0][n]) for n in t.masks)
    from scipy.stats import chisquare

    for n, k in (("a", 3), ("b", 8)):
        freq = np.sum([d[n].reshape(-1) for d in draws], axis=0)
        expected = np.full(freq.size, len(draws) * k / freq.size)
        assert chisquare(freq, expected).pvalue > 1e-4
