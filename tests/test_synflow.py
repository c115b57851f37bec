"""SynFlow against hand-computed scores and the conservation property (Tanaka et al. 2020)."""

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.miners import MiningContext, get_miner


def _ctx(model, input_shape):
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    return MiningContext(model=model, params=params, spec=DataSpec("toy", "tensor", input_shape, 2), data=None,
                         device=torch.device("cpu"), seed=0, generator=torch.Generator().manual_seed(0))


def test_scores_match_hand_computation_on_tiny_linear_network():
    # R = 1^T |W2| |W1| 1 ; dR/dW1_ij = |W2|_{0i} sign(W1_ij) => score(W1_ij) = |W2_0i| |W1_ij|
    #                      score(W2_0i) = |W2_0i| * sum_j |W1_ij|
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model[2].weight.copy_(torch.tensor([[-4.0, 0.25]]))
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    ctx = _ctx(model, (2,))
    miner = get_miner("synflow")()
    miner.prepare(ctx)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}
    s = miner.score(ctx, masks)
    assert s["0.weight"].dtype == torch.float64
    torch.testing.assert_close(s["0.weight"], torch.tensor([[4.0, 8.0], [0.75, 0.125]], dtype=torch.float64))
    torch.testing.assert_close(s["2.weight"], torch.tensor([[12.0, 0.875]], dtype=torch.float64))
    # masked weights enter as zero: prune W1[0, 1] -> neuron 0 carries |1| only
    masks["0.weight"][0, 1] = False
    s = miner.score(ctx, masks)
    torch.testing.assert_close(s["2.weight"], torch.tensor([[4.0, 0.875]], dtype=torch.float64))
    assert s["0.weight"][0, 1] == 0
    # the user's model is untouched (signs and values)
    for n, p in model.state_dict().items():
        assert torch.equal(p, before[n])


def test_conservation_per_layer_sums_equal_without_biases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 4, bias=False), nn.ReLU(),
                          nn.Linear(4, 3, bias=False))
    ctx = _ctx(model, (6,))
    miner = get_miner("synflow")()
    miner.prepare(ctx)
    masks = {n: torch.rand(p.shape) < 0.7 for n, p in ctx.params.items()}
    s = miner.score(ctx, masks)
    sums = torch.stack([v[masks[n]].sum() for n, v in s.items()])
    r = sums[0]
    assert r > 0
    torch.testing.assert_close(sums, r.expand(3), rtol=1e-12, atol=0)


def test_float64_avoids_overflow_on_deep_network():
    layers = []
    for _ in range(40):
        layers += [nn.Linear(64, 64, bias=False), nn.ReLU()]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)  # R = 64^41 ~ 1e74 > float32 max
    ctx = _ctx(model, (64,))
    miner = get_miner("synflow")()
    miner.prepare(ctx)
    s = miner.score(ctx, {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()})
    assert all(torch.isfinite(v).all() for v in s.values())
    miner32 = get_miner("synflow")(precision="float32")
    miner32.prepare(ctx)
    s32 = miner32.score(ctx, {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()})
    assert not all(torch.isfinite(v).all() for v in s32.values())
