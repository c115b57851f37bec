"""The degree-preserving null (ticketlab.metrics.degree, issue 14 section 2): exact degrees over
many seeds, same seed same samples, uniformity on an enumerable case, hand-checkable cases,
mixing with the number of rounds, and the records of ``compare(null="degree")`` and the CLI."""

from __future__ import annotations

import doctest
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

from ticketlab.errors import ConfigError
from ticketlab.metrics import compare, degree, validate_records
from ticketlab.metrics.degree import DegreeNull, curveball, degree_samples, layer_samples
from ticketlab.ticket import Ticket

TOTAL = "__total__"
DEGREE_FIELDS = ("expected_degree", "lift_degree", "p_degree")


def hetero(shape, density, rng, rows=None, cols=None):
    """A mask whose units have very unequal degrees (gamma propensities per row and column)."""
    k = int(np.prod(shape[1:]))
    r = rng.gamma(0.5, size=shape[0]) if rows is None else rows
    c = rng.gamma(0.5, size=k) if cols is None else cols
    p = np.outer(r, c)
    p = p / p.mean() * density
    return (rng.random(p.shape) < np.minimum(p, 1)).reshape(shape)


def degrees(m):
    b = m.reshape(m.shape[0], -1)
    return b.sum(axis=1).tolist(), b.sum(axis=0).tolist()


