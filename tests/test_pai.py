"""Pruning at initialization: SNIP, GraSP, magnitude_init and iterative SynFlow (issue 4).

Reference facts: SNIP scores are |g ⊙ w| (checked against finite differences), GraSP's Hg is
the Hessian-vector product (checked against finite differences of the gradient), iterative
SynFlow masks are nested, every miner keeps exactly the requested count, and ``ticketlab mine``
writes such tickets for an MLP, VGG-16 and the GCN.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import ticketlab.miners._datadriven as dd
from ticketlab.data.base import DataSpec, TensorData
from ticketlab.errors import ConfigError
from ticketlab.miners import MiningContext, get_miner
from ticketlab.mining import mine
from ticketlab.selection import exponential_schedule, keep_count

PAI = ["snip", "grasp", "magnitude_init", "synflow"]
PLANETOID = Path(__file__).resolve().parents[2] / "shared" / "data" / "planetoid"


# ----------------------------------------------------------------------------------------------
# helpers


def _data(per_class: int = 3, classes: int = 3, features: int = 3, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(per_class * classes, features, generator=g)
    y = torch.arange(classes).repeat(per_class)
    empty = (x[:0], y[:0])
    return TensorData(DataSpec("toy", "tensor", (features,), classes), (x, y), empty, empty)


def _net(bn: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(3, 4)]
    if bn:
        layers.append(nn.BatchNorm1d(4))
    layers += [nn.Tanh(), nn.Linear(4, 3)]
    return nn.Sequential(*layers)


def _ctx(model: nn.Module, data: TensorData, seed: int = 0) -> MiningContext:
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1}
    return MiningContext(model=model, params=params, spec=data.spec, data=data, device=torch.device("cpu"),
                         seed=seed, generator=torch.Generator().manual_seed(seed))


def _ones(ctx: MiningContext) -> dict[str, torch.Tensor]:
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in ctx.params.items()}


def _score(name: str, ctx: MiningContext, masks=None, **cfg) -> dict[str, torch.Tensor]:
    miner = get_miner(name)(**cfg)
    miner.prepare(ctx)
    try:
        return miner.score(ctx, masks or _ones(ctx))
    finally:
        miner.finish(ctx)


def _loss_fn(model: nn.Module, data: TensorData, names, temperature: float = 1.0, train_bn: bool = False):
    """L(weights) in float64 on all training samples, for finite differences."""
    net = copy.deepcopy(model).double().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.train(train_bn)
    x, y = data.train[0].double(), data.train[1]

    def loss(weights: dict[str, torch.Tensor]) -> torch.Tensor:
        out = torch.func.functional_call(net, weights, (x,))
        return nn.functional.cross_entropy(out / temperature, y)

    return loss, {n: p.detach().double().clone() for n, p in net.named_parameters() if n in names}


def _fd_grad(loss, weights, h: float = 1e-6) -> dict[str, torch.Tensor]:
    grads = {}
    for n, w in weights.items():
        g = torch.zeros_like(w)
        for j in range(w.numel()):
            plus = {k: v.clone() for k, v in weights.items()}
            minus = {k: v.clone() for k, v in weights.items()}
            plus[n].view(-1)[j] += h
            minus[n].view(-1)[j] -= h
            g.view(-1)[j] = (loss(plus) - loss(minus)) / (2 * h)
        grads[n] = g
    return grads


# ----------------------------------------------------------------------------------------------
# SNIP


@pytest.mark.parametrize("bn", ["eval", "train"])
def test_snip_scores_equal_finite_difference_connection_sensitivity(bn):
    data, model = _data(), _net(bn=True)
    ctx = _ctx(model, data)
    masks = _ones(ctx)
    masks["0.weight"][1, 2] = masks["3.weight"][0, 0] = False  # weights pruned earlier enter as 0
    s = _score("snip", ctx, masks, precision="float64", samples_per_class=0, batchnorm=bn)
    loss, w = _loss_fn(model, data, ctx.params, train_bn=bn == "train")
    w = {n: v * masks[n] for n, v in w.items()}
    g = _fd_grad(loss, w)
    for n in ctx.params:
        expected = (g[n] * w[n]).abs()  # Lee et al. 2019, Eq. 6 (unnormalised)
        torch.testing.assert_close(s[n], expected, rtol=1e-6, atol=1e-10)
    assert s["0.weight"][1, 2] == 0 and s["3.weight"][0, 0] == 0


def test_batchnorm_mode_matters_and_user_model_is_untouched():
    data, model = _data(), _net(bn=True)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = _ctx(model, data)
    ev = _score("snip", ctx, samples_per_class=0)
    tr = _score("snip", ctx, samples_per_class=0, batchnorm="train")
    gr = _score("grasp", ctx, samples_per_class=0, batchnorm="train")
    assert not torch.allclose(ev["0.weight"], tr["0.weight"])
    assert all(torch.isfinite(v).all() for v in gr.values())
    assert model.training  # mode untouched
    for k, v in model.state_dict().items():  # weights and running statistics untouched
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_dropout_is_off_while_scoring():
    data = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    a = _score("snip", _ctx(model, data), samples_per_class=0)
    b = _score("snip", _ctx(model, data), samples_per_class=0)  # same sample, other global RNG state
    for n in a:
        assert torch.equal(a[n], b[n])


def test_chunked_loss_equals_whole_batch(monkeypatch):
    data, model = _data(per_class=5), _net(bn=False)
    ctx = _ctx(model, data)
    whole = {m: _score(m, ctx, samples_per_class=0, precision="float64") for m in ("snip", "grasp")}
    monkeypatch.setattr(dd, "CHUNK", 4)  # 15 samples -> chunks of 4, 4, 4, 3
    for m in ("snip", "grasp"):
        chunked = _score(m, ctx, samples_per_class=0, precision="float64")
        for n in whole[m]:
            torch.testing.assert_close(chunked[n], whole[m][n], rtol=1e-10, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# GraSP


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_hg_equals_finite_difference_hessian_vector_product(temperature):
    data, model = _data(), _net(bn=True)
    ctx = _ctx(model, data)
    masks = _ones(ctx)
    masks["0.weight"][0, 1] = False
    miner = get_miner("grasp")(precision="float64", samples_per_class=0, temperature=temperature)
    miner.prepare(ctx)
    hg = miner.hessian_gradient(masks)
    scores = miner.score(ctx, masks)

    loss, w = _loss_fn(model, data, ctx.params, temperature)
    w = {n: v * masks[n] for n, v in w.items()}

    def grad(ws):
        ws = {n: v.clone().requires_grad_(True) for n, v in ws.items()}
        return dict(zip(ws, torch.autograd.grad(loss(ws), list(ws.values()))))

    g = {n: v * masks[n] for n, v in grad(w).items()}  # gradient w.r.t. the unpruned weights
    eps = 1e-5
    plus = grad({n: w[n] + eps * g[n] for n in w})
    minus = grad({n: w[n] - eps * g[n] for n in w})
    scale = max(float((plus[n] - minus[n]).abs().max()) for n in w) / (2 * eps)
    for n in ctx.params:
        fd = (plus[n] - minus[n]) / (2 * eps) * masks[n]  # H g by central differences
        torch.testing.assert_close(hg[n], fd, rtol=1e-5, atol=1e-6 * scale)
        # Wang et al. 2020, Eq. 8: remove the top of -θ ⊙ Hg  <=>  keep the top of θ ⊙ Hg
        torch.testing.assert_close(scores[n], w[n] * hg[n], rtol=1e-12, atol=0)
    assert scale > 0


def test_grasp_keeps_highest_theta_hg_not_its_magnitude():
    data, model = _data(), _net()
    ctx = _ctx(model, data)
    s = _score("grasp", ctx, samples_per_class=0, precision="float64")
    flat = torch.cat([v.flatten() for v in s.values()])
    assert (flat < 0).any() and (flat > 0).any()  # signed scores: |.| would rank differently
    t = mine("grasp", model="lenet_300_100", dataset="digits", density=0.2, seed=0, device="cpu")
    kept = np.concatenate([t.scores[n][t.masks[n]] for n in t.masks])
    dropped = np.concatenate([t.scores[n][~t.masks[n]] for n in t.masks])
    assert kept.min() >= dropped.max()


# ----------------------------------------------------------------------------------------------
# sampling, graph data, configs


def test_balanced_sample_counts_and_seeds():
    y = torch.tensor([0] * 7 + [1] * 5 + [2] * 2)
    b = dd.balanced_indices(y, 3, 3, 2, torch.Generator().manual_seed(0))
    assert [np.bincount(y[i].numpy(), minlength=3).tolist() for i in b] == [[3, 3, 1], [3, 2, 1]]
    assert len(set(torch.cat(b).tolist())) == 13  # no repeats: 6 + 5 + 2 drawn
    again = dd.balanced_indices(y, 3, 3, 2, torch.Generator().manual_seed(0))
    other = dd.balanced_indices(y, 3, 3, 2, torch.Generator().manual_seed(1))
    assert all(torch.equal(u, v) for u, v in zip(b, again))
    assert not all(torch.equal(u, v) for u, v in zip(b, other))
    everything = dd.balanced_indices(y, 3, 0, 1, torch.Generator().manual_seed(0))
    assert sorted(everything[0].tolist()) == list(range(14))
    with pytest.raises(ConfigError, match="no labelled samples"):
        dd.balanced_indices(torch.tensor([], dtype=torch.long), 3, 1, 1, torch.Generator())


def test_graph_scores_use_training_nodes_of_the_whole_graph():
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters

    data = load_dataset("karate")
    model = create_model("gcn", data.spec, seed=0)
    params = prunable_parameters(model)
    ctx = MiningContext(model=model, params=params, spec=data.spec, data=data, device=torch.device("cpu"),
                        seed=0, generator=torch.Generator().manual_seed(0))
    s = _score("snip", ctx, precision="float64")
    net = copy.deepcopy(model).double().eval()
    g = data.graph
    out = net(g.x.double(), g.edge_index)
    loss = nn.functional.cross_entropy(out[g.train_mask], g.y[g.train_mask])  # 1 node per class
    named = dict(net.named_parameters())
    grads = torch.autograd.grad(loss, [named[n] for n in params])
    for (n, p), gr in zip(params.items(), grads):
        torch.testing.assert_close(s[n], (gr * named[n]).abs().detach(), rtol=1e-9, atol=1e-14)
    assert _score("grasp", ctx)["conv1.lin.weight"].abs().sum() > 0


@pytest.mark.parametrize("method,cfg,match", [
    ("snip", {"batchnorm": "frozen"}, "batchnorm"),
    ("grasp", {"precision": "float16"}, "precision"),
    ("grasp", {"temperature": 0.0}, "temperature"),
    ("snip", {"samples_per_class": -1}, "samples_per_class"),
    ("grasp", {"batches": 0}, "batches"),
    ("snip", {"temperature": 2.0}, "no option 'temperature'"),
])
def test_bad_configs_are_config_errors(method, cfg, match):
    with pytest.raises(ConfigError, match=match):
        get_miner(method)(**cfg)


def test_data_driven_miners_need_data():
    model = _net()
    ctx = _ctx(model, _data())
    ctx.data = None
    with pytest.raises(ConfigError, match="no data set"):
        get_miner("snip")().prepare(ctx)


def test_magnitude_init_keeps_largest_initial_weights():
    t = mine("magnitude_init", model="lenet_300_100", dataset="digits", density=0.3, seed=3, device="cpu")
    init = t.weights["init"]
    kept = np.concatenate([np.abs(init[n][t.masks[n]]) for n in t.masks])
    dropped = np.concatenate([np.abs(init[n][~t.masks[n]]) for n in t.masks])
    assert kept.min() >= dropped.max()
    assert t.provenance["trained"] is False and "final" not in t.weights
    assert get_miner("magnitude_init").needs_data is False


# ----------------------------------------------------------------------------------------------
# invariants through the runner


@pytest.mark.parametrize("method", PAI)
@pytest.mark.parametrize("scope,density", [("global", 0.05), ("layer", 0.3)])
def test_exact_count_and_same_seed_same_mask(method, scope, density):
    kw = dict(model="lenet_300_100", dataset="digits", density=density, scope=scope, rounds=2, device="cpu")
    a, b = mine(method, seed=1, **kw), mine(method, seed=1, **kw)
    total = {n: m.size for n, m in a.masks.items()}
    if scope == "global":
        assert a.kept == keep_count(density, a.total)
    else:
        assert a.layer_kept() == {n: keep_count(density, size) for n, size in total.items()}
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert set(a.scores) == set(a.masks)
    assert a.provenance["rounds"] == 2


@pytest.mark.parametrize("method", PAI)
def test_masks_are_nested_across_rounds(method):
    """Running the first j rounds of a 5-round schedule gives masks that contain the next ones."""
    sched = exponential_schedule(0.01, 5)
    prev = None
    for j in range(1, 6):
        t = mine(method, model="lenet_300_100", dataset="digits", density=sched[j - 1], schedule=sched[:j], seed=0,
                 device="cpu")
        assert t.kept == keep_count(sched[j - 1], t.total)
        if prev is not None:
            assert all((t.masks[n] <= prev.masks[n]).all() for n in t.masks)
            assert t.kept < prev.kept
        prev = t


def test_iterative_synflow_differs_from_one_shot():
    one = mine("synflow", model="lenet_300_100", dataset="digits", density=0.01, rounds=1, seed=0, device="cpu")
    many = mine("synflow", model="lenet_300_100", dataset="digits", density=0.01, rounds=20, seed=0, device="cpu")
    assert one.kept == many.kept
    assert any(not np.array_equal(one.masks[n], many.masks[n]) for n in one.masks)


# ----------------------------------------------------------------------------------------------
# CLI: `ticketlab mine` writes exact-count tickets for an MLP, VGG-16 and the GCN


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    from fakedata import write_fake_cifar10

    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar10(root, n_train=20, n_test=10, seed=0)
    return root


@pytest.fixture(scope="module")
def cora_root(tmp_path_factory):
    if not (PLANETOID / "Cora" / "raw").is_dir():
        pytest.skip("shared Planetoid files not present")
    root = tmp_path_factory.mktemp("planetoid")
    shutil.copytree(PLANETOID / "Cora" / "raw", root / "Cora" / "raw")
    return root


def _run_mine(tmp_path, method, model, dataset, *extra):
    from ticketlab.cli.main import cli
    from ticketlab.fileformat import load

    out = tmp_path / f"{method}_{model}.h5"
    res = CliRunner().invoke(cli, ["mine", "--method", method, "--model", model, "--dataset", dataset,
                                   "--density", "0.05", "--device", "cpu", "-o", str(out), "--json",
                                   "--no-weights", *extra])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    ticket = load(out)
    assert ticket.kept == summary["kept"] == keep_count(0.05, ticket.total)
    assert ticket.provenance["method"] == method and ticket.provenance["dataset"] == dataset
    assert set(ticket.scores) == set(ticket.masks)
    return ticket


@pytest.mark.parametrize("method", PAI)
def test_cli_mine_lenet_digits(tmp_path, method):
    extra = ["--rounds", "100"] if method == "synflow" else []
    t = _run_mine(tmp_path, method, "lenet_300_100", "digits", *extra)
    assert t.provenance["rounds"] == (100 if method == "synflow" else 1)


@pytest.mark.parametrize("method", PAI)
def test_cli_mine_vgg16_cifar10(tmp_path, cifar_root, method):
    extra = {"synflow": ["--rounds", "2"], "magnitude_init": []}.get(method, ["--samples-per-class", "1"])
    t = _run_mine(tmp_path, method, "vgg16", "cifar10", "--data-root", str(cifar_root), *extra)
    if method != "synflow" and method != "magnitude_init":
        assert t.provenance["method_config"]["samples_per_class"] == 1


@pytest.mark.parametrize("method", PAI)
def test_cli_mine_gcn_cora(tmp_path, cora_root, method):
    extra = ["--rounds", "100"] if method == "synflow" else []
    t = _run_mine(tmp_path, method, "gcn", "cora", "--data-root", str(cora_root), *extra)
    assert list(t.masks) == ["conv1.lin.weight", "conv2.lin.weight", "fc.weight"]


def test_cli_option_of_another_method_is_an_error(tmp_path):
    from ticketlab.cli.main import cli

    res = CliRunner().invoke(cli, ["mine", "--method", "magnitude_init", "--temperature", "2",
                                   "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2
    assert "--temperature belongs to grasp" in res.output
