"""Shared selection: exact counts, the tie rule, scopes, masks only shrink."""

import math

import numpy as np
import pytest
import torch

from ticketlab.errors import ConfigError
from ticketlab.selection import (
    SCOPES, TieRecord, density_from, exponential_schedule, keep_count, rank_order, select_top,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA parity test: needs a CUDA GPU")


@pytest.mark.parametrize("d,n,k", [(0.1, 25, 3), (0.5, 3, 2), (0.5, 5, 3), (1.0, 7, 7), (0.01, 10, 0),
                                   (0.2, 266200, 53240), (0.15, 10, 2)])
def test_keep_count_rounds_half_up(d, n, k):
    assert keep_count(d, n) == k


def test_global_selection_keeps_highest_and_exact_count():
    scores = {"a": torch.tensor([[3.0, 1.0], [0.5, 2.0]]), "b": torch.tensor([2.5, 5.0, 0.0])}
    m = select_top(scores, 3 / 7)
    assert m["a"].tolist() == [[True, False], [False, False]]
    assert m["b"].tolist() == [True, True, False]


def _drawn(n_tied: int, missing: int, seed: int = 0) -> list[int]:
    """The tied positions (0-based, in flat order) that a draw from a generator seeded ``seed`` keeps."""
    return sorted(torch.randperm(n_tied, generator=torch.Generator().manual_seed(seed))[:missing].tolist())


def test_ties_are_drawn_with_the_generator_and_recorded():
    # keep 3 of 5: the 2.0, then 2 of the 4 tied 1.0s (a[0], a[2], b[0], b[1] in that order)
    scores = {"a": torch.tensor([1.0, 2.0, 1.0]), "b": torch.tensor([1.0, 1.0])}
    tied_at = [("a", 0), ("a", 2), ("b", 0), ("b", 1)]
    for seed in range(6):
        ties: list = []
        m = select_top(scores, 0.6, generator=torch.Generator().manual_seed(seed), ties=ties)
        want = {tied_at[i] for i in _drawn(4, 2, seed)} | {("a", 1)}
        got = {(n, i) for n in m for i in range(m[n].numel()) if m[n][i]}
        assert got == want, seed
        assert ties == [TieRecord(None, 4, 2)]
    # no generator: a generator seeded with 0, afresh in every call
    assert select_top(scores, 0.6)["b"].tolist() == select_top(scores, 0.6, generator=torch.Generator().manual_seed(0))["b"].tolist()
    # no tie at the threshold (every tied weight fits): nothing drawn, nothing recorded
    ties = []
    m = select_top({"a": torch.tensor([3.0, 1.0, 3.0]), "b": torch.tensor([3.0, 0.0])}, 0.6, ties=ties)
    assert m["a"].tolist() == [True, False, True] and m["b"].tolist() == [True, False] and ties == []


def test_ties_favour_no_layer_and_no_position():
    # 8 equal scores in two layers, keep 6: every weight is kept with probability 3/4 whatever its
    # position; with positional ties the last two of b would never be kept
    g = torch.Generator().manual_seed(11)
    counts = torch.zeros(8)
    draws = 2000
    for _ in range(draws):
        m = select_top({"a": torch.zeros(4), "b": torch.zeros(4)}, 0.75, generator=g)
        assert int(m["a"].sum() + m["b"].sum()) == 6
        counts += torch.cat([m["a"], m["b"]]).float()
    share = counts / draws  # each ~ 0.75, binomial sd 0.0097: 5 sd is 0.048
    assert bool(((share - 0.75).abs() < 0.05).all()), share.tolist()


def test_layer_scope_keeps_exact_count_per_layer():
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(10, 10, generator=g), "b": torch.rand(7, generator=g) * 100}
    m = select_top(scores, 0.3, scope="layer")
    assert int(m["a"].sum()) == 30 and int(m["b"].sum()) == 2
    # within a layer the kept ones are exactly the top scores
    assert m["a"].flatten()[scores["a"].flatten().argsort(descending=True)[:30]].all()


def test_masks_only_shrink():
    scores = {"a": torch.tensor([5.0, 4.0, 3.0, 2.0])}
    masks = {"a": torch.tensor([False, True, True, True])}
    m = select_top(scores, 0.5, masks=masks)
    assert m["a"].tolist() == [False, True, True, False]
    with pytest.raises(ConfigError, match="still unpruned"):
        select_top(scores, 1.0, masks=masks)


