"""Data set types shared by the data registry, models, training and miners.

Two kinds exist:

* ``"tensor"``: samples ``x`` of shape ``(n, *input_shape)`` (float32) and integer labels ``y``,
  held in memory as three splits (train / val / test).
* ``"graph"``: one graph (a ``torch_geometric.data.Data`` with ``x``, ``edge_index``, ``y`` and
  boolean ``train_mask``, ``val_mask``, ``test_mask``), trained full-batch.

Models of kind ``"graph"`` are called as ``model(x, edge_index)``; all others as ``model(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import torch


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about a data set to be built for it.

    Attributes:
        name: registry name (``"digits"``, ``"cora"``, ...).
        kind: ``"tensor"`` or ``"graph"``.
        input_shape: shape of one sample: ``(C, H, W)`` for images, ``(L,)`` for vectors or
            sequences, ``(num_features,)`` for a graph's node features.
        num_classes: number of classes.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass
class TensorData:
    """An in-memory classification data set with fixed train / val / test splits."""

    spec: DataSpec
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


@dataclass
class GraphData:
    """A node-classification graph with boolean split masks on its nodes."""

    spec: DataSpec
    graph: Any  # torch_geometric.data.Data

Dataset = Union[TensorData, GraphData]


def split_samples(data: Dataset) -> dict[str, int]:
    """Samples (tensor data) or labelled nodes (graph data) in each split: ``{"train", "val", "test"}``.

    Recorded in a ticket's provenance as ``data_spec.split_samples``: the size of the split an
    accuracy was measured on (:func:`ticketlab.health`'s chance band needs it).

    Example:
        >>> spec = DataSpec("toy", "tensor", (2,), 2)
        >>> x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)
        >>> split_samples(TensorData(spec, (x, y), (x[:1], y[:1]), (x[:2], y[:2])))
        {'train': 3, 'val': 1, 'test': 2}
    """
    if isinstance(data, GraphData):
        return {s: int(getattr(data.graph, f"{s}_mask").sum()) for s in ("train", "val", "test")}
    return {s: int(len(getattr(data, s)[1])) for s in ("train", "val", "test")}
