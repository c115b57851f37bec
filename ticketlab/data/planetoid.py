"""``cora``, ``citeseer``: the Planetoid citation graphs (Yang, Cohen & Salakhutdinov, ICML
2016) with their public split (Cora 140 / 500 / 1000, CiteSeer 120 / 500 / 1000), from
``<root>/Cora/raw/ind.cora.*`` (or ``CiteSeer/raw/ind.citeseer.*``). The split is fixed, so
``seed`` has no effect.

The raw files are Python pickles, and a folder from someone else is untrusted: unpickling can
run code. So the raw files are copied into a private temporary folder, each pickle is first
loaded by a restricted unpickler that admits only what those files hold (numpy arrays and
dtypes, ``scipy.sparse`` CSR matrices, a ``defaultdict`` of lists; anything else is one clean
error), and only then does ``torch_geometric.datasets.Planetoid`` process the checked copies
there (0.2 s for Cora); the folder is deleted afterwards. Nothing is ever read from, or written
to, ``<root>/<Name>/processed`` (PyG's processed files are loaded with ``weights_only=False``).
Only when raw files are missing and ``download=True`` does PyG fetch them into ``<root>``.

Example:
    >>> from ticketlab.data import load_dataset
    >>> g = load_dataset("cora", root="../shared/data/planetoid").graph  # doctest: +SKIP
    >>> g.num_nodes, int(g.train_mask.sum())  # doctest: +SKIP
    (2708, 140)
"""

from __future__ import annotations

import contextlib
import io
import pickle
import shutil
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ticketlab.data.base import DataSpec, GraphData
from ticketlab.data.paths import download_failed_error, missing_files_error
from ticketlab.errors import DataNotFoundError
from ticketlab.data.registry import register_dataset

RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _planetoid(root: Path, pyg_name: str) -> object:
    """``Planetoid(root, pyg_name)[0]`` with PyG's "Processing..." lines kept off stderr."""
    from torch_geometric.datasets import Planetoid

    with contextlib.redirect_stderr(io.StringIO()):
        return Planetoid(str(root), pyg_name)[0]


class _PlanetoidUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Admits only the globals the Planetoid raw files reference (checked on the real files).

    The pure-Python unpickler, reading from the file's bytes in memory: a declared length
    (``BINBYTES8``, ``FRAME``, ...) is then read, never allocated first, so a length beyond the
    file ends as "truncated" instead of a multi-gigabyte allocation (the C unpickler allocates it).
    """

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"), ("scipy.sparse", "csr_matrix"),
        ("collections", "defaultdict"), ("__builtin__", "list"), ("builtins", "list"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        with warnings.catch_warnings():  # scipy.sparse.csr is a deprecated alias module
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def check_raw_file(path: Path, shown: Path | None = None) -> Any:
    """Load one raw pickle with :class:`_PlanetoidUnpickler` and return what it holds; a
    one-sentence error naming ``shown`` (default ``path``) if it holds anything else. The
    ``test.index`` file is plain text: its list of integers is returned."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".test.index"):
            return [int(line) for line in data.decode("ascii").split()]
        return _PlanetoidUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, MemoryError, OverflowError, RecursionError, struct.error) as err:
        why = _first_line(err)
        raise DataNotFoundError(f"{shown or path} is not a valid Planetoid raw file ({why}); refusing to unpickle it: "
                                "replace it or re-download with --download") from None


def _first_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text[:200] or type(err).__name__


def _check_test_index(index: list[int], objects: dict[str, Any], pyg_name: str, shown: Path) -> None:
    """The test indices must name the test rows (``tx``) among the nodes: one per row of ``tx``,
    each at or after the training rows (``allx``) and within the graph's nodes, as PyG indexes
    (and, for CiteSeer, allocates a ``max - min + 1`` row block) with them."""
    try:
        n_allx, n_tx = int(objects["allx"].shape[0]), int(objects["tx"].shape[0])
        n_nodes = max(n_allx + n_tx, len(objects["graph"]))
    except (AttributeError, TypeError, IndexError, KeyError) as err:
        raise DataNotFoundError(f"the Planetoid raw files of {pyg_name} do not hold feature matrices and a graph "
                                f"({_first_line(err)}): replace them or re-download with --download") from None
    if len(index) != n_tx or (index and not (n_allx <= min(index) and max(index) < n_nodes)):
        raise DataNotFoundError(f"{shown} is not a valid Planetoid raw file: it must list {n_tx} test nodes "
                                f"from {n_allx} to {n_nodes - 1}; replace it or re-download with --download")


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
    else:  # private copies, checked, then processed there (see the module docstring)
        with tempfile.TemporaryDirectory(prefix="ticketlab-planetoid-") as tmp:
            (Path(tmp) / pyg_name / "raw").mkdir(parents=True)
            copies = []
            for p in raw_files:
                copies.append(Path(tmp) / pyg_name / "raw" / p.name)
                shutil.copyfile(p, copies[-1])
            objects = {}
            for suffix, copy_, original in zip(RAW_SUFFIXES, copies, raw_files):
                objects[suffix] = check_raw_file(copy_, shown=original)  # the copy is what PyG reads
            _check_test_index(objects.pop("test.index"), objects, pyg_name, raw_files[-1])
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