def test_nonfinite_scores_rank_below_finite_and_pruned_never_return():
    scores = {"a": torch.tensor([math.nan, -math.inf, -1e300, 0.0], dtype=torch.float64)}
    masks = {"a": torch.tensor([True, True, True, False])}
    # keep 2 of the 3 alive: -1e300 first, then NaN or -inf (they tie: the draw of seed 0 decides)
    m = select_top(scores, 0.5, masks=masks)
    want = [False, False, True, False]
    want[_drawn(2, 1)[0]] = True
    assert m["a"].tolist() == want


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_nonfinite_scores_rank_below_the_lowest_finite_float(scope):
    low = torch.finfo(torch.float64).min  # a finite score, however low, beats NaN and -inf
    scores = {"a": torch.tensor([math.nan, low, -math.inf], dtype=torch.float64),
              "b": torch.tensor([-math.inf, math.nan, low], dtype=torch.float64)}
    m = select_top(scores, 1 / 3, scope=scope)  # one of three per layer, two of six in all
    assert m["a"].tolist() == [False, True, False] and m["b"].tolist() == [False, False, True]
    # once the finite ones are in, NaN and -inf tie: a seeded draw among them
    ties: list = []
    g = torch.Generator().manual_seed(5)
    m = select_top(scores, 2 / 3, scope=scope, generator=g, ties=ties)
    g = torch.Generator().manual_seed(5)
    if scope == "layer":  # two of three per layer: each layer draws one of its two non-finite ones
        for n, nonfinite, finite in (("a", [0, 2], 1), ("b", [0, 1], 2)):
            want = [False] * 3
            want[finite] = True
            want[nonfinite[torch.randperm(2, generator=g)[0]]] = True
            assert m[n].tolist() == want, n
        assert ties == [TieRecord("a", 2, 1), TieRecord("b", 2, 1)]
    else:  # four of six: both finite ones, then two of the four non-finite ones
        nonfinite = [("a", 0), ("a", 2), ("b", 0), ("b", 1)]
        want = {("a", 1), ("b", 2)} | {nonfinite[i] for i in torch.randperm(4, generator=g)[:2].tolist()}
        assert {(n, i) for n in m for i in range(3) if m[n][i]} == want
        assert ties == [TieRecord(None, 4, 2)]
    # a float32 score at float32's minimum is finite too
    m = select_top({"a": torch.tensor([math.nan, torch.finfo(torch.float32).min, -math.inf])}, 1 / 3, scope=scope)
    assert m["a"].tolist() == [False, True, False]


def test_ties_in_layer_scope_are_drawn_layer_by_layer():
    scores = {"a": torch.tensor([1.0, 3.0, 1.0, 1.0, 0.0]), "b": torch.tensor([[2.0, 2.0], [2.0, 5.0]])}
    ties: list = []
    m = select_top(scores, 0.6, scope="layer", generator=torch.Generator().manual_seed(2), ties=ties)
    # 3 of 5 in a: the 3.0, then 2 of the three 1.0s; 2 of 4 in b: the 5.0, then 1 of the three 2.0s;
    # one stream, a's draw first
    g = torch.Generator().manual_seed(2)
    want_a = [False, True, False, False, False]
    for i in torch.randperm(3, generator=g)[:2].tolist():
        want_a[[0, 2, 3][i]] = True
    want_b = [False, False, False, True]
    want_b[torch.randperm(3, generator=g)[0]] = True
    assert m["a"].tolist() == want_a and m["b"].flatten().tolist() == want_b
    assert ties == [TieRecord("a", 3, 2), TieRecord("b", 3, 1)]
    m = select_top({"a": torch.zeros(5), "b": torch.zeros(2, 3)}, 0.5, scope="layer")
    assert int(m["a"].sum()) == 3 and int(m["b"].sum()) == 3  # floor(2.5 + 0.5) = 3
    # the same with pruned weights: the pruned position never comes back, the draw is over the alive
    masks = {"a": torch.tensor([False, True, True, True, True]), "b": torch.ones(2, 3, dtype=torch.bool)}
    for seed in range(5):
        m = select_top({"a": torch.zeros(5), "b": torch.zeros(2, 3)}, 0.4, scope="layer", masks=masks,
                       generator=torch.Generator().manual_seed(seed))
        want = [False] * 5
        for i in _drawn(4, 2, seed):
            want[1 + i] = True
        assert m["a"].tolist() == want, seed


