"""Tests of the model registry: every registered model builds, runs, seeds, lists its prunable
weights and describes its topology consistently; known weight counts from the papers; errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError, IncompatibleError, UnknownNameError
from ticketlab.models import (
    create_model,
    get_model_info,
    list_models,
    model_topology,
    prunable_parameters,
    register_model,
)

CIFAR = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
DIGITS = DataSpec("digits", "tensor", (1, 8, 8), 10)
MNIST = DataSpec("mnist", "tensor", (1, 28, 28), 10)
MNIST1D = DataSpec("mnist1d", "tensor", (40,), 10)
GRAPH = DataSpec("tiny-graph", "graph", (5,), 3)

ALL = list_models()


def big_spec(name: str) -> DataSpec:
    """CIFAR-shaped for tensor models, a tiny graph for graph models."""
    return GRAPH if get_model_info(name).kind == "graph" else CIFAR


def small_spec(name: str) -> DataSpec:
    """The smallest spec a model accepts: 8x8 digits where possible (fast seeding tests)."""
    info = get_model_info(name)
    if info.kind == "graph":
        return GRAPH
    if info.min_size <= 8:
        return DIGITS
    return DataSpec("small-images", "tensor", (1, info.min_size, info.min_size), 10)


def specs_for(name: str) -> list[DataSpec]:
    out = [big_spec(name)]
    if get_model_info(name).kind != "graph" and get_model_info(name).min_size <= 8:
        out.append(DIGITS)
    return out


def run(model: nn.Module, spec: DataSpec, n: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *spec.input_shape, generator=gen)
    if spec.kind == "graph":
        edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 0], [1, 0, 2, 1, 3, 2, 4, 3, 0, 4]])
        return model(x, edge_index)
    return model(x)


def n_weights(model: nn.Module) -> int:
    return sum(p.numel() for p in prunable_parameters(model).values())


# ---- registry contents -----------------------------------------------------------------------


def test_every_family_is_registered():
    expected = {"lenet_300_100", "lenet5", "conv2", "conv4", "conv6", "simple_cnn", "vgg11",
                "vgg16", "vgg19", "resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "gcn"}
    assert expected <= set(ALL)
    assert list_models("vgg*") == ["vgg11", "vgg16", "vgg19"]
    assert list_models("nothing*") == []


def test_model_info():
    info = get_model_info("vgg16")
    assert (info.name, info.kind, info.min_size) == ("vgg16", "image", 16)
    assert "VGG-16" in info.description
    assert get_model_info("gcn").kind == "graph"
    assert get_model_info("lenet_300_100").kind == "vector"
    assert get_model_info("lenet_300_100").min_size == 1


# ---- invariants over every registered model ----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_forward_output_shape(name):
    for spec in specs_for(name):
        model = create_model(name, spec, seed=0)
        n = 5 if spec.kind == "graph" else 2  # graph: one row per node
        out = run(model, spec, n)
        assert out.shape == (n, spec.num_classes), (name, spec.name)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_seed_gives_identical_params_and_leaves_global_rng_alone(name):
    spec = small_spec(name)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = create_model(name, spec, seed=7)
    assert torch.equal(torch.get_rng_state(), before), "create_model(seed=...) moved the global RNG"
    torch.manual_seed(999)  # a different global state must not matter
    b = create_model(name, spec, seed=7)
    c = create_model(name, spec, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    weights = prunable_parameters(a)
    assert all(not torch.equal(sa[k], sc[k]) for k in weights), "different seeds, same weights"


@pytest.mark.parametrize("name", ALL)
def test_prunable_parameters_are_layer_weights_in_order(name):
    model = create_model(name, small_spec(name), seed=0)
    params = prunable_parameters(model)
    order = [n for n, _ in model.named_parameters()]
    idx = [order.index(n) for n in params]
    assert idx == sorted(idx), "not in named_parameters order"
    named = dict(model.named_parameters())
    assert all(named[n] is p for n, p in params.items())
    # never biases or batch norm
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for p in m.parameters()}
    assert all(n.endswith("weight") and p.dim() >= 2 and id(p) not in norm_ids
               for n, p in params.items())
    # one per Linear / Conv / GCN layer (a GCNConv counts once, via its inner lin)
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) or type(m).__name__ == "GCNConv"]
    assert len(params) == len(layers) >= 2
    names = list(params)
    assert list(prunable_parameters(model, first_layer=False)) == names[1:]
    assert list(prunable_parameters(model, last_layer=False)) == names[:-1]
    assert list(prunable_parameters(model, first_layer=False, last_layer=False)) == names[1:-1]


def check_topology(name: str, model: nn.Module, spec: DataSpec, topo: dict) -> None:
    """Independent check of the topology contract (common brief)."""
    assert json.loads(json.dumps(topo)) == topo, "not JSON-serialisable"
    units = topo["tensors"]
    params = prunable_parameters(model)
    param_edges = [e for e in topo["edges"] if not e.get("identity")]
    assert sorted(e["param"] for e in param_edges) == sorted(params)  # each exactly once
    for e in topo["edges"]:
        assert e["src"] in units and e["dst"] in units and e["src"] != e["dst"]
        if e.get("identity"):
            assert set(e) == {"identity", "src", "dst"} and units[e["src"]] == units[e["dst"]]
            continue
        w = params[e["param"]]
        assert e["kind"] in ("linear", "conv", "gcn") and e["group"] >= 1
        if e["kind"] == "conv":
            assert e["group"] == 1 and tuple(w.shape[:2]) == (units[e["dst"]], units[e["src"]])
        else:
            assert tuple(w.shape) == (units[e["dst"]], units[e["src"]] * e["group"])
    # input and output
    if get_model_info(name).kind in ("image", "graph"):  # units: channels / node features
        assert units[topo["input"]] == spec.input_shape[0]
    else:
        assert units[topo["input"]] == math.prod(spec.input_shape)
    assert units[topo["output"]] == spec.num_classes
    assert not any(e["src"] == topo["output"] for e in topo["edges"])
    # a DAG in which every tensor lies on a path from the input to the output
    succ = {t: {e["dst"] for e in topo["edges"] if e["src"] == t} for t in units}
    reach, todo = {topo["input"]}, [topo["input"]]
    while todo:
        for nxt in succ[todo.pop()] - reach:
            reach.add(nxt)
            todo.append(nxt)
    assert reach == set(units)
    pred_reach, todo = {topo["output"]}, [topo["output"]]
    while todo:
        t = todo.pop()
        for e in topo["edges"]:
            if e["dst"] == t and e["src"] not in pred_reach:
                pred_reach.add(e["src"])
                todo.append(e["src"])
    assert pred_reach == set(units)


@pytest.mark.parametrize("name", ALL)
def test_topology_is_consistent(name):
    for spec in specs_for(name):
        model = create_model(name, spec, seed=0)
        check_topology(name, model, spec, model_topology(model, spec))


# ---- hand-computed topologies ----------------------------------------------------------------


def test_topology_lenet_300_100_on_digits():
    topo = model_topology(create_model("lenet_300_100", DIGITS), DIGITS)
    assert topo == {
        "tensors": {"input": 64, "t1": 300, "t2": 100, "t3": 10},
        "edges": [
            {"param": "fc1.weight", "src": "input", "dst": "t1", "kind": "linear", "group": 1, "shape": [300, 64]},
            {"param": "fc2.weight", "src": "t1", "dst": "t2", "kind": "linear", "group": 1, "shape": [100, 300]},
            {"param": "fc3.weight", "src": "t2", "dst": "t3", "kind": "linear", "group": 1, "shape": [10, 100]},
        ],
        "input": "input",
        "output": "t3",
    }


def test_topology_conv2_flatten_group():
    # 8x8 -> one 2x2 pool -> 4x4, so each of the 64 channels owns 16 columns of fc1
    topo = model_topology(create_model("conv2", DIGITS), DIGITS)
    assert topo["tensors"] == {"input": 1, "t1": 64, "t2": 64, "t3": 256, "t4": 256, "t5": 10}
    assert [(e["param"], e["kind"], e["group"]) for e in topo["edges"]] == [
        ("conv1.weight", "conv", 1), ("conv2.weight", "conv", 1), ("fc1.weight", "linear", 16),
        ("fc2.weight", "linear", 1), ("fc3.weight", "linear", 1)]
    # lenet5 on 28x28: two pools -> 7x7 per channel
    topo = model_topology(create_model("lenet5", MNIST), MNIST)
    assert topo["edges"][2] == {"param": "fc1.weight", "src": "t2", "dst": "t3",
                                "kind": "linear", "group": 49, "shape": [120, 16 * 49]}


def test_topology_conv_group_matches_torch_flatten():
    # channel c owns columns c*group .. (c+1)*group - 1: zeroing them must remove channel c
    model = create_model("conv2", DIGITS, seed=0).eval()
    group = model_topology(model, DIGITS)["edges"][2]["group"]
    feats = torch.randn(1, 64, 4, 4)
    c = 5
    cut = feats.clone()
    cut[:, c] = 0
    w = model.fc1.weight.detach().clone()
    w[:, c * group:(c + 1) * group] = 0
    assert torch.allclose(feats.flatten(1) @ w.T, cut.flatten(1) @ model.fc1.weight.detach().T)


def test_topology_resnet20_shortcuts():
    topo = model_topology(create_model("resnet20", CIFAR), CIFAR)
    identity = [e for e in topo["edges"] if e.get("identity")]
    downsample = [e for e in topo["edges"] if "shortcut" in e.get("param", "")]
    assert len(identity) == 7 and len(downsample) == 2  # 9 blocks, 2 change shape
    by_param = {e["param"]: e for e in topo["edges"] if "param" in e}
    units = topo["tensors"]
    for i in range(9):
        c1, c2 = by_param[f"blocks.{i}.conv1.weight"], by_param[f"blocks.{i}.conv2.weight"]
        assert c1["dst"] == c2["src"]
        short = by_param.get(f"blocks.{i}.shortcut.0.weight") or identity.pop(0)
        assert (short["src"], short["dst"]) == (c1["src"], c2["dst"])  # skips the block
        assert units[c2["dst"]] == [16, 32, 64][i // 3]
    assert {e["param"] for e in downsample} == {"blocks.3.shortcut.0.weight",
                                                "blocks.6.shortcut.0.weight"}
    assert by_param["fc.weight"]["src"] == by_param["blocks.8.conv2.weight"]["dst"]


def test_topology_of_unregistered_chain_and_broken_topology():
    spec = DataSpec("v", "tensor", (4,), 2)
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert model_topology(seq, spec)["tensors"] == {"input": 4, "t1": 3, "t2": 2}

    class Broken(nn.Sequential):
        def topology(self, spec):
            return {"tensors": {"input": 4, "t1": 3}, "input": "input", "output": "t1",
                    "edges": [{"param": "0.weight", "src": "input", "dst": "t1",
                               "kind": "linear", "group": 1}]}  # misses 2.weight

    with pytest.raises(RuntimeError, match="exactly one edge"):
        model_topology(Broken(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), spec)


# ---- known sizes from the papers -------------------------------------------------------------


def test_lenet_300_100_has_266200_weights():
    assert n_weights(create_model("lenet_300_100", MNIST)) == 784 * 300 + 300 * 100 + 100 * 10
    assert n_weights(create_model("lenet_300_100", MNIST)) == 266_200  # Frankle & Carbin Fig. 2


def test_conv_weight_counts_match_frankle_carbin_fig2():
    def conv_net(channels, pools, fc=(256, 256, 10)):
        total, c_in = 0, 3
        for c in channels:
            total += c_in * c * 9
            c_in = c
        widths = [c_in * (32 // 2**pools) ** 2, *fc]
        return total + sum(a * b for a, b in zip(widths, widths[1:]))

    exact = {"conv2": conv_net([64, 64], 1), "conv4": conv_net([64, 64, 128, 128], 2),
             "conv6": conv_net([64, 64, 128, 128, 256, 256], 3)}
    assert exact == {"conv2": 4_300_992, "conv4": 2_425_024, "conv6": 2_261_184}
    for name, count in exact.items():
        assert n_weights(create_model(name, CIFAR)) == count
    # the paper's rounded figures (its 1.7M for Conv-6 does not follow from its layer list)
    assert round(exact["conv2"] / 1e6, 1) == 4.3 and round(exact["conv4"] / 1e6, 1) == 2.4


def test_resnet_and_vgg_weight_counts():
    assert n_weights(create_model("resnet20", CIFAR)) == 270_896  # ~0.27M (He et al. 2016)
    assert round(n_weights(create_model("vgg19", CIFAR)) / 1e6, 1) == 20.0  # open_lth VGG-19
    assert round(n_weights(create_model("resnet18", CIFAR)) / 1e6, 1) == 11.2


def test_cifar_resnet_family_depths_counts_and_shared_builder():
    # He et al. 2016, Table 6: 0.27M, 0.46M, 0.66M, 0.85M parameters at depths 20, 32, 44, 56
    assert list_models("resnet[2-5]*") == ["resnet20", "resnet32", "resnet44", "resnet56"]
    counts = {n: n_weights(create_model(n, CIFAR)) for n in ("resnet20", "resnet32", "resnet44", "resnet56")}
    assert counts == {"resnet20": 270_896, "resnet32": 464_432, "resnet44": 657_968, "resnet56": 851_504}
    assert [round(c / 1e6, 2) for c in counts.values()] == [0.27, 0.46, 0.66, 0.85]
    for depth, n in ((20, 3), (32, 5), (44, 7), (56, 9)):
        model = create_model(f"resnet{depth}", DIGITS, width=4)
        convs = [p for p in prunable_parameters(model) if p != "fc.weight" and "shortcut" not in p]
        assert len(model.blocks) == 3 * n and len(convs) + 1 == depth  # 6n + 2 layers: convs and fc
        # downsampling (1x1 shortcut conv) exactly at block 0 of stages 2 and 3
        assert [i for i, b in enumerate(model.blocks) if len(b.shortcut)] == [n, 2 * n]
        assert [b.conv2.out_channels for b in model.blocks[::n]] == [4, 8, 16]
        assert get_model_info(f"resnet{depth}").description.startswith(f"ResNet-{depth} for CIFAR")
    # one builder, one init: the stem and the first block are the same draw at every depth
    a, b = create_model("resnet20", CIFAR, seed=7), create_model("resnet56", CIFAR, seed=7)
    assert torch.equal(a.conv1.weight, b.conv1.weight) and torch.equal(a.blocks[0].conv1.weight, b.blocks[0].conv1.weight)


# ---- individual models -----------------------------------------------------------------------


def test_simple_cnn_sigmoid_output_and_logits_option():
    model = create_model("simple_cnn", DIGITS, seed=3)
    raw = create_model("simple_cnn", DIGITS, seed=3, logits=True)
    out, z = run(model, DIGITS), run(raw, DIGITS)
    assert ((out > 0) & (out < 1)).all()
    assert torch.allclose(out, torch.sigmoid(z))


def test_gcn_layers_and_eval_determinism():
    model = create_model("gcn", GRAPH, seed=0)
    assert list(prunable_parameters(model)) == ["conv1.lin.weight", "conv2.lin.weight", "fc.weight"]
    assert model.conv1.lin.weight.shape == (64, 5)  # default hidden size 64
    model.eval()
    assert torch.equal(run(model, GRAPH, 5), run(model, GRAPH, 5))
    small = create_model("gcn", GRAPH, seed=0, hidden=8)
    topo = model_topology(small, GRAPH)
    assert topo["tensors"] == {"input": 5, "t1": 8, "t2": 8, "t3": 3}
    assert [e["kind"] for e in topo["edges"]] == ["gcn", "gcn", "linear"]


def test_vector_model_accepts_1d_input():
    model = create_model("lenet_300_100", MNIST1D, seed=0)
    assert run(model, MNIST1D).shape == (2, 10)
    assert model_topology(model, MNIST1D)["tensors"]["input"] == 40


def test_init_option():
    a = create_model("lenet_300_100", DIGITS, seed=1)
    b = create_model("lenet_300_100", DIGITS, seed=1, init="xavier_normal")
    c = create_model("lenet_300_100", DIGITS, seed=1, init="xavier_normal")
    assert not torch.equal(a.fc1.weight, b.fc1.weight)
    assert torch.equal(b.fc1.weight, c.fc1.weight)
    assert torch.equal(a.fc1.bias, b.fc1.bias)  # only the prunable weights are re-initialised
    std = math.sqrt(2 / (64 + 300))  # Glorot normal std of fc1
    assert abs(b.fc1.weight.std().item() - std) < 0.1 * std
    with pytest.raises(ConfigError, match="init 'glorot'"):
        create_model("lenet_300_100", DIGITS, init="glorot")


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, spec, message",
    [
        ("gcn", DIGITS, "model 'gcn' needs a graph data set (karate, cora, citeseer), but 'digits' is a tensor data set"),
        ("vgg16", DIGITS, "model 'vgg16' needs images of at least 16x16 (it halves the "
                          "resolution 4 times); 'digits' has 8x8"),
        ("conv2", MNIST1D, "model 'conv2' needs images of shape (C, H, W), but 'mnist1d' has "
                           "input shape (40,)"),
        ("lenet_300_100", GRAPH, "model 'lenet_300_100' needs a tensor data set (digits, mnist1d, mnist5k, mnist, "
                                 "fashion_mnist, cifar10, cifar100), but 'tiny-graph' is a graph data set"),
        ("resnet18", DataSpec("tiny", "tensor", (3, 4, 4), 10), "at least 8x8"),
    ],
)
def test_incompatible_model_and_data(name, spec, message):
    with pytest.raises(IncompatibleError) as err:
        create_model(name, spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_model_name_lists_choices():
    with pytest.raises(UnknownNameError, match=r"unknown model 'resnet9000': did you mean 'resnet20'.* \(choose from: .*conv2"):
        create_model("resnet9000", CIFAR)
    with pytest.raises(UnknownNameError):
        get_model_info("resnet9000")


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="model 'gcn' has no option hiden"):
        create_model("gcn", GRAPH, hiden=3)
    with pytest.raises(ConfigError, match="channels needs 2 widths"):
        create_model("simple_cnn", DIGITS, channels=(8,))


def test_duplicate_and_bad_kind_registration():
    before = list_models()
    with pytest.raises(ConfigError, match="already registered"):
        register_model("lenet_300_100", kind="vector")(lambda spec: nn.Linear(1, 1))
    with pytest.raises(ConfigError, match="model kind 'sequence'"):
        register_model("new_model", kind="sequence")
    assert list_models() == before


def test_init_and_zero_bias():
    spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
    own = create_model("vgg11", spec, seed=0)
    ref = create_model("vgg11", spec, seed=0, init="kaiming_normal", zero_bias=True)
    assert all(not p.detach().any() for n, p in ref.named_parameters() if n.endswith("bias"))
    assert any(p.detach().any() for n, p in own.named_parameters() if n.endswith("bias") and "conv" in n)
    w = ref.conv8.weight  # kaiming_normal (fan_in, gain sqrt(2)): std = sqrt(2 / fan_in)
    fan_in = w[0].numel()
    assert abs(float(w.detach().std()) - math.sqrt(2 / fan_in)) < 0.05 * math.sqrt(2 / fan_in)
    bn = [p for n, p in ref.named_parameters() if n.startswith("bn")]
    assert bn and all(torch.equal(a, b) for a, b in zip(bn, [p for n, p in own.named_parameters() if n.startswith("bn")]))
    with pytest.raises(ConfigError, match="init 'he'"):
        create_model("vgg11", spec, init="he")


def test_cli_init_choices_match_the_models_registry():
    from ticketlab.cli.common import INIT_CHOICES
    from ticketlab.models import INITS

    assert tuple(INIT_CHOICES) == tuple(INITS)
