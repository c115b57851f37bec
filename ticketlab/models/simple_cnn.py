"""The small CNN of the seed experiments on MNIST: two conv layers with leaky ReLU and one linear
layer with a sigmoid output.

Layout: conv 3x3 (32) -> leaky ReLU -> 2x2 max pool -> conv 3x3 (64) -> leaky ReLU -> 2x2 max
pool -> linear -> sigmoid. Convolutions are padded, so 8x8 digits work too.

How the sigmoid output is used: ``forward`` returns ``sigmoid(z)`` for the class scores ``z``,
one value in (0, 1) per class, as in the seed experiments. Training code treats a model's
output as the scores passed to cross-entropy, so this network is trained with
``cross_entropy(sigmoid(z), y)``: sigmoid is monotone, so the predicted class (argmax) is that
of ``z`` and the loss still pushes the true class's score up and the others down, but the
scores are bounded, so the loss cannot fall below ``log(1 + (K-1)/e)`` (1.46 for K = 10) and
gradients are smaller than with logits. Pass ``logits=True`` to drop the sigmoid and return
``z`` (a plain logit classifier with the same parameters).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError
from ticketlab.models.registry import register_model


class SimpleCNN(nn.Module):
    """conv1 -> pool -> conv2 -> pool -> fc -> sigmoid (or logits)."""

    def __init__(
        self, input_shape: Sequence[int], channels: Sequence[int], num_classes: int,
        logits: bool = False,
    ) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc = nn.Linear(c2 * (height // 4) * (width // 4), num_classes)
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(nn.functional.leaky_relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(nn.functional.leaky_relu(self.conv2(x)), 2)
        z = self.fc(x.flatten(1))
        return z if self.logits else torch.sigmoid(z)


@register_model("simple_cnn", kind="image", downsamples=2)
def simple_cnn(
    spec: DataSpec, channels: Sequence[int] = (32, 64), logits: bool = False
) -> nn.Module:
    """Seed-experiment CNN: 2 convs with leaky ReLU, 1 linear layer with sigmoid output."""
    if len(channels) != 2:
        raise ConfigError(f"simple_cnn option channels needs 2 widths, got {tuple(channels)}")
    return SimpleCNN(spec.input_shape, tuple(channels), spec.num_classes, logits)
