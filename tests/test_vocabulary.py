"""One vocabulary (issue 24, docs/glossary.md): the new names work, and each deprecated alias
still works and warns once."""

from __future__ import annotations

import warnings

import pytest
import torch

import ticketlab
from ticketlab import deprecation


@pytest.fixture(autouse=True)
def _fresh_warnings():
    deprecation.reset_warnings()  # each test sees its alias's first use
    yield
    deprecation.reset_warnings()


def _warns_once(call, match):
    """``call()`` twice: the first warns (a DeprecationWarning matching ``match``), the second is
    silent; returns both results."""
    with pytest.warns(DeprecationWarning, match=match) as seen:
        first = call()
    assert len([w for w in seen if issubclass(w.category, DeprecationWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        second = call()
    return first, second


@pytest.fixture(scope="module")
def random_ticket():
    return ticketlab.mine("random", density=0.5, seed=0, device="cpu")


# ----------------------------------------------------------------------------- init_weights / init_state
def test_rebuilt_init_weights_and_its_old_name_theta0(random_ticket):
    from ticketlab.retraining import rebuild

    rb = rebuild(random_ticket, device="cpu")
    assert set(rb.init_weights) == set(random_ticket.masks)
    first, second = _warns_once(lambda: rb.theta0, r"Rebuilt.theta0 is deprecated: use Rebuilt.init_weights")
    assert first is rb.init_weights and second is rb.init_weights


def test_imp_keeps_its_whole_initial_state_as_init_state_and_resumes_an_old_checkpoint_state():
    from ticketlab.miners import get_miner

    imp = get_miner("imp")()
    state = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}  # the whole state, biases too
    imp.resume(None, {"theta0": state, "rewind": None})  # a checkpoint written before the rename
    assert imp.init_state is state and imp.state_dict() == {"init_state": state, "rewind": None}
    assert imp.reset_state(None, 1) is state  # reset init: back to the whole initial state


# ----------------------------------------------------------------------------- fit / evaluate_model
def test_the_model_loops_are_fit_and_evaluate_model_and_the_old_names_still_work():
    import ticketlab.training as training

    first, second = _warns_once(lambda: training.train, r"ticketlab.training.train is deprecated: use "
                                                        r"ticketlab.training.fit")
    assert first is training.fit and second is training.fit
    first, _ = _warns_once(lambda: training.evaluate, r"ticketlab.training.evaluate is deprecated: use "
                                                      r"ticketlab.training.evaluate_model")
    assert first is training.evaluate_model
    with pytest.warns(DeprecationWarning):
        deprecation.reset_warnings()
        from ticketlab.training import train as old_train  # the form a script uses
    assert old_train is training.fit
    # the ticket-level API keeps its names: a ticket in, a ticket (or a result) out
    assert ticketlab.train.__module__ == "ticketlab.retraining"
    assert ticketlab.evaluate.__module__ == "ticketlab.evaluation"
    with pytest.raises(AttributeError):
        training.no_such_loop  # noqa: B018
