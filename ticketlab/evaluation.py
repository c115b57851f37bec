"""Untrained evaluation of a ticket: the accuracy of its masked network *without training*.

:func:`evaluate` rebuilds the network from the ticket's provenance (model, model options, data
set, seed) with :func:`ticketlab.retraining.rebuild`, as ``ticketlab train`` does: it takes the
ticket's stored ``init`` weights, or re-creates them from the provenance seed and weight
treatment when none are stored (after a ``reinit`` transform: its fresh draw), optionally
sets the kept weights with a mask-1 action (``weights``, :data:`ticketlab.weights.KEPT_ACTIONS`),
recalibrates batch-norm statistics on ``recalibrate`` seeded training batches
(:func:`ticketlab.training.recalibrate_batchnorm`) and evaluates one split. Biases and batch-norm parameters are the model's initial ones
(a ticket that records :data:`ticketlab.weights.KEPT_CONVENTIONS`: its biases under the recorded action and masks, and
``weights`` applies to them too).

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

import torch

from ticketlab.errors import ConfigError
from ticketlab.ticket import Ticket


def evaluate(
    ticket: Ticket | str | Path,
    *,
    split: str = "val",
    weights: str | None = None,
    data_root: str | Path | None = None,
    device: str | torch.device = "auto",
    recalibrate: int | None = None,
    seed: int | None = None,
    kept: str | None = None,
) -> dict[str, Any]:
    """Loss and accuracy of ``ticket``'s untrained masked network on ``split``.

    Args:
        ticket: a :class:`Ticket` or the path of a ticket file.
        split: ``"val"`` or ``"test"`` (or ``"train"``), of the data split fixed by the ticket's seed.
        weights: a mask-1 action applied to the kept weights first (default: as stored).
        data_root: where the data set's files are, for data sets that need files.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        recalibrate: training batches for batch-norm recalibration (default
            :data:`~ticketlab.training.RECALIBRATION_BATCHES`; 0 = keep the initial statistics;
            ignored for a model without batch norm).
        seed: seed of the recalibration batches and of random actions (default: the ticket's seed).
        kept: the old name of ``weights`` (deprecated: it warns once).

    Returns:
        ``{"split", "loss", "accuracy", "chance", "density", "weights", "weights_source", "batchnorm",
        "recalibration_batches", ..., "health"}``: ``chance`` is 1 / classes; ``recalibration_batches`` is
        0 for a model without batch norm (nothing is recalibrated); ``health`` is :func:`ticketlab.health` of the ticket with this accuracy, split and
        split size (:meth:`~ticketlab.metrics.health.Health.to_dict`, as the provenance stores it).
    """
    from ticketlab.data import split_samples
    from ticketlab.deprecation import renamed_kwarg
    from ticketlab.fileformat import load
    from ticketlab.metrics.health import health
    from ticketlab.retraining import rebuild
    from ticketlab.training import RECALIBRATION_BATCHES, SPLITS, evaluate_untrained
    from ticketlab.weights import check_action, reinit_draw_seed

    weights = renamed_kwarg("ticketlab.evaluate", "kept", "weights", kept, weights, None)
    if not isinstance(ticket, Ticket):
        ticket = load(ticket)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
    if weights is not None:
        check_action(weights)
    recalibrate = RECALIBRATION_BATCHES if recalibrate is None else int(recalibrate)
    if recalibrate < 0:
        raise ConfigError(f"recalibration batches must be >= 0, got {recalibrate}")
    rb = rebuild(ticket, data_root=data_root, device=device)  # stored, re-created or reinit's draw
    prov, run_seed = ticket.provenance, rb.seed
    seed = run_seed if seed is None else int(seed)
    net, data, masks, start, source = rb.net, rb.data, rb.masks, rb.init_weights, rb.source
    if weights is not None and weights != "init":
        # reinit: the same fresh draw as the supermask miner's --weights reinit
        start, biases = rb.start(weights, seed=seed, fresh_seed=reinit_draw_seed(run_seed))
        named = dict(net.named_parameters())
        with torch.no_grad():
            for n, b in biases.items():  # a ticket whose biases take the actions (supermask, protocol reference)
                named[n].copy_(b)
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    recalibrate = recalibrate if has_bn else 0  # nothing to recalibrate: none done, none reported
    ev = evaluate_untrained(net, data, masks, start, recalibrate=recalibrate, seed=seed, splits=(split,))
    loss, acc = ev[split]
    checked = health(ticket, accuracy=acc, split=split, samples=split_samples(data)[split])
    return {"split": split, "loss": loss, "accuracy": acc, "chance": 1.0 / data.spec.num_classes,
            "density": ticket.density, "weights": weights or "stored", "weights_source": source,
            "batchnorm": has_bn, "recalibration_batches": recalibrate, "model": prov["model"],
            "dataset": prov["dataset"], "seed": run_seed, "health": checked.to_dict()}
