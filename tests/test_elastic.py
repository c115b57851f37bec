"""Elastic lottery tickets (Chen et al. 2021): the block rule, transfer on hand-built masks,
round trips, exact densities, the file round trip and the errors."""

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab.data.base import DataSpec
from ticketlab.elastic import RULE, block_sources, parameter_sources, transfer
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.models import create_model, prunable_parameters
from ticketlab.models.resnet import CIFAR_RESNETS
from ticketlab.ticket import Ticket

DIGITS = DataSpec("digits", "tensor", (1, 8, 8), 10)
SPEC = {"name": "digits", "kind": "tensor", "input_shape": [1, 8, 8], "num_classes": 10}
WIDTH = 2


def shapes(model):
    return {n: tuple(p.shape) for n, p in prunable_parameters(create_model(model, DIGITS, width=WIDTH)).items()}


def hand_ticket(model="resnet20", *, drop=(), seed=0):
    """Every parameter gets its own random mask and its own init values, so a copy can be traced."""
    rng = np.random.default_rng(seed)
    sh = {n: s for n, s in shapes(model).items() if n not in drop}
    masks = {n: rng.random(s) < 0.3 + 0.05 * (i % 7) for i, (n, s) in enumerate(sh.items())}
    init = {n: rng.standard_normal(s).astype(np.float32) for n, s in sh.items()}
    prov = {"model": model, "model_config": {"width": WIDTH}, "data_spec": SPEC, "dataset": "digits", "seed": 0,
            "method": "hand", "test_accuracy": 0.5, "target_density": 0.3}
    return Ticket(masks=masks, provenance=prov, weights={"init": init})


# ---- the rule: the authors' mapping_inter strings (ElasticLTH run scripts, ResNets on CIFAR-10) ----

def parse(text, n_dst):
    out = [None] * n_dst
    for part in text.split(";"):
        s, ts = part.split(":")
        for t in ts.split(","):
            out[int(t)] = int(s)
    return out


@pytest.mark.parametrize("src, dst, mapping", [
    (3, 5, "0:0;1:1,2;2:3,4"),                       # 20 -> 32
    (3, 7, "0:0;1:1,2,3;2:4,5,6"),                   # 20 -> 44
    (3, 9, "0:0;1:1,2,3,4;2:5,6,7,8"),               # 20 -> 56
    (5, 7, "0:0;1:1,2;2:3,4;3:5;4:6"),               # 32 -> 44 (the first blocks get the extra copy)
    (5, 9, "0:0;1:1,2;2:3,4;3:5,6;4:7,8"),           # 32 -> 56
    (7, 9, "0:0;1:1,2;2:3,4;3:5;4:6;5:7;6:8"),       # 44 -> 56
    (5, 3, "0:0;1:1;3:2"),                           # 32 -> 20
    (7, 3, "0:0;1:1;4:2"),                           # 44 -> 20
    (9, 3, "0:0;1:1;5:2"),                           # 56 -> 20
    (7, 5, "0:0;1:1;2:2;3:3;5:4"),                   # 44 -> 32
    (9, 5, "0:0;1:1;3:2;5:3;7:4"),                   # 56 -> 32
    (9, 7, "0:0;1:1;2:2;3:3;4:4;5:5;7:6"),           # 56 -> 44
    (3, 3, "0:0;1:1;2:2"),
])
def test_rule_is_the_authors_inter_mapping(src, dst, mapping):
    assert block_sources(src, dst) == parse(mapping, dst)
    assert block_sources(src, dst, mapping=mapping) == parse(mapping, dst)


def test_rule_keeps_block_0_and_the_order_of_blocks():
    for src in range(1, 12):
        for dst in range(1, 12):
            if src == 1 and dst > 1:
                continue
            out = block_sources(src, dst)
            assert len(out) == dst and out[0] == 0 and 0 not in out[1:]
            assert out == sorted(out)                         # blocks never re-ordered
            if dst >= src:
                assert set(out) == set(range(src))           # stretching drops nothing
            else:
                assert len(set(out)) == dst                  # squeezing copies nothing


def test_explicit_mapping_other_strategies():
    assert block_sources(3, 5, mapping="0:0;1:1,3;2:2,4") == [0, 1, 2, 1, 2]     # the paper's head1 for 20 -> 32
    assert block_sources(3, 5, mapping="0:0; 1:1; 2:2,3,4") == [0, 1, 2, 2, 2]  # tail1, spaces allowed


@pytest.mark.parametrize("mapping, message", [
    ("0:0;1:1", "gives target block 2 no source"),
    ("0:0;1:1,2;2:2,3,4", "gives target block 2 two sources"),
    ("0:0;3:1,2;2:3,4", "names source block 3"),
    ("0:0;1:1,2;2:3,9", "names target block 9"),
    ("1:0;0:1,2;2:3,4", "must send block 0"),
    ("0:0;1:1;2:2,3,4,", "is not of the form"),
    ("zero", "is not of the form"),
])
def test_bad_mapping_is_one_line(mapping, message):
    with pytest.raises(ConfigError, match=message) as info:
        block_sources(3, 5, mapping=mapping)
    assert "\n" not in str(info.value)


