"""A graph convolutional network for node classification (Kipf & Welling 2017 layers).

Layout: dropout -> GCNConv -> leaky ReLU -> dropout -> GCNConv -> leaky ReLU -> dropout ->
linear (logits). Defaults: ``hidden=64`` channels for both GCN layers, ``dropout=0.5`` (Kipf &
Welling's rate; their 2-layer GCN used 16 hidden units, we use 64 because a third, linear layer
reads the second GCN layer's output). Called as ``model(x, edge_index)``.

The prunable weight of a ``GCNConv`` is its internal ``lin.weight`` (shape ``(out, in)``).
torch_geometric is imported when a GCN is built, not when ``ticketlab.models`` is imported.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError
from ticketlab.models.registry import register_model


class GCN(nn.Module):
    """Two GCNConv layers (``conv1``, ``conv2``) with leaky ReLU, then a linear layer ``fc``."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        with warnings.catch_warnings():  # lazy: importing PyG costs seconds; hide its
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation noise
            from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(in_features, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.fc = nn.Linear(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        drop = nn.functional.dropout
        x = drop(x, self.dropout, self.training)
        x = nn.functional.leaky_relu(self.conv1(x, edge_index))
        x = drop(x, self.dropout, self.training)
        x = nn.functional.leaky_relu(self.conv2(x, edge_index))
        x = drop(x, self.dropout, self.training)
        return self.fc(x)


@register_model("gcn", kind="graph")
def gcn(spec: DataSpec, hidden: int = 64, dropout: float = 0.5) -> nn.Module:
    """GCN: 2 GCNConv layers with leaky ReLU + 1 linear layer (hidden 64, dropout 0.5)."""
    if hidden < 1 or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"gcn needs hidden >= 1 and 0 <= dropout < 1, got {hidden} and {dropout}")
    return GCN(spec.input_shape[0], int(hidden), spec.num_classes, float(dropout))
