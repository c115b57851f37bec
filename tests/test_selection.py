"""Shared selection: exact counts, the tie rule, scopes, masks only shrink."""

import math

import numpy as np
import pytest
import torch

from ticketlab.errors import ConfigError
from ticketlab.selection import SCOPES, density_from, exponential_schedule, keep_count, rank_order, select_top

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


def test_ties_go_to_earlier_parameter_and_lower_index():
    scores = {"a": torch.tensor([1.0, 2.0, 1.0]), "b": torch.tensor([1.0, 1.0])}
    m = select_top(scores, 0.6)  # keep 3: the 2.0, then the first two 1.0s in order
    assert m["a"].tolist() == [True, True, True]
    assert m["b"].tolist() == [False, False]
    m = select_top({"a": torch.zeros(4), "b": torch.zeros(4)}, 0.75)
    assert m["a"].tolist() == [True] * 4 and m["b"].tolist() == [True, True, False, False]


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
    m = select_top(scores, 0.5, masks=masks)  # keep 2 of the 3 alive: -1e300 first, then NaN (lower index)
    assert m["a"].tolist() == [True, False, True, False]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_nonfinite_scores_rank_below_the_lowest_finite_float(scope):
    low = torch.finfo(torch.float64).min  # a finite score, however low, beats NaN and -inf
    scores = {"a": torch.tensor([math.nan, low, -math.inf], dtype=torch.float64),
              "b": torch.tensor([-math.inf, math.nan, low], dtype=torch.float64)}
    m = select_top(scores, 1 / 3, scope=scope)  # one of three per layer, two of six in all
    assert m["a"].tolist() == [False, True, False] and m["b"].tolist() == [False, False, True]
    # once the finite ones are in, NaN and -inf tie: the earlier parameter, then the lower index
    m = select_top(scores, 2 / 3, scope=scope)
    if scope == "layer":  # two of three per layer
        assert m["a"].tolist() == [True, True, False] and m["b"].tolist() == [True, False, True]
    else:  # four of six: both finite ones, then a's two non-finite ones
        assert m["a"].tolist() == [True, True, True] and m["b"].tolist() == [False, False, True]
    # a float32 score at float32's minimum is finite too
    m = select_top({"a": torch.tensor([math.nan, torch.finfo(torch.float32).min, -math.inf])}, 1 / 3, scope=scope)
    assert m["a"].tolist() == [False, True, False]


def test_ties_in_layer_scope_go_to_the_lower_index():
    scores = {"a": torch.tensor([1.0, 3.0, 1.0, 1.0, 0.0]), "b": torch.tensor([[2.0, 2.0], [2.0, 5.0]])}
    m = select_top(scores, 0.6, scope="layer")  # 3 of 5: the 3.0, then the first two 1.0s; 2 of 4 in b
    assert m["a"].tolist() == [True, True, True, False, False]
    assert m["b"].tolist() == [[True, False], [False, True]]  # the 5.0, then the first 2.0 (C order)
    m = select_top({"a": torch.zeros(5), "b": torch.zeros(2, 3)}, 0.5, scope="layer")
    assert m["a"].tolist() == [True, True, True, False, False]  # floor(2.5 + 0.5) = 3
    assert m["b"].tolist() == [[True, True, True], [False, False, False]]
    # the same with pruned weights: positions are the full tensor's, pruned ones skipped
    masks = {"a": torch.tensor([False, True, True, True, True]), "b": torch.ones(2, 3, dtype=torch.bool)}
    m = select_top({"a": torch.zeros(5), "b": torch.zeros(2, 3)}, 0.4, scope="layer", masks=masks)
    assert m["a"].tolist() == [False, True, True, False, False]


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


def _reference_top(flat: np.ndarray, alive: np.ndarray, k: int) -> np.ndarray:
    """The rules written the slow, obvious way: rank the alive scores (rank_order), keep k."""
    idx = np.flatnonzero(alive)
    keep = np.zeros(flat.size, dtype=bool)
    keep[idx[rank_order(flat[idx])[:k]]] = True
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
            got = select_top(scores, d, masks=masks)
            want = _reference_top(flat, alive, keep_count(d, flat.size))
            assert np.array_equal(np.concatenate([got[n].flatten().numpy() for n in scores]), want), (pruned, d)
            layer = select_top(scores, d, masks=masks, scope="layer")  # each parameter on its own
            a = scores["a"].numel()
            for n, sl in (("a", slice(0, a)), ("b", slice(a, None))):
                assert np.array_equal(layer[n].flatten().numpy(),
                                      _reference_top(flat[sl], alive[sl], keep_count(d, flat[sl].size))), (n, d)


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
