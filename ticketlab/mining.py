"""The mining runner: builds the model and data, runs a miner's rounds, returns a :class:`Ticket`.

Schedules, round records and snapshots happen here; miners only score. The network comes from
:func:`ticketlab.build.build_network` and the rounds from :func:`ticketlab.rounds.round_loop`,
which ``rebuild`` and the collapse study share.

Example:
    >>> from ticketlab.mining import mine
    >>> t = mine("random", model="lenet_300_100", dataset="digits", density=0.1, seed=0)
    >>> t.kept == round(0.1 * t.total)
    True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import platform
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ticketlab._version import __version__
from ticketlab.checks import check_seed
from ticketlab.errors import ConfigError
from ticketlab.limits import check as check_limit
from ticketlab.miners import get_miner
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, RoundTarget
from ticketlab.progress import NullProgress
from ticketlab.rounds import round_loop
from ticketlab.schedules import check_multipliers, resolve_rounds, scale_rates
from ticketlab.spec import DEPRECATED_KEYWORDS, RUN_OPTIONS, MineSpec, translate_deprecated
from ticketlab.selection import (
    SCOPES, SelectionBuffers, TieRecord, check_count_rule, check_density, density_from, select_target, target_count,
    tie_columns, warn_ties,
)
from ticketlab.streams import miner_generators
from ticketlab.ticket import Ticket
from ticketlab.tracking import check_tracking
from ticketlab.weights import apply_treatment_, bias_masks, recorded_conventions


def _numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {n: p.detach().cpu().numpy().copy() for n, p in params.items()}


def mine(
    method: "str | MineSpec",
    *,
    model: str = "lenet_300_100",
    dataset: str = "digits",
    density: float | None = None,
    sparsity: float | None = None,
    scope: str | None = None,
    rounds: int | None = None,
    schedule: Sequence[float | Mapping[str, float]] | None = None,
    rate_multipliers: Mapping[str, float] | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    train_epochs: int | None = None,
    train_options: dict[str, Any] | None = None,
    train_ticket: bool = False,
    data_corruption: str | None = None,
    miner_config: MinerConfig | dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    skip_first_layer: bool = False,
    skip_last_layer: bool = False,
    omit_weights: bool = False,
    omit_scores: bool = False,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    save_rounds: str | Path | None = None,
    progress: NullProgress | None = None,
    track_masks: int | None = None,
    early_bird: float | None = None,
    count_rule: str = "exact",
    **deprecated: Any,
) -> Ticket:
    """Find a ticket with ``method`` and return it (masks, provenance, weights, scores, history).

    ``mine(spec, **run_options)`` runs a :class:`ticketlab.spec.MineSpec` (then only the run-time
    options may be given: ``device``, ``data_root``, ``download``, ``omit_weights``, ``omit_scores``,
    ``checkpoint``, ``resume``, ``save_rounds``, ``progress``); ``mine("method", **keywords)`` runs
    ``MineSpec.from_flat("method", **keywords)``, the same ticket bit for bit. The provenance
    records the spec (``spec``, and its ``spec_hash``, :meth:`MineSpec.hashname`).

    Args:
        method: a registered miner (``list_miners()``), or a :class:`~ticketlab.spec.MineSpec`.
        model, dataset: registered names (``list_models()``, ``list_datasets()``).
        density, sparsity: at most one (fraction kept / fraction removed); with neither, the
            miner's schedule decides (density 0.1 for most miners; IMP: its rate per round).
        scope: ``"global"`` (one ranking over all prunable weights) or ``"layer"``; default the
            method's first supported scope (``"global"``, except ``edge_popup``: ``"layer"``).
        rounds: rounds of the schedule; default: the miner's (100 for SynFlow, 5 for IMP, 1
            otherwise). The default schedule is exponential, ``density**(k/rounds)``.
        schedule: explicit per-round densities instead (decreasing, the last is the target). A
            round may give per-layer densities instead of one, as a mapping whose keys are
            parameter names, glob patterns, ``"output"`` (the output layer) and ``"*"`` (every
            layer not named), e.g. ``[{"*": 0.8, "output": 0.9}]``: each layer then keeps exactly
            ``keep_count`` of its density (:mod:`ticketlab.schedules`).
        rate_multipliers: per-layer factors of each round's pruning rate (same keys), e.g.
            ``{"output": 0.5}``: the output layer pruned at half the rate, as Frankle & Carbin
            (2019) and Zhou et al. (2019) prune it. The rounds become per-layer; the overall
            density is what the layers add up to. Recorded in the provenance.
        seed: seeds the model's initialisation, the miner's draws and training.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        data_root, download: where data sets that need files live; download only when asked.
        train_epochs: epochs of any training the method does (and of ``train_ticket``).
        train_options: overrides of the default training config's fields (``TrainConfig``),
            e.g. ``{"lr": 0.1}``; applied after ``train_epochs``.
        train_ticket: after mining, rewind to the initial weights and train the sparse network;
            its accuracy goes into the history and provenance. A method may ask for this itself
            (Gem-Miner's fine-tuning, :meth:`Miner.ticket_train_config`), with its own config.
            The training is :func:`ticketlab.retraining.train_sparse`, as ``ticketlab train``'s.
        data_corruption: ``"random_labels"`` or ``"random_pixels"``: the method sees a training
            split corrupted with the run's seed (:func:`ticketlab.data.corrupt`; Su et al. 2020's
            corrupted-data check); validation and test stay real, and ``train_ticket`` trains on
            the real data. Only for methods that read the training data (not synflow, random,
            magnitude_init). Recorded in the provenance as ``data_corruption``.
        miner_config: the miner's config (or a dict of overrides of its defaults).
        skip_first_layer, skip_last_layer: leave the first / last prunable layer dense (unpruned).
        omit_weights, omit_scores: store no ``init``/``final`` weights, no last scores (the
            CLI's ``--no-weights``). The old keywords ``prune_first_layer``, ``prune_last_layer``,
            ``keep_weights`` and ``keep_scores`` (booleans that defaulted to True) still work, with
            a ``DeprecationWarning`` (:data:`ticketlab.spec.DEPRECATED_KEYWORDS`).
        checkpoint: write a checkpoint there after the miner's preparation (round 0) and after
            every round (:mod:`ticketlab.checkpoint`). An existing file is an error unless
            ``resume`` is set; the file is left in place at the end (the caller deletes it once
            the ticket is saved, as ``ticketlab mine`` does).
        resume: continue from ``checkpoint`` when it exists (the same spec required; the run-time
            options may differ); the result equals an uninterrupted run's, bit for bit on CPU.
            Without a file, start anew.
        save_rounds: also write every round's ticket to this folder as ``round_00.h5`` (after
            the preparation), ``round_01.h5``, ...: round ``k``'s file is the ticket of a run whose
            schedule stops at round ``k`` (provenance ``rounds = k``, plus ``round = k``).
        progress: a progress sink (``ticketlab.progress.make_progress()``).
        track_masks: every this many iterations of each training run (magnitude, imp; the
            learned-mask miners' score training, where the scores are ranked instead of |w|;
            the supermask miner's dense training, where its criterion of (θ0, w) is ranked),
            the mask magnitude pruning would give at the final target density (over ``scope``); the history gets a ``mask_tracking`` row per tracked mask
            with ``mask_distance``, the normalised Hamming distance to the previous one (You et
            al. 2020, Early-Bird), and ``mask_distance_chance`` = 2d(1 - d) (:mod:`ticketlab.tracking`).
        early_bird: stop a training run once its last 5 tracked distances are all
            ``<= early_bird * 2d(1 - d)`` (relative to chance; needs ``track_masks``); the
            provenance's ``early_bird_stops`` lists the runs stopped and their last iteration.
        count_rule: how many weights each round keeps: ``"exact"`` (:func:`keep_count` of the
            round's density, ties by a seeded draw) or ``"threshold"`` (Synaptic-Flow's rule: prune
            every weight scoring at or below the ``int((1 - d) * N)``-th smallest score, ties
            included; ``docs/selection.md``). Recorded in the provenance as ``count_rule``.
    """
    if deprecated:  # prune_first_layer=False and the like: the same call with the new names
        unknown = sorted(set(deprecated) - set(DEPRECATED_KEYWORDS))
        if unknown:
            raise TypeError(f"mine() got an unexpected keyword argument '{unknown[0]}'")
        given, names = dict(locals()), inspect.signature(mine).parameters
        return mine(**translate_deprecated({**{n: given[n] for n in names if n != "deprecated"}, **deprecated}))
    if isinstance(method, MineSpec):
        given = locals()
        extra = [n for n, p in inspect.signature(mine).parameters.items()
                 if p.kind is p.KEYWORD_ONLY and n not in RUN_OPTIONS and given[n] is not p.default
                 and given[n] != p.default]
        if extra:
            raise ConfigError(f"mine(spec) takes the run's settings from the spec: '{extra[0]}' belongs in it "
                              f"(only run-time options may be given: {', '.join(RUN_OPTIONS)})")
        flat = method.to_flat()
        return mine(flat.pop("method"), **flat, **{n: given[n] for n in RUN_OPTIONS})
    spec = MineSpec.from_flat(
        method, model=model, dataset=dataset, density=density, sparsity=sparsity, scope=scope, rounds=rounds,
        schedule=schedule, rate_multipliers=rate_multipliers, seed=seed, train_epochs=train_epochs,
        train_options=train_options, train_ticket=train_ticket, data_corruption=data_corruption,
        miner_config=miner_config, model_kwargs=model_kwargs, skip_first_layer=skip_first_layer,
        skip_last_layer=skip_last_layer, track_masks=track_masks, early_bird=early_bird, count_rule=count_rule)
    run = _Run(spec, miner_config, device=device, data_root=data_root, download=download,
               keep_weights=not omit_weights, keep_scores=not omit_scores, checkpoint=checkpoint, resume=resume,
               save_rounds=save_rounds, progress=progress)
    run.check()                # every option, before any data is read
    run.build()                # data, network, prunable parameters, training configs
    run.plan()                 # the rounds' targets, the weight treatment, the checkpoint fingerprint
    run.restore_or_prepare()   # a checkpoint's state, or the miner's preparation (round 0)
    run.run_rounds()           # score, select, record: round after round
    run.finish()               # the ticket's start weights; the masks applied to the network
    run.train_ticket()         # --train-ticket (or the method's own fine-tuning)
    return run.ticket()


class _Run:
    """One :func:`mine` call, as named steps over shared state (see :func:`mine` for the options)."""

    def __init__(self, spec: MineSpec, miner_config: Any, *, device: Any, data_root: Any,
                 download: bool, keep_weights: bool, keep_scores: bool, checkpoint: Any, resume: bool,
                 save_rounds: Any, progress: NullProgress | None) -> None:
        self.started = time.perf_counter()
        self.spec = spec
        flat = spec.to_flat()
        self.method: str = flat["method"]
        self.model, self.dataset, self.seed = flat["model"], flat["dataset"], flat["seed"]
        self.model_kwargs = flat["model_kwargs"]
        self.scope, self.rounds, self.schedule = flat["scope"], flat["rounds"], flat["schedule"]
        self.rate_multipliers, self.count_rule = flat["rate_multipliers"], flat["count_rule"]
        self.train_epochs, self.train_options = flat["train_epochs"], flat["train_options"]
        self.want_ticket_training = flat["train_ticket"]
        self.data_corruption, self.track_masks, self.early_bird = (
            flat["data_corruption"], flat["track_masks"], flat["early_bird"])
        self.prune_first_layer, self.prune_last_layer = not flat["skip_first_layer"], not flat["skip_last_layer"]
        # the MinerConfig instance when one was given (its class may be a subclass), else the dict
        self.miner_config = miner_config if miner_config is not None and not isinstance(miner_config, dict) \
            else flat["miner_config"]
        self.target = spec.prune.density
        self.device, self.data_root, self.download = device, data_root, download
        self.keep_weights, self.keep_scores = keep_weights, keep_scores
        self.ckpt_path = Path(checkpoint) if checkpoint is not None else None
        self.resume = resume
        self.rounds_dir = Path(save_rounds) if save_rounds is not None else None
        self.progress = progress or NullProgress()
        self.elapsed_before = 0.0

    # ------------------------------------------------------------------ 1. check
    def check(self) -> None:
        """Every option on its own and against the method, before anything is loaded."""
        from ticketlab.data.corruption import check_corruption

        method, rounds, schedule = self.method, self.rounds, self.schedule
        if self.scope is not None and self.scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{self.scope}'")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
            raise ConfigError(f"rounds must be at least 1, got {rounds}")
        if rounds is not None:  # before a schedule of that many rounds is made
            check_limit("rounds", rounds, f"rounds is {rounds:,}")
        if schedule is not None:
            check_limit("rounds", len(schedule), f"the schedule has {len(schedule):,} rounds")
        self.miner_cls = miner_cls = get_miner(method)
        self.seed = check_seed(self.seed)
        check_tracking(self.track_masks, self.early_bird)
        check_count_rule(self.count_rule)
        if self.track_masks is not None and not miner_cls.tracks_masks:
            raise ConfigError(f"method '{method}' does not support track_masks (only methods that train: magnitude, "
                              "imp, supermask and the learned-mask miners)")
        cfg = self.miner_config
        self.miner: Miner = miner_cls(**(cfg or {})) if isinstance(cfg, dict) or cfg is None else miner_cls(cfg)
        self.count_rule = check_count_rule(self.miner.round_count_rule(self.count_rule))  # e.g. a reference protocol's
        if self.scope is None:
            self.scope = miner_cls.scopes[0]
        elif self.scope not in miner_cls.scopes:
            raise ConfigError(f"method '{method}' selects with scope {' or '.join(miner_cls.scopes)} only, "
                              f"not '{self.scope}'")
        self.corruption: dict[str, Any] | None = None
        if self.data_corruption is not None:
            check_corruption(self.data_corruption)
            if not (miner_cls.needs_data or miner_cls.trains):
                why = (f"method '{method}' is data-free: a data corruption only applies to methods that read the "
                       "training data")
                raise ConfigError(why, cli=why.replace("a data corruption", "--data-corruption"))
            self.corruption = {"kind": self.data_corruption, "seed": self.seed, "split": "train"}
        if self.rounds_dir is not None and not self.rounds_dir.is_dir():
            raise ConfigError(f"cannot save rounds to '{self.rounds_dir}': it is not an existing folder")

    # ------------------------------------------------------------------ 2. build
    def build(self) -> None:
        """The data (corrupted for the miner where asked), the network on its device, the
        prunable parameters (:func:`ticketlab.build.build_network`), the training config and the
        miner's context."""
        from ticketlab.build import build_network
        from ticketlab.retraining import resolve_train_config

        cls, seed = self.miner_cls, self.seed
        # A data-free method on an image set needs only its shape: no files are read (or required).
        built = build_network(self.spec, device=self.device, data_root=self.data_root, download=self.download,
                              read_data=bool(cls.needs_data or cls.trains or self.want_ticket_training))
        self.dev, self.data_read, self.net = built.device, built.data_read, built.net
        self.data, self.clean = built.data, built.clean  # the miner sees data; --train-ticket trains on clean
        self.params, self.output_layer = built.params, built.output_layer
        self.train_config = resolve_train_config(self.model, self.dataset, train_epochs=self.train_epochs,
                                                 train_options=self.train_options)

        def draw_init(draw_seed: int) -> dict[str, torch.Tensor]:
            return built.draw(draw_seed).state_dict()

        generator, ties = miner_generators(seed)  # the miner's own draws; ties at a threshold (ticketlab.streams)
        self.ctx = MiningContext(
            model=self.net, params=self.params, spec=self.data.spec, data=self.data, device=self.dev, seed=seed,
            generator=generator, train_config=self.train_config, progress=self.progress, draw_init=draw_init,
            scope=self.scope, train_epochs=self.train_epochs, track_masks=self.track_masks,
            early_bird=self.early_bird, tie_generator=ties,
        )

    # ------------------------------------------------------------------ 3. plan
    def plan(self) -> None:
        """The rounds' targets (the miner's schedule, per-layer targets resolved), the weight
        treatment and the ticket's init, the ticket training config, the checkpoint fingerprint."""
        from ticketlab.models import model_topology
        from ticketlab.training import TrainConfig

        ctx, miner, params = self.ctx, self.miner, self.params
        names = list(params)
        explicit = resolve_rounds(self.schedule, names, self.output_layer) if self.schedule is not None else None
        densities = miner.schedule(ctx, self.target, self.rounds, explicit)
        self.multipliers: dict[str, float] | None = None
        if self.rate_multipliers is not None:
            self.multipliers = check_multipliers(self.rate_multipliers, names, self.output_layer)
            densities = scale_rates(densities, self.rate_multipliers, names, self.output_layer)
        self._set_densities(_check_schedule(densities, params))
        # the treatment after the schedule (a treatment may need the layers' density, which the
        # miner derives from it) and before anything reads the weights: the ticket's init is treated
        self.treatment = miner.weight_treatment()
        self.weights_density = miner.treatment_density(ctx)
        apply_treatment_(params, self.treatment, self.weights_density)
        self.init = _numpy(params)
        self.init_state = {n: v.detach().clone() for n, v in self.net.state_dict().items()}  # --train-ticket rewinds it
        ticket_config = miner.ticket_train_config(ctx)
        if ticket_config is not None and self.train_options:
            ticket_config = TrainConfig.from_dict({**ticket_config.to_dict(), **self.train_options})
        self.do_train_ticket = bool(self.want_ticket_training or ticket_config is not None)
        self.ticket_config = ticket_config or self.train_config
        if self.ckpt_path is not None and self.ckpt_path.exists() and not self.resume:
            found = f"checkpoint '{self.ckpt_path}' already exists (an unfinished run?): "
            raise ConfigError(found + "continue it with resume=True or delete it to start over",
                              cli=found + "continue it with the same command and --resume, or delete it to start over")
        self.trained = bool((self.miner_cls.trains and not self.miner_cls.frozen_weights) or self.do_train_ticket)
        self.weight_config = self.ticket_config if self.do_train_ticket else self.train_config  # the weights' last
        self.fingerprint = self._fingerprint()
        self.topology = model_topology(self.net, self.data.spec)
        self.spec_dict, self.spec_hash = self.spec.to_dict(), self.spec.hashname()

    def _set_densities(self, densities: list[RoundTarget]) -> None:
        self.densities = densities
        self.ctx.schedule = list(densities)
        self.per_layer = any(isinstance(d, dict) for d in densities)
        self.effective_scope = "layer" if self.per_layer else self.scope

    def _fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: the spec's fields (the method's options as
        its config resolved them, so an option given at its default is no difference), then the
        plan resolved from them, then the ticketlab that wrote it. Run-time options are no part of
        it (:mod:`ticketlab.checkpoint`)."""
        plan = {"schedule": self.densities, "scope": self.effective_scope, "count_rule": self.count_rule,
                "rate_multipliers": self.multipliers,
                "train_config": dataclasses.asdict(self.train_config) if self.miner_cls.trains else None,
                "weights": self.treatment, "weights_density": self.weights_density}
        return {**self.spec.by_field(miner=dataclasses.asdict(self.miner.config)),
                **{f"plan.{k}": v for k, v in plan.items()}, "ticketlab_version": __version__}

    # ------------------------------------------------------------------ 4. restore or prepare
    def restore_or_prepare(self) -> None:
        """Resume after a checkpoint's round (the miner's state, weights, masks, draws), or run
        the miner's preparation (round 0: e.g. the dense training) and write round 0."""
        from ticketlab.checkpoint import read_checkpoint

        ctx, params = self.ctx, self.params
        self.masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
        self.buffers = SelectionBuffers()  # the rounds' selection work buffers, reused round after round
        self.history: list[dict[str, Any]] = []
        self.scores: dict[str, torch.Tensor] = {}
        ckpt = self.ckpt_path
        self.state = read_checkpoint(ckpt, self.fingerprint) if self.resume and ckpt is not None and ckpt.exists() \
            else None
        state = self.state
        if state is None:
            self.first = 1
            self.miner.prepare(ctx)
            self._adopt_schedule()
            self.history.extend(ctx.records)
            ctx.records.clear()
            self.history.extend(ctx.tracked)  # --track-masks rows of the preparation's training
            ctx.tracked.clear()
            self._finish_round(0)
            return
        self.first = int(state["round"]) + 1
        self.miner.resume(ctx, state["miner"])
        self._adopt_schedule()
        ctx.records.clear()
        self.net.load_state_dict(state["model"])
        self.masks = {n: state["masks"][n].to(params[n].device) for n in params}
        self.scores = {n: s.to(params[n].device) for n, s in state["scores"].items()}
        self.history = list(state["history"])
        ctx.generator.set_state(state["generator"])
        ctx.tie_generator.set_state(state["tie_generator"])
        self.elapsed_before = float(state["elapsed"])

    def _adopt_schedule(self) -> None:
        """A miner may fix its targets only once it has looked (the supermask sweep's choice)."""
        if self.ctx.schedule != self.densities:
            if self.multipliers is not None:
                raise ConfigError(f"method '{self.method}' chooses its own density after looking: rate multipliers do "
                                  "not apply (give a density, or drop them)")
            self._set_densities(_check_schedule(self.ctx.schedule, self.params))

    # ------------------------------------------------------------------ 5. rounds
    def run_rounds(self) -> None:
        """Every round from the first not yet done: the miner scores, the shared selection keeps
        the round's target (ties by the selection stream), one history row; then round files and
        the checkpoint."""
        ctx = self.ctx
        with self.progress.task(f"{self.method}: rounds", total=len(self.densities)) as bar:
            bar.advance(self.first - 1)
            for r in round_loop(self.miner, ctx, self.masks, self.densities, first=self.first, scope=self.scope,
                                count_rule=self.count_rule, buffers=self.buffers):
                k, self.masks, self.scores = r.index, r.masks, r.scores
                kept = sum(int(m.sum()) for m in self.masks.values())
                row = {"stage": "round", "round": k, "target_density": r.target, "kept": kept,
                       "density": kept / sum(m.numel() for m in self.masks.values()), **tie_columns(r.ties)}
                warn_ties(row, f"{self.method}: round {k}")
                for rec in ctx.records:
                    row.update(rec)
                ctx.records.clear()
                row["seconds"] = r.seconds
                self.history.extend(ctx.tracked)  # --track-masks rows of this round's training, then its row
                ctx.tracked.clear()
                self.history.append(row)
                self._finish_round(k)
                bar.advance()

    def _finish_round(self, k: int) -> None:
        """Round ``k``'s file (``--save-rounds``) and the checkpoint after it."""
        from ticketlab.checkpoint import write_checkpoint
        from ticketlab.fileformat import save

        if self.rounds_dir is not None:
            # the ticket a run whose schedule ended at round k would give (its rounds, its accuracy)
            last = self.history[-1] if self.history else {}
            acc = {"test_accuracy": last["test_accuracy"]} if k >= 1 and "test_accuracy" in last else {}
            spec = self.spec
            if spec.prune.schedule is not None and k >= 1:  # the spec of the run that stops here
                cut = spec.prune.schedule[:k]
                goal = cut[-1] if spec.prune.density is not None and not isinstance(cut[-1], dict) else spec.prune.density
                stop = dataclasses.replace(spec, prune=dataclasses.replace(spec.prune, schedule=cut, density=goal))
                acc.update(spec=stop.to_dict(), spec_hash=stop.hashname())
            save(self.make_ticket(k, round=k, rounds=k, **acc), self.rounds_dir / f"round_{k:02d}.h5")
        if self.ckpt_path is not None:
            ctx = self.ctx
            write_checkpoint(self.ckpt_path, {
                "fingerprint": self.fingerprint, "round": k, "masks": {n: m.cpu() for n, m in self.masks.items()},
                "model": {n: v.detach().cpu() for n, v in self.net.state_dict().items()},
                "scores": {n: s.detach().cpu() for n, s in self.scores.items()}, "history": self.history,
                "generator": ctx.generator.get_state(), "tie_generator": ctx.tie_generator.get_state(),
                "miner": self.miner.state_dict(),
                "elapsed": self.elapsed_before + time.perf_counter() - self.started,
            })

    # ------------------------------------------------------------------ 6. finish
    def finish(self) -> None:
        """The ticket's start weights (a method's kept action), the miner's clean-up, and the
        masks applied to the network; the facts the ticket records about the run's end."""
        start_weights = self.miner.ticket_weights(self.ctx, self.masks)  # e.g. the supermask's --weights action
        self.miner.finish(self.ctx)
        if start_weights is not None:  # the ticket's network starts from these: its init snapshot
            self.init = {n: start_weights[n].detach().cpu().numpy().copy() for n in self.params}
            for n, w in start_weights.items():  # the biases too where the method sets them (supermask, reference)
                self.init_state[n] = w.detach().cpu().to(self.init_state[n].dtype).clone()
        with torch.no_grad():
            for n, p in self.params.items():
                p.mul_(self.masks[n])
        self.extra: dict[str, Any] = {}
        if self.state is not None:
            self.extra["resumed_after_round"] = self.first - 1
        last = self.history[-1] if self.history else {}
        if last.get("stage") == "round" and "test_accuracy" in last:
            self.extra["test_accuracy"] = last["test_accuracy"]  # the last round trained the ticket (IMP)

    # ------------------------------------------------------------------ 7. train the ticket
    def train_ticket(self) -> None:
        """``--train-ticket`` (or a method's fine-tuning): from the whole initial state (weights,
        biases, batch norm), on the real data; its row ends the history."""
        from ticketlab.retraining import train_sparse

        if not self.do_train_ticket:
            return
        _, _, pruned_biases = recorded_conventions(self.ctx.provenance)  # masked biases (supermask, reference)
        _, row = train_sparse(self.net, self.init_state, self.clean, self.ticket_config, self.masks, seed=self.seed,
                              device=self.dev, progress=self.progress, label="train",
                              extra_masks=bias_masks(pruned_biases, dict(self.net.named_parameters())))
        self.history.append(row)
        self.extra["test_accuracy"] = row.get("test_accuracy")

    # ------------------------------------------------------------------ 8. the ticket
    def ticket(self) -> Ticket:
        return self.make_ticket(len(self.densities), **self.extra)

    def make_ticket(self, round_index: int, **extra: Any) -> Ticket:
        """The ticket of the masks so far: masks, provenance, weights, scores, history, health."""
        from ticketlab.metrics.health import PROVENANCE_KEY as HEALTH_KEY, health
        from ticketlab.retraining import final_snapshot

        np_masks = {n: m.cpu().numpy() for n, m in self.masks.items()}
        weights: dict[str, dict[str, np.ndarray]] = {}
        if self.keep_weights:
            weights["init"] = self.init
            if self.trained:
                # trained weights, pruned ones zero, then the rest of the trained state (biases, batch norm)
                weights["final"] = final_snapshot(self.net, self.masks)
        np_scores = ({n: s.detach().to(torch.float32).cpu().numpy() for n, s in self.scores.items()}
                     if self.keep_scores else {})
        ticket = Ticket(masks=np_masks, provenance=self._provenance(np_masks, round_index, extra), weights=weights,
                        scores=np_scores, history=[dict(r) for r in self.history])
        ticket.provenance[HEALTH_KEY] = health(ticket).to_dict()  # docs/format.md, "Ticket health"
        return ticket

    def _provenance(self, np_masks: dict[str, np.ndarray], round_index: int, extra: dict[str, Any]) -> dict[str, Any]:
        """What the ticket says about how it was made (``docs/format.md``)."""
        from ticketlab.data import split_samples
        from ticketlab.training import resolved_config

        total = sum(m.size for m in np_masks.values())
        kept = sum(int(m.sum()) for m in np_masks.values())
        goal = self.densities[round_index - 1] if round_index >= 1 else 1.0
        data, rows = self.data, self.history
        return {
            "method": self.method,
            "method_config": dataclasses.asdict(self.miner.config),
            "model": self.model,
            "model_config": dict(self.model_kwargs or {}),
            "dataset": self.dataset,
            # split sizes only when the samples were read (a data-free run has empty splits)
            "data_spec": {**dataclasses.asdict(data.spec),
                          **({"split_samples": split_samples(data)} if self.data_read else {})},
            "data_read": self.data_read,
            "seed": self.seed,
            "scope": self.effective_scope,
            "count_rule": self.count_rule,
            "rounds": len(self.densities),
            "schedule": "explicit" if self.schedule is not None else ("per-layer" if self.per_layer else "exponential"),
            **({"rate_multipliers": self.multipliers} if self.multipliers is not None else {}),
            "target_density": goal,
            "target_kept": _target_kept(goal, self.effective_scope, {n: m.size for n, m in np_masks.items()},
                                        self.count_rule),
            "achieved_density": kept / total,
            "kept": kept,
            "total": total,
            "prune_first_layer": self.prune_first_layer,
            "prune_last_layer": self.prune_last_layer,
            "layer_kept": {n: int(m.sum()) for n, m in np_masks.items()},
            "collapsed": any(not m.any() for m in np_masks.values()),
            # resolved: eval_every is the cadence train() used (None would read "the default")
            "train_config": dataclasses.asdict(resolved_config(self.weight_config, data)) if self.trained else None,
            "weights": self.treatment,
            **({"weights_density": self.weights_density} if self.weights_density is not None else {}),
            "trained": self.trained,
            "device": str(self.dev),
            "spec": self.spec_dict,
            "spec_hash": self.spec_hash,
            "ticketlab_version": __version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(self.elapsed_before + time.perf_counter() - self.started, 3),
            "topology": self.topology,
            **({"data_corruption": self.corruption} if self.corruption is not None else {}),
            **({"track_masks": self.track_masks, "early_bird": self.early_bird,
                "early_bird_stops": [{"run": r.get("run"), "iteration": r["iteration"]} for r in rows
                                     if r.get("early_bird_stop")]} if self.track_masks is not None else {}),
            **self.ctx.provenance,
            **extra,
        }