def test_docstring_examples():
    result = doctest.testmod(degree, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------------- exact degrees
SHAPES = [(7, 5), (5, 7), (1, 9), (9, 1), (2, 2), (6, 3, 3, 3), (16, 4, 1, 1), (3, 48), (11, 2, 2, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_degree_is_kept_over_many_seeds(shape):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        density = [0.0, 0.1, 0.5, 0.9, 1.0][seed % 5]
        m = rng.random(shape) < density
        before = m.copy()
        for rounds in (1, 3):
            out = curveball(m, rounds, np.random.default_rng(1000 + seed))
            assert np.array_equal(m, before), (shape, seed)  # the input is never changed in place
            assert out.shape == m.shape and out.dtype == np.bool_
            assert degrees(out) == degrees(m), (shape, seed)
            # conv: the input channels' degrees (sum over the taps) are kept too
            if m.ndim == 4:
                assert (out.sum(axis=(0, 2, 3)) == m.sum(axis=(0, 2, 3))).all()


def test_samples_keep_degrees_and_the_input_is_untouched():
    rng = np.random.default_rng(3)
    m = hetero((20, 30), 0.2, rng)
    before = m.copy()
    states = layer_samples(m, DegreeNull(samples=5, seed=2, rounds=4))
    assert (m == before).all()
    assert len(states) == 5
    assert all(degrees(s) == degrees(m) for s in states)
    assert len({s.tobytes() for s in states}) == 5  # the samples differ from one another


def test_one_d_masks_are_shuffled_with_their_count():
    m = np.zeros(50, bool)
    m[:7] = True
    out = curveball(m, 3, np.random.default_rng(0))
    assert out.sum() == 7 and not (out == m).all()


# -------------------------------------------------------------------------------- seeds
def test_same_seed_same_samples_other_seed_other_samples():
    rng = np.random.default_rng(5)
    masks = {"a": hetero((12, 20), 0.3, rng), "b": hetero((6, 4, 3, 3), 0.3, rng)}
    one = degree_samples(masks, DegreeNull(samples=4, seed=7, rounds=3))
    two = degree_samples(masks, DegreeNull(samples=4, seed=7, rounds=3))
    other = degree_samples(masks, DegreeNull(samples=4, seed=8, rounds=3))
    stream = degree_samples(masks, DegreeNull(samples=4, seed=7, rounds=3), stream=1)
    assert all((x == y).all() for x, y in zip(one, two))
    assert not all((x == y).all() for x, y in zip(one, other))
    assert not all((x == y).all() for x, y in zip(one, stream))


def test_compare_records_repeat_with_the_seed():
    rng = np.random.default_rng(6)
    a = Ticket(masks={"fc1.weight": hetero((20, 30), 0.2, rng), "fc2.weight": hetero((5, 20), 0.3, rng)})
    b = Ticket(masks={n: hetero(m.shape, 0.2, rng) for n, m in a.masks.items()})
    kw = dict(per_layer=True, null="degree", null_samples=8, null_rounds=5)
    first = compare([a, b], "overlap", seed=1, **kw)
    assert first == compare([a, b], "overlap", seed=1, **kw)
    assert first != compare([a, b], "overlap", seed=2, **kw)


# -------------------------------------------------------------------------- hand checks
def test_two_by_two_identity_hand_computed():
    """Degrees (1, 1) / (1, 1) have two realizations, I and its flip, each with probability 1/2
    after any round (one trade of two rows). With A = B = I both randomised: X = 2 when the two
    samples agree (probability 1/2), else 0; E[Jaccard] = 1/2; the observed X = 2 has p = 1/2."""
    t = Ticket(masks={"w": np.eye(2, dtype=bool)})
    u = Ticket(masks={"w": np.eye(2, dtype=bool)})
    n = 400
    rec = compare([t, u], ["jaccard", "intersection"], null="degree", null_samples=n, null_rounds=1, seed=0)
    jac = next(r for r in rec if r["metric"] == "jaccard")
    inter = next(r for r in rec if r["metric"] == "intersection")
    se = 0.5 / np.sqrt(n)
    assert jac["value"] == 1.0 and abs(jac["expected_degree"] - 0.5) < 4 * se
    assert abs(inter["expected_degree"] - 1.0) < 8 * se
    assert abs(jac["p_degree"] - 0.5) < 4 * se
    assert jac["p_degree"] == inter["p_degree"]  # one null count for every overlap metric
    # exact arithmetic of the fields from the samples: X_s in {0, 2}
    xs = degree.pair_null_counts(t, u, _cache(t, u, n))
    assert set(np.unique(xs).tolist()) == {0, 2}
    assert jac["expected_degree"] == pytest.approx(np.mean(xs[:, 0] / (4 - xs[:, 0])))
    assert jac["p_degree"] == pytest.approx((1 + np.sum(xs[:, 0] >= 2)) / (n + 1))


def _cache(t, u, n):
    from ticketlab.metrics.base import Cache

    c = Cache(degree_null=DegreeNull(samples=n, seed=0, rounds=1))
    c.stream(t)
    c.stream(u)
    return c


def test_margins_with_one_realization_give_the_observed_overlap():
    """A Ferrers (nested) matrix is the only one with its margins: the null is a point mass, so
    expected_degree equals the value and p_degree is 1."""
    m = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    other = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    a, b = Ticket(masks={"w": m}), Ticket(masks={"w": other})
    r = compare([a, b], ["jaccard"], null="degree", null_samples=5, null_rounds=3)[0]
    assert r["expected_degree"] == pytest.approx(r["value"]) and r["p_degree"] == 1.0
    assert r["lift_degree"] == pytest.approx(1.0)


def test_samples_are_uniform_over_all_matrices_with_the_margins():
    """Enumerate every 4 x 4 binary matrix with row sums (2, 1, 2, 1) and column sums (1, 2, 1, 2):
    the sampler must hit each about equally often (curveball's stationary law is uniform)."""
    ok = _margin_4x4()
    keys = {m.astype(bool).tobytes(): i for i, m in enumerate(ok)}
    start = ok[0].astype(bool)
    states = layer_samples(start, DegreeNull(samples=3000, seed=0, rounds=6))
    freq = np.bincount([keys[s.tobytes()] for s in states], minlength=len(ok)) / len(states)
    assert len(ok) > 10
    expected = 1 / len(ok)
    assert np.abs(freq - expected).max() < 5 * np.sqrt(expected * (1 - expected) / len(states))


def _margin_4x4():
    """Every 4 x 4 binary matrix with row sums (2, 1, 2, 1) and column sums (1, 2, 1, 2)."""
    rows, cols = (2, 1, 2, 1), (1, 2, 1, 2)
    every = np.array(list(itertools.product([0, 1], repeat=16)), dtype=np.int8).reshape(-1, 4, 4)
    return every[(every.sum(axis=2) == rows).all(axis=1) & (every.sum(axis=1) == cols).all(axis=1)].astype(bool)


def test_samples_run_from_a_hub_besag_clifford():
    """Besag & Clifford's parallel scheme, chained by hand: ``rounds`` rounds from the mask with the
    generator of (seed, stream, layer, 0) give the hub; sample s is ``rounds`` more rounds from the
    hub with the generator of (seed, stream, layer, s). Not from the mask itself."""
    rng = np.random.default_rng(11)
    m = rng.random((9, 14)) < 0.4
    seed, stream, layer, rounds = 4, 2, 3, 2
    states = layer_samples(m, DegreeNull(samples=4, seed=seed, rounds=rounds), stream, layer)

    def gen(sample):
        return np.random.default_rng(np.random.SeedSequence([seed, stream, layer, sample]))

    hub = curveball(m, rounds, gen(0))
    assert not np.array_equal(hub, m)
    by_hand = [curveball(hub, rounds, gen(s)) for s in (1, 2, 3, 4)]
    assert all(np.array_equal(x, y) for x, y in zip(states, by_hand))
    from_mask = [curveball(m, rounds, gen(s)) for s in (1, 2, 3, 4)]
    assert not any(np.array_equal(x, y) for x, y in zip(states, from_mask))


def test_observed_mask_and_samples_are_exchangeable():
    """What the hub buys: with the observed mask uniform over its margins (every one of the 4 x 4
    matrices of the test above, in turn), the observed mask and its samples are exchangeable, so
    ``P(sample 1 == observed) == P(sample 1 == sample 2)``, even with 1 round (poor mixing). Both are
    ``tr(K^2) / M`` for the one-round kernel K, as each pair is two rounds apart through the hub;
    without the hub sample 1 is one round from the observed mask: ``tr(K) / M``, about 0.26 here
    against 0.13."""
    ok = _margin_4x4()
    same_observed = same_samples = 0
    for seed in range(100):
        for i, m in enumerate(ok):
            x1, x2 = layer_samples(m, DegreeNull(samples=2, seed=seed, rounds=1), stream=i)
            same_observed += np.array_equal(x1, m)
            same_samples += np.array_equal(x1, x2)
    n = 100 * len(ok)
    p_observed, p_samples = same_observed / n, same_samples / n
    se = np.sqrt(2 * p_samples * (1 - p_samples) / n)
    assert 0.08 < p_samples < 0.2 and abs(p_observed - p_samples) < 5 * se, (p_observed, p_samples, se)


# ------------------------------------------------------------------------------- mixing
def test_null_jaccard_converges_with_the_number_of_rounds():
    """The null's mean Jaccard of two heterogeneous LeNet-like layers, against the rounds each
    chain has run: far from its limit after 1 round, within Monte-Carlo error of it (the value
    after 4x as many rounds) at the default number of rounds."""
    rng = np.random.default_rng(0)
    a = hetero((100, 300), 0.1, rng)
    b = a ^ (rng.random(a.shape) < 0.02)  # a near copy: starts with a Jaccard of about 0.8
    chains = 12
    gens = [np.random.default_rng(50 + k) for k in range(chains)]
    xa, xb = [a] * chains, [b] * chains
    done, curve = 0, {}
    for rounds in (1, degree.DEFAULT_ROUNDS, 4 * degree.DEFAULT_ROUNDS):
        xa = [curveball(x, rounds - done, g) for x, g in zip(xa, gens)]
        xb = [curveball(x, rounds - done, g) for x, g in zip(xb, gens)]
        done = rounds
        js = np.array([(x & y).sum() / (x | y).sum() for x, y in zip(xa, xb)])
        curve[rounds] = (js.mean(), js.std() / np.sqrt(chains))
    late, se = curve[4 * degree.DEFAULT_ROUNDS]
    mixed, se2 = curve[degree.DEFAULT_ROUNDS]
    assert curve[1][0] - late > 0.1
    assert abs(mixed - late) < 4 * np.hypot(se, se2) + 0.002


# ---------------------------------------------------------------------------- records
def test_degrees_alone_explain_the_overlap_of_two_independent_tickets():
    """Two tickets drawn independently from the same unit propensities ``x_i y_j`` of the
    exponential-family (maximum-entropy) model ``P(keep ij) = x_i y_j / (1 + x_i y_j)``: given its
    degrees, each is uniform over the masks with those degrees, which is exactly the null. They
    overlap far above the hypergeometric null, but not above the degree-preserving one."""
    rng = np.random.default_rng(2)
    odds = np.outer(rng.lognormal(-1.5, 1.2, size=60), rng.lognormal(-1.5, 1.2, size=120))
    p = odds / (1 + odds)
    a = Ticket(masks={"w": rng.random(p.shape) < p})
    b = Ticket(masks={"w": rng.random(p.shape) < p})
    r = compare([a, b], ["jaccard"], null="degree", null_samples=19, null_rounds=20, seed=0)[0]
    assert r["lift"] > 1.5 and r["p"] < 1e-6
    assert abs(r["lift_degree"] - 1) < 0.1 and r["p_degree"] > 0.05
    # and a near copy overlaps above both
    c = Ticket(masks={"w": a.masks["w"] ^ (rng.random(p.shape) < 0.01)})
    r = compare([a, c], ["jaccard"], null="degree", null_samples=19, null_rounds=20)[0]
    assert r["lift_degree"] > 2 and r["p_degree"] == pytest.approx(1 / 20)


def test_records_have_the_degree_fields_and_validate():
    rng = np.random.default_rng(4)
    shapes = {"conv.weight": (4, 2, 3, 3), "fc.weight": (3, 16), "bias": (3,)}
    a = Ticket(masks={n: rng.random(s) < 0.4 for n, s in shapes.items()})
    b = Ticket(masks={n: rng.random(s) < 0.4 for n, s in shapes.items()})
    plain = compare([a, b], "overlap", per_layer=True)
    recs = compare([a, b], "overlap", per_layer=True, null="degree", null_samples=5, null_rounds=3)
    validate_records(json.loads(json.dumps(recs, allow_nan=False)))
    assert len(plain) == len(recs)
    for p, r in zip(plain, recs):
        assert {k: v for k, v in r.items() if k not in DEGREE_FIELDS} == p  # hypergeometric fields unchanged
        if r["layer"] in ("__mean__", "__wmean__"):
            assert "expected_degree" in r and "p_degree" not in r
        else:
            assert "expected_degree" in r and "p_degree" in r
        assert ("lift_degree" in r) == (r["metric"] != "kappa" and "lift" in p)
    assert not any(k in r for r in plain for k in DEGREE_FIELDS)


def test_a_ticket_against_itself_gets_independent_samples():
    rng = np.random.default_rng(8)
    t = Ticket(masks={"w": rng.random((30, 40)) < 0.2})
    r = compare([t, t], ["jaccard"], null="degree", null_samples=9, null_rounds=10)[0]
    assert r["value"] == 1.0 and r["expected_degree"] < 0.5 and r["p_degree"] == pytest.approx(0.1)


def test_bad_null_settings_are_config_errors():
    t = Ticket(masks={"w": np.eye(3, dtype=bool)})
    with pytest.raises(ConfigError, match="unknown null 'degre'"):
        compare([t, t], ["jaccard"], null="degre")
    with pytest.raises(ConfigError, match="samples must be an integer"):
        compare([t, t], ["jaccard"], null="degree", null_samples=0)
    with pytest.raises(ConfigError, match="seed"):
        compare([t, t], ["jaccard"], null="degree", seed=-1)


def test_cli_null_degree(tmp_path):
    from ticketlab.cli.main import cli
    from ticketlab.fileformat import save

    rng = np.random.default_rng(9)
    paths = []
    for i in range(2):
        p = tmp_path / f"t{i}.h5"
        save(Ticket(masks={"fc1.weight": rng.random((12, 16)) < 0.3, "fc2.weight": rng.random((4, 12)) < 0.3}), p)
        paths.append(str(p))
    runner = CliRunner()
    args = ["compare", *paths, "--metric", "jaccard", "--null", "degree", "--null-samples", "4",
            "--null-rounds", "3", "--seed", "5"]
    res = runner.invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)
    validate_records(recs)
    assert recs == compare(paths, ["jaccard"], labels=["t0.h5", "t1.h5"], null="degree", null_samples=4,
                           null_rounds=3, seed=5)
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and "p_degree" in res.output and "keeps its degree" in res.output
    res = runner.invoke(cli, ["compare", *paths, "--null", "degree", "--matrix", "jaccard"])
    assert res.exit_code != 0 and "go with the records" in res.output
