"""``magnitude``: train the dense network, keep the largest ``|w|`` (one-shot magnitude pruning,
Han et al. 2015; the pruning step of Frankle & Carbin 2019 without rewinding)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlab.miners.base import Miner, MinerConfig, MiningContext
from ticketlab.miners.registry import register_miner


@register_miner("magnitude")
class MagnitudeMiner(Miner):
    """Magnitude pruning after training: train the dense network once, keep the largest |w|.

    The score is ``|w|`` of the trained dense weights. The trained weights stay in the model, so
    the ticket's ``final`` snapshot holds them (masked)."""

    needs_data = True
    trains = True
    tracks_masks = True

    @dataclass(frozen=True)
    class Config(MinerConfig):
        pass

    def prepare(self, ctx: MiningContext) -> None:
        from ticketlab.training import fit, train_summary

        result = fit(ctx.model, ctx.data, ctx.train_config, seed=ctx.seed, device=ctx.device,
                       progress=ctx.progress, callbacks=ctx.mask_trackers("dense"))
        ctx.records.append({"stage": "dense", **train_summary(result)})

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: p.detach().abs() for n, p in ctx.params.items()}
