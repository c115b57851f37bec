"""``karate``: Zachary's karate club (34 members, 78 friendships, 4 communities), as shipped
inside PyTorch Geometric (``torch_geometric.datasets.KarateClub``; no file, no download).

Node features are PyG's one-hot identity (34 features). Split masks: train = PyG's 4 labelled
nodes (one per community: nodes 0, 4, 8, 24); the other 30 nodes are split 15 / 15 into val and
test, class-stratified from ``seed`` (:func:`~ticketlab.data.splits.stratified_split`).

Example:
    >>> from ticketlab.data import load_dataset
    >>> g = load_dataset("karate").graph
    >>> int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())
    (4, 15, 15)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ticketlab.data.base import DataSpec, GraphData
from ticketlab.data.registry import register_dataset
from ticketlab.data.splits import stratified_split


@register_dataset("karate", kind="graph")
def load_karate(root: Path | None, download: bool, seed: int) -> GraphData:
    """Zachary's karate club: 34 nodes, 4 classes, built in (PyG)."""
    from torch_geometric.data import Data
    from torch_geometric.datasets import KarateClub

    club = KarateClub()[0]
    n = club.num_nodes
    train_mask = club.train_mask.clone().bool()
    rest = np.flatnonzero(~train_mask.numpy())
    n_val = len(rest) // 2
    val, test = stratified_split(club.y.numpy()[rest], [n_val, len(rest) - n_val], seed)
    val_mask = torch.zeros(n, dtype=torch.bool)
    test_mask = torch.zeros(n, dtype=torch.bool)
    val_mask[torch.from_numpy(rest[val])] = True
    test_mask[torch.from_numpy(rest[test])] = True
    graph = Data(
        x=club.x.float(),
        edge_index=club.edge_index.long(),
        y=club.y.long(),
        train_mask=train_mask,
        val_mask=val_mask,
        test_mask=test_mask,
    )
    spec = DataSpec(name="karate", kind="graph", input_shape=(int(club.x.shape[1]),), num_classes=4)
    return GraphData(spec=spec, graph=graph)
