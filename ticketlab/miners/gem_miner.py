"""``gem_miner``: Gem-Miner (Sreenivasan, Sohn, Yang, Grinde, Nagle, Wang, Xing, Lee &
Papailiopoulos 2022, "Rare Gems: Finding Lottery Tickets at Initialization", Sec. 3).

Scores ``s ∈ [0, 1]`` (initialised ``U[0, 1]``) over frozen weights (signed Kaiming constants by
default, as for edge-popup: with PyTorch's default init the 5 %-dense network's activations
vanish and the gem stays at chance on lenet_300_100/digits, measured 0.10 against 0.89); the forward pass uses
``m = 1[s > 0.5]`` with a straight-through (identity) backward, the loss is
``L + λ Σ s²`` (Sec. 3, the L2 regularizer pushing scores to 0; its gradient ``2 λ s`` is applied
as SGD weight decay ``2 λ``, and the history's ``l2`` column is ``λ Σ s²``), and the scores are clamped to
``[0, 1]`` after every step. *Iterative freezing*: every ``freeze_every`` epochs the smallest
active scores are frozen out (set to 0, no gradient, optimizer state zeroed, never revived), at
the per-event rate ``p = 1 - d^(1 / floor((E - 1) / T))``, so the flag mask of active scores
reaches density ``d`` exactly at the last event (counts by the shared selection rule).

The method's own mask, the *gem* ``1[s > 0.5]`` of the active scores, has density at most ``d``;
its untrained accuracy is the history's ``stage="gem"`` row. The ticket saved is at exactly the
requested density: selection ranks the active scores first, then the frozen ones in reverse
order of freezing (so with freezing the ticket is the final flag mask). This is where
Gem-Miner's reference code differs: there the reported accuracies before and after fine-tuning
belong to two different masks (the gem, and the flag mask that is fine-tuned).

Fine-tuning (``--finetune``, default on): the ticket's weights are trained from the frozen
(treated) weights with SGD lr 0.01, momentum 0.9, weight decay 1e-4, ``E`` epochs, the rate
× 0.1 at 53 % and 80 % of training (the reference's epochs 80 and 120 of 150), batch 128.

Example:
    >>> from ticketlab.mining import mine
    >>> t = mine("gem_miner", density=0.2, train_epochs=11, device="cpu", miner_config={"freeze_every": 5})
    >>> t.kept == t.provenance["target_kept"], [r["stage"] for r in t.history][-3:]
    (True, ['gem', 'round', 'ticket'])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ticketlab.errors import ConfigError
from ticketlab.miners._learned import LearnedMaskConfig, LearnedMaskMiner, MaskRule
from ticketlab.miners.base import MiningContext, register_miner
from ticketlab.selection import TieRecord, select_top, tie_columns, warn_ties


class GemRule(MaskRule):
    """``m = 1[s > 0.5]``, straight-through to ``s``."""

    def hard(self) -> torch.Tensor:
        return (self.scores > 0.5).to(self.scores.dtype)


def freeze_events(epochs: int, every: int) -> int:
    """Number of freezing events in ``epochs`` epochs: ``floor((E - 1) / T)`` (at epochs T, 2T, ...).

    Example:
        >>> freeze_events(150, 5), freeze_events(5, 5), freeze_events(11, 5)
        (29, 0, 2)
    """
    return (epochs - 1) // every


@register_miner("gem_miner")
class GemMiner(LearnedMaskMiner):
    """Gem-Miner (Sreenivasan et al. 2022): learned scores in [0, 1], L2 pull to 0, iterative freezing.

    The gem, the freezing schedule and the fine-tuning are described in the module docstring."""

    own_rule_stage = "gem"

    @dataclass(frozen=True)
    class Config(LearnedMaskConfig):
        weights: str = field(default="signed_constant", metadata={
            "help": "frozen weights: signed_constant (default: sign(w0)*sqrt(2/fan_in)), init or signed_std"})
        lmbda: float = field(default=1e-4, metadata={
            "help": "weight of the L2 regularizer λ Σ s² on the scores (1e-4: ResNet-20 at 1.44 % density)"})
        freeze_every: int = field(default=5, metadata={
            "help": "epochs between iterative-freezing events (the smallest active scores are frozen out)"})
        finetune: bool = field(default=True, metadata={
            "help": "fine-tune the ticket's weights after mining (SGD 0.01, momentum 0.9, wd 1e-4, step 0.1 "
                    "at 53 % and 80 %); --no-finetune keeps the untrained ticket"})

        def __post_init__(self) -> None:
            super().__post_init__()
            if not self.lmbda >= 0:
                raise ConfigError(f"lmbda must be >= 0, got {self.lmbda}")
            if isinstance(self.freeze_every, bool) or not isinstance(self.freeze_every, int) or self.freeze_every < 1:
                raise ConfigError(f"freeze_every must be a positive integer, got {self.freeze_every!r}")

    config: Config

    def init_scores(self, ctx: MiningContext, name: str, w0: torch.Tensor) -> torch.Tensor:
        return torch.rand(w0.shape, generator=ctx.generator, dtype=torch.float32)  # U[0, 1]

    def make_rule(self, ctx: MiningContext, name: str, scores: torch.Tensor, density: float) -> MaskRule:
        return GemRule(scores)

    def score_masks(self, ctx: MiningContext, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        self.active = {n: torch.ones_like(r.scores, dtype=torch.bool) for n, r in rules.items()}
        self.frozen_at = {n: torch.zeros_like(r.scores, dtype=torch.int32) for n, r in rules.items()}
        return self.active

    def score_train_config(self, ctx: MiningContext) -> Any:
        """SGD with weight decay ``score_weight_decay + 2 λ``: the gradient of Sec. 3's ``L + λ ||s||²``
        is ``dL/ds + 2 λ s``, which is exactly what SGD's weight decay ``2 λ`` adds to the gradient
        (before momentum), without a second pass over the scores in the loss."""
        import dataclasses

        cfg = super().score_train_config(ctx)
        return dataclasses.replace(cfg, weight_decay=cfg.weight_decay + 2.0 * self.config.lmbda)

    def callbacks(self, ctx: MiningContext, rules: dict[str, MaskRule], density: float,
                  total_iterations: int, per_epoch: int) -> list[Callable[[Any], None]]:
        scores = [r.scores for r in rules.values()]
        epochs = total_iterations // per_epoch
        self.events = events = freeze_events(epochs, self.config.freeze_every)
        every = self.config.freeze_every * per_epoch
        ctx.provenance["freeze_events"] = events
        if events == 0:
            warnings.warn(f"gem_miner: {epochs} epochs give no freezing event (one every {self.config.freeze_every} "
                          "epochs after the first): the scores are only ranked at the end; give more epochs or a "
                          "smaller --freeze-every", stacklevel=2)

        def clamp(info: Any) -> None:  # scores stay in [0, 1] after every step
            with torch.no_grad():
                for s in scores:
                    s.clamp_(0.0, 1.0)

        def freeze(info: Any) -> None:
            j, rest = divmod(info.iteration, every)
            if events == 0 or rest or not 1 <= j <= events:
                return
            # event j of `events`: the active scores keep density d^(j / events), exact counts
            with torch.no_grad():
                current = {n: r.scores.detach() for n, r in rules.items()}
                ties: list[TieRecord] = []
                keep = select_top(current, density ** (j / events), scope=ctx.scope, masks=self.active,
                                  generator=ctx.tie_generator, ties=ties)
                kept = sum(int(m.sum()) for m in keep.values())
                row = {"stage": "freeze", "event": j, "iteration": info.iteration, "kept": kept, **tie_columns(ties)}
                self.event_rows.append(row)  # a history row per event: kept, ties
                warn_ties(row, f"gem_miner: freezing event {j}")
                for n, m in keep.items():
                    self.frozen_at[n][self.active[n] & ~m] = j
                self.active = keep
                info.optimizer.shrink_masks_({self.score_names[n]: m for n, m in keep.items()})

        return [clamp, freeze]

    def log_values(self, rules: dict[str, MaskRule]) -> dict[str, float]:
        with torch.no_grad():
            return {"l2": self.config.lmbda * float(sum((r.scores.double() ** 2).sum() for r in rules.values()))}

    def rank_scores(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        """Active scores (in [0, 1]) first, then frozen ones, the latest frozen highest."""
        out = {}
        for n, r in rules.items():
            s = r.scores.detach().clone()
            frozen = ~self.active[n]
            s[frozen] = (self.frozen_at[n][frozen] - self.events - 1).to(s.dtype)  # event j -> j - E' - 1 < 0
            out[n] = s
        return out

    def own_mask(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {n: (r.scores > 0.5) & self.active[n] for n, r in rules.items()}

    def ticket_train_config(self, ctx: MiningContext) -> Any:
        """Fine-tuning for ``E`` epochs (the score-training epochs), or ``None`` without ``finetune``.

        * A model with batch norm: the paper's recipe (Sec. 4, the reference's schedule scaled to
          ``E`` epochs): SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 128, x0.1 at 53 % and
          80 % of the iterations.
        * A model without batch norm (any ``torch.nn`` batch-norm module among ``ctx.model``'s
          modules decides): the model's own training config (``ctx.train_config``, the one
          ``--train-ticket`` and IMP use), for ``E`` epochs. Measured from one gem_miner ticket
          (density 0.1, seed 0, 20 epochs, ``benchmarks/learned_conv.py --part finetune``): the
          recipe above leaves BN-free conv4/digits at chance (0.100) and lenet_300_100/digits at
          0.691; the model's own config (Adam 3e-4 / 1.2e-3, batch 60) reaches 0.908 and 0.964.
        """
        from ticketlab.training import TrainConfig, total_iterations

        if not self.config.finetune:
            return None
        epochs = self.score_train_config(ctx).epochs
        batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in ctx.model.modules())
        if not batch_norm and ctx.train_config is not None:
            own = ctx.train_config
            cfg = TrainConfig(**{**own.to_dict(), "epochs": epochs, "iterations": None})
            new, old = total_iterations(cfg, ctx.data), total_iterations(own, ctx.data)  # iteration-indexed fields
            milestones = tuple(sorted({max(1, m * new // old) for m in own.milestones}))
            return TrainConfig(**{**cfg.to_dict(), "milestones": milestones,
                                  "warmup_iterations": own.warmup_iterations * new // old})
        cfg = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=128, epochs=epochs)
        total = total_iterations(cfg, ctx.data)
        milestones = tuple(sorted({max(1, math.floor(f * total)) for f in (0.53, 0.8)}))
        return TrainConfig(**{**cfg.to_dict(), "schedule": "step", "milestones": milestones})