# ---- transfer on hand-built masks ----------------------------------------------------------------

def test_stretch_20_to_32_copies_blocks_by_the_rule():
    t = hand_ticket()
    out = transfer(t, "resnet32")
    assert list(out.masks) == list(shapes("resnet32"))       # every target weight, in model order
    expected = {0: 0, 1: 1, 2: 1, 3: 2, 4: 2}                   # target block -> source block, each stage
    for stage in range(3):
        for j, i in expected.items():
            for part in ("conv1", "conv2", "shortcut.0"):
                name = f"blocks.{stage * 5 + j}.{part}.weight"
                src = f"blocks.{stage * 3 + i}.{part}.weight"
                assert (name in out.masks) == (src in t.masks)
                if name in out.masks:
                    assert np.array_equal(out.masks[name], t.masks[src]), name
                    assert np.array_equal(out.weights["init"][name], t.weights["init"][src])
    for name in ("conv1.weight", "fc.weight"):                  # stem and head unchanged
        assert np.array_equal(out.masks[name], t.masks[name])
    # the downsampling blocks' shortcuts are exactly those of blocks 5 and 10 (stages 2 and 3, block 0)
    assert [n for n in out.masks if "shortcut" in n] == ["blocks.5.shortcut.0.weight", "blocks.10.shortcut.0.weight"]
    rec = out.provenance["transforms"][-1]
    assert rec["rule"] == RULE and rec["direction"] == "stretch" and rec["blocks_per_stage"] == [3, 5]
    assert rec["blocks"]["blocks.7"] == "blocks.4" and rec["blocks"]["blocks.14"] == "blocks.8"
    assert rec["copied_unchanged"] == ["conv1.weight", "fc.weight"]


def test_squeeze_32_to_20_keeps_blocks_1_and_3():
    t = hand_ticket("resnet32", seed=3)
    out = transfer(t, "resnet20")
    for stage in range(3):
        for j, i in {0: 0, 1: 1, 2: 3}.items():
            name, src = f"blocks.{stage * 3 + j}.conv2.weight", f"blocks.{stage * 5 + i}.conv2.weight"
            assert np.array_equal(out.masks[name], t.masks[src])
    assert out.provenance["transforms"][-1]["direction"] == "squeeze"


@pytest.mark.parametrize("other", ["resnet32", "resnet44", "resnet56"])
def test_round_trip_from_20_gives_the_masks_and_weights_back(other):
    t = hand_ticket(seed=1)
    back = transfer(transfer(t, other), "resnet20")
    assert list(back.masks) == list(t.masks)
    for n in t.masks:
        assert np.array_equal(back.masks[n], t.masks[n])
        assert np.array_equal(back.weights["init"][n], t.weights["init"][n])
    assert [r["name"] for r in back.provenance["transforms"]] == ["transfer", "transfer"]
    assert back.provenance["achieved_density"] == t.density


def test_round_trip_32_56_32_is_exact_but_32_44_32_is_not():
    t = hand_ticket("resnet32", seed=2)
    back = transfer(transfer(t, "resnet56"), "resnet32")
    assert all(np.array_equal(back.masks[n], t.masks[n]) for n in t.masks)
    # 32 -> 44 gives source blocks [0,1,1,2,2,3,4]; 44 -> 32 keeps target blocks [0,1,2,3,5]:
    # so blocks 1..4 of 32 come back from 32's blocks 1, 1, 2, 3 (block 4 is lost)
    lossy = transfer(transfer(t, "resnet44"), "resnet32")
    for j, i in {0: 0, 1: 1, 2: 1, 3: 2, 4: 3}.items():
        assert np.array_equal(lossy.masks[f"blocks.{j}.conv1.weight"], t.masks[f"blocks.{i}.conv1.weight"])


def test_exact_densities_by_hand():
    # all-kept stem and head, empty blocks except block 0 of each stage, which keeps everything
    sh = shapes("resnet20")
    masks = {n: np.full(s, not (n.startswith("blocks.") and int(n.split(".")[1]) % 3 != 0)) for n, s in sh.items()}
    t = Ticket(masks=masks, provenance={"model": "resnet20", "model_config": {"width": WIDTH}, "data_spec": SPEC})
    out = transfer(t, "resnet56")
    size = {n: int(np.prod(s)) for n, s in shapes("resnet56").items()}
    kept = sum(v for n, v in size.items() if not n.startswith("blocks.") or int(n.split(".")[1]) % 9 == 0)
    total = sum(size.values())
    assert out.kept == kept and out.total == total
    prov, rec = out.provenance, out.provenance["transforms"][-1]
    assert (prov["kept"], prov["total"], prov["achieved_density"]) == (kept, total, kept / total)
    assert prov["layer_kept"] == out.layer_kept() and prov["collapsed"] is True   # the empty blocks
    assert (rec["source_kept"], rec["source_total"], rec["source_density"]) == (t.kept, t.total, t.density)
    assert (rec["kept"], rec["total"], rec["density"]) == (kept, total, kept / total)


