"""Tests of ticketlab.training: the shared (masked) training loop, its config and evaluation."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from ticketlab.data.base import DataSpec, GraphData, TensorData
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.masking import MaskedOptimizer
from ticketlab.training import (
    StepInfo,
    TrainResult,
    TrainConfig,
    default_train_config,
    evaluate_model,
    fit,
    lr_at,
    make_optimizer,
    train_summary,
)

# ----------------------------------------------------------------------------- fixtures


def blobs(n_train=120, n_val=60, n_test=60, dim=8, seed=0, sep=3.0) -> TensorData:
    """Two Gaussian blobs at +-sep/2 along a random direction: linearly separable w.h.p."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(dim, generator=g)
    direction /= direction.norm()

    def split(n):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, dim, generator=g) * 0.5 + (y.float() - 0.5)[:, None] * sep * direction
        return x.float(), y.long()

    return TensorData(DataSpec("blobs", "tensor", (dim,), 2), split(n_train), split(n_val), split(n_test))


def mlp(dim=8, hidden=16, dropout=0.0, seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))


def weight_masks(model: nn.Module, density=0.5, seed=1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < density for n, p in model.named_parameters() if n.endswith("weight")}


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


CONFIGS = {
    "sgd_momentum_nesterov_wd": TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam_wd": TrainConfig(optimizer="adam", lr=0.01, weight_decay=0.01),
    "adagrad": TrainConfig(optimizer="adagrad", lr=0.1, weight_decay=0.01),
}

# ----------------------------------------------------------------------------- masking inside train


@pytest.mark.parametrize("name", list(CONFIGS))
def test_pruned_weights_exactly_zero_after_every_step(name):
    data = blobs()
    model = mlp()
    masks = weight_masks(model)
    params_before = {n: p for n, p in model.named_parameters()}
    init = state(model)
    seen = []

    def check(info: StepInfo) -> None:
        assert isinstance(info.optimizer, MaskedOptimizer)
        for n, m in masks.items():
            p = params_before[n]
            assert bool((p[~m] == 0).all()), (info.iteration, n)
            for key, buf in info.optimizer.optimizer.state[p].items():
                if key != "step":
                    assert bool((buf[~m] == 0).all()), (info.iteration, n, key)
        seen.append(info.iteration)

    config = dataclasses.replace(CONFIGS[name], epochs=3, batch_size=20)
    res = fit(model, data, config, masks=masks, device="cpu", callbacks=[check])
    assert seen == list(range(1, 19)) and res.iterations == 18
    # parameter objects keep their identity
    assert {n: id(p) for n, p in model.named_parameters()} == {n: id(p) for n, p in params_before.items()}
    for n, m in masks.items():
        p = dict(model.named_parameters())[n]
        assert bool((p[~m] == 0).all())
        assert bool((p[m] != init[n][m]).all()), "kept weights must change"
    # the caller's masks are untouched and unmasked parameters (biases) train densely
    assert not torch.equal(dict(model.named_parameters())["0.bias"], init["0.bias"])


def test_train_rejects_masks_that_do_not_fit():
    model = mlp()
    with pytest.raises(IncompatibleError, match="mask '0.wieght'"):
        fit(model, blobs(), TrainConfig(), masks={"0.wieght": torch.ones(16, 8, dtype=torch.bool)}, device="cpu")


# ----------------------------------------------------------------------------- determinism


def _trained(seed, data_seed=0, dropout=0.3):
    model = mlp(dropout=dropout)
    cfg = TrainConfig(optimizer="adam", lr=0.01, epochs=3, batch_size=16)
    res = fit(model, blobs(seed=data_seed), cfg, masks=weight_masks(model), seed=seed, device="cpu")
    return state(model), res


