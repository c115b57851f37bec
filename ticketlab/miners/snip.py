"""``snip``: Single-shot Network Pruning based on connection sensitivity (Lee et al., ICLR 2019).

Lee et al. attach a mask ``c`` to every weight and score a connection by the derivative of the
loss with respect to it at ``c = 1`` (their Eq. 5-6):

    g_j(w; D) = dL(c ⊙ w; D) / dc_j = dL/dw_j * w_j,      s_j = |g_j| / sum_k |g_k|,

i.e. ``score = |g ⊙ w|`` at initialization. The normalisation by ``sum_k |g_k|`` is one positive
constant for all weights, so it changes no ranking (global or per layer) and is left out.

``L`` is the mean cross-entropy on one class-balanced batch of ``samples_per_class`` training
samples per class (default 10), or the sum of the batch losses over ``batches`` batches; for a
graph the loss is on sampled training nodes of the full graph. With ``--rounds K`` (iterative
SNIP) every round rescores the masked network ``theta0 ⊙ mask``; pruned weights score 0 and
stay pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketlab.miners._datadriven import DataDrivenConfig, DataDrivenMiner, take_grad
from ticketlab.miners.base import MiningContext
from ticketlab.miners.registry import register_miner


@register_miner("snip")
class SnipMiner(DataDrivenMiner):
    """SNIP (Lee et al. 2019): keep the largest connection sensitivities |dL/dw ⊙ w| at init."""

    @dataclass(frozen=True)
    class Config(DataDrivenConfig):
        pass

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.set_weights(masks)
        for loss in self.loss_terms():
            loss.backward()  # gradients accumulate over chunks and batches: g = dL/dw
        # Lee et al. 2019, Eq. 6 without the constant normaliser: |g ⊙ w|, written over the
        # gradient, which the scoring copy then lets go of (set_weights clears it anyway).
        return {n: take_grad(p).mul_(p.detach()).abs_() for n, p in self._params.items()}
