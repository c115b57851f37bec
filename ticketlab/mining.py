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
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ticketlab._version import __version__
from ticketlab.device import resolve_device
from ticketlab.errors import ConfigError
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, get_miner
from ticketlab.progress import NullProgress
from ticketlab.selection import SCOPES, density_from, exponential_schedule, keep_count, select_top
from ticketlab.ticket import Ticket

#: Offset added to the run's seed for the miner's own random draws, so that they do not
#: repeat the model initialisation's stream.
_MINER_STREAM = 0x5EED


def _numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {n: p.detach().cpu().numpy().copy() for n, p in params.items()}


def train_summary(result: Any) -> dict[str, Any]:
    """The scalar facts of a :class:`~ticketlab.training.TrainResult`, for a history row."""
    return {
        "test_accuracy": result.final_test_accuracy,
        "val_accuracy": result.final_val_accuracy,
        "best_val_accuracy": result.best_val_accuracy,
        "early_stop_iteration": result.early_stop_iteration,
        "early_stop_test_accuracy": result.early_stop_test_accuracy,
        "iterations": result.final_iteration,
        "train_seconds": result.wall_time_s,
    }


def mine(
    method: str,
    *,
    model: str = "lenet_300_100",
    dataset: str = "digits",
    density: float | None = None,
    sparsity: float | None = None,
    scope: str = "global",
    rounds: int | None = None,
    schedule: Sequence[float] | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    train_epochs: int | None = None,
    train_ticket: bool = False,
    miner_config: MinerConfig | dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    prune_first_layer: bool = True,
    prune_last_layer: bool = True,
    keep_weights: bool = True,
    keep_scores: bool = True,
    progress: NullProgress | None = None,
) -> Ticket:
    """Find a ticket with ``method`` and return it (masks, provenance, weights, scores, history).

    Args:
        method: a registered miner (``list_miners()``).
        model, dataset: registered names (``list_models()``, ``list_datasets()``).
        density, sparsity: give exactly one (fraction kept / fraction removed).
        scope: ``"global"`` (one ranking over all prunable weights) or ``"layer"``.
        rounds: rounds of the exponential schedule ``density**(k/rounds)``; default: the miner's
            (100 for SynFlow, 1 otherwise).
        schedule: explicit per-round densities instead (decreasing, the last is the target).
        seed: seeds the model's initialisation, the miner's draws and training.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        data_root, download: where data sets that need files live; download only when asked.
        train_epochs: epochs of any training the method does (and of ``train_ticket``).
        train_ticket: after mining, rewind to the initial weights and train the sparse network;
            its accuracy goes into the history and provenance.
        miner_config: the miner's config (or a dict of overrides of its defaults).
        prune_first_layer, prune_last_layer: whether the first / last prunable layer is pruned.
        keep_weights, keep_scores: store the ``init``/``final`` weights and the last scores.
        progress: a progress sink (``ticketlab.progress.make_progress()``).
    """
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, model_topology, prunable_parameters
    from ticketlab.training import default_train_config

    started = time.perf_counter()
    progress = progress or NullProgress()
    target = density_from(density, sparsity)
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    miner_cls = get_miner(method)
    if isinstance(miner_config, dict) or miner_config is None:
        miner: Miner = miner_cls(**(miner_config or {}))
    else:
        miner = miner_cls(miner_config)
    densities = _schedule(target, rounds if rounds is not None else miner_cls.default_rounds, schedule)
    dev = resolve_device(device)

    data = load_dataset(dataset, root=data_root, download=download, seed=seed)
    net = create_model(model, data.spec, seed=seed, **(model_kwargs or {})).to(dev)
    params = prunable_parameters(net, first_layer=prune_first_layer, last_layer=prune_last_layer)
    if not params:
        raise ConfigError(f"model '{model}' has no prunable parameters left to prune")
    init = _numpy(params)
    train_config = default_train_config(model, dataset)
    if train_epochs is not None:
        if train_epochs < 1:
            raise ConfigError(f"train epochs must be at least 1, got {train_epochs}")
        train_config = dataclasses.replace(train_config, epochs=train_epochs, iterations=None)

    ctx = MiningContext(
        model=net, params=params, spec=data.spec, data=data, device=dev, seed=seed,
        generator=torch.Generator().manual_seed(seed + _MINER_STREAM),
        train_config=train_config, progress=progress,
    )
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    history: list[dict[str, Any]] = []
    scores: dict[str, torch.Tensor] = {}
    miner.prepare(ctx)
    history.extend(ctx.records)
    ctx.records.clear()
    with progress.task(f"{method}: rounds", total=len(densities)) as bar:
        for k, d in enumerate(densities, start=1):
            t0 = time.perf_counter()
            miner.before_round(ctx, masks, k)
            scores = miner.score(ctx, masks)
            masks = select_top(scores, d, scope=scope, masks=masks)
            miner.after_round(ctx, masks, k)
            row = {"stage": "round", "round": k, "target_density": d,
                   "kept": sum(int(m.sum()) for m in masks.values())}
            for rec in ctx.records:
                row.update(rec)
            ctx.records.clear()
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            bar.advance()
    miner.finish(ctx)

    with torch.no_grad():
        for n, p in params.items():
            p.mul_(masks[n])
    trained_row = None
    if train_ticket:
        from ticketlab.training import train

        with torch.no_grad():
            for n, p in params.items():
                p.copy_(torch.from_numpy(init[n]).to(p.device) * masks[n])
        result = train(net, data, train_config, masks=masks, seed=seed, device=dev, progress=progress)
        trained_row = {"stage": "ticket", **train_summary(result)}
        history.append(trained_row)

    np_masks = {n: m.cpu().numpy() for n, m in masks.items()}
    total = sum(m.size for m in np_masks.values())
    kept = sum(int(m.sum()) for m in np_masks.values())
    provenance: dict[str, Any] = {
        "method": method,
        "method_config": dataclasses.asdict(miner.config),
        "model": model,
        "model_config": dict(model_kwargs or {}),
        "dataset": dataset,
        "data_spec": dataclasses.asdict(data.spec),
        "seed": seed,
        "scope": scope,
        "rounds": len(densities),
        "schedule": "explicit" if schedule is not None else "exponential",
        "target_density": target,
        "target_kept": keep_count(target, total) if scope == "global" else sum(
            keep_count(target, m.size) for m in np_masks.values()),
        "achieved_density": kept / total,
        "kept": kept,
        "total": total,
        "prune_first_layer": prune_first_layer,
        "prune_last_layer": prune_last_layer,
        "collapsed": any(not m.any() for m in np_masks.values()),
        "train_config": dataclasses.asdict(train_config) if (miner_cls.trains or train_ticket) else None,
        "trained": bool(miner_cls.trains or train_ticket),
        "device": str(dev),
        "ticketlab_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "topology": model_topology(net, data.spec),
    }
    if trained_row is not None:
        provenance["test_accuracy"] = trained_row.get("test_accuracy")
    weights: dict[str, dict[str, np.ndarray]] = {}
    if keep_weights:
        weights["init"] = init
        if provenance["trained"]:
            weights["final"] = _numpy(params)  # trained weights, pruned ones zero
    np_scores = {n: s.detach().to(torch.float32).cpu().numpy() for n, s in scores.items()} if keep_scores else {}
    return Ticket(masks=np_masks, provenance=provenance, weights=weights, scores=np_scores, history=history)


def _schedule(target: float, rounds: int, schedule: Sequence[float] | None) -> list[float]:
    if schedule is None:
        return exponential_schedule(target, rounds)
    densities = [float(d) for d in schedule]
    if not densities:
        raise ConfigError("an explicit schedule needs at least one density")
    for d in densities:
        if not 0.0 < d <= 1.0:
            raise ConfigError(f"schedule densities must be in (0, 1], got {d}")
    if any(b > a for a, b in zip(densities, densities[1:])):
        raise ConfigError("schedule densities must not increase (masks only shrink)")
    if abs(densities[-1] - target) > 1e-12:
        raise ConfigError(f"the schedule ends at density {densities[-1]} but the target is {target}")
    return densities