def test_same_seed_bit_identical_different_seed_differs():
    a, ra = _trained(seed=5)
    b, rb = _trained(seed=5)
    c, _ = _trained(seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ra.log == [{**row} for row in rb.log]
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_train_leaves_global_rng_untouched():
    model, data = mlp(dropout=0.3), blobs()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, data, TrainConfig(epochs=1, batch_size=30), seed=1, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_negative_seed_is_an_error():
    with pytest.raises(ConfigError, match="seed"):
        fit(mlp(), blobs(), TrainConfig(), seed=-1, device="cpu")


# ----------------------------------------------------------------------------- learning


def test_learns_separable_problem():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    before = evaluate_model(model, blobs(), "test")[1]
    res = fit(model, blobs(), TrainConfig(optimizer="sgd", lr=0.1, epochs=5, batch_size=10), device="cpu")
    assert res.final_test_accuracy >= 0.95 > before
    assert res.final_test_accuracy == evaluate_model(model, blobs(), "test")[1]
    assert res.final_val_accuracy == evaluate_model(model, blobs(), "val")[1]
    assert res.best_val_accuracy == max(r["val_accuracy"] for r in res.log)


def test_log_rows_and_early_stopping_iteration():
    data = blobs(n_train=100)
    model = mlp(hidden=32)
    # Adam with a large rate overfits / oscillates so the minimum is not trivially last
    cfg = TrainConfig(optimizer="adam", lr=0.05, epochs=6, batch_size=25, eval_every=2)
    res = fit(model, data, cfg, device="cpu")
    its = [r["iteration"] for r in res.log]
    assert its == list(range(2, 25, 2))
    assert set(res.log[0]) == {"iteration", "lr", "train_loss", "val_loss", "val_accuracy", "test_accuracy"}
    losses = np.array([r["val_loss"] for r in res.log])
    k = int(np.argmin(losses))
    assert res.early_stop_iteration == its[k]
    assert res.early_stop_val_loss == losses[k] and res.early_stop_test_accuracy == res.log[k]["test_accuracy"]
    assert res.final_iteration == 24 and res.wall_time_s > 0
    summary = res.summary()
    assert summary["early_stop_iteration"] == res.early_stop_iteration and "log" not in summary
    assert all(r["train_loss"] > 0 for r in res.log)


def test_epoch_counting_drop_last_and_iterations_override():
    data = blobs(n_train=25)
    assert fit(mlp(), data, TrainConfig(epochs=2, batch_size=10), device="cpu").iterations == 6
    assert fit(mlp(), data, TrainConfig(epochs=2, batch_size=10, drop_last=True), device="cpu").iterations == 4
    res = fit(mlp(), data, TrainConfig(epochs=2, batch_size=10, iterations=7), device="cpu")
    assert res.iterations == 7 and [r["iteration"] for r in res.log] == [3, 6, 7]


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    "kwargs, total, expected",
    [
        (dict(lr=1.0), 10, {0: 1.0, 9: 1.0}),
        (dict(lr=1.0, schedule="cosine"), 10, {0: 1.0, 5: 0.5, 10: 0.0}),
        (dict(lr=2.0, schedule="cosine"), 4, {1: 1.0 + math.cos(math.pi / 4), 3: 1.0 + math.cos(3 * math.pi / 4)}),
        (dict(lr=0.2, schedule="step", milestones=(3, 6)), 10, {0: 0.2, 2: 0.2, 3: 0.02, 5: 0.02, 6: 0.002, 9: 0.002}),
        (dict(lr=1.0, schedule="step", milestones=(2,), gamma=0.5), 4, {1: 1.0, 2: 0.5}),
        (dict(lr=1.0, warmup_iterations=4), 10, {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0}),
        (dict(lr=1.0, warmup_iterations=2, schedule="step", milestones=(1,)), 5, {0: 0.5, 1: 0.1, 2: 0.1}),
        (dict(lr=1.0, warmup_iterations=2, schedule="cosine"), 4, {0: 0.5, 2: 0.5}),
    ],
)
def test_lr_at_hand_computed(kwargs, total, expected):
    cfg = TrainConfig(**kwargs)
    for t, lr in expected.items():
        assert lr_at(cfg, t, total) == pytest.approx(lr, abs=1e-12), t


def test_train_uses_the_schedule():
    cfg = TrainConfig(lr=0.1, epochs=2, batch_size=20, schedule="step", milestones=(4,), warmup_iterations=2)
    seen = []
    fit(mlp(), blobs(n_train=120), cfg, device="cpu",
          callbacks=[lambda i: seen.append((i.iteration, i.lr, i.optimizer.param_groups[0]["lr"]))])
    assert [(it, lr) for it, lr, _ in seen] == [(t + 1, lr_at(cfg, t, 12)) for t in range(12)]
    assert all(lr == group_lr for _, lr, group_lr in seen)
    assert seen[0][1] == pytest.approx(0.05) and seen[-1][1] == pytest.approx(0.01)


# ----------------------------------------------------------------------------- snapshot / restart


