"""The GCN's CPU fast path and the graph evaluation cadence (issue 12, section 8). Nothing here is
timed: the tests check that the fast path computes what ``GCNConv`` computes, that its caches
follow the tensors they were made from, and that graph training evaluates every 10 steps and
records that cadence in a ticket's provenance. The timing is ``benchmarks/bench_gcn.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import ticketlab.models.gcn as gcn_module
from ticketlab.data import load_dataset
from ticketlab.data.base import GraphData
from ticketlab.mining import mine
from ticketlab.models import create_model
from ticketlab.training import GRAPH_EVAL_EVERY, TrainConfig, eval_cadence, resolved_config, fit

PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planetoid"


def reference(model: nn.Module, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """The eval-mode forward pass through PyG's own ``GCNConv.forward``."""
    h = nn.functional.leaky_relu(model.conv1(x, edge_index))
    h = nn.functional.leaky_relu(model.conv2(h, edge_index))
    return model.fc(h)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def karate() -> GraphData:
    return load_dataset("karate")  # one-hot features: 1 non-zero in 34, the sparse path


# ------------------------------------------------------------------------ the sparse products


def test_sparse_matrix_products_hand_computed():
    s = gcn_module._SparseMatrix.from_dense(torch.tensor([[0.0, 2.0, 0.0], [3.0, 0.0, 1.0]]))
    d = torch.tensor([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]], requires_grad=True)
    out = s.mm(d)
    assert out.tolist() == [[4.0, 40.0], [7.0, 70.0]]  # [2*2, 2*20], [3*1 + 1*4, 3*10 + 1*40]
    out.backward(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert d.grad.tolist() == [[0.0, 3.0], [2.0, 0.0], [0.0, 1.0]]  # S^T @ grad
    other = s.mm(d.detach(), torch.tensor([1.0, 1.0, 1.0]))  # same pattern, other values
    assert other.tolist() == [[2.0, 20.0], [5.0, 50.0]]
    # repeated positions are summed, as in a COO matrix
    dup = gcn_module._SparseMatrix.from_coo(torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0]),
                                             torch.tensor([1.0, 2.0, 5.0]), (2, 2))
    assert dup.mm(torch.eye(2)).tolist() == [[0.0, 3.0], [5.0, 0.0]]


def test_sparse_mm_gradients_and_second_derivatives():
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(5, 4, generator=g, dtype=torch.float64)
    dense[torch.rand(5, 4, generator=g) < 0.6] = 0
    s = gcn_module._SparseMatrix.from_dense(dense)
    d = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(s.mm(d), dense @ d)
    assert torch.autograd.gradcheck(lambda t: s.mm(t), (d,))
    assert torch.autograd.gradgradcheck(lambda t: s.mm(t) ** 2, (d,))  # GraSP differentiates the gradient


def test_uniform_draw_dropout():
    h = torch.ones(100_000)
    torch.manual_seed(0)
    out = gcn_module._dropout(h, 0.5, True)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert abs(float((out > 0).double().mean()) - 0.5) < 0.01
    assert gcn_module._dropout(h, 0.5, False) is h and gcn_module._dropout(h, 0.0, True) is h


# ------------------------------------------------------------------------ the model


def test_fast_path_computes_gcnconv(karate, monkeypatch):
    g = karate.graph
    model = create_model("gcn", karate.spec, seed=0).eval()
    dense_x = torch.randn(g.x.shape, generator=torch.Generator().manual_seed(1))
    for x in (g.x, dense_x):
        assert torch.allclose(model(x, g.edge_index), reference(model, x, g.edge_index), atol=1e-6)
    assert model._feats.value == (None,)  # dense features: the dense first layer
    model(g.x, g.edge_index)
    assert isinstance(model._feats.value[0], gcn_module._SparseMatrix)
    # where products are not sparse (CUDA), the path is PyG's, bit for bit
    monkeypatch.setattr(gcn_module, "_sparse_products", lambda device: False)
    fresh = create_model("gcn", karate.spec, seed=0).eval()
    for x in (g.x, dense_x):
        assert torch.equal(fresh(x, g.edge_index), reference(fresh, x, g.edge_index))


