"""``scaled_signed_constant``: edge-popup's ``scale_fan`` treatment and the layer density it needs.

Hand-computed values on tiny tensors, the density argument's checks, and the runner's path:
every learned-mask miner applies it with the run's final density, records that density in the
provenance, and a ticket's network is re-created from it.
"""

import math

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab.errors import ConfigError
from ticketlab.retraining import rebuild
from ticketlab.weights import apply_recorded_treatment_, apply_treatment_, needs_density, treat_weights

LEARNED = ["gem_miner", "edge_popup", "supermask_learned"]


def test_scaled_signed_constant_hand_computed():
    # fan_in 4: sqrt(2 / (0.5 * 4)) = 1; a zero weight stays zero
    w = torch.tensor([[0.3, -0.1, 0.0, 2.0], [-5.0, 1e-3, -1e-3, 7.0]])
    assert treat_weights("scaled_signed_constant", w, density=0.5).tolist() == [
        [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, -1.0, 1.0]]
    # a conv weight (out 2, in 1, 2x2): fan_in 4, density 1/8 -> sqrt(2 / 0.5) = 2
    c = torch.tensor([[[[1.0, -1.0], [2.0, 0.5]]], [[[-3.0, 0.0], [4.0, -0.1]]]])
    assert treat_weights("scaled_signed_constant", c, density=0.125).tolist() == [
        [[[2.0, -2.0], [2.0, 2.0]]], [[[-2.0, 0.0], [2.0, -2.0]]]]
    # density 1 is the signed Kaiming constant; density d divides it by sqrt(d)
    x = torch.tensor([[0.5, -2.0, 1.0]])
    assert torch.equal(treat_weights("scaled_signed_constant", x, density=1.0), treat_weights("signed_constant", x))
    assert torch.allclose(treat_weights("scaled_signed_constant", x, density=0.04),
                          torch.tensor([[1.0, -1.0, 1.0]]) * math.sqrt(2 / 3) / 0.2)
    assert x.tolist() == [[0.5, -2.0, 1.0]]  # w0 is not modified


def test_the_density_is_required_and_checked():
    w = torch.ones(2, 2)
    assert needs_density("scaled_signed_constant") and not needs_density("signed_constant")
    with pytest.raises(ConfigError, match="'scaled_signed_constant' needs the layer's density, and none was given"):
        treat_weights("scaled_signed_constant", w)
    for bad in (0.0, 1.5, True, "0.5"):
        with pytest.raises(ConfigError, match="needs a layer density in"):
            treat_weights("scaled_signed_constant", w, density=bad)
    # the other treatments ignore a density
    assert torch.equal(treat_weights("signed_constant", w, density=0.5), treat_weights("signed_constant", w))


def test_apply_takes_one_density_or_one_per_layer():
    a, b = torch.nn.Parameter(torch.tensor([[1.0, -1.0]])), torch.nn.Parameter(torch.tensor([[-2.0, 2.0]]))
    apply_treatment_({"a": a, "b": b}, "scaled_signed_constant", density={"a": 0.25, "b": 1.0})
    assert a.tolist() == [[2.0, -2.0]] and b.tolist() == [[-1.0, 1.0]]  # sqrt(2/(0.25*2)), sqrt(2/2)
    apply_treatment_({"a": a}, "scaled_signed_constant", density=0.5)
    assert torch.allclose(a, torch.tensor([[1.0, -1.0]]) * math.sqrt(2.0))  # sqrt(2/(0.5*2)); sign of a's [2, -2]
    with pytest.raises(ConfigError, match="needs the density of 'b'"):
        apply_treatment_({"b": b}, "scaled_signed_constant", density={"a": 0.5})
    with pytest.raises(ConfigError, match="needs the layer's density"):
        apply_treatment_({"b": b}, "scaled_signed_constant")
    c = torch.nn.Parameter(torch.tensor([[3.0, -1.0]]))
    apply_recorded_treatment_({"c": c}, {"weights": "scaled_signed_constant", "weights_density": 0.25})
    assert c.tolist() == [[2.0, -2.0]]
    apply_recorded_treatment_({"c": c}, {"weights": "init"})  # no density needed, none recorded
    assert c.tolist() == [[2.0, -2.0]]


@pytest.mark.parametrize("method", LEARNED)
def test_every_learned_miner_scales_by_the_run_density(method):
    options = {"weights": "scaled_signed_constant", "score_epochs": 2}
    if method == "gem_miner":
        options.update(finetune=False, freeze_every=1)
    t = ticketlab.mine(method, model="lenet_300_100", dataset="digits", density=0.25, seed=1, device="cpu",
                       train_epochs=1, miner_config=options)
    assert t.provenance["weights"] == "scaled_signed_constant" and t.provenance["weights_density"] == 0.25
    for n, w in t.weights["init"].items():  # |w| = sqrt(2 / (0.25 * fan_in)) = 2 * sqrt(2 / fan_in)
        assert np.allclose(np.abs(w), 2 * math.sqrt(2 / w[0].size)), n
    # the network is re-created from the provenance alone (no stored weights)
    bare = ticketlab.Ticket(masks=t.masks, provenance=t.provenance)
    rb = rebuild(bare, device="cpu")
    assert rb.source == "recreated"
    assert all(np.array_equal(rb.init_weights[n].numpy(), w) for n, w in t.weights["init"].items())


def test_other_treatments_record_no_density():
    t = ticketlab.mine("edge_popup", density=0.25, seed=0, device="cpu", train_epochs=1)
    assert t.provenance["weights"] == "signed_constant" and "weights_density" not in t.provenance