def test_snapshot_and_restart_reproduce_the_uninterrupted_run():
    data = blobs()
    cfg = TrainConfig(optimizer="sgd", lr=0.1, schedule="cosine", epochs=3, batch_size=16)  # 8 its/epoch
    model = mlp()
    init = state(model)
    masks = weight_masks(model)
    full = fit(model, data, cfg, masks=masks, seed=3, snapshot_at=11, device="cpu")
    assert set(full.snapshot) == set(init)
    # restart at iteration 11 from the snapshot: plain SGD has no optimizer state, so the rest
    # of the run (same batches, same rates) must give the very same weights
    model2 = mlp(seed=99)
    model2.load_state_dict(full.snapshot)
    rest = fit(model2, data, cfg, masks=masks, seed=3, start_iteration=11, device="cpu")
    assert rest.iterations == 24 - 11 and rest.final_iteration == 24
    assert all(torch.equal(v, model2.state_dict()[k]) for k, v in model.state_dict().items())
    assert [r["iteration"] for r in rest.log] == [16, 24]
    # snapshot at the start iteration is the (masked) initial state
    model3 = mlp()
    res0 = fit(model3, data, dataclasses.replace(cfg, epochs=1), snapshot_at=0, device="cpu")
    assert all(torch.equal(res0.snapshot[k], init[k]) for k in init)


def test_start_at_total_evaluates_once():
    res = fit(mlp(), blobs(), TrainConfig(epochs=1, batch_size=60), start_iteration=2, device="cpu")
    assert res.iterations == 0 and len(res.log) == 1 and res.log[0]["iteration"] == 2
    assert math.isnan(res.log[0]["train_loss"])


