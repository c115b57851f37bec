"""``magnitude_init``: keep the largest ``|w|`` at initialization, without any training.

The "magnitude" baseline of the pruning-at-initialization literature (Frankle et al. 2021,
"Pruning neural networks at initialization: why are we missing the mark?"; Tanaka et al. 2020,
Fig. 1). Contrast ``magnitude``, which trains the dense network first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlab.miners.base import Miner, MinerConfig, MiningContext
from ticketlab.miners.registry import register_miner


@register_miner("magnitude_init")
class MagnitudeInitMiner(Miner):
    """Keep the largest |w| of the initial weights (data-free, no training)."""

    @dataclass(frozen=True)
    class Config(MinerConfig):
        pass

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: p.detach().abs() for n, p in ctx.params.items()}
