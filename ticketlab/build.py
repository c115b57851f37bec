"""One builder of a run's network: the data, the model with its initial weights, the prunable parameters.

``mine`` (:mod:`ticketlab.mining`), :func:`ticketlab.retraining.rebuild` (and through it ``train``,
``evaluate``, ``sanity`` and ``barrier``) and the collapse study (:mod:`ticketlab.collapse`) build
their networks here, so a ticket's network is the same wherever it is made or re-made: the data
set split by the run's seed, ``create_model(model, data.spec, seed=seed, **model_options)`` on the
device, and the prunable weights with the first / last layer left out where the pruning spec says.

Example:
    >>> from ticketlab.spec import MineSpec
    >>> b = build_network(MineSpec("random"), device="cpu")
    >>> list(b.params), b.data.spec.name, b.data_read
    (['fc1.weight', 'fc2.weight', 'fc3.weight'], 'digits', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketlab.errors import ConfigError
from ticketlab.spec import MineSpec, NetSpec, PruneSpec


@dataclass
class BuiltNetwork:
    """What :func:`build_network` returns.

    Attributes:
        net: the model on ``device``, with its initial weights (drawn with ``seed``).
        data: the data the method sees: the training split corrupted where ``spec.data_corruption`` says.
        clean: the real data (what a ticket is trained and evaluated on); ``data`` itself when uncorrupted.
        params: the prunable parameters (name -> parameter of ``net``), in model order, the first /
            last left out where the pruning spec says.
        output_layer: the model's last prunable parameter, pruned or not (the ``"output"`` key of
            per-layer settings).
        device: the device ``net`` is on.
        data_read: whether the samples were read (``False``: only the shape, for a data-free method).
        spec: the network's description; ``seed``: the seed of its weights and data split.
    """

    net: torch.nn.Module
    data: Any
    clean: Any
    params: dict[str, torch.nn.Parameter]
    output_layer: str | None
    device: torch.device
    data_read: bool
    spec: NetSpec
    seed: int

    def draw(self, seed: int) -> torch.nn.Module:
        """A fresh copy of the model (on the CPU) whose initial weights are drawn with ``seed``."""
        from ticketlab.models import create_model

        return create_model(self.spec.model, self.data.spec, seed=seed, **self.spec.model_options)


def load_data(dataset: str, *, seed: int, data_root: str | Path | None = None, download: bool = False,
              read: bool = True) -> tuple[Any, bool]:
    """Data set ``dataset`` split by ``seed``, and whether its samples were read: with ``read=False``
    only its shape (empty splits, no files needed) where the shape is known without the files.

    Example:
        >>> data, read = load_data("cifar10", seed=0, read=False)
        >>> data.spec.input_shape, read
        ((3, 32, 32), False)
    """
    from ticketlab.data import get_dataset_info, load_dataset, shape_only

    if read or get_dataset_info(dataset).spec is None:
        return load_dataset(dataset, root=data_root, download=download, seed=seed), True
    return shape_only(dataset), False


def build_network(spec: MineSpec | NetSpec, *, seed: int | None = None, prune: PruneSpec | None = None,
                  device: str | torch.device = "auto", data_root: str | Path | None = None, download: bool = False,
                  read_data: bool = True, data: Any = None) -> BuiltNetwork:
    """The network of ``spec``: data, model with its initial weights on ``device``, prunable parameters.

    Args:
        spec: a :class:`~ticketlab.spec.MineSpec` (its ``net``, ``seed`` and ``prune``), or a
            :class:`~ticketlab.spec.NetSpec` with ``seed`` (and ``prune``: default every prunable layer).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        data_root, download: where data sets that need files live; download only when asked.
        read_data: read the samples; ``False`` reads only the shape where it is known without the
            files (a data-free method), :func:`load_data`.
        data: data already loaded (the collapse study's stand-in images); then nothing is read.

    Raises :class:`ConfigError` when no prunable parameter is left (both ends skipped on a two-layer model).
    """
    from ticketlab.data import corrupt
    from ticketlab.device import resolve_device
    from ticketlab.models import create_model, prunable_parameters

    if isinstance(spec, MineSpec):
        net_spec, seed, prune = spec.net, spec.seed, spec.prune
    else:
        net_spec = spec
        if seed is None:
            raise ConfigError("building a network from its NetSpec needs the seed of its weights and data split")
    prune = prune if prune is not None else PruneSpec()
    dev = resolve_device(device)
    read = True
    if data is None:
        data, read = load_data(net_spec.dataset, seed=seed, data_root=data_root, download=download, read=read_data)
    clean = data
    if net_spec.data_corruption is not None:
        data = corrupt(clean, net_spec.data_corruption, seed=seed)
    net = create_model(net_spec.model, data.spec, seed=seed, **net_spec.model_options).to(dev)
    params = prunable_parameters(net, first_layer=not prune.skip_first_layer, last_layer=not prune.skip_last_layer)
    if not params:
        raise ConfigError(f"model '{net_spec.model}' has no prunable parameters left to prune")
    every = list(prunable_parameters(net))  # the output layer is the model's last, pruned or not
    return BuiltNetwork(net=net, data=data, clean=clean, params=params, output_layer=every[-1] if every else None,
                        device=dev, data_read=read, spec=net_spec, seed=seed)
