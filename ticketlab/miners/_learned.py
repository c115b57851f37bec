"""The shared engine of the learned-mask miners (``gem_miner``, ``edge_popup``, ``supermask_learned``).

The weights stay frozen at their (treated) initial values ``w0`` and a score tensor ``s`` shaped
like each prunable weight is trained by backpropagation through a mask: the network computes
with ``w0 ⊙ m(s)``. The methods differ only in

* the forward rule ``m(s)`` and the tensor that its straight-through gradient reaches
  (:meth:`MaskRule.hard` / :meth:`MaskRule.soft`),
* the score initialization (:meth:`LearnedMaskMiner.init_scores`),
* a regularizer, and hooks run after every optimizer step (clamping, freezing).

Everything else is one piece of code for the three of them:

* **Plumbing**: each prunable weight gets a ``torch.nn.utils.parametrize`` parametrization
  (:class:`MaskRule`) holding the scores as a parameter, so every registered model (MLP, conv,
  VGG, ResNet, the GCN's ``lin.weight``) works unchanged; the parametrizations are removed
  after training and the original parameter objects are back in place, bit-identical.
* **Training**: :func:`ticketlab.training.fit` with ``trainable=`` the scores: the weights,
  biases and batch-norm affine parameters get ``requires_grad=False`` and no optimizer holds
  them. Batch norm is therefore *non-affine* during score training (γ and β frozen at their
  initial 1 and 0, as in both reference codes' ``affine=False`` layers) while its running
  statistics still update (train mode).
* **Selection**: the miner's scores go through :mod:`ticketlab.selection` like every other
  method's, so the ticket is at exactly the requested density; the method's own rule (e.g.
  Gem-Miner's ``s > 0.5``) is reported separately in the history and provenance.

The straight-through estimator (Bengio et al. 2013): the forward value is the hard mask, the
backward pass treats ``m`` as the identity of :meth:`MaskRule.soft`, so
``dL/d soft = w0 ⊙ dL/dw_eff``.

**Protocols.** ``gem_miner`` and ``edge_popup`` take ``protocol``: ``"exact"`` (default, the
above) or ``"reference"``, which reproduces the reference codes' conventions (per-epoch cosine,
Gem-Miner's freezing times, compounding ``ceil`` counts, strict thresholds, drifting frozen
scores, the gem as the ticket, the reference's fine-tuning milestones, edge-popup's truncated
count); ``docs/learned_masks.md`` lists them side by side with the reference lines they follow.

Scores are trained once, in :meth:`LearnedMaskMiner.prepare`, towards the run's final density
(the last entry of the schedule). With ``--rounds`` > 1 every round ranks the same learned
scores, which gives the same final mask as one round.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from ticketlab.errors import ConfigError
from ticketlab.miners.base import PROTOCOLS, Miner, MinerConfig, MiningContext, check_choices, protocol_field  # noqa: F401
from ticketlab.progress import NullProgress
from ticketlab.weights import check_treatment


class _StraightThrough(torch.autograd.Function):
    """Forward: ``hard``; backward: the gradient goes to ``soft`` unchanged (identity)."""

    @staticmethod
    def forward(ctx: Any, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return hard

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, grad


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass; ``d out / d soft = identity`` in the backward pass.

    Example:
        >>> s = torch.tensor([0.2, 0.7], requires_grad=True)
        >>> m = straight_through((s > 0.5).float(), s)
        >>> (m * torch.tensor([3.0, 4.0])).sum().backward()
        >>> m.tolist(), s.grad.tolist()
        ([0.0, 1.0], [3.0, 4.0])
    """
    return _StraightThrough.apply(hard, soft)


class MaskRule(nn.Module):
    """A parametrization ``w0 -> w0 ⊙ m(s)`` holding the trainable scores ``s``.

    Subclasses define :meth:`hard` (the forward mask, 0/1 in the weight's dtype) and may
    override :meth:`soft` (what the straight-through gradient reaches; default ``s``).
    """

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = nn.Parameter(scores)

    def soft(self) -> torch.Tensor:
        return self.scores

    def hard(self) -> torch.Tensor:
        raise NotImplementedError

    def mask(self) -> torch.Tensor:
        """The forward mask with its straight-through gradient."""
        return straight_through(self.hard(), self.soft())

    def forward(self, w0: torch.Tensor) -> torch.Tensor:
        return w0 * self.mask()


