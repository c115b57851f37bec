"""One network builder (``ticketlab.build``) for mine, rebuild, barrier and the collapse study, and
``rebuild`` reading the ticket's recorded spec (issue 24)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab.build import build_network, load_data
from ticketlab.errors import ConfigError
from ticketlab.retraining import rebuild
from ticketlab.spec import MineSpec, NetSpec
from ticketlab.ticket import Ticket


@pytest.fixture(scope="module")
def ticket() -> Ticket:
    return ticketlab.mine("random", density=0.5, seed=3, device="cpu", skip_first_layer=True,
                          model_kwargs={"hidden": [20, 10], "init": "kaiming_normal", "zero_bias": True})


def test_the_network_of_a_spec_is_the_one_mine_builds(ticket):
    b = build_network(MineSpec.from_provenance(ticket.provenance), device="cpu")
    assert list(b.params) == list(ticket.masks) == ["fc2.weight", "fc3.weight"]  # fc1 left dense
    assert b.output_layer == "fc3.weight" and b.data_read and b.device == torch.device("cpu")
    assert all(np.array_equal(b.params[n].detach().numpy(), ticket.weights["init"][n]) for n in ticket.masks)
    assert all(not p.detach().any() for n, p in b.net.named_parameters() if n.endswith("bias"))  # zero_bias
    # a fresh draw with the same seed is the same network; another seed is another one
    assert torch.equal(b.draw(3).state_dict()["fc1.weight"], b.net.state_dict()["fc1.weight"])
    assert not torch.equal(b.draw(4).state_dict()["fc1.weight"], b.net.state_dict()["fc1.weight"])


def test_a_data_free_run_reads_only_the_shape():
    b = build_network(NetSpec(model="conv2", dataset="cifar10"), seed=0, device="cpu", read_data=False)
    assert not b.data_read and len(b.data.train[0]) == 0 and b.data.spec.input_shape == (3, 32, 32)
    data, read = load_data("digits", seed=0, read=False)  # digits needs no files: its samples are read anyway
    assert read and len(data.train[0]) > 0


def test_the_method_sees_the_corrupted_split_and_clean_is_the_real_data():
    b = build_network(MineSpec.from_flat("magnitude", data_corruption="random_labels", seed=1), device="cpu")
    real, _ = load_data("digits", seed=1)
    assert torch.equal(b.clean.train[1], real.train[1]) and not torch.equal(b.data.train[1], real.train[1])
    assert b.data.test is b.clean.test


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match="needs the seed"):
        build_network(NetSpec(), device="cpu")
    spec = MineSpec.from_flat("random", model_kwargs={"hidden": [20]}, skip_first_layer=True, skip_last_layer=True)
    with pytest.raises(ConfigError, match="no prunable parameters left to prune"):
        build_network(spec, device="cpu")


# ------------------------------------------------------------------------------ rebuild reads the spec
def _without_spec(t: Ticket) -> Ticket:
    prov = {k: v for k, v in copy.deepcopy(t.provenance).items() if k not in ("spec", "spec_hash")}
    return Ticket(masks=t.masks, provenance=prov)


def _with(t: Ticket, **changes) -> Ticket:
    return Ticket(masks=t.masks, provenance={**copy.deepcopy(t.provenance), **changes})


def test_rebuild_from_the_spec_equals_rebuild_from_the_keys(ticket):
    bare = Ticket(masks=ticket.masks, provenance=ticket.provenance)  # no stored init: re-created
    a, b = rebuild(bare, device="cpu"), rebuild(_without_spec(ticket), device="cpu")
    assert a.source == b.source == "recreated"
    assert a.state.keys() == b.state.keys() and all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert all(np.array_equal(a.init_weights[n].numpy(), ticket.weights["init"][n]) for n in ticket.masks)


@pytest.mark.parametrize("changes, needle", [
    ({"model_config": {"hidden": [30, 10]}}, r"its provenance says model_config \{'hidden': \[30, 10\]\} but its spec"),
    ({"seed": 4}, "its provenance says seed 4 but its spec 3"),
    ({"dataset": "iris"}, "its provenance says dataset 'iris' but its spec 'digits'"),
    ({"spec": {"method": 5}}, "does not describe a mining run"),
    ({"spec": {"method": "random", "net": {"model": "lenet_300_100", "colour": "red"}}}, "unknown spec.net field 'colour'"),
])
def test_rebuild_refuses_a_spec_that_is_damaged_or_says_otherwise(ticket, changes, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        rebuild(_with(ticket, **changes), device="cpu")
    assert "\n" not in str(info.value) and str(info.value).startswith("cannot re-create the ticket's network")


def test_a_spec_with_tuples_agrees_with_its_keys():
    t = ticketlab.mine("random", density=0.5, seed=0, device="cpu", omit_weights=True,
                       model_kwargs={"hidden": (20, 10)})  # in memory: a tuple in model_config, a list in the spec
    assert rebuild(t, device="cpu").source == "recreated"
