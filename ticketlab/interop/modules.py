"""Tickets on torch modules through ``torch.nn.utils.prune``: :func:`apply_to` and :func:`from_module`.

:func:`apply_to` prunes a model with ``prune.custom_from_mask``, so each masked parameter
``NAME`` becomes the standard pair: the parameter ``NAME_orig`` (the same ``Parameter`` object,
so an optimizer made before keeps working) and the buffer ``NAME_mask``, with ``NAME`` recomputed
as ``NAME_orig * NAME_mask`` before every forward pass. Any tool that reads that convention reads
the ticket. :func:`from_module` reads such a model back (``fc.weight_orig`` + ``fc.weight_mask``
-> mask ``fc.weight``), or reads zeros in the prunable weights as pruned.

Names and shapes are checked by :func:`ticketlab.masking.check_masks`, before the model is
touched.

Example:
    >>> import numpy as np, torch
    >>> from ticketlab.ticket import Ticket
    >>> lin = torch.nn.Linear(2, 2, bias=False)
    >>> t = Ticket(masks={"weight": np.array([[True, False], [False, True]])})
    >>> _ = apply_to(t, lin)
    >>> sorted(n for n, _ in lin.named_buffers()), bool(lin.weight[0, 1] == 0)
    (['weight_mask'], True)
    >>> from_module(lin).masks["weight"].tolist()
    [[True, False], [False, True]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.masking import check_masks, to_numpy_masks
from ticketlab.ticket import SNAPSHOTS, Ticket

_ORIG = "_orig"
_MASK = "_mask"


def _split(name: str) -> tuple[str, str]:
    module, _, attr = name.rpartition(".")
    return module, attr


def apply_to(ticket: Ticket, model: nn.Module, *, weights: str | None = None) -> nn.Module:
    """Prune ``model`` in place with ``ticket``'s masks (``prune.custom_from_mask``) and return it.

    ``weights="init"`` or ``"final"`` first copies that snapshot of the ticket into the masked
    parameters; by default the model keeps its own weights. Raises
    :class:`~ticketlab.errors.IncompatibleError` (nothing changed) when a mask names no parameter
    of the model, has another shape, or names a parameter that is already pruned.

    Example:
        >>> lin = torch.nn.Linear(3, 1)
        >>> t = Ticket(masks={"weight": np.array([[True, False, True]])})
        >>> apply_to(t, lin).weight_mask.tolist()
        [[1.0, 0.0, 1.0]]
    """
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    for name in ticket.masks:
        if name not in params and name + _ORIG in params and name + _MASK in buffers:
            raise IncompatibleError(f"parameter '{name}' is already pruned (it has '{name}{_ORIG}' and "
                                    f"'{name}{_MASK}'); remove that first with torch.nn.utils.prune.remove")
    masks = {n: torch.from_numpy(m) for n, m in ticket.masks.items()}
    check_masks(masks, params)
    snapshot = _snapshot(ticket, weights)
    with torch.no_grad():
        for name, mask in masks.items():
            param = params[name]
            if snapshot is not None:
                param.copy_(torch.as_tensor(snapshot[name], dtype=param.dtype))
            module_name, attr = _split(name)
            prune.custom_from_mask(model.get_submodule(module_name), attr, mask.to(param.device))
    return model


def _snapshot(ticket: Ticket, weights: str | None) -> dict[str, np.ndarray] | None:
    if weights is None:
        return None
    if weights not in SNAPSHOTS:
        raise ConfigError(f"unknown weight snapshot '{weights}' (choose from: {', '.join(SNAPSHOTS)})")
    if weights not in ticket.weights:
        raise ConfigError(f"the ticket has no '{weights}' weights (it has: {', '.join(ticket.weights) or 'none'})")
    return ticket.weights[weights]


def from_module(model: nn.Module, *, zeros_as_pruned: bool = False,
                provenance: dict[str, Any] | None = None) -> Ticket:
    """A ticket of the masks on ``model``: its ``torch.nn.utils.prune`` buffers, in parameter order.

    A pruned parameter ``fc.weight_orig`` with buffer ``fc.weight_mask`` gives mask
    ``fc.weight`` (True where the buffer is 1). With ``zeros_as_pruned`` every prunable weight
    without such a buffer (:func:`ticketlab.models.prunable_parameters`: Linear, Conv and GCN
    weights, never biases) gives a mask too, True where the weight is not zero. ``provenance``
    is merged into the ticket's.

    Example:
        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[0.0, 0.5]]))
        >>> from_module(lin, zeros_as_pruned=True).masks["weight"].tolist()
        [[False, True]]
    """
    prunable: set[int] = set()
    if zeros_as_pruned:
        from ticketlab.models import prunable_parameters

        prunable = {id(p) for p in prunable_parameters(model).values()}
    masks: dict[str, torch.Tensor] = {}
    source = set()
    for pname, param in model.named_parameters():
        module_name, attr = _split(pname)
        if attr.endswith(_ORIG):
            base = attr[: -len(_ORIG)]
            buf = dict(model.get_submodule(module_name).named_buffers(recurse=False)).get(base + _MASK)
            if buf is not None:
                name = f"{module_name}.{base}" if module_name else base
                if not bool(((buf == 0) | (buf == 1)).all()):
                    raise IncompatibleError(f"buffer '{name}{_MASK}' holds values other than 0 and 1")
                masks[name] = buf != 0
                source.add(f"*{_MASK} buffers")
                continue
        if id(param) in prunable:
            masks[pname] = param.detach() != 0
            source.add("zeros in the weights")
    if not masks:
        raise IncompatibleError("the model has no torch.nn.utils.prune masks (*_mask buffers); pass "
                                "zeros_as_pruned=True to read zeros in its prunable weights as pruned")
    from ticketlab.interop.convert import base_provenance

    np_masks = to_numpy_masks(masks)
    prov = base_provenance(np_masks, {"format": "module", "class": type(model).__name__,
                                      "masks": " and ".join(sorted(source))})
    prov.update(provenance or {})
    return Ticket(masks=np_masks, provenance=prov)
