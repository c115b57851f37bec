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
(treated) weights for ``E`` epochs. A model with batch norm uses the paper's SGD lr 0.01, momentum
0.9, weight decay 1e-4, the rate × 0.1 at 53 % and 80 % of training (the reference's epochs 80 and
120 of 150), batch 128; a batch-norm-free model (lenet, conv4) uses its own training config (the
one IMP and ``--train-ticket`` use), since the SGD recipe leaves BN-free conv4/digits at chance
(measured, ``benchmarks/learned_conv.py --part finetune``; see :meth:`GemMiner.ticket_train_config`).

λ defaults to 3e-4 (``docs/learned_masks.md``): on lenet_300_100/digits at density 0.01, λ = 1e-4
lets nearly every active score reach the clamp value 1.0, so the late freezing events are decided
by tie draws (and a class can lose every weight); 1e-3 pushes most scores below 0.5, so the gem is
much sparser than the ticket. The history's score-training rows carry ``at_upper`` / ``at_lower``,
the shares of active scores at the clamp bounds.

``protocol="reference"`` follows ksreenivasan/pruning_is_enough instead (``docs/learned_masks.md``):
the cosine steps once per epoch; the events follow 0-based epochs T, 2T, ... (after T+1, 2T+1, ...
epochs); each freezes ``ceil(p * active)`` scores at the constant rate ``p`` (compounding), and every
score tied at the threshold with them (strict ``>``); frozen scores are hidden by a flag but stay
in the optimizer (L2, momentum, clamp); the ticket is the gem at whatever density it has (count
rule ``"positive"`` over ``s - 1/2``); fine-tuning steps at the reference's epoch milestones. Where
the gem is empty after an epoch (e.g. a freezing event took every tied score) the run stops with a
:class:`~ticketlab.errors.MiningError`, as the reference gives no ticket there.

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

from ticketlab.errors import ConfigError, MiningError, TicketlabWarning
from ticketlab.miners._learned import WEIGHTS_HELP, LearnedMaskConfig, LearnedMaskMiner, MaskRule, protocol_field
from ticketlab.miners.base import MiningContext
from ticketlab.miners.registry import register_miner
from ticketlab.selection import (
    TieRecord, prune_count_ceil, prune_lowest_strict, select_above, select_top, tie_columns, warn_ties,
)

class GemRule(MaskRule):
    """``m = 1[s > 0.5]``, straight-through to ``s``; times ``flag`` when one is given (protocol
    reference: ``GetSubnet(scores) * flag``, utils/conv_type.py l. 173-174, so frozen scores get
    no gradient from the loss and do not reach the forward pass, yet keep their values)."""

    def __init__(self, scores: torch.Tensor, flag: torch.Tensor | None = None) -> None:
        super().__init__(scores)
        self.flag = flag  # a plain tensor, not a buffer: it never enters the model's state_dict

    def hard(self) -> torch.Tensor:
        return (self.scores > 0.5).to(self.scores.dtype)

    def mask(self) -> torch.Tensor:
        m = super().mask()
        return m if self.flag is None else m * self.flag


def freeze_events(epochs: int, every: int) -> int:
    """Number of freezing events in ``epochs`` epochs: ``floor((E - 1) / T)`` (at epochs T, 2T, ...).

    Example:
        >>> freeze_events(150, 5), freeze_events(5, 5), freeze_events(11, 5)
        (29, 0, 2)
    """
    return (epochs - 1) // every


def freeze_epochs(epochs: int, every: int, protocol: str = "exact") -> list[int]:
    """Completed epochs after which freezing events 1, 2, ... happen.

    ``exact``: after T, 2T, ... epochs. ``reference``: after 0-based epochs T, 2T, ..., i.e. after
    T + 1, 2T + 1, ... completed epochs (pruning_is_enough main.py l. 203: ``epoch % iter_period == 0
    and epoch != 0`` at the end of 0-based ``epoch``). Both give :func:`freeze_events` events.

    Example:
        >>> freeze_epochs(11, 5), freeze_epochs(11, 5, "reference"), freeze_epochs(10, 5, "reference")
        ([5, 10], [6, 11], [6])
    """
    shift = 1 if protocol == "reference" else 0
    return [j * every + shift for j in range(1, freeze_events(epochs, every) + 1)]


