"""Pairwise matrices, clustering, embedding and heatmaps over many tickets."""

from __future__ import annotations

import numpy as np
import pytest

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.metrics import compare, pairwise_matrix
from ticketlab.metrics import many as many_mod
from ticketlab.ticket import Ticket


def family(seed: int = 0) -> list[Ticket]:
    """Two clusters of three tickets each: small perturbations of two base masks."""
    rng = np.random.default_rng(seed)
    shapes = [(16, 3, 3, 3), (10, 16 * 9), (7, 10)]  # odd sizes: packing pads every layer
    out = []
    for base in range(2):
        masks = {f"l{i}": rng.random(s) < 0.3 for i, s in enumerate(shapes)}
        for _ in range(3):
            out.append(Ticket(masks={n: m ^ (rng.random(m.shape) < 0.03) for n, m in masks.items()}))
    return out


@pytest.mark.parametrize("metric", ["jaccard", "dice", "hamming", "rel_intersection", "kappa", "intersection"])
@pytest.mark.parametrize("layer", ["__total__", "__mean__", "__wmean__", "l1"])
def test_popcount_matrix_equals_compare(metric, layer):
    ts = family()
    mat = pairwise_matrix(ts, metric, layer=layer)
    recs = compare(ts, [metric], per_layer=True)
    for r in recs:
        if r["layer"] == layer:
            i, j = int(r["a"][6:]), int(r["b"][6:])
            assert mat.values[i, j] == pytest.approx(r["value"], rel=1e-12)
    if metric == "rel_intersection":
        assert not np.allclose(mat.values, mat.values.T)
    else:
        assert np.allclose(mat.values, mat.values.T)


def test_popcount_fallback_without_bitwise_count(monkeypatch):
    ts = family(1)
    want = pairwise_matrix(ts, "jaccard").values
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(pairwise_matrix(ts, "jaccard").values, want)


def test_generic_path_for_other_metrics():
    ts = family(2)[:4]
    mat = pairwise_matrix(ts, "unit_jaccard")
    recs = compare(ts, ["unit_jaccard"])
    for r in recs:
        assert mat.values[int(r["a"][6:]), int(r["b"][6:])] == pytest.approx(r["value"])
    assert np.allclose(np.diag(mat.values), 1.0)


def test_clustering_embedding_and_exports(tmp_path):
    ts = family(3)
    mat = pairwise_matrix(ts, "jaccard", labels=[f"m{i}" for i in range(6)])
    clusters = mat.clusters(2)
    assert len(set(clusters[:3])) == 1 and len(set(clusters[3:])) == 1 and clusters[0] != clusters[3]
    order = mat.order()
    assert sorted(order) == list(range(6)) and {order[0], order[1], order[2]} in ({0, 1, 2}, {3, 4, 5})
    emb = mat.embedding(seed=0)
    assert emb.shape == (6, 2) and np.array_equal(emb, mat.embedding(seed=0))
    near = np.linalg.norm(emb[0] - emb[1])
    far = np.linalg.norm(emb[0] - emb[4])
    assert near < far
    csv = mat.to_csv().splitlines()
    assert csv[0] == ",m0,m1,m2,m3,m4,m5" and csv[1].startswith("m0,1.0,")
    assert len(mat.to_records()) == 36
    png = tmp_path / "heat.png"
    mat.plot(png)
    assert png.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["heat.png"]


def test_matrix_errors():
    ts = family()
    with pytest.raises(ConfigError, match="describes one ticket"):
        pairwise_matrix(ts, "density")
    with pytest.raises(ConfigError, match="unknown layer 'nope'"):
        pairwise_matrix(ts, "jaccard", layer="nope")
    with pytest.raises(ConfigError, match="cannot be clustered"):
        pairwise_matrix(ts, "intersection").order()
    other = Ticket(masks={"l0": np.ones((16, 3, 3, 3), bool), "x": np.ones(3, bool)})
    with pytest.raises(IncompatibleError, match="differ at parameter 2"):
        pairwise_matrix([*ts, other], "jaccard", labels=[*"abcdef", "g"])
    mat = pairwise_matrix([*ts, other], "jaccard", common_only=True)
    assert mat.values.shape == (7, 7)


def test_pack_pads_layers_to_words():
    t = Ticket(masks={"a": np.ones(3, bool), "b": np.ones(70, bool)})
    words, offsets = many_mod._pack(t)
    assert offsets.tolist() == [0, 1] and words.size == 3
    assert int(np.unpackbits(words.view(np.uint8)).sum()) == 73


