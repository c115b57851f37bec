"""LeNet-5 (LeCun et al. 1998) in its common modern form: conv 6@5x5, pool, conv 16@5x5, pool,
FC 120, 84, out, with ReLU and max pooling.

Both convolutions are padded (padding 2) so that the network also runs on 8x8 digits; on
28x28 MNIST the first FC layer therefore reads 16*7*7 = 784 features rather than the
unpadded 16*5*5 = 400.
"""

from __future__ import annotations

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.models.registry import register_model


class LeNet5(nn.Module):
    """conv1 -> pool -> conv2 -> pool -> fc1 -> fc2 -> fc3 (logits)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=2)
        self.fc1 = nn.Linear(16 * (height // 4) * (width // 4), 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


@register_model("lenet5", kind="image", downsamples=2)
def lenet5(spec: DataSpec) -> nn.Module:
    """LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, FC 120, 84, out (padded convs)."""
    return LeNet5(tuple(spec.input_shape), spec.num_classes)
