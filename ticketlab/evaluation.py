"""Untrained evaluation of a ticket: the accuracy of its masked network *without training*.

:func:`evaluate` rebuilds the network from the ticket's provenance (model, model options, data
set, seed), takes the ticket's stored ``init`` weights, or re-creates them from the provenance
seed and weight treatment when none are stored, optionally sets the kept weights with a mask-1
action (``kept``, :data:`ticketlab.weights.KEPT_ACTIONS`), recalibrates batch-norm statistics
on ``recalibrate`` seeded training batches (:func:`ticketlab.training.recalibrate_batchnorm`)
and evaluates one split. Biases and batch-norm parameters are the model's initial ones.

Example:
    >>> import ticketlab
    >>> t = ticketlab.mine("random", density=0.5, seed=0, device="cpu")
    >>> r = ticketlab.evaluate(t, split="test", device="cpu")
    >>> r["weights_source"], r["density"], 0.0 <= r["accuracy"] <= 1.0
    ('stored', 0.5, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.ticket import Ticket



def evaluate(
    ticket: Ticket | str | Path,
    *,
    split: str = "val",
    kept: str | None = None,
    data_root: str | Path | None = None,
    device: str | torch.device = "auto",
    recalibrate: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Loss and accuracy of ``ticket``'s untrained masked network on ``split``.

    Args:
        ticket: a :class:`Ticket` or the path of a ticket file.
        split: ``"val"`` or ``"test"`` (or ``"train"``), of the data split fixed by the ticket's seed.
        kept: a mask-1 action applied to the kept weights first (default: as stored).
        data_root: where the data set's files are, for data sets that need files.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        recalibrate: training batches for batch-norm recalibration (default
            :data:`~ticketlab.training.RECALIBRATION_BATCHES`; 0 = keep the initial statistics).
        seed: seed of the recalibration batches and of random kept actions (default: the
            ticket's seed).

    Returns:
        ``{"split", "loss", "accuracy", "density", "kept", "weights_source", "recalibration_batches", ...}``.
    """
    from ticketlab.data import load_dataset
    from ticketlab.device import resolve_device
    from ticketlab.fileformat import load
    from ticketlab.masking import from_numpy_masks
    from ticketlab.models import create_model
    from ticketlab.training import RECALIBRATION_BATCHES, SPLITS, evaluate_untrained
    from ticketlab.weights import apply_treatment_, check_kept, kept_generator, kept_weights, reinit_draw_seed

    if not isinstance(ticket, Ticket):
        ticket = load(ticket)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
    if kept is not None:
        check_kept(kept)
    prov = ticket.provenance
    missing = [k for k in ("model", "dataset", "seed") if k not in prov]
    if missing:
        raise ConfigError(f"cannot re-create the ticket's network: its provenance has no '{missing[0]}'")
    run_seed = int(prov["seed"])
    seed = run_seed if seed is None else int(seed)
    recalibrate = RECALIBRATION_BATCHES if recalibrate is None else int(recalibrate)
    if recalibrate < 0:
        raise ConfigError(f"recalibration batches must be >= 0, got {recalibrate}")
    dev = resolve_device(device)
    data = load_dataset(prov["dataset"], root=data_root, seed=run_seed)
    net = create_model(prov["model"], data.spec, seed=run_seed, **dict(prov.get("model_config") or {})).to(dev)
    named = dict(net.named_parameters())
    params = {n: named[n] for n in ticket.masks if n in named}
    masks = from_numpy_masks(ticket.masks, params) if len(params) == len(ticket.masks) else None
    if masks is None:
        absent = next(n for n in ticket.masks if n not in named)
        raise IncompatibleError(f"mask '{absent}' names no parameter of model '{prov['model']}'")
    if "init" in ticket.weights:
        source = "stored"
        weights = {n: torch.as_tensor(np.asarray(ticket.weights["init"][n])).to(dev) for n in params}
    else:  # the provenance seed re-creates the init; then the run's weight treatment
        source = "recreated"
        apply_treatment_(params, str(prov.get("weights", "init")))
        weights = {n: p.detach().clone() for n, p in params.items()}
    if kept is not None and kept != "init":
        gen = kept_generator(seed)
        fresh = None
        if kept == "reinit":  # the same fresh draw as the supermask miner's --kept reinit
            other = create_model(prov["model"], data.spec, seed=reinit_draw_seed(run_seed),
                                 **dict(prov.get("model_config") or {}))
            fresh = dict(other.named_parameters())
        weights = {n: kept_weights(kept, w, masks[n], generator=gen, fresh=None if fresh is None else fresh[n])
                   for n, w in weights.items()}
    ev = evaluate_untrained(net, data, masks, weights, recalibrate=recalibrate, seed=seed, splits=(split,))
    loss, acc = ev[split]
    return {"split": split, "loss": loss, "accuracy": acc, "density": ticket.density, "kept": kept or "stored",
            "weights_source": source, "recalibration_batches": recalibrate, "model": prov["model"],
            "dataset": prov["dataset"], "seed": run_seed}
