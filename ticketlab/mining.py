"""The mining runner: builds the model and data, runs a miner's rounds, returns a :class:`Ticket`.

This is the one place where rounds, schedules, selection and snapshots happen; miners only score.

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
from ticketlab.device import resolve_device
from ticketlab.checks import check_seed
from ticketlab.errors import ConfigError
from ticketlab.limits import check as check_limit
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, RoundTarget, get_miner
from ticketlab.progress import NullProgress
from ticketlab.schedules import check_multipliers, resolve_rounds, scale_rates
from ticketlab.spec import RUN_OPTIONS, MineSpec
from ticketlab.selection import (
    SCOPES, SelectionBuffers, TieRecord, check_count_rule, check_density, density_from, select_target, target_count,
    tie_columns, warn_ties,
)
from ticketlab.ticket import Ticket
from ticketlab.tracking import check_tracking
from ticketlab.weights import apply_treatment_, bias_masks, recorded_conventions

#: Offset added to the run's seed for the miner's own random draws, so that they do not
#: repeat the model initialisation's stream.
_MINER_STREAM = 0x5EED
#: Offset of the run's selection stream (ties at a selection threshold are drawn from it).
_TIE_STREAM = 0x71E5


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
    prune_first_layer: bool = True,
    prune_last_layer: bool = True,
    keep_weights: bool = True,
    keep_scores: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    save_rounds: str | Path | None = None,
    progress: NullProgress | None = None,
    track_masks: int | None = None,
    early_bird: float | None = None,
    count_rule: str = "exact",
) -> Ticket:
    """Find a ticket with ``method`` and return it (masks, provenance, weights, scores, history).

    ``mine(spec, **run_options)`` runs a :class:`ticketlab.spec.MineSpec` (then only the run-time
    options may be given: ``device``, ``data_root``, ``download``, ``keep_weights``, ``keep_scores``,
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
        prune_first_layer, prune_last_layer: whether the first / last prunable layer is pruned.
        keep_weights, keep_scores: store the ``init``/``final`` weights and the last scores.
        checkpoint: write a checkpoint there after the miner's preparation (round 0) and after
            every round (:mod:`ticketlab.checkpoint`). An existing file is an error unless
            ``resume`` is set; the file is left in place at the end (the caller deletes it once
            the ticket is saved, as ``ticketlab mine`` does).
        resume: continue from ``checkpoint`` when it exists (same configuration required); the
            result equals an uninterrupted run's, bit for bit on CPU. Without a file, start anew.
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
    from ticketlab.checkpoint import read_checkpoint, write_checkpoint
    from ticketlab.data import corrupt, get_dataset_info, load_dataset, shape_only, split_samples
    from ticketlab.metrics.health import PROVENANCE_KEY as HEALTH_KEY, health
    from ticketlab.data.corruption import check_corruption
    from ticketlab.fileformat import save
    from ticketlab.models import create_model, model_topology, prunable_parameters
    from ticketlab.retraining import final_snapshot, resolve_train_config, train_sparse
    from ticketlab.training import TrainConfig, resolved_config

    if isinstance(method, MineSpec):
        given = locals()
        extra = [n for n, p in inspect.signature(mine).parameters.items()
                 if n != "method" and n not in RUN_OPTIONS and given[n] is not p.default and given[n] != p.default]
        if extra:
            raise ConfigError(f"mine(spec) takes the run's settings from the spec: '{extra[0]}' belongs in it "
                              f"(only run-time options may be given: {', '.join(RUN_OPTIONS)})")
        flat = method.to_flat()
        return mine(flat.pop("method"), **flat, **{n: given[n] for n in RUN_OPTIONS})
    spec = MineSpec.from_flat(
        method, model=model, dataset=dataset, density=density, sparsity=sparsity, scope=scope, rounds=rounds,
        schedule=schedule, rate_multipliers=rate_multipliers, seed=seed, train_epochs=train_epochs,
        train_options=train_options, train_ticket=train_ticket, data_corruption=data_corruption,
        miner_config=miner_config, model_kwargs=model_kwargs, prune_first_layer=prune_first_layer,
        prune_last_layer=prune_last_layer, track_masks=track_masks, early_bird=early_bird, count_rule=count_rule)
    started = time.perf_counter()
    progress = progress or NullProgress()
    target = density_from(density, sparsity) if density is not None or sparsity is not None else None
    if scope is not None and scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    if rounds is not None:  # before a schedule of that many rounds is made
        check_limit("rounds", rounds, f"rounds is {rounds:,}")
    if schedule is not None:
        check_limit("rounds", len(schedule), f"the schedule has {len(schedule):,} rounds")
    miner_cls = get_miner(method)
    seed = check_seed(seed)
    check_tracking(track_masks, early_bird)
    check_count_rule(count_rule)
    if track_masks is not None and not miner_cls.tracks_masks:
        raise ConfigError(f"method '{method}' does not support track_masks (only methods that train: magnitude, "
                          "imp, supermask and the learned-mask miners)")
    if isinstance(miner_config, dict) or miner_config is None:
        miner: Miner = miner_cls(**(miner_config or {}))
    else:
        miner = miner_cls(miner_config)
    count_rule = check_count_rule(miner.round_count_rule(count_rule))  # e.g. a reference protocol's own rule
    if scope is None:
        scope = miner_cls.scopes[0]
    elif scope not in miner_cls.scopes:
        raise ConfigError(f"method '{method}' selects with scope {' or '.join(miner_cls.scopes)} only, "
                          f"not '{scope}'")
    corruption: dict[str, Any] | None = None
    if data_corruption is not None:
        check_corruption(data_corruption)
        if not (miner_cls.needs_data or miner_cls.trains):
            why = f"method '{method}' is data-free: a data corruption only applies to methods that read the training data"
            raise ConfigError(why, cli=why.replace("a data corruption", "--data-corruption"))
        corruption = {"kind": data_corruption, "seed": seed, "split": "train"}
    rounds_dir = Path(save_rounds) if save_rounds is not None else None
    if rounds_dir is not None and not rounds_dir.is_dir():
        raise ConfigError(f"cannot save rounds to '{rounds_dir}': it is not an existing folder")
    dev = resolve_device(device)

    data_read = bool(miner_cls.needs_data or miner_cls.trains or train_ticket) or get_dataset_info(dataset).spec is None
    # A data-free method on an image set needs only its shape: no files are read (or required).
    data = load_dataset(dataset, root=data_root, download=download, seed=seed) if data_read else shape_only(dataset)
    clean = data  # what --train-ticket trains on; the miner sees the corrupted training split
    if corruption is not None:
        data = corrupt(data, data_corruption, seed=seed)
    net = create_model(model, data.spec, seed=seed, **(model_kwargs or {})).to(dev)
    params = prunable_parameters(net, first_layer=prune_first_layer, last_layer=prune_last_layer)
    if not params:
        raise ConfigError(f"model '{model}' has no prunable parameters left to prune")
    train_config = resolve_train_config(model, dataset, train_epochs=train_epochs, train_options=train_options)

    def draw_init(draw_seed: int) -> dict[str, torch.Tensor]:
        return create_model(model, data.spec, seed=draw_seed, **(model_kwargs or {})).state_dict()

    ctx = MiningContext(
        model=net, params=params, spec=data.spec, data=data, device=dev, seed=seed,
        generator=torch.Generator().manual_seed(seed + _MINER_STREAM),
        train_config=train_config, progress=progress, draw_init=draw_init, scope=scope,
        train_epochs=train_epochs, track_masks=track_masks, early_bird=early_bird,
        tie_generator=torch.Generator().manual_seed(seed + _TIE_STREAM),
    )
    every = list(prunable_parameters(net))  # the output layer is the model's last, pruned or not
    names, output = list(params), (every[-1] if every else None)
    explicit = resolve_rounds(schedule, names, output) if schedule is not None else None
    densities = miner.schedule(ctx, target, rounds, explicit)
    multipliers: dict[str, float] | None = None
    if rate_multipliers is not None:
        multipliers = check_multipliers(rate_multipliers, names, output)
        densities = scale_rates(densities, rate_multipliers, names, output)
    densities = _check_schedule(densities, params)
    ctx.schedule = list(densities)
    # the treatment after the schedule (a treatment may need the layers' density, which the
    # miner derives from it) and before anything reads the weights: the ticket's init is treated
    treatment = miner.weight_treatment()
    weights_density = miner.treatment_density(ctx)
    apply_treatment_(params, treatment, weights_density)
    init = _numpy(params)
    init_state = {n: v.detach().clone() for n, v in net.state_dict().items()}  # --train-ticket rewinds all of it
    ticket_config = miner.ticket_train_config(ctx)
    if ticket_config is not None and train_options:
        ticket_config = TrainConfig.from_dict({**ticket_config.to_dict(), **train_options})
    train_ticket = bool(train_ticket or ticket_config is not None)
    ticket_config = ticket_config or train_config
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and ckpt_path.exists() and not resume:
        found = f"checkpoint '{ckpt_path}' already exists (an unfinished run?): "
        raise ConfigError(found + "continue it with resume=True or delete it to start over",
                          cli=found + "continue it with the same command and --resume, or delete it to start over")
    per_layer = any(isinstance(d, dict) for d in densities)
    effective_scope = "layer" if per_layer else scope
    trained = bool((miner_cls.trains and not miner_cls.frozen_weights) or train_ticket)
    weight_config = ticket_config if train_ticket else train_config  # the weights' last training
    fingerprint = {
        "method": method, "method_config": dataclasses.asdict(miner.config), "model": model,
        "model_config": dict(model_kwargs or {}), "dataset": dataset, "seed": seed, "scope": effective_scope,
        "schedule": densities, "train_config": dataclasses.asdict(train_config) if miner_cls.trains else None,
        "weights": treatment,
        **({"weights_density": weights_density} if weights_density is not None else {}),
        "prune_first_layer": prune_first_layer, "prune_last_layer": prune_last_layer,
        "ticketlab_version": __version__,
        "ties": "seeded",  # ties at a threshold are drawn (issue 21): positional-tie checkpoints do not resume
    }
    if corruption is not None:
        fingerprint["data_corruption"] = corruption
    if track_masks is not None:  # only when given: default runs keep their fingerprint
        fingerprint["track_masks"], fingerprint["early_bird"] = track_masks, early_bird
    if count_rule != "exact":  # likewise: checkpoints of exact-count runs still resume
        fingerprint["count_rule"] = count_rule
    if multipliers is not None:
        fingerprint["rate_multipliers"] = multipliers
    topology = model_topology(net, data.spec)
    spec_dict, spec_hash = spec.to_dict(), spec.hashname()

    def make_ticket(round_masks: dict[str, torch.Tensor], rows: list[dict[str, Any]],
                    last_scores: dict[str, torch.Tensor], round_index: int, **extra: Any) -> Ticket:
        np_masks = {n: m.cpu().numpy() for n, m in round_masks.items()}
        total = sum(m.size for m in np_masks.values())
        kept = sum(int(m.sum()) for m in np_masks.values())
        goal = densities[round_index - 1] if round_index >= 1 else 1.0
        provenance: dict[str, Any] = {
            "method": method,
            "method_config": dataclasses.asdict(miner.config),
            "model": model,
            "model_config": dict(model_kwargs or {}),
            "dataset": dataset,
            # split sizes only when the samples were read (a data-free run has empty splits)
            "data_spec": {**dataclasses.asdict(data.spec), **({"split_samples": split_samples(data)} if data_read else {})},
            "data_read": data_read,
            "seed": seed,
            "scope": effective_scope,
            "count_rule": count_rule,
            "rounds": len(densities),
            "schedule": "explicit" if schedule is not None else (
                "per-layer" if per_layer else "exponential"),
            **({"rate_multipliers": multipliers} if multipliers is not None else {}),
            "target_density": goal,
            "target_kept": _target_kept(goal, effective_scope, {n: m.size for n, m in np_masks.items()}, count_rule),
            "achieved_density": kept / total,
            "kept": kept,
            "total": total,
            "prune_first_layer": prune_first_layer,
            "prune_last_layer": prune_last_layer,
            "layer_kept": {n: int(m.sum()) for n, m in np_masks.items()},
            "collapsed": any(not m.any() for m in np_masks.values()),
            # resolved: eval_every is the cadence train() used (None would read "the default")
            "train_config": dataclasses.asdict(resolved_config(weight_config, data)) if trained else None,
            "weights": treatment,
            **({"weights_density": weights_density} if weights_density is not None else {}),
            "trained": trained,
            "device": str(dev),
            "spec": spec_dict,
            "spec_hash": spec_hash,
            "ticketlab_version": __version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(elapsed_before + time.perf_counter() - started, 3),
            "topology": topology,
            **({"data_corruption": corruption} if corruption is not None else {}),
            **({"track_masks": track_masks, "early_bird": early_bird,
                "early_bird_stops": [{"run": r.get("run"), "iteration": r["iteration"]} for r in rows
                                     if r.get("early_bird_stop")]} if track_masks is not None else {}),
            **ctx.provenance,
            **extra,
        }
        weights: dict[str, dict[str, np.ndarray]] = {}
        if keep_weights:
            weights["init"] = init
            if trained:
                # trained weights, pruned ones zero, then the rest of the trained state (biases, batch norm)
                weights["final"] = final_snapshot(net, round_masks)
        np_scores = ({n: s.detach().to(torch.float32).cpu().numpy() for n, s in last_scores.items()}
                     if keep_scores else {})
        ticket = Ticket(masks=np_masks, provenance=provenance, weights=weights, scores=np_scores,
                        history=[dict(r) for r in rows])
        ticket.provenance[HEALTH_KEY] = health(ticket).to_dict()  # docs/format.md, "Ticket health"
        return ticket

    def finish_round(k: int) -> None:
        if rounds_dir is not None:
            # the ticket a run whose schedule ended at round k would give (its rounds, its accuracy)
            last = history[-1] if history else {}
            acc = {"test_accuracy": last["test_accuracy"]} if k >= 1 and "test_accuracy" in last else {}
            if spec.prune.schedule is not None and k >= 1:  # the spec of the run that stops here
                cut = spec.prune.schedule[:k]
                goal = cut[-1] if spec.prune.density is not None and not isinstance(cut[-1], dict) else spec.prune.density
                stop = dataclasses.replace(spec, prune=dataclasses.replace(spec.prune, schedule=cut, density=goal))
                acc.update(spec=stop.to_dict(), spec_hash=stop.hashname())
            save(make_ticket(masks, history, scores, k, round=k, rounds=k, **acc), rounds_dir / f"round_{k:02d}.h5")
        if ckpt_path is not None:
            write_checkpoint(ckpt_path, {
                "fingerprint": fingerprint, "round": k, "masks": {n: m.cpu() for n, m in masks.items()},
                "model": {n: v.detach().cpu() for n, v in net.state_dict().items()},
                "scores": {n: s.detach().cpu() for n, s in scores.items()}, "history": history,
                "generator": ctx.generator.get_state(), "tie_generator": ctx.tie_generator.get_state(),
                "miner": miner.state_dict(),
                "elapsed": elapsed_before + time.perf_counter() - started,
            })

    def adopt_schedule() -> None:
        """A miner may fix its targets only once it has looked (the supermask sweep's choice)."""
        nonlocal densities, per_layer, effective_scope
        if ctx.schedule != densities:
            if multipliers is not None:
                raise ConfigError(f"method '{method}' chooses its own density after looking: rate multipliers do not "
                                  "apply (give a density, or drop them)")
            densities = _check_schedule(ctx.schedule, params)
            ctx.schedule = list(densities)
            per_layer = any(isinstance(d, dict) for d in densities)
            effective_scope = "layer" if per_layer else scope

    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    buffers = SelectionBuffers()  # the rounds' selection work buffers, reused round after round
    history: list[dict[str, Any]] = []
    scores: dict[str, torch.Tensor] = {}
    elapsed_before = 0.0
    state = read_checkpoint(ckpt_path, fingerprint) if resume and ckpt_path is not None and ckpt_path.exists() else None
    if state is None:
        first = 1
        miner.prepare(ctx)
        adopt_schedule()
        history.extend(ctx.records)
        ctx.records.clear()
        history.extend(ctx.tracked)  # --track-masks rows of the preparation's training
        ctx.tracked.clear()
        finish_round(0)
    else:  # resume after round state["round"]: the miner's state, then weights, masks, draws
        first = int(state["round"]) + 1
        miner.resume(ctx, state["miner"])
        adopt_schedule()
        ctx.records.clear()
        net.load_state_dict(state["model"])
        masks = {n: state["masks"][n].to(params[n].device) for n in params}
        scores = {n: s.to(params[n].device) for n, s in state["scores"].items()}
        history = list(state["history"])
        ctx.generator.set_state(state["generator"])
        ctx.tie_generator.set_state(state["tie_generator"])
        elapsed_before = float(state["elapsed"])
    with progress.task(f"{method}: rounds", total=len(densities)) as bar:
        bar.advance(first - 1)
        for k in range(first, len(densities) + 1):
            d = densities[k - 1]
            t0 = time.perf_counter()
            miner.before_round(ctx, masks, k)
            scores = miner.score(ctx, masks)
            ties: list[TieRecord] = []
            masks = _select(scores, d, scope, masks, count_rule, buffers, ctx.tie_generator, ties)
            miner.after_round(ctx, masks, k)
            kept = sum(int(m.sum()) for m in masks.values())
            row = {"stage": "round", "round": k, "target_density": d, "kept": kept,
                   "density": kept / sum(m.numel() for m in masks.values()), **tie_columns(ties)}
            warn_ties(row, f"{method}: round {k}")
            for rec in ctx.records:
                row.update(rec)
            ctx.records.clear()
            row["seconds"] = time.perf_counter() - t0
            history.extend(ctx.tracked)  # --track-masks rows of this round's training, then its row
            ctx.tracked.clear()
            history.append(row)
            finish_round(k)
            bar.advance()
    start_weights = miner.ticket_weights(ctx, masks)  # e.g. the supermask's --kept action
    miner.finish(ctx)
    if start_weights is not None:  # the ticket's network starts from these: its init snapshot
        init = {n: start_weights[n].detach().cpu().numpy().copy() for n in params}
        for n, w in start_weights.items():  # the biases too where the method sets them (supermask, reference)
            init_state[n] = w.detach().cpu().to(init_state[n].dtype).clone()

    with torch.no_grad():
        for n, p in params.items():
            p.mul_(masks[n])
    extra: dict[str, Any] = {}
    if state is not None:
        extra["resumed_after_round"] = first - 1
    if history and history[-1].get("stage") == "round" and "test_accuracy" in history[-1]:
        extra["test_accuracy"] = history[-1]["test_accuracy"]  # the last round trained the ticket (IMP)
    if train_ticket:  # from the whole initial state (weights, biases, batch norm), on the real data
        _, _, pruned_biases = recorded_conventions(ctx.provenance)  # masked biases (supermask, reference)
        _, trained_row = train_sparse(net, init_state, clean, ticket_config, masks, seed=seed, device=dev,
                                      progress=progress, label="train",
                                      extra_masks=bias_masks(pruned_biases, dict(net.named_parameters())))
        history.append(trained_row)
        extra["test_accuracy"] = trained_row.get("test_accuracy")
    return make_ticket(masks, history, scores, len(densities), **extra)


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