def _module_and_attr(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    owner, _, attr = name.rpartition(".")
    return (model.get_submodule(owner) if owner else model), attr


def _restore_order(module: nn.Module, order: list[str]) -> None:
    """Put the module's parameters back in their original order (removing a parametrization
    re-registers the parameter last, which would change ``named_parameters()`` order)."""
    params = module._parameters
    items = [(k, params[k]) for k in order if k in params] + [(k, v) for k, v in params.items() if k not in order]
    params.clear()
    params.update(items)


#: The help of every learned-mask miner's ``weights`` (``--weights``); each has its own default.
WEIGHTS_HELP = ("the frozen weights the scores train over: init (the model's own), signed_constant "
                "(sign(w0)*sqrt(2/fan_in), Ramanujan et al.), scaled_signed_constant (sign(w0)*sqrt(2/(d*fan_in)), "
                "d the run's density: edge-popup's scale_fan) or signed_std (sign(w0)*std(layer w0))")


@dataclass(frozen=True)
class LearnedMaskConfig(MinerConfig):
    """Options shared by the learned-mask miners (score training; SGD with a cosine schedule)."""

    weights: str = field(default="init", metadata={"help": WEIGHTS_HELP})
    score_epochs: int | None = field(default=None, metadata={
        "help": "epochs of score training (default: --train-epochs if given, else the method's default)"})
    score_lr: float = field(default=0.1, metadata={"help": "peak learning rate of score training (cosine to 0)"})
    score_momentum: float = field(default=0.9, metadata={"help": "SGD momentum of score training"})
    score_weight_decay: float = field(default=0.0, metadata={"help": "weight decay on the scores"})
    score_batch_size: int = field(default=128, metadata={"help": "minibatch size of score training"})

    def __post_init__(self) -> None:
        check_choices(self)
        check_treatment(self.weights)
        if self.score_epochs is not None and (isinstance(self.score_epochs, bool) or not isinstance(
                self.score_epochs, int) or self.score_epochs < 1):
            raise ConfigError(f"score_epochs must be a positive integer, got {self.score_epochs!r}")
        if isinstance(self.score_batch_size, bool) or not isinstance(self.score_batch_size, int) or self.score_batch_size < 1:
            raise ConfigError(f"score_batch_size must be a positive integer, got {self.score_batch_size!r}")
        for name in ("score_lr",):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("score_momentum", "score_weight_decay"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


#: Score-training epochs when neither ``score_epochs`` nor ``--train-epochs`` is given: small data
#: sets (seconds per epoch on a CPU) get the Gem-Miner paper's 150; other data sets 20.
_SMALL = ("digits", "mnist1d", "mnist5k", "karate")


class LearnedMaskMiner(Miner):
    """Base of the miners that learn a mask over frozen weights (see the module docstring).

    Subclasses set ``Rule`` (a :class:`MaskRule` subclass), implement :meth:`init_scores` and
    :meth:`make_rule`, and may override :meth:`regularizer`, :meth:`callbacks`,
    :meth:`rank_scores` and :meth:`own_mask`.
    """

    needs_data = True
    trains = True
    tracks_masks = True  # the mask of the current scores (the weights are frozen)
    frozen_weights = True
    Config = LearnedMaskConfig
    config: LearnedMaskConfig
    default_epochs: ClassVar[int] = 150

    # ------------------------------------------------------------------ method hooks
    def init_scores(self, ctx: MiningContext, name: str, w0: torch.Tensor) -> torch.Tensor:
        """Initial scores of one parameter (drawn from ``ctx.generator``, on CPU then moved)."""
        raise NotImplementedError

    def make_rule(self, ctx: MiningContext, name: str, scores: torch.Tensor, density: float) -> MaskRule:
        """The parametrization of one parameter at the run's final ``density``."""
        raise NotImplementedError

    def regularizer(self, rules: dict[str, MaskRule]) -> Callable[[], torch.Tensor] | None:
        """A term added to every step's loss (default: none)."""
        return None

    def callbacks(self, ctx: MiningContext, rules: dict[str, MaskRule], density: float,
                  total_iterations: int, per_epoch: int) -> list[Callable[[Any], None]]:
        """Functions run after every optimizer step (default: none)."""
        return []

    def score_masks(self, ctx: MiningContext, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor] | None:
        """Masks over the score parameters that training keeps at zero (Gem-Miner's freezing)."""
        return None

    def log_values(self, rules: dict[str, MaskRule]) -> dict[str, float]:
        """Extra columns of every score-training evaluation row (default: none)."""
        return {}

    def rank_scores(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        """What :mod:`ticketlab.selection` ranks at the end (default: the scores themselves)."""
        return {n: r.scores.detach().clone() for n, r in rules.items()}

    def own_mask(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        """The method's own mask in evaluation mode (e.g. Gem-Miner's ``s > 0.5``)."""
        with torch.no_grad():
            return {n: r.hard().bool() for n, r in rules.items()}

    #: The count rule of the final selection under ``protocol="reference"`` (edge-popup: the
    #: truncated count; Gem-Miner: the gem, i.e. the positive ranks of :meth:`rank_scores`).
    reference_count_rule: ClassVar[str] = "exact"

    # ------------------------------------------------------------------ shared engine
    @property
    def reference(self) -> bool:
        """Whether the run follows the reference code's conventions (``protocol="reference"``)."""
        return getattr(self.config, "protocol", "exact") == "reference"

    def weight_treatment(self) -> str:
        return self.config.weights

    def treatment_density(self, ctx: MiningContext) -> float | None:
        """The layer density of a density-dependent treatment (``scaled_signed_constant``): the
        run's final density ``d`` (the last entry of the schedule), the same for every layer.

        For ``edge_popup`` (layer-wise) that is each layer's density: every layer keeps
        ``floor(d * N + 1/2)`` of its ``N`` weights from the first step. For the global-scope
        miners (``gem_miner``, ``supermask_learned``) a layer's final density is what score
        training learns, unknown when the weights are set; ``d`` is the density each layer has
        when the mask is spread evenly, and it is the choice of both reference codes, which
        scale every layer by the one ``prune_rate`` of the run (allenai/hidden-networks and
        ksreenivasan/pruning_is_enough, ``utils/builder.py``, ``scale_fan``).
        """
        from ticketlab.weights import needs_density

        return self.final_density(ctx) if needs_density(self.config.weights) else None

    def round_count_rule(self, count_rule: str) -> str:
        if not self.reference:
            return count_rule
        if count_rule != "exact":
            raise ConfigError(f"method '{self.name}' with protocol reference selects by the reference's own rule; "
                              f"leave the count rule at exact (it becomes '{self.reference_count_rule}')")
        return self.reference_count_rule

    def score_train_config(self, ctx: MiningContext) -> Any:
        """The :class:`~ticketlab.training.TrainConfig` of score training."""
        from ticketlab.training import TrainConfig

        cfg = self.config
        epochs = cfg.score_epochs or ctx.train_epochs
        if epochs is None:
            epochs = self.default_epochs if ctx.spec.name in _SMALL or ctx.spec.kind == "graph" else 20
        # protocol reference: the cosine steps once per epoch (Gem-Miner main.py l. 171
        # `scheduler.step()` after each epoch; hidden-networks main.py l. 123 `lr_policy(epoch)`)
        return TrainConfig(optimizer="sgd", lr=cfg.score_lr, momentum=cfg.score_momentum,
                           weight_decay=cfg.score_weight_decay, schedule="cosine_epoch" if self.reference else "cosine",
                           batch_size=cfg.score_batch_size, epochs=epochs)

    def final_density(self, ctx: MiningContext) -> float:
        last = ctx.schedule[-1] if ctx.schedule else None
        if not isinstance(last, float):
            raise ConfigError(f"method '{self.name}' needs one target density per round, not per-layer targets")
        return last

    def prepare(self, ctx: MiningContext) -> None:
        """Train the scores (weights frozen), then put the model back as it was, weights untouched."""
        from ticketlab.training import steps_per_epoch, total_iterations, fit, train_summary

        density = self.final_density(ctx)
        config = self.score_train_config(ctx)
        self.event_rows: list[dict[str, Any]] = []  # history rows the method's callbacks add (e.g. freezing)
        requires = {n: p.requires_grad for n, p in ctx.model.named_parameters()}
        for p in ctx.model.parameters():
            p.requires_grad_(False)
        rules: dict[str, MaskRule] = {}
        orders = {name: list(_module_and_attr(ctx.model, name)[0]._parameters) for name in ctx.params}
        try:
            for name, p in ctx.params.items():
                scores = self.init_scores(ctx, name, p.detach()).to(device=p.device, dtype=p.dtype)
                rule = self.make_rule(ctx, name, scores, density).to(p.device)
                module, attr = _module_and_attr(ctx.model, name)
                parametrize.register_parametrization(module, attr, rule)
                rules[name] = rule
            named = dict(ctx.model.named_parameters())
            score_names = {id(p): n for n, p in named.items()}
            trainable = {score_names[id(r.scores)]: r.scores for r in rules.values()}
            #: prunable parameter name -> name of its score parameter while parametrized
            self.score_names = {name: score_names[id(r.scores)] for name, r in rules.items()}
            masks = self.score_masks(ctx, rules)
            masks = None if masks is None else {self.score_names[n]: m for n, m in masks.items()}
            total = total_iterations(config, ctx.data)
            callbacks = self.callbacks(ctx, rules, density, total, steps_per_epoch(config, ctx.data))
            callbacks = [*callbacks, *ctx.mask_trackers("score_training", density=density,
                                                        scores=lambda: self.rank_scores(rules))]
            n_weights = sum(p.numel() for p in ctx.params.values())

            def own_density() -> dict[str, float]:
                kept = sum(int(m.sum()) for m in self.own_mask(rules).values())
                return {"density": kept / n_weights, **self.log_values(rules)}

            result = fit(ctx.model, ctx.data, config, trainable=trainable, masks=masks,
                           regularizer=self.regularizer(rules), log_extra=own_density, seed=ctx.seed,
                           device=ctx.device, progress=ctx.progress or NullProgress(), callbacks=callbacks,
                           label=f"{self.name}: score training")
            self.scores = self.rank_scores(rules)
            own = self.own_mask(rules)
        finally:
            for name in rules:
                module, attr = _module_and_attr(ctx.model, name)
                parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
                _restore_order(module, orders[name])
            for n, p in ctx.model.named_parameters():
                p.requires_grad_(requires.get(n, True))
        rows = [{"stage": "score_training", **row} for row in result.log] + self.event_rows
        # the score-training evaluations and the method's events (Gem-Miner's freezing), in step order
        ctx.records.extend(sorted(rows, key=lambda r: r.get("iteration", 0)))
        own_kept = sum(int(m.sum()) for m in own.values())
        from ticketlab.training import evaluate_masked

        ev = evaluate_masked(ctx.model, ctx.data, own, config.eval_batch_size)
        self.info = {
            **ctx.provenance,  # what the method's hooks recorded (e.g. Gem-Miner's freeze_events)
            "weights": self.config.weights,
            **({"protocol": self.config.protocol} if hasattr(self.config, "protocol") else {}),
            "batchnorm": "non-affine during score training (affine parameters frozen; running statistics updated)",
            "score_train_config": dataclasses.asdict(config),
            "own_rule_kept": own_kept,
            "own_rule_density": own_kept / n_weights,
        }
        ctx.records.append({"stage": self.own_rule_stage, "kept": own_kept, "density": own_kept / n_weights,
                            "untrained_val_accuracy": ev["val"][1], "untrained_test_accuracy": ev["test"][1],
                            **train_summary(result), "seconds": result.wall_time_s})
        ctx.provenance.update(self.info)

    #: History ``stage`` of the row describing the method's own mask (Gem-Miner: "gem").
    own_rule_stage: ClassVar[str] = "own_rule"

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: s.to(ctx.params[n].device) for n, s in self.scores.items()}

    def after_round(self, ctx: MiningContext, masks: dict[str, torch.Tensor], round_index: int) -> None:
        """The untrained accuracy of the round's exact-density mask over the frozen weights."""
        from ticketlab.training import evaluate_masked

        ev = evaluate_masked(ctx.model, ctx.data, masks)
        ctx.records.append({"untrained_val_accuracy": ev["val"][1], "untrained_test_accuracy": ev["test"][1]})

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"scores": {n: s.detach().cpu() for n, s in self.scores.items()}, "info": dict(self.info)}

    def resume(self, ctx: MiningContext, state: dict[str, Any]) -> None:
        self.scores = dict(state["scores"])
        self.info = dict(state["info"])
        ctx.provenance.update(self.info)
