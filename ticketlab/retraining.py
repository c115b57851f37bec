"""Training a ticket after mining: ``ticketlab.train(ticket, ...)`` and ``ticketlab train``.

The pieces are shared with the rest of ticketlab, not copied:

* :func:`rebuild` re-creates a ticket's network from its provenance (model, model options,
  data set, seed: from the recorded spec, :meth:`ticketlab.spec.MineSpec.from_provenance`, where
  the ticket has one) with :func:`ticketlab.build.build_network`, as ``mine`` built it: the model
  built with the provenance seed gives the biases and batch-norm state; the prunable weights are
  the stored ``init`` snapshot, or, where none is stored, the provenance seed's draw with the
  run's weight treatment (:func:`ticketlab.weights.apply_treatment_`) and, for a supermask
  ticket, its ``--weights`` action; after a ``reinit`` transform, the fresh
  draw of :func:`ticketlab.transforms.reinit_model_seed`. A ticket whose provenance records
  :data:`ticketlab.weights.KEPT_CONVENTIONS` (the supermask miner's protocol reference) starts
  with its biases under the recorded action and bias masks, and the bias masks hold in training.
  :func:`ticketlab.evaluate` uses it too.
* :func:`train_sparse` is the masked training of ``mine --train-ticket`` (the runner calls it):
  rewind the whole initial state, then :func:`ticketlab.training.fit` with the masks, so pruned
  weights stay exactly zero.
* ``weights`` chooses the starting weights with the shared mask-1 actions
  (:data:`ticketlab.weights.KEPT_ACTIONS`, :func:`ticketlab.weights.start_weights`), or
  ``rewind:K``: the dense network trained ``K`` iterations from the init (same config and seed),
  then the sparse one trained from iteration ``K`` of the same schedule, as IMP's
  ``--reset rewind:K`` does (Frankle et al. 2019, "Stabilizing the Lottery Ticket Hypothesis").
* The training config follows ``mine``'s rule (:func:`resolve_train_config`): the defaults of the
  model and data set, then ``train_epochs``, then ``train_options``.

Training always uses the real data of the ticket's data set (split by the provenance seed), also
for a ticket mined with ``--data-corruption``: Su et al. 2020 train such tickets on clean data.

Example:
    >>> import ticketlab
    >>> t = ticketlab.mine("random", density=0.2, seed=0, device="cpu")
    >>> trained = ticketlab.train(t, train_epochs=1, device="cpu")
    >>> trained.provenance["trained_from"]["weights"], sorted(trained.weights)
    ('init', ['final', 'init'])
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.progress import NullProgress
from ticketlab.ticket import Ticket
from ticketlab.weights import KEPT_ACTIONS, check_action

#: What ``weights`` (``--weights``) takes: the mask-1 actions, and ``rewind:K`` (K an iteration).
WEIGHTS_CHOICES = ("init", "rewind:K", *[a for a in KEPT_ACTIONS if a != "init"])
_REWIND = re.compile(r"rewind:(\d+)")


def parse_weights(text: str) -> tuple[str, int]:
    """``(action, K)`` of a ``weights`` value; ``K`` is the rewind iteration (0 unless ``rewind:K``).

    Example:
        >>> parse_weights("rewind:20"), parse_weights("signed_constant")
        (('rewind', 20), ('signed_constant', 0))
    """
    m = _REWIND.fullmatch(text) if isinstance(text, str) else None
    if m is not None:
        return "rewind", int(m.group(1))
    if text not in KEPT_ACTIONS:
        raise ConfigError(f"unknown weights action '{text}' (choose from: {', '.join(WEIGHTS_CHOICES)})")
    return check_action(text), 0


def resolve_train_config(model: str, dataset: str, *, train_epochs: int | None = None,
                         train_options: Mapping[str, Any] | None = None) -> Any:
    """``mine``'s training config: :func:`~ticketlab.training.default_train_config` of the
    model and data set, then ``train_epochs`` (clearing ``iterations``), then ``train_options``
    (``TrainConfig`` fields).

    Example:
        >>> resolve_train_config("lenet_300_100", "digits", train_epochs=3, train_options={"lr": 0.01}).epochs
        3
    """
    from ticketlab.training import TrainConfig, default_train_config

    config = default_train_config(model, dataset)
    if train_epochs is not None:
        if isinstance(train_epochs, bool) or not isinstance(train_epochs, int) or train_epochs < 1:
            raise ConfigError(f"train epochs must be at least 1, got {train_epochs}")
        config = dataclasses.replace(config, epochs=train_epochs, iterations=None)
    if train_options:
        config = TrainConfig.from_dict({**config.to_dict(), **dict(train_options)})
    return config


@dataclass
class Rebuilt:
    """A ticket's network, re-created (see :func:`rebuild`).

    Attributes:
        net: the model on ``device``, holding the initial state.
        data: the ticket's data set, split by the provenance seed.
        params: the masked parameters (name -> parameter of ``net``), in the masks' order.
        masks: boolean torch masks on ``device``.
        init_weights: the initial prunable weights, θ0 (name -> tensor on ``device``; whole layers;
            ``theta0`` is its deprecated alias).
        state: the whole initial ``state_dict`` (CPU copies), prunable weights = ``init_weights``.
        source: ``"stored"`` (the ticket's ``init``), ``"recreated"`` (from the provenance) or
            ``"reinit"`` (the fresh draw of a ``reinit`` transform).
        seed: the provenance seed.
        provenance: the ticket's provenance (what :meth:`draw` builds from).
        bias_masks: masks of the biases that take the mask-1 actions (bias name -> boolean tensor
            on ``device``; empty unless the provenance records
            :data:`~ticketlab.weights.KEPT_CONVENTIONS`); ``state`` holds those biases' start values.
        signs: where ``rand_signed_*`` shuffle signs (:data:`~ticketlab.weights.SIGN_SHUFFLES`).
    """

    net: torch.nn.Module
    data: Any
    params: dict[str, torch.nn.Parameter]
    masks: dict[str, torch.Tensor]
    init_weights: dict[str, torch.Tensor]
    state: dict[str, torch.Tensor]
    source: str
    seed: int
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    bias_masks: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    signs: str = "kept"

    @property
    def theta0(self) -> dict[str, torch.Tensor]:
        """Deprecated alias of :attr:`init_weights` (``theta0`` also named IMP's whole initial state)."""
        from ticketlab.deprecation import warn_renamed

        warn_renamed("Rebuilt.theta0", "Rebuilt.init_weights")
        return self.init_weights

    def draw(self, model_seed: int, names: Any = None) -> dict[str, torch.Tensor]:
        """The prunable weights (or the parameters ``names``) of a fresh copy of the model built
        with ``model_seed``."""
        from ticketlab.models import create_model

        prov = self.provenance
        other = create_model(prov["model"], self.data.spec, seed=int(model_seed), **dict(prov.get("model_config") or {}))
        named = dict(other.named_parameters())
        own = dict(self.net.named_parameters())
        return {n: named[n].detach().to(own[n].device) for n in (self.params if names is None else names)}

    def start(self, action: str, *, seed: int, fresh_seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(weights, biases)`` a network starts from under the mask-1 ``action`` applied to the
        rebuilt start (:func:`ticketlab.weights.start_weights` of ``init_weights``; the biases of
        :attr:`bias_masks`, from ``state``, by :func:`ticketlab.weights.start_biases`, else none):
        permutations from ``seed``'s streams, ``reinit``'s fresh draw from ``fresh_seed``."""
        from ticketlab.weights import kept_generator, start_biases, start_weights

        fresh = self.draw(fresh_seed, [*self.params, *self.bias_masks]) if action == "reinit" else None
        gen = kept_generator(seed)
        weights = {n: start_weights(action, w, self.masks[n], generator=gen, within=self.signs,
                                    fresh=None if fresh is None else fresh[n]) for n, w in self.init_weights.items()}
        biases = {}
        if self.bias_masks:
            dev = {n: m.device for n, m in self.bias_masks.items()}
            b = {n: self.state[n].to(dev[n]) for n in self.bias_masks}
            biases = start_biases(action, b, self.bias_masks, seed=seed, within=self.signs, fresh=fresh)
        return weights, biases


def rebuild(ticket: Ticket, *, data_root: str | Path | None = None, device: str | torch.device = "auto") -> Rebuilt:
    """Re-create ``ticket``'s network and initial weights from its provenance (module docstring).

    Raises a one-line :class:`ConfigError` when the provenance cannot re-create it (no model,
    data set or seed, e.g. an imported ticket; a recorded spec that is damaged or says otherwise
    than the keys model, dataset, model_config and seed) and :class:`IncompatibleError` when a
    mask names no parameter of the model.

    Example:
        >>> import ticketlab
        >>> t = ticketlab.mine("random", density=0.5, seed=0, device="cpu", omit_weights=True)
        >>> rebuild(t, device="cpu").source
        'recreated'
    """
    from ticketlab.build import build_network, load_data
    from ticketlab.device import resolve_device
    from ticketlab.masking import from_numpy_masks
    from ticketlab.checks import check_seed
    from ticketlab.models.registry import validate_model_config
    from ticketlab.transforms import reinit_model_seed
    from ticketlab.weights import (
        apply_recorded_treatment_, bias_masks, kept_generator, kept_weights, recorded_conventions, reinit_draw_seed,
        start_biases,
    )

    prov = ticket.provenance
    missing = [k for k in ("model", "dataset", "seed") if prov.get(k) is None]
    if missing:
        what = " (an imported ticket? import it with --model/--dataset and store init weights)" \
            if prov.get("method") == "imported" else ""
        raise ConfigError(f"cannot re-create the ticket's network: its provenance has no '{missing[0]}'{what}")
    run_seed = check_seed(prov["seed"], "cannot re-create the ticket's network: its provenance seed")
    model_config = prov.get("model_config") or {}
    if not isinstance(model_config, dict):
        raise ConfigError("cannot re-create the ticket's network: its provenance model_config is not a table")
    setup = _recorded_network(prov, run_seed, model_config)
    dev = resolve_device(device)
    data, _ = load_data(setup.dataset, seed=run_seed, data_root=data_root)
    try:  # keys, types, ranges and the parameter count, before anything is allocated
        validate_model_config(setup.model, data.spec, setup.model_options)
    except ConfigError as exc:
        raise type(exc)(f"cannot re-create the ticket's network from its provenance: {exc}") from None
    # the real data, also for a ticket mined on corrupted data (Su et al. 2020 train on clean data)
    net = build_network(dataclasses.replace(setup, data_corruption=None), seed=run_seed, device=dev, data=data).net
    named = dict(net.named_parameters())
    absent = [n for n in ticket.masks if n not in named]
    if absent:
        raise IncompatibleError(f"mask '{absent[0]}' names no parameter of model '{prov['model']}'")
    params = {n: named[n] for n in ticket.masks}
    masks = from_numpy_masks(ticket.masks, params)
    signs, action, pruned_biases = recorded_conventions(prov)
    rebuilt = Rebuilt(net, data, params, masks, {}, {}, "", run_seed, prov,
                      bias_masks=bias_masks(pruned_biases, named), signs=signs)
    fresh_seed = reinit_model_seed(ticket)
    if fresh_seed is not None:  # a reinit transform: the fresh draw is the ticket's init
        source, init_weights = "reinit", rebuilt.draw(fresh_seed)
    elif "init" in ticket.weights:
        source = "stored"
        init_weights = {n: torch.as_tensor(np.asarray(ticket.weights["init"][n])).to(dev, p.dtype) for n, p in params.items()}
    else:  # the provenance seed's draw, then the run's weight treatment (as the runner made it)
        source = "recreated"
        apply_recorded_treatment_(params, prov)
        init_weights = {n: p.detach().clone() for n, p in params.items()}
        choice = prov.get("supermask")  # its action is "kept" in tickets written before issue 24
        chosen = choice.get("weights", choice.get("kept")) if isinstance(choice, dict) else None
        if chosen not in (None, "init"):  # the supermask miner's ticket starts from its --weights action
            gen = kept_generator(run_seed)
            fresh = rebuilt.draw(reinit_draw_seed(run_seed)) if chosen == "reinit" else None
            init_weights = {n: kept_weights(chosen, w, masks[n], generator=gen, within=signs,
                                            fresh=None if fresh is None else fresh[n]) for n, w in init_weights.items()}
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(init_weights[n])
        if rebuilt.bias_masks:  # the recorded action on the initial biases, under their masks
            fresh_b = rebuilt.draw(reinit_draw_seed(run_seed), list(rebuilt.bias_masks)) if action == "reinit" else None
            b0 = {n: named[n].detach().clone() for n in rebuilt.bias_masks}
            for n, b in start_biases(action or "init", b0, rebuilt.bias_masks, seed=run_seed, within=signs,
                                     fresh=fresh_b).items():
                named[n].copy_(b)
    rebuilt.init_weights, rebuilt.source = init_weights, source
    rebuilt.state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
    return rebuilt


def _recorded_network(prov: Mapping[str, Any], seed: int, model_config: dict[str, Any]) -> Any:
    """The :class:`~ticketlab.spec.NetSpec` of a ticket's network: its recorded spec's
    (:meth:`~ticketlab.spec.MineSpec.from_provenance`; a later ``transfer`` moved the masks to its
    ``to_model``), which must agree with the provenance keys that every other reader uses (model,
    data set, model options, seed); for a ticket that records no spec (written before specs, or
    imported), those keys."""
    from ticketlab.spec import MineSpec, NetSpec
    from ticketlab.transforms import recorded_transforms

    keys = NetSpec(model=str(prov["model"]), dataset=str(prov["dataset"]), model_options=dict(model_config))
    if not isinstance(prov.get("spec"), Mapping):
        return keys
    try:
        spec = MineSpec.from_provenance(prov)
    except ConfigError as exc:
        raise ConfigError(f"cannot re-create the ticket's network: {exc}") from None
    net = spec.net
    for record in recorded_transforms(prov):
        if record["name"] == "transfer" and isinstance(record.get("to_model"), str):
            net = dataclasses.replace(net, model=record["to_model"])
    said = {"model": keys.model, "dataset": keys.dataset, "model_config": keys.model_options, "seed": seed}
    recorded = {"model": net.model, "dataset": net.dataset, "model_config": net.model_options, "seed": spec.seed}
    for key, value in said.items():
        if _plain(value) != _plain(recorded[key]):
            raise ConfigError(f"cannot re-create the ticket's network: its provenance says {key} "
                              f"{_short(value)} but its spec {_short(recorded[key])}")
    return net


def _plain(value: Any) -> Any:
    """A value as its JSON text (tuples and lists alike), for comparing a provenance's keys with its spec."""
    import json

    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def train_sparse(net: torch.nn.Module, state: Mapping[str, torch.Tensor], data: Any, config: Any,
                 masks: Mapping[str, torch.Tensor], *, seed: int, device: str | torch.device,
                 progress: NullProgress | None = None, start_iteration: int = 0,
                 label: str = "ticket", extra_masks: Mapping[str, torch.Tensor] | None = None) -> tuple[Any, dict[str, Any]]:
    """Load ``state`` (weights, biases, batch norm) into ``net`` and train it under ``masks``
    (pruned weights exactly zero); return the :class:`~ticketlab.training.TrainResult` and the
    history row (``stage="ticket"``, kept count, density, :func:`~ticketlab.training.train_summary`).
    ``extra_masks`` (e.g. the bias masks of :attr:`Rebuilt.bias_masks`) hold in training too but
    are not counted in the row's kept count and density.

    This is ``mine --train-ticket``'s training (the runner calls it) and ``ticketlab train``'s.

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.randn(20, 2); y = (x[:, 0] > 0).long()
        >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
        >>> from ticketlab.training import TrainConfig
        >>> net = torch.nn.Linear(2, 2); m = {"weight": torch.tensor([[True, False], [True, False]])}
        >>> _, row = train_sparse(net, net.state_dict(), data, TrainConfig(epochs=1, batch_size=10), m, seed=0, device="cpu")
        >>> row["kept"], float(net.weight.detach()[:, 1].abs().sum())
        (2, 0.0)
    """
    from ticketlab.training import fit, train_summary

    net.load_state_dict(dict(state))
    result = fit(net, data, config, masks={**masks, **dict(extra_masks or {})}, seed=seed, device=device,
                   progress=progress or NullProgress(), start_iteration=start_iteration, label=label)
    kept = sum(int(m.sum()) for m in masks.values())
    row = {"stage": "ticket", "kept": kept, "density": kept / sum(m.numel() for m in masks.values()),
           **train_summary(result)}
    return result, row


def final_snapshot(net: torch.nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The ``final`` weight snapshot of a trained network: every entry of its ``state_dict``, in
    its order, masked parameters times their masks (pruned weights exactly 0), with the biases,
    batch-norm parameters and buffers and layers left unpruned as they are, so that :func:`trained_state` rebuilds the
    trained network exactly (docs/format.md, "Weights and scores"). The runner and
    ``ticketlab train`` write it; tickets of older versions hold the masked parameters only.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> snap = final_snapshot(net, {"weight": torch.tensor([[True, False]])})
        >>> list(snap), bool(snap["weight"][0, 1] == 0)
        (['weight', 'bias'], True)
    """
    # in the state dict's (module) order, so that a relabelling can let biases and batch norm follow
    # their layer (ticketlab.metrics.align.permute_state)
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for k, v in net.state_dict().items():
            out[k] = (v * masks[k]).cpu().numpy() if k in masks else v.detach().cpu().numpy().copy()
    missing = [n for n in masks if n not in out]
    if missing:
        raise IncompatibleError(f"mask '{missing[0]}' names no entry of the network's state")
    return out


def trained_state(ticket: Ticket, net: torch.nn.Module, *, label: str = "the ticket") -> dict[str, torch.Tensor]:
    """The whole trained ``state_dict`` of ``ticket``'s network (CPU tensors, in ``net``'s order),
    read from its ``final`` snapshot (:func:`final_snapshot`); ``net`` is the ticket's model
    (:func:`rebuild`), whose entries give the names, shapes and dtypes.

    Raises a one-line :class:`ConfigError` when the ticket has no trained weights, or only the
    masked ones (a ticket written before the trained state was stored), and
    :class:`IncompatibleError` when the snapshot does not fit ``net``.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> t = Ticket(masks={"weight": np.array([[True, False]])},
        ...            weights={"final": final_snapshot(net, {"weight": torch.tensor([[True, False]])})})
        >>> torch.equal(trained_state(t, net)["bias"], net.bias.detach())
        True
    """
    final = ticket.weights.get("final")
    if not final:
        raise ConfigError(f"{label} has no trained weights (no 'final' snapshot): train it with `ticketlab train` "
                          "or mine it with --train-ticket")
    reference = net.state_dict()
    missing = [k for k in reference if k not in final]
    if missing:
        raise ConfigError(f"{label} stores no trained biases or batch-norm state (its 'final' snapshot lacks "
                          f"'{missing[0]}'; it was written by an older ticketlab): mine it again, or run "
                          "`ticketlab train` on it, with this version")
    extra = [k for k in final if k not in reference]
    if extra:
        raise IncompatibleError(f"the trained state of {label} names '{extra[0]}', which its model does not have")
    out: dict[str, torch.Tensor] = {}
    for k, ref in reference.items():
        arr = np.asarray(final[k])
        if tuple(arr.shape) != tuple(ref.shape):
            raise IncompatibleError(f"the trained '{k}' of {label} has shape {tuple(arr.shape)}, but its model's "
                                    f"has {tuple(ref.shape)}")
        out[k] = torch.as_tensor(np.array(arr, copy=True)).to(ref.dtype)
    return out


class _Stop(Exception):
    """Ends the dense run of ``rewind:K`` after ``K`` iterations."""


def rewound_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor], data: Any, config: Any, iteration: int,
                  *, seed: int, device: str | torch.device, progress: NullProgress | None = None
                  ) -> dict[str, torch.Tensor]:
    """The dense network's state after ``iteration`` steps of ``config`` from ``state``: the
    weights IMP's ``--reset rewind:K`` rewinds to (its dense run's ``snapshot_at=K``; the same
    steps, stopped there instead of run to the end).

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> from ticketlab.training import TrainConfig
        >>> x = torch.randn(20, 2); y = (x[:, 0] > 0).long()
        >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
        >>> net = torch.nn.Linear(2, 2); s0 = {k: v.clone() for k, v in net.state_dict().items()}
        >>> torch.equal(rewound_state(net, s0, data, TrainConfig(), 0, seed=0, device="cpu")["weight"], s0["weight"])
        True
    """
    from ticketlab.training import state_copy, total_iterations, fit

    total = total_iterations(config, data)
    if not 0 <= iteration <= total:
        raise ConfigError(f"weights rewind:{iteration} is past the end of training ({total} iterations)")
    net.load_state_dict(dict(state))
    if iteration == 0:
        return state_copy(net)

    def stop(info: Any) -> None:
        if info.iteration >= iteration:
            raise _Stop

    try:
        fit(net, data, config, seed=seed, device=device, progress=progress or NullProgress(), callbacks=(stop,),
              label=f"rewind: dense to {iteration}")
    except _Stop:
        pass
    return state_copy(net)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def train(
    ticket: Ticket | str | Path,
    *,
    weights: str = "init",
    train_epochs: int | None = None,
    train_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    device: str | torch.device = "auto",
    data_root: str | Path | None = None,
    progress: NullProgress | None = None,
    kept: str | None = None,
) -> Ticket:
    """Train ``ticket``'s sparse network and return the trained ticket (the source is not modified).

    Args:
        ticket: a :class:`Ticket` or the path of a ticket file (read, never written).
        weights: the starting weights: a mask-1 action (``init``, ``signed_constant``, ``reinit``,
            ... :data:`ticketlab.weights.KEPT_ACTIONS`) applied to the init, or ``rewind:K``.
        train_epochs, train_options: as ``mine``'s (:func:`resolve_train_config`).
        seed: the training seed (batch order, dropout, the random mask-1 actions' draws and
            ``reinit``'s fresh weights); default the provenance seed, as ``mine --train-ticket``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        data_root: where the data set's files are, for data sets that need files.
        progress: a progress sink (``ticketlab.progress.make_progress()``).
        kept: the old name of ``weights`` (deprecated: it warns once).

    Returns:
        A ticket with the same masks and scores; the source's provenance plus ``trained_from``
        (source file name and SHA-256 when read from a file, ``weights``, ``seed``, where the init
        came from: ``stored`` / ``recreated`` / ``reinit``, the resolved train config, the source's
        ``test_accuracy``), ``test_accuracy`` and ``trained = True``; weights ``init`` (what the
        training started from: :func:`ticketlab.weights.start_weights`, or θ0 for ``rewind:K``)
        and ``final`` (:func:`final_snapshot`: pruned entries zero, biases and batch norm included);
        the history: one ``stage="train"`` row per evaluation, then the ``stage="ticket"`` summary row.

    Example:
        >>> import ticketlab
        >>> t = ticketlab.mine("random", density=0.2, seed=0, device="cpu")
        >>> r = ticketlab.train(t, weights="signed_constant", train_epochs=1, device="cpu")
        >>> r.history[-1]["stage"], r.provenance["trained_from"]["init"]
        ('ticket', 'stored')
    """
    from ticketlab.data import split_samples
    from ticketlab.deprecation import renamed_kwarg
    from ticketlab.fileformat import load
    from ticketlab.metrics.health import PROVENANCE_KEY as HEALTH_KEY, health
    from ticketlab.training import resolved_config
    from ticketlab.weights import reinit_draw_seed

    weights = renamed_kwarg("ticketlab.train", "kept", "weights", kept, weights, "init")
    source_file: dict[str, Any] = {}
    if not isinstance(ticket, Ticket):
        path = Path(ticket)
        ticket = load(path)
        source_file = {"file": path.name, "sha256": file_sha256(path)}
    mode, rewind_at = parse_weights(weights)
    rb = rebuild(ticket, data_root=data_root, device=device)
    if seed is None:
        seed = rb.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"training seed must be a non-negative integer, not {seed!r}")
    prov = ticket.provenance
    config = resolve_train_config(str(prov["model"]), str(prov["dataset"]), train_epochs=train_epochs,
                                  train_options=train_options)
    dev = rb.init_weights[next(iter(rb.init_weights))].device
    if mode == "rewind":
        state = rewound_state(rb.net, rb.state, rb.data, config, rewind_at, seed=seed, device=dev, progress=progress)
        start = {n: w.detach().cpu() for n, w in rb.init_weights.items()}  # the run began at θ0
    else:
        start_w, biases = rb.start(mode, seed=seed, fresh_seed=reinit_draw_seed(seed))
        start = {n: w.cpu() for n, w in start_w.items()}
        state = {**rb.state, **{n: w.cpu().to(rb.state[n].dtype) for n, w in {**start_w, **biases}.items()}}
    result, row = train_sparse(rb.net, state, rb.data, config, rb.masks, seed=seed, device=dev, progress=progress,
                               start_iteration=rewind_at, label=f"train ({weights})", extra_masks=rb.bias_masks)
    final = final_snapshot(rb.net, rb.masks)  # the masked weights (pruned ones 0), then the rest of the state

    provenance = copy.deepcopy(prov)
    record: dict[str, Any] = {**source_file, "weights": weights, "seed": seed, "init": rb.source,
                              "train_config": dataclasses.asdict(resolved_config(config, rb.data))}
    if mode == "rewind":
        record["rewind_iteration"] = rewind_at
    if "test_accuracy" in provenance:
        record["source_test_accuracy"] = provenance.pop("test_accuracy")
    if "trained_from" in provenance:  # a trained ticket trained again: keep the chain
        record["source_trained_from"] = provenance.pop("trained_from")
    provenance.update(trained_from=record, trained=True, test_accuracy=row["test_accuracy"])
    spec = provenance.get("data_spec") if isinstance(provenance.get("data_spec"), dict) else dataclasses.asdict(rb.data.spec)
    provenance["data_spec"] = {**spec, "split_samples": split_samples(rb.data)}  # the split the accuracy is of
    provenance.pop(HEALTH_KEY, None)  # the source's; the trained ticket's own is added below
    history = [{"stage": "train", **r} for r in result.log] + [row]
    trained = Ticket(masks={n: m.copy() for n, m in ticket.masks.items()}, provenance=provenance,
                     weights={"init": {n: w.numpy() for n, w in start.items()}, "final": final},
                     scores={n: np.array(s, copy=True) for n, s in ticket.scores.items()}, history=history)
    trained.provenance[HEALTH_KEY] = health(trained).to_dict()
    return trained
