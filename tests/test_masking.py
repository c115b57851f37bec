"""Tests of ticketlab.masking: exact small cases, conversions, and the masked optimizer step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ticketlab.errors import IncompatibleError
from ticketlab.masking import (
    MaskedOptimizer,
    apply_masks_,
    check_masks,
    density,
    from_numpy_masks,
    masks_like,
    named_masked_params,
    to_numpy_masks,
)


def _params() -> dict[str, torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.nn.Parameter(torch.randn(3, 4, generator=g)),
        "b.weight": torch.nn.Parameter(torch.randn(2, 3, 2, 2, generator=g)),
    }


def _random_masks(params, density_=0.5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < density_ for n, p in params.items()}


def test_masks_like_shapes_dtype_fill():
    params = _params()
    ones, zeros = masks_like(params), masks_like(params, fill=False)
    assert list(ones) == list(params)
    for n, p in params.items():
        assert ones[n].dtype == torch.bool and ones[n].shape == p.shape and ones[n].device == p.device
        assert bool(ones[n].all()) and not bool(zeros[n].any())


def test_apply_masks_exact_and_keeps_identity():
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
    ptr, obj = w.data_ptr(), w
    params = {"w": w}
    apply_masks_(params, {"w": torch.tensor([[True, False], [False, True]])})
    assert params["w"] is obj and w.data_ptr() == ptr
    assert torch.equal(w.detach(), torch.tensor([[1.0, 0.0], [0.0, 4.0]]))
    assert w.requires_grad


def test_apply_masks_only_touches_named_params():
    params = _params()
    before = params["b.weight"].detach().clone()
    apply_masks_(params, {"a.weight": torch.zeros(3, 4, dtype=torch.bool)})
    assert bool((params["a.weight"] == 0).all())
    assert torch.equal(params["b.weight"].detach(), before)


@pytest.mark.parametrize(
    "masks, pattern",
    [
        ({"c.weight": torch.ones(3, 4, dtype=torch.bool)}, "mask 'c.weight' names no parameter"),
        ({"a.weight": torch.ones(4, 3, dtype=torch.bool)}, "mask 'a.weight' has shape (4, 3)"),
        ({"a.weight": torch.ones(3, 4)}, "mask 'a.weight' must be boolean"),
    ],
)
def test_check_masks_errors_name_the_parameter(masks, pattern):
    with pytest.raises(IncompatibleError) as err:
        apply_masks_(_params(), masks)
    msg = str(err.value)
    assert pattern in msg and "\n" not in msg


def test_check_masks_exact_requires_every_parameter():
    params = _params()
    check_masks({"a.weight": torch.ones(3, 4, dtype=torch.bool)}, params)  # subset is fine
    with pytest.raises(IncompatibleError, match="parameter 'b.weight' has no mask"):
        check_masks({"a.weight": torch.ones(3, 4, dtype=torch.bool)}, params, exact=True)


def test_density_hand_computed():
    masks = {"a": torch.tensor([True, False, False, False]), "b": torch.tensor([[True, True], [True, False]])}
    assert density(masks) == pytest.approx(4 / 8)
    assert density({}) == 1.0


def test_numpy_round_trip_and_order():
    params = _params()
    masks = _random_masks(params)
    np_masks = to_numpy_masks(masks)
    assert list(np_masks) == list(masks)
    assert all(a.dtype == np.bool_ for a in np_masks.values())
    # reversed key order in the input: output follows the parameters' order
    back = from_numpy_masks(dict(reversed(list(np_masks.items()))), params)
    assert list(back) == list(params)
    for n in params:
        assert back[n].dtype == torch.bool and torch.equal(back[n], masks[n])


def test_to_numpy_masks_is_a_copy():
    m = {"w": torch.tensor([True, True])}
    arr = to_numpy_masks(m)["w"]
    arr[0] = False
    assert bool(m["w"][0])


def test_from_numpy_masks_accepts_01_integers():
    out = from_numpy_masks({"w": np.array([1, 0, 1])}, {"w": torch.zeros(3)})
    assert out["w"].tolist() == [True, False, True]


@pytest.mark.parametrize(
    "np_masks, pattern",
    [
        ({"a.weight": np.ones((3, 4), bool)}, "parameter 'b.weight' has no mask"),
        ({"a.weight": np.ones((3, 4), bool), "b.weight": np.ones((2, 3, 2, 2), bool), "x": np.ones(1, bool)},
         "mask 'x' names no prunable parameter"),
        ({"a.weight": np.ones((3, 5), bool), "b.weight": np.ones((2, 3, 2, 2), bool)},
         "mask 'a.weight' has shape (3, 5) but the parameter has shape (3, 4)"),
        ({"a.weight": np.full((3, 4), 0.5), "b.weight": np.ones((2, 3, 2, 2), bool)},
         "mask 'a.weight' must be boolean"),
        ({"a.weight": np.full((3, 4), 2), "b.weight": np.ones((2, 3, 2, 2), bool)}, "mask 'a.weight' must be boolean"),
    ],
)
def test_from_numpy_masks_errors(np_masks, pattern):
    with pytest.raises(IncompatibleError) as err:
        from_numpy_masks(np_masks, _params())
    assert pattern in str(err.value) and "\n" not in str(err.value)


def test_named_masked_params():
    lin = torch.nn.Linear(3, 2)
    got = named_masked_params(lin, {"weight": torch.ones(2, 3, dtype=torch.bool)})
    assert list(got) == ["weight"] and got["weight"] is lin.weight
    with pytest.raises(IncompatibleError, match="mask 'nope'"):
        named_masked_params(lin, {"nope": torch.ones(2, 3, dtype=torch.bool)})


def test_masked_sgd_step_hand_computed():
    # w = [1, 2], mask = [T, F], grad = [1, 1], lr 0.1 -> [0.9, 0]
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = MaskedOptimizer(torch.optim.SGD([w], lr=0.1), {"w": w}, {"w": torch.tensor([True, False])})
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([0.9, 0.0])) and w[1].item() == 0
    # the gradient itself was masked before the step
    assert w.grad.tolist() == [1.0, 0.0]


OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adam_wd": lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.1),
    "adagrad_wd": lambda ps: torch.optim.Adagrad(ps, lr=0.1, weight_decay=0.1),
}
STATE_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "sum")


@pytest.mark.parametrize("always_remask", [False, True])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_pruned_weights_and_state_stay_zero(opt_name, always_remask):
    params = _params()
    masks = _random_masks(params)
    initial = {n: p.detach().clone() for n, p in params.items()}
    opt = MaskedOptimizer(OPTIMIZERS[opt_name](list(params.values())), params, masks, always_remask=always_remask)
    assert opt.remask == always_remask  # torch's SGD/Adam/AdamW/Adagrad are zero-preserving
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        opt.zero_grad()
        for p in params.values():  # dense random gradients, nonzero on pruned entries too
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
        for n, p in params.items():
            assert bool((p[~masks[n]] == 0).all()), n
    n_state = 0
    for n, p in params.items():
        for key in STATE_KEYS:
            if key in opt.optimizer.state[p]:
                n_state += 1
                assert bool((opt.optimizer.state[p][key][~masks[n]] == 0).all()), (n, key)
        # the kept weights did move
        assert bool((p[masks[n]] != initial[n][masks[n]]).all()), n
    assert n_state > 0 or opt_name == "sgd"


def test_weight_masking_alone_leaks_into_momentum():
    """Negative control: masking only weights (not gradients) leaves non-zero momentum on pruned
    entries, which is what MaskedOptimizer.mask_grads_ prevents."""
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    apply_masks_({"w": w}, {"w": torch.tensor([True, False])})
    assert opt.state[w]["momentum_buffer"][1].item() != 0


def test_masked_optimizer_skips_missing_grads_and_unmasked_params():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = MaskedOptimizer(torch.optim.SGD([a, b], lr=1.0), {"a": a, "b": b}, {"a": torch.tensor([True, False])})
    b.grad = torch.tensor([1.0, 1.0])  # a has no gradient
    opt.step()
    assert a.tolist() == [1.0, 0.0]  # weights still masked after the step
    assert b.tolist() == [0.0, 0.0]  # unmasked parameter updated densely
    assert opt.param_groups is opt.optimizer.param_groups
    opt.zero_grad()
    assert b.grad is None


class _Shift(torch.optim.Optimizer):
    """Adds 1 to every weight, gradient or not (like noise or decoupled updates would)."""

    def __init__(self, params):
        super().__init__(params, {})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1.0)


def test_weights_masked_after_any_optimizer_update():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    opt = MaskedOptimizer(_Shift([w]), {"w": w}, {"w": torch.tensor([True, False, True])})
    assert opt.remask  # an optimizer not known to preserve zeros gets its weights re-masked
    assert w.tolist() == [1.0, 0.0, 3.0]  # construction zeros pruned weights
    for _ in range(2):
        opt.step()
    assert w.tolist() == [3.0, 0.0, 5.0]
