"""Masks on the torch side, and the optimizer step that keeps pruned weights at exactly zero.

A torch mask set is a ``dict[str, torch.Tensor]``: parameter name (as in
``model.named_parameters()``) -> boolean tensor of the parameter's shape, on its device
(True = kept). The numpy form used by :class:`ticketlab.ticket.Ticket` converts with
:func:`to_numpy_masks` / :func:`from_numpy_masks`.

Pruned weights stay exactly zero during training because :class:`MaskedOptimizer`

1. zeros the pruned weights when it is made,
2. multiplies the gradients by the mask before every optimizer step, so momentum buffers, Adam
   moments and Adagrad sums of pruned entries stay zero (with a zero weight and a zero gradient,
   L2 weight decay adds nothing either), and
3. multiplies the weights by the mask after the step, so that nothing else (an optimizer that
   adds noise or moves weights without a gradient) brings a pruned weight back.

Step 3 is provably a no-op for torch's SGD (any momentum, Nesterov, weight decay), Adam, AdamW
and Adagrad, fused or not: with a zero weight, a zero gradient and zero state, their update of
that entry is exactly zero (``0 / (sqrt(0) + eps)`` for Adam/Adagrad, ``(1 - lr * wd) * 0`` for
AdamW). For those exact optimizer classes it is skipped unless ``always_remask=True``; it costs
as much as step 2 (~4% of a LeNet-300-100 CPU step). The tests check exact zeros after every
step for each of them.

Each masking pass is one ``torch._foreach_mul_`` call over all masked tensors.

Example:
    >>> import torch
    >>> lin = torch.nn.Linear(2, 2, bias=False)
    >>> params = {"weight": lin.weight}
    >>> masks = {"weight": torch.tensor([[True, False], [False, True]])}
    >>> apply_masks_(params, masks)
    >>> bool((lin.weight[0, 1] == 0) and (lin.weight[1, 0] == 0))
    True
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ticketlab.errors import IncompatibleError

Masks = dict[str, torch.Tensor]


def masks_like(params: Mapping[str, torch.Tensor], fill: bool = True) -> Masks:
    """All-``fill`` boolean masks with the names, shapes and devices of ``params``.

    Example:
        >>> m = masks_like({"w": torch.zeros(2, 3)})
        >>> m["w"].dtype, m["w"].shape, bool(m["w"].all())
        (torch.bool, torch.Size([2, 3]), True)
    """
    return {name: torch.full(p.shape, bool(fill), dtype=torch.bool, device=p.device) for name, p in params.items()}


def check_masks(masks: Mapping[str, torch.Tensor], params: Mapping[str, torch.Tensor], *, exact: bool = False) -> None:
    """Raise :class:`IncompatibleError` unless every mask names a parameter of the same shape.

    With ``exact`` the masks must also cover every parameter in ``params``. Masks must be boolean.

    Example:
        >>> check_masks({"w": torch.ones(2, dtype=torch.bool)}, {"w": torch.zeros(2)})
    """
    for name, mask in masks.items():
        if name not in params:
            raise IncompatibleError(f"mask '{name}' names no parameter of the model (parameters: {_names(params)})")
        if tuple(mask.shape) != tuple(params[name].shape):
            raise IncompatibleError(
                f"mask '{name}' has shape {tuple(mask.shape)} but the parameter has shape {tuple(params[name].shape)}"
            )
        if mask.dtype != torch.bool:
            raise IncompatibleError(f"mask '{name}' must be boolean, not {mask.dtype}")
    if exact:
        for name in params:
            if name not in masks:
                raise IncompatibleError(f"parameter '{name}' has no mask (masks: {_names(masks)})")


def _names(d: Mapping[str, Any], limit: int = 6) -> str:
    names = list(d)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


@torch.no_grad()
def apply_masks_(params: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    """Zero the pruned entries of ``params`` in place (parameter objects are kept).

    Only parameters named in ``masks`` are touched; masks are moved to the parameter's device.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> apply_masks_({"w": w}, {"w": torch.tensor([True, False, True])})
        >>> w.tolist()
        [1.0, 0.0, 1.0]
    """
    check_masks(masks, params)
    names = list(masks)
    if not names:
        return
    tensors = [params[n] for n in names]
    ms = [masks[n].to(device=params[n].device, dtype=params[n].dtype) for n in names]
    torch._foreach_mul_(tensors, ms)


def density(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of kept entries over all masks (1.0 for an empty mask set).

    Example:
        >>> density({"a": torch.tensor([True, False]), "b": torch.tensor([True, True])})
        0.75
    """
    total = sum(m.numel() for m in masks.values())
    if total == 0:
        return 1.0
    return float(sum(int(m.sum()) for m in masks.values())) / total


