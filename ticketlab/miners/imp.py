"""``imp``: iterative magnitude pruning, the method of the Lottery Ticket Hypothesis.

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis", the four steps of "Identifying winning
tickets"): train, prune ``p`` % of the remaining weights by magnitude, reset the survivors, and
repeat. The runner (:func:`ticketlab.mining.mine`) owns the rounds; this miner trains and resets.

Accounting (round ``k`` of ``N``; ``d_k`` = the schedule's cumulative density, ``d_0 = 1``):

* **round 0** (:meth:`IMPMiner.prepare`): train the dense network from θ0. History row
  ``stage="dense"``, ``round=0``. With ``rewind:K`` this run also snapshots the weights after
  ``K`` iterations.
* **round k = 1..N**: score ``|w|`` of the weights trained in round ``k-1`` (pruned weights are
  never revived), keep the top ``d_k`` (exact count, :func:`ticketlab.selection.keep_count`),
  reset the survivors (``--reset``), then train the network with the round-``k`` mask. History
  row ``stage="round"``, ``round=k``: density, test accuracy at the end of training, best
  validation accuracy, early-stopping iteration, wall time. So there are ``N + 1`` trainings
  and the ticket's ``final`` weights are the trained weights of the sparsest network.

``--reset`` (what the survivors start the next training from; the whole ``state_dict``, biases
included, is reset):

* ``init``: θ0, the weights before any training (Frankle & Carbin 2019).
* ``rewind:K``: the dense run's weights after ``K`` iterations, and training restarts at
  iteration ``K`` of the same learning-rate schedule and batch order (late rewinding: Frankle,
  Dziugaite, Roy & Carbin 2019, "Stabilizing the Lottery Ticket Hypothesis", and 2020, "Linear
  Mode Connectivity and the Lottery Ticket Hypothesis").
  ``rewind:0`` equals ``init``.
* ``reinit``: fresh random weights from the model's own initialisation distribution, drawn with
  seed ``reinit_seed(seed, k)`` in round ``k`` (a new draw every round), same mask: the random
  re-initialization control of Frankle & Carbin 2019.
* ``continue``: keep the trained weights and train again with a fresh optimizer and the whole
  schedule (plain iterative pruning and fine-tuning, Han et al. 2015).

Every training uses the run's seed, so every round sees the same batch order (as open_lth does).

Schedules (:meth:`IMPMiner.schedule`): without a target density, round ``k`` keeps
``(1 - rate) ** k`` of the weights (``--rate``, default 0.2), i.e. every round removes ``rate``
of the remaining weights, counted exactly on the cumulative density (open_lth's
``sparse_global`` removes one weight too many per level; here a round removes exactly
``keep_count(d_{k-1}) - keep_count(d_k)``). With ``--density``/``--sparsity`` the schedule is
exponential towards it. Per-kind rates (``--rate-conv``, ``--rate-fc``) follow Frankle & Carbin
2019 (Figure 2, conv networks): each layer is pruned on its own (layer-wise, whatever
``--scope`` says), conv layers at the conv rate, fully connected (and GCN) layers at the fc rate
and the output layer (the model's last prunable layer) at half the fc rate; ``--rate`` is the
default of the kind not given.

Example:
    >>> from ticketlab.mining import mine
    >>> t = mine("imp", rounds=2, train_epochs=1, device="cpu", miner_config={"reset": "rewind:5"})
    >>> [r["round"] for r in t.history], t.kept == round(0.8 ** 2 * t.total)
    ([0, 1, 2], True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ticketlab.errors import ConfigError
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, RoundTarget
from ticketlab.miners.registry import register_miner
from ticketlab.schedules import rate_schedule
from ticketlab.selection import exponential_schedule
from ticketlab.streams import IMP_REINIT, seed63

#: Rate per round when neither a rate nor a target density is given (Frankle & Carbin 2019).
DEFAULT_RATE = 0.2
RESETS = ("init", "rewind:K", "reinit", "continue")
_REWIND = re.compile(r"rewind:(\d+)")


def reinit_seed(seed: int, round_index: int) -> int:
    """Seed of the fresh weights drawn by ``--reset reinit`` in round ``round_index``.

    ``SeedSequence([seed, IMP_REINIT, round_index])``'s first 64-bit word shifted to 63 bits
    (:func:`ticketlab.streams.seed63`), so every round and run seed gets an independent draw,
    never the model's own seed stream.

    Example:
        >>> reinit_seed(0, 1) != reinit_seed(0, 2) and reinit_seed(0, 1) == reinit_seed(0, 1)
        True
    """
    return seed63(seed, IMP_REINIT, round_index)


def parse_reset(text: str) -> tuple[str, int]:
    """``(mode, K)`` of a ``--reset`` value; ``K`` is the rewind iteration (0 unless ``rewind:K``).

    Example:
        >>> parse_reset("rewind:100"), parse_reset("init")
        (('rewind', 100), ('init', 0))
    """
    if text in ("init", "reinit", "continue"):
        return text, 0
    m = _REWIND.fullmatch(text or "")
    if m is None:
        raise ConfigError(f"imp option reset must be one of {', '.join(RESETS)} (K an iteration), got '{text}'")
    return "rewind", int(m.group(1))


@register_miner("imp")
class IMPMiner(Miner):
    """Iterative magnitude pruning (Frankle & Carbin 2019): train, prune 20 % by |w|, reset, repeat.

    What the survivors restart from is ``--reset init | rewind:K | reinit | continue``; the
    rounds and their accounting are in the module docstring."""

    needs_data = True
    trains = True
    tracks_masks = True
    default_rounds = 5

    @dataclass(frozen=True)
    class Config(MinerConfig):
        reset: str = field(default="init", metadata={
            "help": "what survivors restart from after each pruning: init (θ0), rewind:K (weights after K "
                    "iterations of the dense run), reinit (fresh random weights) or continue (keep training)"})
        rate: float | None = field(default=None, metadata={
            "help": "fraction of the remaining weights removed per round (default 0.2 when no --density or "
                    "--sparsity is given)"})
        rate_conv: float | None = field(default=None, metadata={
            "help": "per-round rate of conv layers; per-kind rates prune each layer on its own (layer-wise)"})
        rate_fc: float | None = field(default=None, metadata={
            "help": "per-round rate of fully connected layers (the output layer gets half); layer-wise"})

    def __init__(self, config: MinerConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.mode, self.rewind_iteration = parse_reset(self.config.reset)
        for name in ("rate", "rate_conv", "rate_fc"):
            value = getattr(self.config, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ConfigError(f"imp option {name.replace('_', '-')} must be in (0, 1), got {value}")
        self.init_state: dict[str, torch.Tensor] | None = None  # the whole initial state (θ0, biases, batch norm)
        self.rewind_state: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ schedule
    def schedule(self, ctx: MiningContext, target: float | None, rounds: int | None,
                 explicit: Sequence[RoundTarget] | None = None) -> list[RoundTarget]:
        """Per-round densities: ``(1 - rate) ** k``, per-kind rates, exponential to a target, or explicit.

        Example (LeNet-300-100 on digits: fc1, fc2 at 20 %, the output layer fc3 at 10 %):
            >>> import torch
            >>> from ticketlab.data.base import DataSpec
            >>> from ticketlab.models import create_model, prunable_parameters
            >>> net = create_model("lenet_300_100", DataSpec("digits", "tensor", (1, 8, 8), 10), seed=0)
            >>> ctx = MiningContext(net, prunable_parameters(net), None, None, torch.device("cpu"), 0,
            ...                     torch.Generator())
            >>> s = IMPMiner(rate_fc=0.2).schedule(ctx, None, 2)
            >>> {n: round(d, 4) for n, d in s[1].items()}
            {'fc1.weight': 0.64, 'fc2.weight': 0.64, 'fc3.weight': 0.81}
        """
        cfg = self.config
        per_kind = cfg.rate_conv is not None or cfg.rate_fc is not None
        if explicit is not None:
            if cfg.rate is not None or per_kind:
                raise ConfigError("an explicit schedule fixes every round's density: "
                                  "drop --rate, --rate-conv and --rate-fc")
            return super().schedule(ctx, target, rounds, explicit)
        n = self.default_rounds if rounds is None else rounds
        if n < 1:
            raise ConfigError(f"rounds must be at least 1, got {n}")
        if per_kind:
            if target is not None:
                raise ConfigError("per-kind rates fix every layer's density: drop --density and --sparsity")
            return rate_schedule(self.layer_rates(ctx), n)
        if target is None:
            p = DEFAULT_RATE if cfg.rate is None else cfg.rate
            return [(1.0 - p) ** k for k in range(1, n + 1)]  # Frankle & Carbin 2019: p % per round
        if cfg.rate is not None:
            raise ConfigError("give --rate or a target --density/--sparsity, not both")
        return exponential_schedule(target, n)

    def layer_rates(self, ctx: MiningContext) -> dict[str, float]:
        """Per-round rate of every pruned parameter under per-kind rates (see the module docstring)."""
        from ticketlab.models import prunable_parameters

        cfg = self.config
        base = DEFAULT_RATE if cfg.rate is None else cfg.rate
        conv = base if cfg.rate_conv is None else cfg.rate_conv
        fc = base if cfg.rate_fc is None else cfg.rate_fc
        output = list(prunable_parameters(ctx.model))[-1]
        # Frankle & Carbin 2019, Figure 2: conv p_conv, fc p_fc, output layer p_fc / 2
        return {n: fc / 2 if n == output else (conv if p.dim() > 2 else fc) for n, p in ctx.params.items()}

    # ------------------------------------------------------------------ rounds
    def prepare(self, ctx: MiningContext) -> None:
        """Round 0: keep θ0, train the dense network (snapshot after K iterations for rewind:K)."""
        from ticketlab.training import state_copy, total_iterations, fit, train_summary

        if self.mode == "rewind":
            total = total_iterations(ctx.train_config, ctx.data)
            if self.rewind_iteration > total:
                raise ConfigError(f"imp option reset rewind:{self.rewind_iteration} is past the end of training "
                                  f"({total} iterations)")
        self.init_state = state_copy(ctx.model)
        result = fit(ctx.model, ctx.data, ctx.train_config, seed=ctx.seed, device=ctx.device,
                       progress=ctx.progress, callbacks=ctx.mask_trackers("dense"),
                       snapshot_at=self.rewind_iteration if self.mode == "rewind" else None)
        self.rewind_state = result.snapshot
        if self.mode == "rewind" and self.rewind_state is None:  # --early-bird stopped before it
            raise ConfigError(f"training stopped at iteration {result.final_iteration} (early_bird), before imp's "
                              f"rewind iteration {self.rewind_iteration}")
        total = sum(p.numel() for p in ctx.params.values())
        ctx.records.append({"stage": "dense", "round": 0, "kept": total, "density": 1.0,
                            **train_summary(result), "seconds": result.wall_time_s})

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """|w| of the weights trained in the previous round (Frankle & Carbin 2019, step 3)."""
        return {n: p.detach().abs() for n, p in ctx.params.items()}

    def after_round(self, ctx: MiningContext, masks: dict[str, torch.Tensor], round_index: int) -> None:
        """Reset the survivors (``--reset``), then train the network with the new mask."""
        from ticketlab.training import fit, train_summary

        state = self.reset_state(ctx, round_index)
        if state is not None:
            ctx.model.load_state_dict(state)
        start = self.rewind_iteration if self.mode == "rewind" else 0
        result = fit(ctx.model, ctx.data, ctx.train_config, masks=masks, seed=ctx.seed, device=ctx.device,
                       progress=ctx.progress, start_iteration=start,
                       callbacks=ctx.mask_trackers(f"round {round_index}"))
        ctx.records.append(train_summary(result))

    def reset_state(self, ctx: MiningContext, round_index: int) -> dict[str, torch.Tensor] | None:
        """The ``state_dict`` the survivors restart from in ``round_index`` (``None``: keep the weights)."""
        if self.mode == "continue":
            return None
        if self.mode == "reinit":
            if ctx.draw_init is None:
                raise ConfigError("imp option reset reinit needs a way to draw fresh weights (MiningContext.draw_init)")
            return ctx.draw_init(reinit_seed(ctx.seed, round_index))
        if self.init_state is None:
            raise ConfigError("imp has no initial weights: prepare() or resume() must run first")
        if self.mode == "rewind":
            return self.rewind_state if self.rewind_state is not None else self.init_state
        return self.init_state

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The initial state and the rewind snapshot (the model's own weights are checkpointed by the runner)."""
        return {"init_state": self.init_state, "rewind": self.rewind_state}

    def resume(self, ctx: MiningContext, state: dict[str, Any]) -> None:
        """Restore the initial state and the rewind snapshot instead of training the dense network again
        (a checkpoint written before issue 24 calls the initial state ``theta0``)."""
        self.init_state = state["init_state"] if "init_state" in state else state["theta0"]
        self.rewind_state = state["rewind"]