def test_threshold_rule_records_its_pruned_ties_and_draws_nothing():
    from ticketlab.selection import tie_columns

    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    ties: list = []
    # N = 5, d = 0.6: int(0.4 * 5) = 2 -> threshold is the 2nd smallest (1.0), every 1.0 goes
    m = select_top({"a": torch.tensor([1.0, 2.0, 1.0, 3.0, 0.5])}, 0.6, count_rule="threshold", generator=g, ties=ties)
    assert m["a"].tolist() == [False, True, False, True, False]
    assert ties == [TieRecord(None, 2, 0)] and tie_columns(ties) == {"tied": 2, "tied_kept": 0}
    assert torch.equal(g.get_state(), state)  # the reference rule draws nothing


def test_a_round_where_ties_choose_warns_in_one_line():
    import warnings

    from ticketlab.selection import warn_ties

    with pytest.warns(UserWarning, match=r"round 3: 2 of 100 kept weights \(2.0%\) were drawn at random among 7"):
        warn_ties({"kept": 100, "tied": 7, "tied_kept": 2}, "synflow: round 3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_ties({"kept": 100, "tied": 7, "tied_kept": 1}, "synflow: round 3")  # 1 %: not more than 1 %


@needs_cuda
@pytest.mark.parametrize("scope", SCOPES)
def test_cuda_parity_selection_equals_cpu(scope):
    # small integer scores (many exact ties), NaN and -inf, some weights already pruned
    g = torch.Generator().manual_seed(0)
    scores = {n: torch.randint(0, 6, shape, generator=g).double() for n, shape in [("a", (40, 30)), ("b", (500,))]}
    scores["a"][0, :5], scores["b"][-7:] = math.nan, -math.inf
    masks = {n: torch.rand(s.shape, generator=g) < 0.8 for n, s in scores.items()}
    cpu = select_top(scores, 0.3, scope=scope, masks=masks)
    gpu = select_top({n: s.cuda() for n, s in scores.items()}, 0.3, scope=scope,
                     masks={n: m.cuda() for n, m in masks.items()})
    assert all(gpu[n].is_cuda and torch.equal(gpu[n].cpu(), cpu[n]) for n in scores)


def test_same_scores_same_mask_and_large_random_exact():
    g = torch.Generator().manual_seed(1)
    scores = {f"l{i}": torch.rand(1000, generator=g) for i in range(5)}
    m1, m2 = select_top(scores, 0.137), select_top(scores, 0.137)
    assert all(torch.equal(m1[n], m2[n]) for n in scores)
    assert sum(int(v.sum()) for v in m1.values()) == keep_count(0.137, 5000)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan])
def test_bad_density_rejected(bad):
    with pytest.raises(ConfigError, match="density"):
        select_top({"a": torch.ones(3)}, bad)


def test_density_from():
    assert density_from(density=0.3) == 0.3
    assert density_from(sparsity=0.0) == 1.0
    for kwargs in ({"sparsity": 1.0}, {"sparsity": -0.1}, {"density": 0.0}, {"density": 2.0}, {},
                   {"density": 0.5, "sparsity": 0.5}):
        with pytest.raises(ConfigError):
            density_from(**kwargs)


def test_bad_scope_and_mismatched_masks():
    with pytest.raises(ConfigError, match="scope"):
        select_top({"a": torch.ones(3)}, 0.5, scope="neuron")
    with pytest.raises(ConfigError, match="different parameters"):
        select_top({"a": torch.ones(3)}, 0.5, masks={"b": torch.ones(3, dtype=torch.bool)})


def test_exponential_schedule_ends_at_target():
    s = exponential_schedule(0.01, 100)
    assert len(s) == 100 and s[-1] == 0.01 and math.isclose(s[49], 0.1)
    assert all(b < a for a, b in zip(s, s[1:]))


