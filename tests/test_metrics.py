"""Overlap, chance, units, sparsity and sign metrics: hand-checked exact cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial import distance

from ticketlab.errors import ConfigError
from ticketlab.metrics import _dist, compare, get_metric, pair_counts
from ticketlab.metrics.base import Counts
from ticketlab.metrics.chance import null_stats
from ticketlab.metrics.overlap import f_kappa
from ticketlab.metrics.sparsity import allocation_shares, js_distance
from ticketlab.metrics.units import p_empty_kernel
from ticketlab.ticket import Ticket

TOTAL = "__total__"


def ticket(*masks: np.ndarray, **kw) -> Ticket:
    return Ticket(masks={f"l{i}": np.asarray(m, bool) for i, m in enumerate(masks)}, **kw)


def one(records: list[dict], metric: str, layer: str = TOTAL, a: str | None = None) -> dict:
    hits = [r for r in records if r["metric"] == metric and r["layer"] == layer and (a is None or r["a"] == a)]
    assert len(hits) == 1, hits
    return hits[0]


# ----------------------------------------------------------------------------- overlap
def test_nested_masks_jaccard_is_density_ratio():
    rng = np.random.default_rng(0)
    n, a_keep, b_keep = 10_000, 3_000, 1_200
    order = rng.permutation(n)
    big = np.zeros(n, bool)
    big[order[:a_keep]] = True
    small = np.zeros(n, bool)
    small[order[:b_keep]] = True  # subset of big
    recs = compare([ticket(big), ticket(small)], ["jaccard", "overlap_coef", "rel_intersection", "dice"])
    d1, d2 = a_keep / n, b_keep / n
    assert one(recs, "jaccard")["value"] == pytest.approx(d2 / d1, abs=1e-15)
    assert one(recs, "overlap_coef")["value"] == 1.0
    assert one(recs, "rel_intersection", a="ticket0")["value"] == pytest.approx(0.4)  # |A and B| / |A|
    assert one(recs, "rel_intersection", a="ticket1")["value"] == 1.0
    assert one(recs, "dice")["value"] == pytest.approx(2 * 1200 / 4200)


def test_identical_masks():
    m = np.array([[1, 0, 1], [0, 0, 1]], bool)
    recs = compare([ticket(m), ticket(m.copy())], ["jaccard", "dice", "overlap_coef", "hamming", "kappa"])
    assert [r["value"] for r in recs] == [1.0, 1.0, 1.0, 0.0, 1.0]


def test_disjoint_masks():
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    recs = compare([ticket(a), ticket(~a)], ["intersection", "jaccard", "dice", "hamming", "kappa"], per_layer=True)
    # kappa: p_o = 0, p_e = (4*4 + 4*4) / 64 = 0.5 -> (0 - 0.5) / (1 - 0.5) = -1
    assert [r["value"] for r in recs if r["layer"] == TOTAL] == [0.0, 0.0, 0.0, 1.0, -1.0]
    # chance: X ~ Hypergeom(8, 4, 4); P(X >= 0) = 1, P(X <= 0) = C(4,4) / C(8,4) = 1/70
    j = one(recs, "jaccard", "l0")
    assert j["p"] == 1.0 and j["p_two_sided"] == pytest.approx(2 / 70)


def test_per_layer_values_and_summaries():
    a = ticket([1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0])
    b = ticket([1, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0, 0])
    recs = compare([a, b], ["jaccard"], per_layer=True)
    assert [r["layer"] for r in recs] == [TOTAL, "__mean__", "__wmean__", "l0", "l1"]
    by = {r["layer"]: r["value"] for r in recs}
    assert by["l0"] == pytest.approx(1 / 3) and by["l1"] == 1.0
    assert by[TOTAL] == pytest.approx(2 / 4)  # pooled: |A and B| = 2, |A or B| = 4
    assert by["__mean__"] == pytest.approx((1 / 3 + 1) / 2)
    assert by["__wmean__"] == pytest.approx((4 / 3 + 8) / 12)


def test_empty_union_is_null_not_nan():
    z = np.zeros(4, bool)
    rec = compare([ticket(z), ticket(z)], ["jaccard"])[0]
    assert rec["value"] is None


# ----------------------------------------------------------------------------- chance
def _enumerate(n: int, a: int, b: int) -> list[int]:
    """|A and B| for A = first a items and every b-subset B (brute force)."""
    return [sum(1 for i in sub if i < a) for sub in itertools.combinations(range(n), b)]


def test_hypergeometric_moments_match_enumeration():
    xs = np.array(_enumerate(6, 3, 2), float)  # 15 subsets
    mean, var = _dist.hypergeom_moments(6, 3, 2)
    assert float(mean) == pytest.approx(xs.mean()) == pytest.approx(1.0)
    assert float(var) == pytest.approx(xs.var()) == pytest.approx(0.4)
    # exact tails and expected Jaccard from enumeration
    c = Counts(("w",), np.array([6]), np.array([3]), np.array([2]), np.array([2]))
    s = null_stats(c)
    assert s.p_upper[0] == pytest.approx(np.mean(xs >= 2)) == pytest.approx(3 / 15)
    assert s.p_lower[0] == pytest.approx(1.0)
    assert s.e_jaccard[0] == pytest.approx(np.mean(xs / (5 - xs)))


@pytest.mark.parametrize("n,a,b", [(7, 3, 4), (9, 5, 5), (10, 1, 9), (8, 0, 3)])
def test_hypergeometric_against_enumeration_more(n, a, b):
    xs = np.array(_enumerate(n, a, b), float)
    for x in range(0, min(a, b) + 2):
        assert _dist.hypergeom_sf(x, n, a, b) == pytest.approx(np.mean(xs >= x), abs=1e-12)
        assert _dist.hypergeom_cdf(x, n, a, b) == pytest.approx(np.mean(xs <= x), abs=1e-12)


# the tails against scipy at the window edges, in the far tails and monotone: test_metrics_exact.py


def test_random_masks_jaccard_within_four_sd_of_chance():
    rng = np.random.default_rng(1234)
    a = ticket(rng.random((300, 200)) < 0.2, rng.random((50, 400)) < 0.05)
    b = ticket(rng.random((300, 200)) < 0.3, rng.random((50, 400)) < 0.5)
    recs = compare([a, b], ["jaccard", "intersection"], per_layer=True)
    for rec in recs:
        if rec["layer"] in ("__mean__", "__wmean__"):
            continue
        assert abs(rec["z"]) < 4, rec
    # delta-method sd of J around its expectation: sd_J ~ sd_X * s / (s - mu)^2
    c = pair_counts(a, b)
    s = null_stats(c)
    for i in range(2):
        sum_ab = c.a[i] + c.b[i]
        sd_j = math.sqrt(s.var[i]) * sum_ab / (sum_ab - s.mean[i]) ** 2
        assert abs(c.ab[i] / (sum_ab - c.ab[i]) - s.e_jaccard[i]) < 4 * sd_j


def test_per_layer_null_differs_from_global_null():
    # both tickets put all their weights into the small first layer: overlap there is forced
    # by the allocation, not by agreement, so only the global null finds it surprising
    rng = np.random.default_rng(0)
    small_a, small_b = rng.random(1000) < 0.5, rng.random(1000) < 0.5
    a, b = ticket(small_a, np.zeros(100_000, bool)), ticket(small_b, np.zeros(100_000, bool))
    rec = one(compare([a, b], ["intersection"]), "intersection")
    c = pair_counts(a, b)
    assert rec["expected"] == pytest.approx(float(np.sum(c.a * c.b / c.n)))  # sum of layer means
    assert rec["expected_global"] == pytest.approx(c.a.sum() * c.b.sum() / c.n.sum())
    assert abs(rec["z"]) < 4 and rec["lift"] == pytest.approx(1.0, abs=0.1)
    assert rec["lift_global"] > 50 and rec["p_global"] < 1e-100


def test_kappa_expected_is_zero_under_global_null():
    rng = np.random.default_rng(3)
    a, b = ticket(rng.random(5000) < 0.3), ticket(rng.random(5000) < 0.1)
    rec = compare([a, b], ["kappa"])[0]
    assert rec["expected_global"] == pytest.approx(0.0, abs=1e-12)
    assert "lift" not in rec
    assert f_kappa(10, 4, 4, 4) == pytest.approx(1.0)


def test_z_sign_follows_metric_direction():
    rng = np.random.default_rng(5)
    m = rng.random(2000) < 0.3
    b = m.copy()
    b[:100] = True  # heavy overlap
    recs = compare([ticket(m), ticket(b)], ["jaccard", "hamming"])
    assert one(recs, "jaccard")["z"] > 10 and one(recs, "hamming")["z"] < -10
    assert one(recs, "jaccard")["p"] == one(recs, "hamming")["p"] < 1e-10


# ----------------------------------------------------------------------------- units
def test_unit_and_kernel_overlap():
    a = np.zeros((2, 2, 1, 2), bool)
    a[0, 0, 0, 0] = a[0, 1, 0, 1] = True  # unit 0 alive (kernels (0,0), (0,1)); unit 1 empty
    b = np.zeros((2, 2, 1, 2), bool)
    b[0, 0, 0, 1] = b[1, 1, 0, 0] = True  # units 0, 1 alive; kernels (0,0), (1,1)
    recs = compare([ticket(a), ticket(b)], ["unit_jaccard", "kernel_jaccard", "jaccard"])
    assert one(recs, "unit_jaccard")["value"] == pytest.approx(1 / 2)
    assert one(recs, "kernel_jaccard")["value"] == pytest.approx(1 / 3)
    assert one(recs, "jaccard")["value"] == 0.0


def test_kernel_jaccard_without_convs_says_so():
    rec = compare([ticket(np.eye(3)), ticket(np.eye(3))], ["kernel_jaccard"])[0]
    assert rec["value"] is None and "no parameters" in rec["note"]


def test_empty_kernel_chance_by_enumeration():
    # layer of n = 6 weights in 3 kernels of k = 2, a = 2 kept: P(a given kernel empty) = C(4,2)/C(6,2)
    assert p_empty_kernel(6, 2, 2) == pytest.approx(6 / 15)
    subsets = list(itertools.combinations(range(6), 2))
    assert np.mean([not ({0, 1} & set(s)) for s in subsets]) == pytest.approx(6 / 15)
    # large layers: close to (1 - d)^(k*k)
    assert p_empty_kernel(1_000_000, 100_000, 9) == pytest.approx(0.9**9, rel=1e-4)
    m = np.zeros((1, 3, 1, 2), bool)
    m[0, 0] = True  # kernels: full, empty, empty
    rec = compare([ticket(m)], ["empty_kernels"])[0]
    assert rec["value"] == pytest.approx(2 / 3) and rec["expected"] == pytest.approx(6 / 15)
    assert rec["lift"] == pytest.approx((2 / 3) / (6 / 15))


# ----------------------------------------------------------------------------- sparsity
def test_density_allocation_and_profile_distances():
    a = ticket([1, 1, 0, 0], [1, 1])  # 2 + 2 kept: shares 0.5, 0.5
    b = ticket([1, 1, 1, 0], [0, 0])  # 3 + 0 kept: shares 1, 0
    assert allocation_shares(a) == {"l0": 0.5, "l1": 0.5}
    recs = compare([a, b], ["density", "allocation", "profile_l1", "profile_js"], per_layer=True)
    assert one(recs, "density", a="ticket0")["value"] == pytest.approx(4 / 6)
    assert one(recs, "density", "l0", a="ticket1")["value"] == 0.75
    assert one(recs, "allocation", "l1", a="ticket0")["value"] == 0.5
    assert not [r for r in recs if r["metric"] == "allocation" and r["layer"] == TOTAL]
    assert one(recs, "profile_l1")["value"] == pytest.approx(1.0)
    assert one(recs, "profile_l1", "l0")["value"] == pytest.approx(0.5)
    # JS by hand: M = (0.75, 0.25); KL(P||M) = 0.5 log2(2/3) + 0.5 log2(2); KL(Q||M) = log2(4/3)
    js = 0.5 * (0.5 * math.log2(2 / 3) + 0.5) + 0.5 * math.log2(4 / 3)
    assert one(recs, "profile_js")["value"] == pytest.approx(math.sqrt(js))
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.1, 0.3])
    assert js_distance(p, q) == pytest.approx(distance.jensenshannon(p, q, base=2))


def test_plot_profiles_writes_png(tmp_path):
    from ticketlab.metrics import plot_profiles

    a, b = ticket([1, 1, 0, 0], [1, 1]), ticket([1, 0, 0, 0], [1, 0])
    out = tmp_path / "profiles.png"
    plot_profiles([a, b], out, labels=["A", "B"], value="allocation")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["profiles.png"]


# ----------------------------------------------------------------------------- signs
def _signed(mask, init, final=None, **prov) -> Ticket:
    w = {"init": {"l0": np.asarray(init, float)}}
    if final is not None:
        w["final"] = {"l0": np.asarray(final, float)}
    return Ticket(masks={"l0": np.asarray(mask, bool)}, weights=w, provenance=prov)


def test_sign_preservation_within_a_ticket():
    t = _signed([1, 1, 1, 1, 0], [1, -1, 2, -2, 5], [3, 1, -1, -4, -5])
    recs = compare([t], ["sign_kept", "sign_flip"])
    assert [r["value"] for r in recs] == [0.5, 0.5]  # the pruned 5th weight does not count


def test_sign_agreement_shared_and_independent_init():
    init = np.array([1.0, -1.0, 2.0, -3.0, 0.5, 0.7])
    a = _signed([1, 1, 1, 1, 0, 1], init)
    b = _signed([1, 1, 1, 0, 1, 1], init.copy())
    rec = compare([a, b], ["sign_agree_init"])[0]
    assert rec["value"] == 1.0 and rec["expected"] == 1.0 and "identical init arrays" in rec["note"]
    assert "p" not in rec

    c = _signed([1, 1, 1, 0, 1, 1], np.array([1.0, 1.0, -2.0, 3.0, 0.5, 0.7]))
    rec = compare([a, c], ["sign_agree_init"])[0]
    # A and B = {0, 1, 2, 5}: signs agree at 0 and 5 -> 2 / 4; exact binomial test vs 1/2
    assert rec["value"] == 0.5 and rec["expected"] == 0.5 and "init arrays differ" in rec["note"]
    assert rec["p"] == pytest.approx(11 / 16) and rec["z"] == 0.0


def test_shared_init_from_provenance_when_no_arrays():
    m = np.ones(3, bool)
    a = Ticket(masks={"l0": m}, weights={"final": {"l0": np.array([1.0, -1, 1])}}, provenance={"seed": 3, "model": "x"})
    b = Ticket(masks={"l0": m}, weights={"final": {"l0": np.array([1.0, 1, 1])}}, provenance={"seed": 3, "model": "x"})
    rec = compare([a, b], ["sign_agree_final"])[0]
    assert rec["value"] == pytest.approx(2 / 3) and rec["expected"] == 1.0 and "provenance" in rec["note"]


def test_sign_metric_without_weights_is_a_clear_error():
    with pytest.raises(ConfigError, match="needs the 'init' weights, which ticket 'ticket0' does not store"):
        compare([ticket([1, 0]), ticket([1, 1])], ["sign_agree_init"])
    with pytest.raises(ConfigError, match="needs the 'init' weights"):
        compare([ticket([1, 0]), ticket([1, 1])], ["signs"])  # nothing of the group applies
    # picked by "all" it is skipped: no value, and a note saying what is missing
    recs = compare([ticket([1, 0]), ticket([1, 1])], "all")
    signs = [r for r in recs if r["metric"].startswith("sign")]
    assert recs and signs and all(r["value"] is None and "does not store" in r["note"] for r in signs)
    assert {r["metric"] for r in signs} == {"sign_kept", "sign_flip", "sign_agree_init", "sign_agree_final"}


def test_metric_objects_are_callable_directly():
    a, b = ticket([1, 1, 0, 0]), ticket([1, 0, 0, 0])
    assert get_metric("jaccard")(a, b)[TOTAL]["value"] == 0.5
    with pytest.raises(ConfigError, match="takes 2 ticket"):
        get_metric("jaccard")(a)