def _three() -> list[Ticket]:
    """Hand-checked: two layers, u (n=4) and v (n=6)."""
    def t(u, v):
        return Ticket(masks={"u": np.array(u, bool), "v": np.array(v, bool)})

    return [t([1, 1, 0, 0], [1, 1, 1, 0, 0, 0]), t([1, 0, 1, 0], [1, 1, 1, 0, 0, 0]), t([0, 0, 1, 1], [0, 0, 0, 1, 1, 1])]


def test_lift_z_and_kappa_matrices_by_hand():
    # per-layer null: E X = a b / n, Var X = a b (n-a)(n-b) / (n^2 (n-1)), summed over the layers
    # u: E = 2*2/4 = 1, Var = 16/48 = 1/3;  v: E = 3*3/6 = 1.5, Var = 81/180 = 0.45 (every pair)
    e, sd = 2.5, np.sqrt(1 / 3 + 0.45)
    x = {(0, 1): 1 + 3, (0, 2): 0 + 0, (1, 2): 1 + 0}  # |A and B| per pair, u + v
    lift, z, kappa = (pairwise_matrix(_three(), m) for m in ("lift", "z", "kappa"))
    for (i, j), xij in x.items():
        for mat in (lift, z):
            assert mat.values[i, j] == mat.values[j, i]
        assert lift.values[i, j] == pytest.approx(xij / e, rel=1e-12)  # 1.6, 0, 0.4
        assert z.values[i, j] == pytest.approx((xij - e) / sd, rel=1e-12)  # 1.6948, -2.8247, -1.6948
    assert np.isnan(np.diag(lift.values)).all() and np.isnan(np.diag(z.values)).all()
    # kappa on the pooled counts (n=10): p_o = (n - a - b + 2 ab) / n, p_e = (a b + (n-a)(n-b)) / n^2
    # (0, 1): a = b = 5, ab = 4: p_o = 0.8, p_e = 0.5 -> 0.6; (0, 2): ab = 0 -> -1; (1, 2): ab = 1 -> -0.6
    assert kappa.values[0, 1] == pytest.approx(0.6) and kappa.values[0, 2] == pytest.approx(-1.0)
    assert kappa.values[1, 2] == pytest.approx(-0.6) and np.allclose(np.diag(kappa.values), 1.0)
    one = pairwise_matrix(_three(), "lift", layer="u")  # layer u alone: X = 1 = E X for (0, 1)
    assert one.values[0, 1] == pytest.approx(1.0) and pairwise_matrix(_three(), "z", layer="u").values[0, 1] == 0
    assert (lift.orientation, lift.center, z.center) == (None, 1.0, 0.0)
    recs = lift.to_records()
    assert recs[0] == {"a": "ticket0", "b": "ticket0", "metric": "lift", "layer": "__total__", "value": None}


def test_lift_and_z_matrices_equal_the_records():
    ts = family(4)
    lift, z = pairwise_matrix(ts, "lift"), pairwise_matrix(ts, "z")
    for r in compare(ts, ["intersection", "hamming"]):
        i, j = int(r["a"][6:]), int(r["b"][6:])
        if r["metric"] == "intersection":
            assert lift.values[i, j] == pytest.approx(r["lift"], rel=1e-12)
            assert z.values[i, j] == pytest.approx(r["z"], rel=1e-12)
        else:  # a distance: its z has the other sign
            assert z.values[i, j] == pytest.approx(-r["z"], rel=1e-12)


def test_lift_matrix_errors_and_heatmap(tmp_path):
    with pytest.raises(ConfigError, match="whole network"):
        pairwise_matrix(_three(), "lift", layer="__mean__")
    from ticketlab.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="or the overlap count against chance: lift, z"):
        pairwise_matrix(_three(), "lfit")
    fig = pairwise_matrix(family(5), "lift").plot(tmp_path / "lift.png")
    assert (tmp_path / "lift.png").read_bytes()[:4] == b"\x89PNG"
    image = fig.axes[0].images[0]
    lo, hi = image.get_clim()
    assert image.get_cmap().name == "RdBu_r" and np.isclose(lo * hi, 1.0)  # centred on chance (a log scale)
    assert fig.axes[-1].get_ylabel() == "lift"  # the colour bar says what it shows