def to_numpy_masks(masks: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Boolean numpy copies of ``masks`` (same names and order), e.g. for a :class:`Ticket`.

    Example:
        >>> to_numpy_masks({"w": torch.tensor([True, False])})["w"]
        array([ True, False])
    """
    return {name: m.detach().to("cpu").numpy().astype(np.bool_, copy=True) for name, m in masks.items()}


def from_numpy_masks(np_masks: Mapping[str, Any], params: Mapping[str, torch.Tensor]) -> Masks:
    """Torch boolean masks for ``params`` from numpy arrays, on each parameter's device.

    The names must be exactly those of ``params`` (e.g. ``prunable_parameters(model)``) and the
    shapes must match; otherwise an :class:`IncompatibleError` names the first mismatching
    parameter. The result is ordered like ``params``.

    Example:
        >>> m = from_numpy_masks({"w": np.array([1, 0], dtype=bool)}, {"w": torch.zeros(2)})
        >>> m["w"].tolist()
        [True, False]
    """
    for name in np_masks:
        if name not in params:
            raise IncompatibleError(
                f"mask '{name}' names no prunable parameter of the model (parameters: {_names(params)})"
            )
    out: Masks = {}
    for name, p in params.items():
        if name not in np_masks:
            raise IncompatibleError(f"parameter '{name}' has no mask (masks: {_names(np_masks)})")
        arr = np.asarray(np_masks[name])
        if tuple(arr.shape) != tuple(p.shape):
            raise IncompatibleError(
                f"mask '{name}' has shape {tuple(arr.shape)} but the parameter has shape {tuple(p.shape)}"
            )
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "biu" or (arr.size and not np.isin(arr, (0, 1)).all()):
                raise IncompatibleError(f"mask '{name}' must be boolean, not {arr.dtype}")
        out[name] = torch.as_tensor(arr.astype(np.bool_), device=p.device)
    return out


#: Optimizer classes whose step leaves an entry with zero weight, gradient and state at exactly
#: zero (see the module docstring); MaskedOptimizer skips re-masking weights after their step.
ZERO_PRESERVING: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad,
)


class MaskedOptimizer:
    """Wrap an optimizer so that masked-out weights stay exactly zero at every step.

    Construction zeros the pruned weights; ``step()`` masks the gradients, runs the wrapped
    optimizer, then masks the weights unless the optimizer is one of :data:`ZERO_PRESERVING`
    and ``always_remask`` is False (see the module docstring). Weights changed from outside
    between steps are not re-zeroed then: call :meth:`mask_weights_` after such a change. The
    masks are copied once, as float tensors on the parameters' devices. Parameters without a
    mask are updated densely.

    Example:
        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> masks = {"weight": torch.tensor([[True, False]])}
        >>> opt = MaskedOptimizer(torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9),
        ...                       dict(lin.named_parameters()), masks)
        >>> lin(torch.ones(1, 2)).sum().backward(); opt.step()
        >>> lin.weight[0, 1].item() == 0
        True
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Mapping[str, nn.Parameter],
        masks: Mapping[str, torch.Tensor],
        *,
        always_remask: bool = False,
    ) -> None:
        check_masks(masks, params)
        self.optimizer = optimizer
        self.remask = always_remask or type(optimizer) not in ZERO_PRESERVING
        self.names = list(masks)
        self._params = [params[n] for n in self.names]
        self._fmasks = [
            masks[n].detach().to(device=params[n].device, dtype=params[n].dtype) for n in self.names
        ]
        self._all_kept = all(bool(masks[n].all()) for n in self.names)  # nothing to mask yet
        self.mask_weights_()  # pruned weights must be zero before the first step (L2 decay)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's parameter groups (to set the learning rate)."""
        return self.optimizer.param_groups

    @torch.no_grad()
    def mask_grads_(self) -> None:
        """Multiply the gradients of masked parameters by their masks (missing gradients skipped)."""
        pairs = [(p.grad, m) for p, m in zip(self._params, self._fmasks) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])

    @torch.no_grad()
    def mask_weights_(self) -> None:
        """Multiply the masked parameters by their masks."""
        if self._params:
            torch._foreach_mul_(self._params, self._fmasks)

    @torch.no_grad()
    def shrink_masks_(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks of the named parameters by ``masks`` (which may only remove entries).

        The newly masked entries are zeroed, and so is every optimizer state tensor of the same
        shape (momentum buffers, Adam moments, Adagrad sums), so the invariant of the module
        docstring (zero weight, zero gradient, zero state) holds for them from the next step
        on. Used by Gem-Miner's iterative freezing.

        Example:
            >>> w = torch.nn.Parameter(torch.ones(2))
            >>> opt = MaskedOptimizer(torch.optim.SGD([w], lr=0.1, momentum=0.9), {"w": w},
            ...                       {"w": torch.tensor([True, True])})
            >>> w.sum().backward(); opt.step()
            >>> opt.shrink_masks_({"w": torch.tensor([True, False])})
            >>> w.sum().backward(); opt.step(); w[1].item(), opt.optimizer.state[w]["momentum_buffer"][1].item()
            (0.0, 0.0)
        """
        for name, mask in masks.items():
            if name not in self.names:
                raise IncompatibleError(f"mask '{name}' names no masked parameter of this optimizer")
            i = self.names.index(name)
            new = mask.detach().to(device=self._params[i].device, dtype=self._params[i].dtype)
            if tuple(new.shape) != tuple(self._params[i].shape):
                raise IncompatibleError(f"mask '{name}' has shape {tuple(new.shape)}, not {tuple(self._params[i].shape)}")
            if bool((new > self._fmasks[i]).any()):
                raise IncompatibleError(f"mask '{name}' would revive masked entries (masks only shrink)")
            self._fmasks[i] = new
            self._all_kept = self._all_kept and bool(new.all())
            self._params[i].mul_(new)
            for value in self.optimizer.state.get(self._params[i], {}).values():
                if isinstance(value, torch.Tensor) and value.shape == new.shape:
                    value.mul_(new)

    def step(self) -> None:
        """Mask gradients, take the optimizer step, mask weights (when needed, see above).

        While every mask keeps everything (e.g. Gem-Miner before its first freezing) both passes
        are skipped: they would multiply by one."""
        if self._all_kept:
            self.optimizer.step()
            return
        self.mask_grads_()
        self.optimizer.step()
        if self.remask:
            self.mask_weights_()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all optimized parameters."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict."""
        return self.optimizer.state_dict()


def named_masked_params(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, nn.Parameter]:
    """The parameters of ``model`` named in ``masks`` (checked for names and shapes).

    Example:
        >>> lin = torch.nn.Linear(2, 1)
        >>> list(named_masked_params(lin, {"weight": torch.ones(1, 2, dtype=torch.bool)}))
        ['weight']
    """
    params = dict(model.named_parameters())
    check_masks(masks, params)
    return {n: params[n] for n in masks}

