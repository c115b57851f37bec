"""``random``: a uniformly random mask at the requested density (the baseline of every study)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlab.miners.base import Miner, MinerConfig, MiningContext, register_miner


@register_miner("random")
class RandomMiner(Miner):
    """Scores are i.i.d. uniform draws from the run's generator, so the kept set is a uniformly
    random subset of exactly the requested size (per layer with ``scope="layer"``)."""

    @dataclass(frozen=True)
    class Config(MinerConfig):
        pass

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            n: torch.rand(p.shape, generator=ctx.generator, dtype=torch.float64).to(p.device)
            for n, p in ctx.params.items()
        }
