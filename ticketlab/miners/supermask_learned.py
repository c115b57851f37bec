"""``supermask_learned``: Zhou, Lan, Liu & Yosinski 2019, "Deconstructing Lottery Tickets:
Zeros, Signs, and the Supermask", Sec. 5 (training supermasks).

Mask logits ``s`` (initialised to 0, i.e. keep probability 1/2) over frozen weights; every
training forward pass samples ``m ~ Bernoulli(σ(s))`` from the run's seeded generator (on the
model's device), and the straight-through gradient reaches ``σ(s)``, so
``dL/ds = w0 ⊙ dL/dw_eff ⊙ σ'(s)``. Evaluation uses the mask's mode ``1[σ(s) > 1/2]``
(deterministic). The ticket keeps the top of ``σ(s)`` at the requested density (ranked by ``s``,
which orders the same and does not saturate). SGD momentum 0.9, cosine, lr 100 by default: the
logits' gradients ``w0 σ'(s) dL/dw`` are of order 1e-4 here, and at lr 0.1 ``σ(s)`` stays at 1/2
(measured on lenet_300_100/digits: the mask mode kept 50.0 % of the weights after 150 epochs and
the 5 % ticket scored 0.24; at lr 100 it scored 0.63).

The draws are seeded: the same seed gives the same mask, another seed another.

Example:
    >>> from ticketlab.mining import mine
    >>> a = mine("supermask_learned", density=0.3, train_epochs=1, device="cpu")
    >>> a.kept == a.provenance["target_kept"]
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ticketlab.miners._learned import LearnedMaskConfig, LearnedMaskMiner, MaskRule
from ticketlab.miners.base import MiningContext
from ticketlab.miners.registry import register_miner
from ticketlab.streams import BERNOULLI, offset_generator


class BernoulliRule(MaskRule):
    """``m ~ Bernoulli(σ(s))`` in training mode, ``1[σ(s) > 1/2]`` in evaluation; straight-through to ``σ(s)``."""

    def __init__(self, scores: torch.Tensor, generator: torch.Generator) -> None:
        super().__init__(scores)
        self.generator = generator

    def soft(self) -> torch.Tensor:
        return torch.sigmoid(self.scores)

    def mask(self) -> torch.Tensor:
        from ticketlab.miners._learned import straight_through

        soft = torch.sigmoid(self.scores)  # once: the forward's probabilities and the backward's σ'
        p = soft.detach()
        if self.training:
            hard = (torch.rand(p.shape, generator=self.generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)
        else:
            hard = (p > 0.5).to(p.dtype)
        return straight_through(hard, soft)

    def hard(self) -> torch.Tensor:
        p = torch.sigmoid(self.scores.detach())
        if self.training:  # m = 1[u < sigma(s)], u ~ U[0, 1): a Bernoulli(sigma(s)) draw (2x cheaper than bernoulli)
            return (torch.rand(p.shape, generator=self.generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)
        return (p > 0.5).to(p.dtype)


@register_miner("supermask_learned")
class LearnedSupermaskMiner(LearnedMaskMiner):
    """Zhou et al.'s learned supermask: Bernoulli masks with a straight-through gradient."""

    own_rule_stage = "supermask"

    @dataclass(frozen=True)
    class Config(LearnedMaskConfig):
        score_lr: float = field(default=100.0, metadata={
            "help": "peak learning rate of the mask logits (cosine to 0); large because their gradients "
                    "w0 * sigma'(s) * dL/dw are tiny"})

    def init_scores(self, ctx: MiningContext, name: str, w0: torch.Tensor) -> torch.Tensor:
        return torch.zeros(w0.shape, dtype=torch.float32)

    def prepare(self, ctx: MiningContext) -> None:
        # one generator for all layers' draws, on the model's device, seeded afresh every run
        self._generator = offset_generator(ctx.seed, BERNOULLI, ctx.device)
        super().prepare(ctx)

    def make_rule(self, ctx: MiningContext, name: str, scores: torch.Tensor, density: float) -> MaskRule:
        return BernoulliRule(scores, self._generator)

    def own_mask(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {n: r.scores > 0 for n, r in rules.items()}  # σ(s) > 1/2
