"""Fully connected networks (kind ``vector``: any tensor input is flattened).

LeNet-300-100 is the MNIST network of LeCun et al. 1998 as used by Frankle & Carbin 2019
(Fig. 2: 784-300-100-10, 266,200 weights, ReLU). ``mlp_200_30`` is the 784-200-30-10 ReLU MLP of
the supermask seed recipe (issue 10: 163,100 weights); its hidden widths are configurable for the
recipe's layer-size baseline ({50, 100, 150} x {5, 15, 25}).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.models.registry import register_model


class MLP(nn.Module):
    """Flatten, then Linear + ReLU per hidden width, then a Linear output layer (logits).

    Layers are named ``fc1, fc2, ...`` so parameter names read like the paper's tables.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.num_layers = add_fc_layers(self, [in_features, *hidden, num_classes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fc_forward(self, x.flatten(1), self.num_layers)


def add_fc_layers(module: nn.Module, widths: Sequence[int]) -> int:
    """Add ``fc1, fc2, ...`` (``nn.Linear(widths[i], widths[i + 1])``) to ``module``; their count."""
    for i in range(len(widths) - 1):
        setattr(module, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))
    return len(widths) - 1


def fc_forward(module: nn.Module, x: torch.Tensor, count: int) -> torch.Tensor:
    """``fc1 .. fc{count}`` of ``module`` with ReLU between them (none after the last: logits)."""
    for i in range(1, count + 1):
        x = getattr(module, f"fc{i}")(x)
        if i < count:
            x = torch.relu(x)
    return x


@register_model("lenet_300_100", kind="vector")
def lenet_300_100(spec: DataSpec, hidden: Sequence[int] = (300, 100)) -> nn.Module:
    """LeNet-300-100 MLP (Frankle & Carbin 2019, Fig. 2); hidden widths configurable.

    Example:
        >>> spec = DataSpec("mnist", "tensor", (1, 28, 28), 10)
        >>> sum(p.numel() for p in lenet_300_100(spec).parameters() if p.dim() == 2)
        266200
    """
    return MLP(math.prod(spec.input_shape), tuple(hidden), spec.num_classes)


@register_model("mlp_200_30", kind="vector")
def mlp_200_30(spec: DataSpec, hidden: Sequence[int] = (200, 30)) -> nn.Module:
    """784-200-30-10 ReLU MLP of the supermask seed recipe; hidden widths configurable.

    Example:
        >>> spec = DataSpec("mnist5k", "tensor", (1, 28, 28), 10)
        >>> sum(p.numel() for p in mlp_200_30(spec).parameters() if p.dim() == 2)
        163100
    """
    return MLP(math.prod(spec.input_shape), tuple(hidden), spec.num_classes)