def reference_rate(density: float, events: int) -> float:
    """The constant per-event freezing rate of the reference: ``1 - exp(log(d) / n)``
    (pruning_is_enough utils/net_utils.py ``get_prune_rate``, l. 791-805).

    Example:
        >>> round(reference_rate(0.01, 2), 12), round(reference_rate(0.25, 2), 12)
        (0.9, 0.5)
    """
    return 1.0 - math.exp(math.log(density) / events)


def reference_milestones(epochs: int) -> list[int]:
    """The reference's fine-tuning milestones (epochs, rate × 0.1 after each) for ``epochs``
    epochs: a table, not a proportion (pruning_is_enough utils/schedulers.py ``get_scheduler``,
    l. 7-24): 6 -> [3]; 100 -> [50, 80]; 150, 160 -> [80, 120]; 200 -> [100, 150];
    300 -> [150, 250]; otherwise [int(E / 2), int(E / 3 * 2)]. Milestones below 1 and repeats
    (E <= 2, where the reference would apply gamma twice at once) are dropped.

    Example:
        >>> reference_milestones(100), reference_milestones(150), reference_milestones(20), reference_milestones(2)
        ([50, 80], [80, 120], [10, 13], [1])
    """
    table = {6: [3], 100: [50, 80], 150: [80, 120], 160: [80, 120], 200: [100, 150], 300: [150, 250]}
    ms = table.get(epochs, [int(epochs / 2.0), int(epochs / 3.0 * 2.0)])
    return sorted({m for m in ms if m >= 1})


