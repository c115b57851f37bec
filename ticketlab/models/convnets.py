"""Conv-2 / Conv-4 / Conv-6: the VGG-like CIFAR-10 networks of Frankle & Carbin 2019, Fig. 2.

3x3 convolutions with padding 1 and ReLU, 2x2 max pools after each pair of convolutions, then
FC 256, 256 and the output layer. The convolutions keep the resolution, so any image of at
least ``2 ** pools`` pixels a side works; the first FC layer's width follows from the input
(64*16*16 = 16384 inputs for Conv-2 on CIFAR-10, 64*4*4 = 1024 on 8x8 digits).

Prunable weights on CIFAR-10: Conv-2 4,300,992 (paper: 4.3M), Conv-4 2,425,024 (2.4M),
Conv-6 2,261,184. The paper's table says 1.7M for Conv-6, which its own layer list does not
give; we follow the layer list.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.models.mlp import add_fc_layers, fc_forward
from ticketlab.models.registry import register_model

Plan = Sequence[Union[int, str]]  # channel counts and "M" for a 2x2 max pool


class ConvNet(nn.Module):
    """``plan`` of 3x3 conv widths and ``"M"`` pools, then ReLU FC layers and an output layer.

    Layers are named ``conv1, conv2, ..., fc1, fc2, ...``; the output is logits.
    """

    def __init__(self, input_shape: Sequence[int], plan: Plan, fc: Sequence[int], num_classes: int):
        super().__init__()
        channels, height, width = input_shape
        self.plan = list(plan)
        n_conv = 0
        for step in self.plan:
            if step == "M":
                height, width = height // 2, width // 2
            else:
                n_conv += 1
                setattr(self, f"conv{n_conv}", nn.Conv2d(channels, int(step), 3, padding=1))
                channels = int(step)
        self.num_fc = add_fc_layers(self, [channels * height * width, *fc, num_classes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fc_forward(self, plan_forward(self, x, self.plan).flatten(1), self.num_fc)


def plan_forward(module: nn.Module, x: torch.Tensor, plan: Plan, batch_norm: bool = False) -> torch.Tensor:
    """Run ``plan`` on ``x``: ``"M"`` is a 2x2 max pool, a width is ``conv{i}`` (then ``bn{i}``
    when ``batch_norm``) and ReLU, with ``i`` counting the convolutions from 1."""
    n_conv = 0
    for step in plan:
        if step == "M":
            x = nn.functional.max_pool2d(x, 2)
        else:
            n_conv += 1
            x = getattr(module, f"conv{n_conv}")(x)
            if batch_norm:
                x = getattr(module, f"bn{n_conv}")(x)
            x = torch.relu(x)
    return x


@register_model("conv2", kind="image", downsamples=1)
def conv2(spec: DataSpec, fc: Sequence[int] = (256, 256)) -> nn.Module:
    """Conv-2 (Frankle & Carbin 2019): 64, 64, pool, FC 256, 256, out."""
    return ConvNet(spec.input_shape, [64, 64, "M"], fc, spec.num_classes)


@register_model("conv4", kind="image", downsamples=2)
def conv4(spec: DataSpec, fc: Sequence[int] = (256, 256)) -> nn.Module:
    """Conv-4 (Frankle & Carbin 2019): 64, 64, pool, 128, 128, pool, FC 256, 256, out."""
    return ConvNet(spec.input_shape, [64, 64, "M", 128, 128, "M"], fc, spec.num_classes)


@register_model("conv6", kind="image", downsamples=3)
def conv6(spec: DataSpec, fc: Sequence[int] = (256, 256)) -> nn.Module:
    """Conv-6 (Frankle & Carbin 2019): 64, 64, pool, 128, 128, pool, 256, 256, pool, FC 256, 256, out."""
    plan = [64, 64, "M", 128, 128, "M", 256, 256, "M"]
    return ConvNet(spec.input_shape, plan, fc, spec.num_classes)
