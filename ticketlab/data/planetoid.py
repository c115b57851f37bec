"""``cora``, ``citeseer``: the Planetoid citation graphs (Yang, Cohen & Salakhutdinov, ICML
2016) with their public split (Cora 140 / 500 / 1000, CiteSeer 120 / 500 / 1000), read by
``torch_geometric.datasets.Planetoid`` from ``<root>/Cora/raw/ind.cora.*`` (or
``CiteSeer/raw/ind.citeseer.*``). The split is fixed, so ``seed`` has no effect.

PyG writes a ``processed/`` folder next to ``raw/``. It is written in place when ``<root>/Cora``
is writable (or already holds ``processed/data.pt``); otherwise (a read-only root, including a
folder whose permission bits say read-only while running as root) the raw files are copied to a
temporary folder, processed there and the folder is deleted: 0.2 s for Cora, nothing is left
behind. Only when raw files are missing and ``download=True`` does PyG fetch them into
``<root>`` (which must then be writable) and process them there.

Example:
    >>> from ticketlab.data import load_dataset
    >>> g = load_dataset("cora", root="../shared/data/planetoid").graph  # doctest: +SKIP
    >>> g.num_nodes, int(g.train_mask.sum())  # doctest: +SKIP
    (2708, 140)
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

from ticketlab.data.base import DataSpec, GraphData
from ticketlab.data.paths import download_failed_error, is_writable_dir, missing_files_error
from ticketlab.data.registry import register_dataset

RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _planetoid(root: Path, pyg_name: str) -> object:
    """``Planetoid(root, pyg_name)[0]`` with PyG's "Processing..." lines kept off stderr."""
    from torch_geometric.datasets import Planetoid

    with contextlib.redirect_stderr(io.StringIO()):
        return Planetoid(str(root), pyg_name)[0]


def _can_process_in_place(folder: Path) -> bool:
    """PyG may use ``folder``: it holds ``processed/data.pt`` already (then PyG only reads) or
    both ``folder`` and an existing ``processed/`` are writable."""
    processed = folder / "processed"
    if (processed / "data.pt").is_file():
        return True
    return is_writable_dir(folder) and (not processed.exists() or is_writable_dir(processed))


def _load(key: str, pyg_name: str, root: Path, download: bool) -> GraphData:
    folder = root / pyg_name
    raw_files = [folder / "raw" / f"ind.{pyg_name.lower()}.{s}" for s in RAW_SUFFIXES]
    layout = f"{pyg_name}/raw/ind.{pyg_name.lower()}.*"
    missing = [p for p in raw_files if not p.is_file()]
    if missing and download:
        try:
            graph = _planetoid(root, pyg_name)  # PyG downloads into <root>/<Name>/raw
        except (OSError, RuntimeError) as err:
            raise download_failed_error(pyg_name, root, err, layout) from err
    elif missing:
        raise missing_files_error(pyg_name, missing[0], layout)
    elif _can_process_in_place(folder):
        graph = _planetoid(root, pyg_name)
    else:
        with tempfile.TemporaryDirectory(prefix="ticketlab-planetoid-") as tmp:
            (Path(tmp) / pyg_name / "raw").mkdir(parents=True)
            for p in raw_files:
                shutil.copyfile(p, Path(tmp) / pyg_name / "raw" / p.name)
            graph = _planetoid(Path(tmp), pyg_name)
    graph.train_mask, graph.val_mask, graph.test_mask = (
        graph.train_mask.bool(), graph.val_mask.bool(), graph.test_mask.bool()
    )
    spec = DataSpec(
        name=key,
        kind="graph",
        input_shape=(int(graph.x.shape[1]),),
        num_classes=int(graph.y.max()) + 1,
    )
    return GraphData(spec=spec, graph=graph)


@register_dataset("cora", kind="graph", needs_root=True, root_hint="Cora/raw/ind.cora.*")
def load_cora(root: Path | None, download: bool, seed: int) -> GraphData:
    """Cora citation graph: 2708 papers, 1433 word features, 7 classes, public split."""
    assert root is not None  # needs_root: the registry passes the resolved root
    return _load("cora", "Cora", root, download)


@register_dataset(
    "citeseer", kind="graph", needs_root=True, root_hint="CiteSeer/raw/ind.citeseer.*"
)
def load_citeseer(root: Path | None, download: bool, seed: int) -> GraphData:
    """CiteSeer citation graph: 3327 papers, 3703 word features, 6 classes, public split."""
    assert root is not None
    return _load("citeseer", "CiteSeer", root, download)