@register_miner("gem_miner")
class GemMiner(LearnedMaskMiner):
    """Gem-Miner (Sreenivasan et al. 2022): learned scores in [0, 1], L2 pull to 0, iterative freezing.

    The gem, the freezing schedule and the fine-tuning are described in the module docstring."""

    own_rule_stage = "gem"

    @dataclass(frozen=True)
    class Config(LearnedMaskConfig):
        weights: str = field(default="signed_constant", metadata={"help": WEIGHTS_HELP})
        lmbda: float = field(default=3e-4, metadata={
            "help": "weight of the L2 regularizer λ Σ s² on the scores (3e-4, measured on lenet_300_100/digits at "
                    "densities 0.2-0.01: all classes connected, no tie at a freezing threshold, the gem = the "
                    "ticket; 1e-4 saturates the scores at 1 at density 0.01, 1e-3 empties most of the gem)"})
        freeze_every: int = field(default=5, metadata={
            "help": "epochs between iterative-freezing events (the smallest active scores are frozen out)"})
        protocol: str = protocol_field()
        finetune: bool = field(default=True, metadata={
            "help": "fine-tune the ticket's weights after mining (with batch norm: SGD 0.01, momentum 0.9, wd "
                    "1e-4, step 0.1 at 53 % and 80 %; without: the model's own training config); --no-finetune "
                    "keeps the untrained ticket"})

        def __post_init__(self) -> None:
            super().__post_init__()
            if not self.lmbda >= 0:
                raise ConfigError(f"lmbda must be >= 0, got {self.lmbda}")
            if isinstance(self.freeze_every, bool) or not isinstance(self.freeze_every, int) or self.freeze_every < 1:
                raise ConfigError(f"freeze_every must be a positive integer, got {self.freeze_every!r}")

    config: Config
    #: protocol reference: the ticket is every weight with a positive rank, i.e. the gem (:meth:`rank_scores`)
    reference_count_rule = "positive"

    def prepare(self, ctx: MiningContext) -> None:
        if self.reference and ctx.scope != "global":
            raise ConfigError("gem_miner with protocol reference freezes over all layers together (the reference's "
                              "BottomK); use scope global")
        super().prepare(ctx)

    def init_scores(self, ctx: MiningContext, name: str, w0: torch.Tensor) -> torch.Tensor:
        return torch.rand(w0.shape, generator=ctx.generator, dtype=torch.float32)  # U[0, 1]

    def make_rule(self, ctx: MiningContext, name: str, scores: torch.Tensor, density: float) -> MaskRule:
        return GemRule(scores, torch.ones_like(scores) if self.reference else None)

    def score_masks(self, ctx: MiningContext, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor] | None:
        """exact: the optimizer keeps frozen scores (and their momentum) at zero. reference: no
        optimizer mask; the rule's flag hides frozen scores, which keep drifting under L2 and
        momentum (the reference's L2 sums every score, utils/net_utils.py l. 704-712)."""
        self.active = {n: torch.ones_like(r.scores, dtype=torch.bool) for n, r in rules.items()}
        self.frozen_at = {n: torch.zeros_like(r.scores, dtype=torch.int32) for n, r in rules.items()}
        return None if self.reference else self.active

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
        ctx.provenance["freeze_events"] = events
        protocol = "reference" if self.reference else "exact"
        #: iteration -> event number (the step that ends the event's epoch)
        at = {e * per_epoch: j for j, e in enumerate(freeze_epochs(epochs, self.config.freeze_every, protocol), 1)}
        if events == 0:
            warnings.warn(f"gem_miner: {epochs} epochs give no freezing event (one every {self.config.freeze_every} "
                          "epochs after the first): the scores are only ranked at the end; give more epochs or a "
                          "smaller --freeze-every", TicketlabWarning, stacklevel=2)

        def clamp(info: Any) -> None:  # scores stay in [0, 1] after every step
            with torch.no_grad():
                for s in scores:
                    s.clamp_(0.0, 1.0)

        def freeze(info: Any) -> None:
            j = at.get(info.iteration)
            if j is None:
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

        if not self.reference:
            return [clamp, freeze]
        rate = reference_rate(density, events) if events else 0.0

        def freeze_reference(info: Any) -> None:
            j = at.get(info.iteration)
            if j is None:
                return
            with torch.no_grad():
                active = sum(int(m.sum()) for m in self.active.values())
                asked = prune_count_ceil(rate, active)  # utils/net_utils.py l. 471-472: np.ceil(prune_rate * active)
                # l. 481-482: threshold = sort(|active|)[asked - 1]; with asked 0 that index is -1, the largest
                keep, threshold = prune_lowest_strict({n: r.scores.detach().abs() for n, r in rules.items()},
                                                      asked if asked >= 1 else active, masks=self.active)
                tied = sum(int(((r.scores.detach().abs() == threshold) & self.active[n]).sum())
                           for n, r in rules.items())
                for n, m in keep.items():  # l. 502-503: flag = flag & gt(|s|, threshold), strict
                    self.frozen_at[n][self.active[n] & ~m] = j
                    rules[n].flag.copy_(m)
                self.active = keep
                kept = sum(int(m.sum()) for m in keep.values())
                # a history row per event, as under exact; every tie at the threshold goes (tied_kept 0)
                self.event_rows.append({"stage": "freeze", "event": j, "iteration": info.iteration, "kept": kept,
                                        "tied": tied, "tied_kept": 0, "active": active, "asked": asked,
                                        "frozen": active - kept, "threshold": threshold})

        def stop_when_empty(info: Any) -> None:
            # main.py l. 214-241: after every epoch the gem (rounded scores × flag) is counted; at 0
            # the reference re-prunes its (empty) flag mask and fails: there is no ticket
            if info.iteration % per_epoch:
                return
            with torch.no_grad():
                if any(bool(m.any()) for m in self.own_mask(rules).values()):
                    return
            epoch = info.iteration // per_epoch
            rows = self.event_rows
            last = rows[-1] if rows and rows[-1]["iteration"] == info.iteration else None
            if last is not None:
                why = (f"freezing event {last['event']} of {events} (after 0-based epoch {epoch - 1}) had to freeze "
                       f"ceil(p * {last['active']}) = {last['asked']} scores, and its strict > at the threshold "
                       f"{last['threshold']:.6g} (shared by {last['tied']}) froze {last['frozen']}, leaving no "
                       "score above 0.5")
                fix = "protocol exact, or a larger lmbda to keep scores off the clamp value"
            else:
                why = f"after 0-based epoch {epoch - 1} no active score is above 0.5"
                fix = "protocol exact, or a smaller lmbda"
            raise MiningError(f"gem_miner (protocol reference): the network is empty: {why}; the reference code gives "
                              f"no ticket here either (use {fix})")

        return [clamp, freeze_reference, stop_when_empty]

    def log_values(self, rules: dict[str, MaskRule]) -> dict[str, float]:
        """``l2`` (``λ Σ s²`` over every score), and the share of the *active* scores sitting exactly
        at the clamp bounds: ``at_upper`` (``s == 1``) and ``at_lower`` (``s == 0``). Scores tied at 1
        are what a freezing event cannot rank (issue 21: at density 0.01 with λ = 1e-4, more active
        scores sat at 1.0 than the late events kept; ``benchmarks/gem_lambda.py`` measures it)."""
        with torch.no_grad():
            l2 = self.config.lmbda * float(sum((r.scores.double() ** 2).sum() for r in rules.values()))
            active = sum(int(m.sum()) for m in self.active.values())
            upper = sum(int(((r.scores == 1.0) & self.active[n]).sum()) for n, r in rules.items())
            lower = sum(int(((r.scores == 0.0) & self.active[n]).sum()) for n, r in rules.items())
            share = (lambda c: c / active) if active else (lambda c: math.nan)
            return {"l2": l2, "at_upper": share(upper), "at_lower": share(lower)}

    def rank_scores(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        """Active scores (in [0, 1]) first, then frozen ones, the latest frozen highest.

        protocol reference: the active scores less 1/2, so that the final selection's count rule
        ``"positive"`` keeps exactly the gem (frozen ranks stay below -1)."""
        out = {}
        for n, r in rules.items():
            s = r.scores.detach().clone()
            if self.reference:
                s -= 0.5
            frozen = ~self.active[n]
            s[frozen] = (self.frozen_at[n][frozen] - self.events - 1).to(s.dtype)  # event j -> j - E' - 1 < 0
            out[n] = s
        return out

    def own_mask(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        """The gem: the active weights whose score is strictly above 0.5."""
        with torch.no_grad():
            return select_above({n: r.scores for n, r in rules.items()}, 0.5, masks=self.active)

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
        * ``protocol="reference"``: the reference's SGD recipe with its table of epoch milestones
          (convention 8), with or without batch norm, as the reference code does.
        """
        from ticketlab.training import TrainConfig, total_iterations

        if not self.config.finetune:
            return None
        epochs = self.score_train_config(ctx).epochs
        batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in ctx.model.modules())
        if not batch_norm and ctx.train_config is not None and not self.reference:
            own = ctx.train_config
            cfg = TrainConfig(**{**own.to_dict(), "epochs": epochs, "iterations": None})
            new, old = total_iterations(cfg, ctx.data), total_iterations(own, ctx.data)  # iteration-indexed fields
            milestones = tuple(sorted({max(1, m * new // old) for m in own.milestones}))
            return TrainConfig(**{**cfg.to_dict(), "milestones": milestones,
                                  "warmup_iterations": own.warmup_iterations * new // old})
        cfg = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=128, epochs=epochs)
        total = total_iterations(cfg, ctx.data)
        if self.reference:  # the reference's table of epoch milestones (utils/schedulers.py l. 7-24)
            per_epoch = total // epochs
            milestones = tuple(m * per_epoch for m in reference_milestones(epochs))
            return TrainConfig(**{**cfg.to_dict(), "schedule": "step", "milestones": milestones})
        milestones = tuple(sorted({max(1, math.floor(f * total)) for f in (0.53, 0.8)}))
        return TrainConfig(**{**cfg.to_dict(), "schedule": "step", "milestones": milestones})