def test_caches_follow_their_tensors(karate):
    g = karate.graph
    model = create_model("gcn", karate.spec, seed=0).eval()
    x, edge_index = g.x.clone(), g.edge_index.clone()
    model(x, edge_index)
    x.mul_(3.0)  # in place: the cached sparse features are stale
    assert torch.allclose(model(x, edge_index), reference(model, x, edge_index), atol=1e-6)
    fewer = edge_index[:, : edge_index.shape[1] // 2]  # another graph, same nodes
    assert torch.allclose(model(x, fewer), reference(model, x, fewer), atol=1e-6)
    edge_index[:, :4] = edge_index[:, 4:8]  # in place
    assert torch.allclose(model(x, edge_index), reference(model, x, edge_index), atol=1e-6)
    import copy
    import pickle

    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin._feats.value is None and twin._adj.value is None  # copies start empty
        assert torch.equal(twin(x, edge_index), model(x, edge_index))


def test_gcn_training_is_reproducible_and_input_dropout_only_touches_nonzeros(karate):
    def run(seed: int) -> dict[str, torch.Tensor]:
        model = create_model("gcn", karate.spec, seed=0)
        fit(model, karate, TrainConfig(optimizer="adam", lr=0.01, iterations=15), seed=seed, device="cpu")
        return weights(model)

    a, b, c = run(3), run(3), run(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    model = create_model("gcn", karate.spec, seed=0).train()
    model(karate.graph.x, karate.graph.edge_index)
    feats = model._feats.value[0]
    assert feats.values.numel() == int(torch.count_nonzero(karate.graph.x))  # one draw per non-zero


@pytest.mark.skipif(not PLANETOID.exists(), reason="shared Planetoid data not present")
def test_cora_takes_the_sparse_path():
    data = load_dataset("cora", root=PLANETOID)
    model = create_model("gcn", data.spec, seed=0).eval()
    g = data.graph
    assert torch.allclose(model(g.x, g.edge_index), reference(model, g.x, g.edge_index), atol=1e-5)
    assert isinstance(model._feats.value[0], gcn_module._SparseMatrix)


# ------------------------------------------------------------------------ evaluation cadence


@pytest.mark.parametrize("eval_every, rows", [(None, [10, 20, 30, 35]), (1, list(range(1, 36))), (7, [7, 14, 21, 28, 35])])
def test_graph_training_evaluates_at_its_cadence(karate, eval_every, rows):
    config = TrainConfig(optimizer="adam", lr=0.01, iterations=35, eval_every=eval_every)
    assert eval_cadence(config, karate) == (eval_every or GRAPH_EVAL_EVERY)
    model = create_model("gcn", karate.spec, seed=0)
    res = fit(model, karate, config, device="cpu", keep_early_stop=True)
    assert [r["iteration"] for r in res.log] == rows
    assert res.early_stop_iteration in rows  # early stopping picks among the evaluated iterations
    best = min(res.log, key=lambda r: r["val_loss"])
    assert res.early_stop_iteration == best["iteration"] and res.early_stop_state is not None


def test_tensor_data_cadence_is_still_one_epoch():
    data = load_dataset("digits")
    config = TrainConfig(epochs=2, batch_size=60)  # 1079 training digits: 18 batches an epoch
    assert eval_cadence(config, data) == 18 and resolved_config(config, data).eval_every == 18


def test_mined_ticket_records_the_cadence_used():
    t = mine("magnitude", model="gcn", dataset="karate", density=0.5, seed=0, device="cpu",
             train_options={"iterations": 20})
    cfg = t.provenance["train_config"]
    assert cfg["eval_every"] == GRAPH_EVAL_EVERY and cfg["iterations"] == 20
    assert TrainConfig.from_dict(cfg).eval_every == GRAPH_EVAL_EVERY  # reads back as it trained
    t1 = mine("magnitude", model="gcn", dataset="karate", density=0.5, seed=0, device="cpu",
              train_options={"iterations": 20, "eval_every": 1})
    assert t1.provenance["train_config"]["eval_every"] == 1
    assert t.provenance["train_config"] == {**t1.provenance["train_config"], "eval_every": GRAPH_EVAL_EVERY}
