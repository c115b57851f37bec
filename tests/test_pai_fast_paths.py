"""The fast paths of the pruning-at-initialization miners (the speed work of issue 15) change no
result. Nothing here is timed: the timing is ``benchmarks/bench_pai_reference.py``.

* SynFlow's ``rescale``: on a bias-free ReLU chain every score is the unscaled one times one
  power of two, bit for bit, and the ranking is float64's; it keeps R finite where float32 overflows.
* SynFlow's in-place scoring leaks nothing between rounds: a miner that has scored other masks
  gives what a fresh miner gives, and a round's scores are not overwritten by the next round.
* GraSP's one-graph path (one loss term) equals the two-pass path (several chunks).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ticketlab.miners._datadriven as dd
from ticketlab.data.base import DataSpec, TensorData
from ticketlab.miners import MiningContext, get_miner
from ticketlab.miners.synflow import _power_of_two_gain
from ticketlab.selection import rank_order


def _ctx(model: nn.Module, input_shape: tuple[int, ...], data: TensorData | None = None) -> MiningContext:
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1}
    spec = data.spec if data is not None else DataSpec("toy", "tensor", input_shape, 3)
    return MiningContext(model=model, params=params, spec=spec, data=data, device=torch.device("cpu"),
                         seed=0, generator=torch.Generator().manual_seed(0))


def _scores(ctx: MiningContext, masks=None, **cfg) -> dict[str, torch.Tensor]:
    miner = get_miner("synflow")(**cfg)
    miner.prepare(ctx)
    masks = masks or {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    return miner.score(ctx, masks)


def _chain(widths: list[int], seed: int = 0, scale: float = 1.0) -> nn.Sequential:
    """A bias-free ReLU chain (positively homogeneous in every layer's weights)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def test_power_of_two_gain_is_a_power_of_two_near_the_inverse_gain():
    w = torch.tensor([[3.0, -3.0], [1.0, 1.0]])  # row sums of |w|: 6 and 2, mean 4
    assert _power_of_two_gain(w) == 0.25
    w = torch.full((5, 7), 100.0)  # gain 700 -> 2^-9 (512 is the nearest power of two)
    assert _power_of_two_gain(w) == 2.0 ** -9
    assert _power_of_two_gain(torch.zeros(3, 3)) == 1.0
    assert math.log2(_power_of_two_gain(torch.rand(4, 9) + 0.1)).is_integer()


def test_rescaled_float32_scores_are_the_unscaled_ones_times_one_power_of_two():
    model = _chain([6, 9, 7, 4], seed=1, scale=3.0)  # gains far from 1, so the rescale is not 1
    ctx = _ctx(model, (6,))
    plain = _scores(ctx, precision="float32")
    scaled = _scores(ctx, precision="float32", rescale=True)
    factor = math.prod(_power_of_two_gain(p.detach()) for p in ctx.params.values())
    assert factor != 1.0
    for n in plain:  # Tanaka et al.: R and every score scale by the product of the layer factors
        assert torch.equal(scaled[n], plain[n] * factor), n


def test_rescaled_float32_ranks_as_float64_on_a_homogeneous_chain():
    model = _chain([5, 8, 8, 3], seed=2)
    ctx = _ctx(model, (5,))
    s64 = _scores(ctx, precision="float64")
    s32 = _scores(ctx, precision="float32", rescale=True)
    flat64 = torch.cat([v.flatten() for v in s64.values()]).numpy()
    flat32 = torch.cat([v.flatten() for v in s32.values()]).double().numpy()
    assert (rank_order(flat32) == rank_order(flat64)).all()


def test_rescale_keeps_r_finite_where_float32_overflows():
    model = _chain([32] * 41, seed=3, scale=40.0)  # 40 layers of gain ~ 40 * 32 * E|w| ~ 130: R ~ 1e84
    ctx = _ctx(model, (32,))
    s64 = _scores(ctx, precision="float64")
    assert not all(torch.isfinite(v).all() for v in _scores(ctx, precision="float32").values())
    s32 = _scores(ctx, precision="float32", rescale=True)
    assert all(torch.isfinite(v).all() and (v > 0).any() for v in s32.values())
    flat64 = torch.cat([v.flatten() for v in s64.values()]).numpy()
    flat32 = torch.cat([v.flatten() for v in s32.values()]).double().numpy()
    top64 = set(rank_order(flat64)[:100].tolist())
    top32 = set(rank_order(flat32)[:100].tolist())
    assert len(top64 & top32) >= 99  # float32 rounding may swap a near-tie at the border, no more


def test_synflow_rounds_leak_nothing_and_scores_are_not_overwritten():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    ctx = _ctx(model, (4,))
    miner = get_miner("synflow")()
    miner.prepare(ctx)
    ones = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    g = torch.Generator().manual_seed(1)
    sparse = {n: torch.rand(p.shape, generator=g) < 0.5 for n, p in ctx.params.items()}
    first = miner.score(ctx, ones)
    kept = {n: v.clone() for n, v in first.items()}
    second = miner.score(ctx, sparse)
    for n in first:
        assert torch.equal(first[n], kept[n])  # round 1's scores survive round 2
        assert first[n].data_ptr() != second[n].data_ptr()
    fresh = _scores(ctx, sparse)
    again = miner.score(ctx, ones)  # and back: the pruned weights come back from |θ0|, not from 0
    for n in fresh:
        assert torch.equal(second[n], fresh[n])
        assert torch.equal(again[n], kept[n])
        assert (second[n][~sparse[n]] == 0).all()
    assert float(miner.last_r) > 0


def _toy_data(per_class: int = 5, classes: int = 3, features: int = 4) -> TensorData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(per_class * classes, features, generator=g)
    y = torch.arange(classes).repeat(per_class)
    empty = (x[:0], y[:0])
    return TensorData(DataSpec("toy", "tensor", (features,), classes), (x, y), empty, empty)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_grasp_one_graph_path_equals_the_two_pass_path(monkeypatch, precision):
    data = _toy_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    ctx = _ctx(model, (4,), data)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    masks["0.weight"][2, 1] = False

    def hg() -> tuple[bool, dict[str, torch.Tensor]]:
        miner = get_miner("grasp")(samples_per_class=0, precision=precision)
        miner.prepare(ctx)
        return miner.single_term(), miner.hessian_gradient(masks)

    single, one = hg()
    monkeypatch.setattr(dd, "CHUNK", 15)  # still one chunk of the 15 samples
    assert hg()[0] and single
    monkeypatch.setattr(dd, "CHUNK", 7)  # 7 + 7 + 1: pass 1 over all chunks, then pass 2
    multi, two = hg()
    assert not multi
    tol = {"float32": (1e-5, 1e-7), "float64": (1e-12, 1e-15)}[precision]
    for n in one:
        torch.testing.assert_close(one[n], two[n], rtol=tol[0], atol=tol[1])
        assert (one[n] != 0).any()
    assert one["0.weight"][2, 1] == 0  # a pruned weight's Hg is masked out
