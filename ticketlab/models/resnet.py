"""CIFAR-style residual networks with basic blocks (He et al. 2016).

* ``resnet20``, ``resnet32``, ``resnet44``, ``resnet56``: the CIFAR ResNets of He et al. 2016,
  sec. 4.2, depth ``6n + 2``: a 3x3 conv with 16 channels, three stages of ``n`` basic blocks
  (n = 3, 5, 7, 9) with 16 / 32 / 64 channels (the 2nd and 3rd stage start with stride 2),
  global average pooling and a linear classifier; 0.27M, 0.46M, 0.66M and 0.85M weights. One
  builder (:func:`cifar_resnet_factory`) makes all four, so they share the layer names,
  the initialisation and the ``width`` option (channels of the first stage), and a ticket moves
  between them with :func:`ticketlab.transfer.transfer`. As in open_lth (and the Elastic LTH
  code built on it), a shortcut that changes the shape is a 1x1 stride-2 conv + batch norm
  (He et al.'s option B; their CIFAR runs used zero-padded identities, option A).
* ``resnet18``: the CIFAR variant of ResNet-18 (Synaptic-Flow, kuangliu/pytorch-cifar): a 3x3
  first conv with 64 channels and no max pool, four stages of two basic blocks with
  64 / 128 / 256 / 512 channels.

Convolutions have no bias (batch norm follows each). ``topology()`` lists the identity
shortcuts and the 1x1 downsample convs so that graph metrics see the residual paths.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.models.registry import register_model


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); shortcut = identity or 1x1 conv + bn."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv ``conv1``/``bn1``, ``blocks`` (stages of basic blocks), global pool, ``fc``."""

    def __init__(
        self, in_channels: int, widths: Sequence[int], depth: int, num_classes: int
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def topology(self, spec: DataSpec) -> dict[str, Any]:
        """Layered graph: stem, per block conv1 -> conv2 plus a shortcut edge into the sum."""
        tensors = {"input": self.conv1.in_channels}
        edges: list[dict[str, Any]] = []

        def add(param: str, src: str, units: int, kind: str = "conv") -> str:
            dst = f"t{len(tensors)}"
            tensors[dst] = units
            edges.append({"param": param, "src": src, "dst": dst, "kind": kind, "group": 1})
            return dst

        cur = add("conv1.weight", "input", self.conv1.out_channels)
        for i, block in enumerate(self.blocks):
            prefix = f"blocks.{i}"
            mid = add(f"{prefix}.conv1.weight", cur, block.conv1.out_channels)
            out = add(f"{prefix}.conv2.weight", mid, block.conv2.out_channels)
            if len(block.shortcut) > 0:  # the 1x1 downsample conv also feeds the sum `out`
                edges.append({"param": f"{prefix}.shortcut.0.weight", "src": cur, "dst": out,
                              "kind": "conv", "group": 1})
            else:
                edges.append({"identity": True, "src": cur, "dst": out})
            cur = out
        out = add("fc.weight", cur, self.fc.out_features, kind="linear")
        return {"tensors": tensors, "edges": edges, "input": "input", "output": out}


#: The CIFAR ResNet family (He et al. 2016, sec. 4.2): registry name -> basic blocks per stage.
CIFAR_RESNETS = {f"resnet{6 * n + 2}": n for n in (3, 5, 7, 9)}
#: Stages of every member of the family (16 / 32 / 64 channels at the default width).
CIFAR_STAGES = 3


def cifar_resnet_factory(blocks: int) -> Callable[..., nn.Module]:
    """The model factory of the CIFAR ResNet of depth ``6 * blocks + 2`` (``blocks`` per stage).

    Example:
        >>> from ticketlab.data.base import DataSpec
        >>> net = cifar_resnet_factory(5)(DataSpec("cifar10", "tensor", (3, 32, 32), 10))
        >>> len(net.blocks)
        15
    """
    depth = 6 * blocks + 2

    def factory(spec: DataSpec, width: int = 16) -> nn.Module:
        return ResNet(spec.input_shape[0], [width, 2 * width, 4 * width], blocks, spec.num_classes)

    factory.__name__ = factory.__qualname__ = f"resnet{depth}"
    factory.__doc__ = (f"ResNet-{depth} for CIFAR (He et al. 2016, sec. 4.2): 3 stages x {blocks} basic blocks, "
                       "16/32/64 channels.")
    return factory


for _name, _blocks in CIFAR_RESNETS.items():  # one builder, registered once per depth
    register_model(_name, kind="image", downsamples=2)(cifar_resnet_factory(_blocks))


@register_model("resnet18", kind="image", downsamples=3)
def resnet18(spec: DataSpec) -> nn.Module:
    """ResNet-18, CIFAR style: 3x3 stem, 4 stages x 2 basic blocks, 64..512 channels."""
    return ResNet(spec.input_shape[0], [64, 128, 256, 512], 2, spec.num_classes)