def _select(scores: dict[str, torch.Tensor], target: RoundTarget, scope: str,
            masks: dict[str, torch.Tensor], count_rule: str = "exact",
            buffers: SelectionBuffers | None = None, generator: torch.Generator | None = None,
            ties: list[TieRecord] | None = None) -> dict[str, torch.Tensor]:
    """One round's selection: one density over ``scope``, or one density per parameter
    (:func:`ticketlab.selection.select_target`)."""
    return select_target(scores, target, scope=scope, masks=masks, count_rule=count_rule, buffers=buffers,
                         generator=generator, ties=ties)


def _target_kept(target: RoundTarget, scope: str, sizes: dict[str, int], count_rule: str = "exact") -> int:
    """Number of weights a round with ``target`` asks for (:func:`ticketlab.selection.target_count`)."""
    if isinstance(target, dict):
        return sum(target_count(target[n], size, count_rule) for n, size in sizes.items())
    if scope == "layer":
        return sum(target_count(target, size, count_rule) for size in sizes.values())
    return target_count(target, sum(sizes.values()), count_rule)


def _check_schedule(densities: list[RoundTarget], params: dict[str, torch.Tensor]) -> list[RoundTarget]:
    """Validate a miner's schedule: non-empty, densities in (0, 1], never increasing."""
    if not densities:
        raise ConfigError("a schedule needs at least one round")
    check_limit("rounds", len(densities), f"the schedule has {len(densities):,} rounds")
    out: list[RoundTarget] = []
    for d in densities:
        if isinstance(d, dict):
            if set(d) != set(params):
                missing = sorted(set(d) ^ set(params))
                raise ConfigError(f"a per-layer schedule round does not match the prunable parameters ('{missing[0]}')")
            out.append({n: check_density(float(d[n])) for n in params})
        else:
            out.append(check_density(float(d)))
    for a, b in zip(out, out[1:]):
        for n in params:
            da = a[n] if isinstance(a, dict) else a
            db = b[n] if isinstance(b, dict) else b
            if db > da:
                where = f" for {n}" if isinstance(a, dict) or isinstance(b, dict) else ""
                raise ConfigError(f"schedule densities must not increase{where} (masks only shrink)")
    return out