@pytest.mark.parametrize(
    "kw, pattern",
    [(dict(start_iteration=3), "start_iteration"), (dict(snapshot_at=5), "snapshot_at"),
     (dict(start_iteration=1, snapshot_at=0), "snapshot_at")],
)
def test_start_and_snapshot_ranges(kw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        fit(mlp(), blobs(), TrainConfig(epochs=1, batch_size=60), device="cpu", **kw)


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_hand_computed_and_restores_mode():
    x = torch.eye(2)
    y = torch.tensor([0, 1])
    data = TensorData(DataSpec("eye", "tensor", (2,), 2), (x, y), (x, y[[1, 0]]), (x[:0], y[:0]))
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
    lin.train()
    loss, acc = evaluate_model(lin, data, "train", batch_size=1)
    assert acc == 1.0 and loss == pytest.approx(math.log(1 + math.exp(-1)))
    loss, acc = evaluate_model(lin, data, "val")
    assert acc == 0.0 and loss == pytest.approx(math.log(1 + math.exp(1)))
    assert all(math.isnan(v) for v in evaluate_model(lin, data, "test"))
    assert lin.training
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        evaluate_model(lin, data, "dev")


# ----------------------------------------------------------------------------- graph data


def tiny_graph(seed=0) -> GraphData:
    """Two 10-node communities (dense inside, one bridge); labels = community, noisy features."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    edges = [(i, j) for c in (0, 10) for i in range(c, c + 10) for j in range(c, c + 10) if i != j and (i + j) % 3]
    edges += [(0, 10), (10, 0)]
    y = torch.tensor([0] * 10 + [1] * 10)
    x = torch.randn(20, 4, generator=g) + y[:, None].float() * 0.8
    idx = torch.arange(20)
    data = Data(x=x, edge_index=torch.tensor(edges).t().contiguous(), y=y,
                train_mask=(idx % 10) < 4, val_mask=((idx % 10) >= 4) & ((idx % 10) < 7), test_mask=(idx % 10) >= 7)
    return GraphData(DataSpec("tiny", "graph", (4,), 2), data)


class TinyGCN(nn.Module):
    def __init__(self, seed=0):
        from torch_geometric.nn import GCNConv

        super().__init__()
        torch.manual_seed(seed)
        self.conv1, self.conv2 = GCNConv(4, 8), GCNConv(8, 2)

    def forward(self, x, edge_index):
        return self.conv2(torch.relu(self.conv1(x, edge_index)), edge_index)


def test_graph_training_full_batch_masked():
    data = tiny_graph()
    model = TinyGCN()
    masks = {n: m for n, m in weight_masks(model, density=0.7).items() if "lin" in n}
    assert set(masks) == {"conv1.lin.weight", "conv2.lin.weight"}
    res = fit(model, data, TrainConfig(optimizer="adam", lr=0.05, weight_decay=5e-4, iterations=30),
                masks=masks, device="cpu")
    # graph data evaluates every GRAPH_EVAL_EVERY (10) steps and at the end, not after every step
    assert res.iterations == 30 and [r["iteration"] for r in res.log] == [10, 20, 30]
    assert res.final_test_accuracy == 1.0
    for n, m in masks.items():
        assert bool((dict(model.named_parameters())[n][~m] == 0).all())
    val_loss, val_acc = evaluate_model(model, data, "val")
    assert (val_loss, val_acc) == (res.final_val_loss, res.final_val_accuracy)


def test_graph_training_deterministic():
    def run():
        model = TinyGCN()
        fit(model, tiny_graph(), TrainConfig(optimizer="adam", lr=0.05, iterations=5), seed=2, device="cpu")
        return state(model)

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(schedule="linear"), "unknown schedule 'linear'"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(momentum=1.0), "momentum must be in [0, 1)"),
        (dict(optimizer="adam", momentum=0.9), "momentum applies only to optimizer sgd"),
        (dict(nesterov=True), "nesterov needs optimizer sgd with momentum > 0"),
        (dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
        (dict(weight_decay="1e-4"), "weight_decay must be >= 0"),
        (dict(momentum="0.9"), "momentum must be in [0, 1)"),
        (dict(milestones=(5,)), "milestones applies only to schedule step"),
        (dict(schedule="step", milestones=(5, 3)), "milestones must be strictly increasing"),
        (dict(schedule="step", milestones=(0,)), "milestones must be strictly increasing"),
        (dict(schedule="step", milestones=(2.5,)), "milestones must be integer"),
        (dict(schedule="step", milestones=3), "milestones must be a list"),
        (dict(gamma=0), "gamma must be > 0"),
        (dict(warmup_iterations=-1), "warmup_iterations must be an integer >= 0"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(epochs=1.5), "epochs must be a positive integer"),
        (dict(iterations=0), "iterations must be a positive integer"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(eval_every=0), "eval_every must be a positive integer"),
        (dict(eval_batch_size=-3), "eval_batch_size must be a positive integer"),
    ],
)
def test_config_validation(kwargs, pattern):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)
    msg = str(err.value)
    assert pattern in msg and "\n" not in msg and not msg.endswith(".")


def test_config_fields_have_help_and_round_trip():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name
        if f.type in ("bool",):
            assert f.default is False, f.name
    cfg = TrainConfig(schedule="step", milestones=[10, 20], warmup_iterations=3)
    assert cfg.milestones == (10, 20)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown training option 'learning_rate'"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]


def test_make_optimizer_kinds():
    m = mlp()
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    opt = make_optimizer(m, cfg)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    assert opt.param_groups[0]["fused"]  # CPU float32: the fused kernel is used
    assert isinstance(make_optimizer(m, TrainConfig(optimizer="adam", lr=1e-3)), torch.optim.Adam)
    masked = make_optimizer(m, TrainConfig(optimizer="adagrad", lr=1e-3), weight_masks(m))
    assert isinstance(masked, MaskedOptimizer) and isinstance(masked.optimizer, torch.optim.Adagrad)


@pytest.mark.parametrize(
    "model, dataset, expected",
    [
        ("lenet_300_100", "mnist", dict(optimizer="adam", lr=1.2e-3, batch_size=60, iterations=50_000)),
        ("conv2", "cifar10", dict(optimizer="adam", lr=2e-4, batch_size=60, iterations=20_000)),
        ("conv4", "cifar10", dict(optimizer="adam", lr=3e-4, batch_size=60, iterations=25_000)),
        ("conv6", "cifar10", dict(optimizer="adam", lr=3e-4, batch_size=60, iterations=30_000)),
        ("vgg19", "cifar10", dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="step")),
        ("resnet20", "cifar10",
         dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=(20_000, 25_000))),
        ("gcn", "cora", dict(optimizer="adam", lr=0.01, weight_decay=5e-4, iterations=200)),
        ("simple_cnn", "mnist1d", dict(optimizer="adagrad")),
        ("lenet_300_100", "digits", dict(optimizer="adam", lr=1.2e-3, epochs=20, iterations=None)),
    ],
)
def test_default_train_config(model, dataset, expected):
    cfg = default_train_config(model, dataset)
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key


def test_default_train_config_for_every_registered_model():
    from ticketlab.models import list_models

    names = list_models()
    assert names, "no models registered"
    for name in names:
        for dataset in ("digits", "mnist", "cifar10", "cora"):
            assert isinstance(default_train_config(name, dataset), TrainConfig)


def test_train_trainable_regularizer_and_log_extra():
    # only `trainable` moves; the regularizer enters the logged loss; log_extra adds columns
    from ticketlab.data.base import DataSpec, TensorData

    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, generator=g)
    y = (x[:, 0] > 0).long()
    data = TensorData(DataSpec("toy", "tensor", (3,), 2), (x, y), (x, y), (x, y))
    lin = torch.nn.Linear(3, 2)
    bias0 = lin.bias.detach().clone()
    cfg = TrainConfig(optimizer="sgd", lr=0.1, epochs=1, batch_size=20)
    res = fit(lin, data, cfg, trainable={"weight": lin.weight}, regularizer=lambda: torch.tensor(5.0),
                log_extra=lambda: {"answer": 42.0}, device="cpu")
    assert torch.equal(lin.bias, bias0)
    plain = fit(torch.nn.Linear(3, 2), data, cfg, device="cpu")
    assert res.log[-1]["answer"] == 42.0 and "answer" not in plain.log[-1]
    assert res.log[-1]["train_loss"] > 5.0 > plain.log[-1]["train_loss"]
    with pytest.raises(IncompatibleError, match="not a parameter of the model"):
        fit(lin, data, cfg, trainable={"w": torch.nn.Parameter(torch.zeros(2))}, device="cpu")


def test_train_summary_lives_in_training_and_imp_does_not_import_the_runner():
    import ast
    from pathlib import Path

    import ticketlab.miners.imp as imp

    tree = ast.parse(Path(imp.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "ticketlab.mining" not in imported
    r = TrainResult(0.9, 0.8, 0.5, 0.85, 100, 0.4, 0.88, 200, 200, 1.5)
    assert train_summary(r)["test_accuracy"] == 0.9


def test_keep_early_stop_equals_retraining_to_that_iteration():
    data = blobs(sep=1.0, n_train=40)  # overlapping blobs, a small training set: it overfits
    cfg = TrainConfig(optimizer="adam", lr=0.2, epochs=30, batch_size=10)
    torch.manual_seed(0)
    init = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    a = copy.deepcopy(init)
    res = fit(a, data, cfg, seed=3, device="cpu", keep_early_stop=True)
    assert res.early_stop_state is not None and "early_stop_state" not in res.summary()
    b = copy.deepcopy(init)  # retrain from the same init for exactly early_stop_iteration steps
    fit(b, data, TrainConfig(**{**cfg.to_dict(), "iterations": res.early_stop_iteration}), seed=3, device="cpu")
    assert 0 < res.early_stop_iteration < res.final_iteration  # a real early stop, not the last weights
    for k, v in b.state_dict().items():
        assert torch.equal(res.early_stop_state[k], v), k


# ------------------------------------------------------------------ test_eval (issue 23 item 4)
def test_test_eval_stops_gives_the_exact_early_stop_and_final_accuracies():
    """The default scores the test split only at new validation minima and at the end: the
    early-stop and final test accuracies equal those of scoring it every time; other rows are NaN."""
    import math

    from ticketlab.data import load_dataset
    from ticketlab.models import create_model
    from ticketlab.training import TrainConfig, fit

    data = load_dataset("digits", seed=0)
    out = {}
    for mode in ("every", "stops"):
        net = create_model("lenet_300_100", data.spec, seed=0)
        cfg = TrainConfig(optimizer="adam", lr=1.2e-3, epochs=6, eval_every=5, test_eval=mode)
        out[mode] = fit(net, data, cfg, seed=0, device="cpu")
    every, stops = out["every"], out["stops"]
    assert [r["val_loss"] for r in every.log] == [r["val_loss"] for r in stops.log]
    assert stops.early_stop_iteration == every.early_stop_iteration
    assert stops.early_stop_test_accuracy == every.early_stop_test_accuracy
    assert stops.final_test_accuracy == every.final_test_accuracy
    best = math.inf
    for e, s in zip(every.log, stops.log):
        scored = s["val_loss"] < best or s is stops.log[-1]
        best = min(best, s["val_loss"])
        assert (s["test_accuracy"] == e["test_accuracy"]) if scored else math.isnan(s["test_accuracy"])
    assert any(math.isnan(r["test_accuracy"]) for r in stops.log)  # the saving is real here
    assert not any(math.isnan(r["test_accuracy"]) for r in every.log)


def test_test_eval_is_validated_and_graph_data_scores_every_split():
    import math

    import pytest

    from ticketlab.data import load_dataset
    from ticketlab.errors import ConfigError
    from ticketlab.models import create_model
    from ticketlab.training import TrainConfig, fit

    with pytest.raises(ConfigError, match="test_eval must be one of stops, every"):
        TrainConfig(test_eval="sometimes")
    data = load_dataset("karate", seed=0)
    net = create_model("gcn", data.spec, seed=0)
    res = fit(net, data, TrainConfig(optimizer="adam", lr=0.01, iterations=30), seed=0, device="cpu")
    assert not any(math.isnan(r["test_accuracy"]) for r in res.log)  # one forward pass scores them all
