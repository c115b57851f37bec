"""CIFAR-style VGG-11/16/19 with batch norm, as in open_lth (``cifar_vgg``) and Synaptic-Flow.

Each entry of the plan is a 3x3 conv (padding 1) -> batch norm -> ReLU, ``"M"`` a 2x2 max pool;
after the last conv a global average pool (open_lth's ``AvgPool2d(2)`` on the 2x2 map of a
32x32 input) gives 512 features for the single linear classifier. Four pools, so inputs need at
least 16x16 pixels.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.models.convnets import plan_forward
from ticketlab.models.registry import register_model

PLANS: dict[int, list[Union[int, str]]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512],
}


class VGG(nn.Module):
    """``conv{i}`` / ``bn{i}`` per plan entry, max pools, global average pool, ``fc`` (logits)."""

    def __init__(self, in_channels: int, plan: Sequence[Union[int, str]], num_classes: int):
        super().__init__()
        self.plan = list(plan)
        channels, n_conv = in_channels, 0
        for step in self.plan:
            if step != "M":
                n_conv += 1
                setattr(self, f"conv{n_conv}", nn.Conv2d(channels, int(step), 3, padding=1))
                setattr(self, f"bn{n_conv}", nn.BatchNorm2d(int(step)))
                channels = int(step)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = plan_forward(self, x, self.plan, batch_norm=True)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


@register_model("vgg11", kind="image", downsamples=4)
def vgg11(spec: DataSpec) -> nn.Module:
    """VGG-11 with batch norm, CIFAR style (open_lth cifar_vgg_11)."""
    return VGG(spec.input_shape[0], PLANS[11], spec.num_classes)


@register_model("vgg16", kind="image", downsamples=4)
def vgg16(spec: DataSpec) -> nn.Module:
    """VGG-16 with batch norm, CIFAR style (open_lth cifar_vgg_16)."""
    return VGG(spec.input_shape[0], PLANS[16], spec.num_classes)


@register_model("vgg19", kind="image", downsamples=4)
def vgg19(spec: DataSpec) -> nn.Module:
    """VGG-19 with batch norm, CIFAR style (open_lth cifar_vgg_19)."""
    return VGG(spec.input_shape[0], PLANS[19], spec.num_classes)
