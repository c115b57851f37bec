"""The Ticket type: validation and counts (numpy only)."""

import numpy as np
import pytest

from ticketlab.errors import ConfigError
from ticketlab.ticket import Ticket


def test_counts_and_densities():
    t = Ticket(masks={"a": np.array([[1, 0], [0, 0]], bool), "b": np.ones(4, bool)})
    assert (t.kept, t.total) == (5, 8)
    assert t.density == 5 / 8 and t.sparsity == 3 / 8
    assert t.layer_density() == {"a": 0.25, "b": 1.0}
    assert type(t.layer_density()["a"]) is float
    assert t.layer_kept() == {"a": 1, "b": 4}
    assert not t.collapsed
    assert Ticket(masks={"a": np.zeros(3, bool), "b": np.ones(1, bool)}).collapsed


def test_masks_of_zero_one_ints_become_bool_and_order_is_kept():
    t = Ticket(masks={"z": np.array([0, 1]), "a": np.array([1, 1])})
    assert t.names == ["z", "a"] and t.masks["z"].dtype == np.bool_


@pytest.mark.parametrize("masks,match", [
    ({}, "at least one mask"),
    ({"a": np.array([0, 2])}, "other than 0 and 1"),
    ({"a": np.array([0.5, 1.0])}, "must be boolean"),
    ({"a": np.array(True)}, "scalar"),
])
def test_bad_masks(masks, match):
    with pytest.raises(ConfigError, match=match):
        Ticket(masks=masks)


def test_weights_and_scores_must_match_mask_shapes():
    m = {"a": np.ones((2, 3), bool)}
    with pytest.raises(ConfigError, match="shape"):
        Ticket(masks=m, weights={"init": {"a": np.zeros((3, 2))}})
    with pytest.raises(ConfigError, match="no weights for masked parameter 'b'"):
        Ticket(masks={**m, "b": np.ones(2, bool)}, weights={"init": {"a": np.zeros((2, 3))}})
    with pytest.raises(ConfigError, match="unknown weight snapshot"):
        Ticket(masks=m, weights={"best": {"a": np.zeros((2, 3))}})
    with pytest.raises(ConfigError, match="shape"):
        Ticket(masks=m, scores={"a": np.zeros(6)})


def test_provenance_is_normalised_to_json_types():
    t = Ticket(masks={"a": np.ones(2, bool)}, provenance={"shape": (1, 2), "d": np.float32(0.5), "n": np.int64(3)})
    assert t.provenance == {"shape": [1, 2], "d": 0.5, "n": 3}
    with pytest.raises(ConfigError, match="JSON"):
        Ticket(masks={"a": np.ones(2, bool)}, provenance={"x": object()})