def _reference_top(flat: np.ndarray, alive: np.ndarray, k: int, g: torch.Generator) -> np.ndarray:
    """The rules written the slow, obvious way: sort the alive scores (NaN as -inf), keep every one
    above the k-th largest and draw the places left among those equal to it from ``g``."""
    idx = np.flatnonzero(alive)
    keep = np.zeros(flat.size, dtype=bool)
    if k >= idx.size:
        keep[idx] = True
        return keep
    if k == 0:
        return keep
    v = np.where(np.isnan(flat[idx]), -np.inf, flat[idx])
    t = np.sort(v)[::-1][k - 1]
    keep[idx[v > t]] = True
    tied = idx[v == t]  # ascending positions
    missing = k - int((v > t).sum())
    if missing == tied.size:
        keep[tied] = True
    else:
        keep[tied[torch.randperm(tied.size, generator=g)[:missing].numpy()]] = True
    return keep


def _hard_scores(kind: str, n: int, dtype: torch.dtype, g: torch.Generator) -> torch.Tensor:
    if kind == "ties":  # few distinct values, both zeros, negatives, and non-finite ones
        x = torch.randint(-3, 4, (n,), generator=g).to(dtype)
        x[torch.rand(n, generator=g) < 0.2] = -0.0
    elif kind == "equal":
        x = torch.full((n,), 0.25, dtype=dtype)
    else:  # spread over many binades, signed
        x = torch.randn(n, generator=g, dtype=torch.float64).mul(torch.rand(n, generator=g, dtype=torch.float64)
                                                                    .mul(60).sub(30).exp2()).to(dtype)
    pick = torch.rand(n, generator=g)
    x[pick < 0.01], x[(pick >= 0.01) & (pick < 0.02)], x[(pick >= 0.02) & (pick < 0.025)] = math.nan, -math.inf, math.inf
    return x


@pytest.mark.parametrize("kind", ["spread", "ties", "equal"])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float32), (torch.float64, torch.float64),
                                    (torch.float32, torch.float64)])
def test_large_selection_equals_the_reference_rules(kind, dtypes):
    # above the bucket pass's size threshold: the histogram select must give the rules' exact mask
    g = torch.Generator().manual_seed(3)
    scores = {"a": _hard_scores(kind, 90_000, dtypes[0], g).view(300, 300),
              "b": _hard_scores(kind, 70_000, dtypes[1], g)}
    flat = np.concatenate([s.double().flatten().numpy() for s in scores.values()])
    for pruned in (0.0, 0.3, 0.9):  # 0.9: the compact path of late rounds
        masks = {n: torch.rand(s.shape, generator=g) >= pruned for n, s in scores.items()}
        alive = np.concatenate([m.flatten().numpy() for m in masks.values()])
        for d in (0.6, 0.3, 0.05, 1e-4):
            if keep_count(d, flat.size) > alive.sum():
                continue
            got = select_top(scores, d, masks=masks)  # ties: a generator seeded with 0
            want = _reference_top(flat, alive, keep_count(d, flat.size), torch.Generator().manual_seed(0))
            assert np.array_equal(np.concatenate([got[n].flatten().numpy() for n in scores]), want), (pruned, d)
            layer = select_top(scores, d, masks=masks, scope="layer")  # each parameter on its own, one stream
            a, ref = scores["a"].numel(), torch.Generator().manual_seed(0)
            for n, sl in (("a", slice(0, a)), ("b", slice(a, None))):
                assert np.array_equal(layer[n].flatten().numpy(),
                                      _reference_top(flat[sl], alive[sl], keep_count(d, flat[sl].size), ref)), (n, d)


def test_reused_buffers_change_nothing():
    from ticketlab.selection import SelectionBuffers

    g = torch.Generator().manual_seed(4)
    buffers = SelectionBuffers()
    big = {"a": torch.rand(100_000, generator=g), "b": torch.rand(50, 40, generator=g, dtype=torch.float64)}
    small = {"a": torch.rand(7, generator=g)}
    masks = None
    for d in (0.9, 0.5, 0.1):  # rounds of a schedule; a smaller call in between
        m = select_top(big, d, masks=masks, buffers=buffers)
        assert all(torch.equal(m[n], select_top(big, d, masks=masks)[n]) for n in big)
        select_top(small, 0.5, buffers=buffers)
        masks = m
