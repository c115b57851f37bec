"""Fully connected networks (kind ``vector``: any tensor input is flattened).

LeNet-300-100 is the MNIST network of LeCun et al. 1998 as used by Frankle & Carbin 2019
(Fig. 2: 784-300-100-10, 266,200 weights, ReLU).
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
        widths = [in_features, *hidden, num_classes]
        self.num_layers = len(widths) - 1
        for i in range(self.num_layers):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i in range(1, self.num_layers + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.num_layers:
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