def test_unpruned_stem_and_head_stay_unmasked_and_sources_values_move():
    t = hand_ticket(drop=("conv1.weight", "fc.weight"))
    out = transfer(t, "resnet44")
    assert "conv1.weight" not in out.masks and "fc.weight" not in out.masks
    rec = out.provenance["transforms"][-1]
    assert rec["copied_unchanged"] == [] and rec["source_test_accuracy"] == 0.5
    assert rec["source_target_density"] == 0.3
    assert "test_accuracy" not in out.provenance and "target_density" not in out.provenance
    assert out.provenance["model"] == "resnet44" and out.provenance["trained"] is False


def test_masks_only_drops_the_init_and_the_source_is_untouched():
    t = hand_ticket()
    before = {n: m.copy() for n, m in t.masks.items()}
    out = transfer(t, "resnet32", weights=False)
    assert out.weights == {} and out.provenance["transforms"][-1]["weights"] == "none (masks only)"
    assert t.provenance["model"] == "resnet20" and "transforms" not in t.provenance
    assert all(np.array_equal(before[n], t.masks[n]) for n in t.masks)


def test_parameter_sources_names():
    names = list(shapes("resnet56"))
    params, blocks = parameter_sources("resnet20", "resnet56", names)
    assert params["blocks.26.conv2.weight"] == "blocks.8.conv2.weight"
    assert params["blocks.18.shortcut.0.weight"] == "blocks.6.shortcut.0.weight"
    assert len(blocks) == 27 and set(blocks.values()) == {f"blocks.{i}" for i in range(9)}


def test_family_is_the_registered_6n_plus_2_resnets():
    assert CIFAR_RESNETS == {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9}


# ---- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, target, message", [
    ("lenet_300_100", "resnet32", "the ticket's model is 'lenet_300_100'"),
    ("resnet18", "resnet20", "the ticket's model is 'resnet18'"),
    ("resnet20", "resnet18", "the target model is 'resnet18'"),
    ("resnet20", "resnet110", "the target model is 'resnet110'"),
])
def test_family_and_depth_errors_are_one_line(model, target, message):
    t = Ticket(masks={"w": np.ones(3, bool)}, provenance={"model": model, "data_spec": SPEC})
    with pytest.raises(ConfigError, match=message) as info:
        transfer(t, target)
    text = str(info.value)
    assert "\n" not in text and "resnet20, resnet32, resnet44, resnet56" in text


def test_masks_that_do_not_fit_the_recorded_model():
    t = hand_ticket()
    t.provenance["model_config"] = {"width": 4}
    with pytest.raises(IncompatibleError, match=r"mask 'conv1.weight' has shape \(2, 1, 3, 3\), but 'resnet20'"):
        transfer(t, "resnet32")
    t.provenance.update(model="resnet32", model_config={"width": WIDTH})   # a resnet20 ticket labelled 32
    with pytest.raises(IncompatibleError, match="shape"):
        transfer(t, "resnet56")
    with pytest.raises(ConfigError, match="names none"):
        transfer(Ticket(masks={"w": np.ones(2, bool)}), "resnet32")
    with pytest.raises(ConfigError, match="not a dict"):
        transfer({"w": np.ones(2, bool)}, "resnet32")


# ---- a real ticket: file round trip, rebuild, training ---------------------------------------------

def test_mined_ticket_transfers_saves_and_rebuilds(tmp_path):
    from ticketlab.retraining import rebuild

    src = ticketlab.mine("random", model="resnet20", dataset="digits", density=0.3, seed=0, device="cpu",
                         model_kwargs={"width": WIDTH})
    out = transfer(src, "resnet32")
    path = ticketlab.save(out, tmp_path / "t32.h5")
    back = ticketlab.load(path)                            # validates masks, counts and weights
    assert all(np.array_equal(back.masks[n], out.masks[n]) for n in out.masks)
    assert back.provenance["transforms"][-1]["blocks"] == out.provenance["transforms"][-1]["blocks"]
    assert back.provenance["health"] == out.provenance["health"]
    rb = rebuild(back, device="cpu")                       # the masks fit resnet32, the init is the moved one
    assert rb.source == "stored" and type(rb.net).__name__ == "ResNet" and len(rb.net.blocks) == 15
    for n, w in rb.init_weights.items():
        assert torch.equal(w, torch.as_tensor(out.weights["init"][n]))
    # a squeezed copy of the transferred ticket (read from its file) is the mined one again
    again = transfer(path, "resnet20")
    assert all(np.array_equal(again.masks[n], src.masks[n]) for n in src.masks)
    trained = ticketlab.train(back, train_epochs=1, device="cpu")
    assert 0.0 <= trained.provenance["test_accuracy"] <= 1.0
