"""``mnist1d``: MNIST-1D (Greydanus, "Scaling down deep learning", 2020), generated locally.

The arrays come from ``mnist1d.data.make_dataset(get_dataset_args())`` with the package's
default arguments (5000 sequences of length 40, seed 42, split 4000 train / 1000 test, already
centred and scaled to unit standard deviation by the package). Nothing is ever downloaded:
``mnist1d.data.get_dataset`` (which fetches a pickle) is not used.

Generating takes about 2 s (plus 1.5 s to import the package), so the four arrays are kept
in memory for the process and in ``<cache>/mnist1d/mnist1d-<version>-<key>.npz`` (see
:mod:`ticketlab.data.paths`; written atomically, read with ``allow_pickle=False``, regenerated
when missing, unreadable or of the wrong shape, skipped when the cache is not writable). The
package reseeds the global ``random`` / ``numpy.random`` state; that state is restored after
generation.

Splits: train = 90 % of the 4000 (3600), val = the other 10 % (400), both class-stratified from
``seed``; test = the package's 1000 test sequences. Samples have shape ``(40,)``.

Example:
    >>> from ticketlab.data import load_dataset
    >>> d = load_dataset("mnist1d")
    >>> tuple(d.train[0].shape), tuple(d.val[0].shape), tuple(d.test[0].shape)
    ((3600, 40), (400, 40), (1000, 40))
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from ticketlab.data.base import DataSpec, TensorData
from ticketlab.data.paths import cache_dir
from ticketlab.data.registry import register_dataset
from ticketlab.data.splits import train_val_split

VAL_FRACTION = 0.1
_SHAPES = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
_DTYPES = {"x": np.float32, "y": np.int64, "x_test": np.float32, "y_test": np.int64}
_CACHE_FORMAT = "1"  # bump when the cached arrays change meaning
_MEMO: dict[str, dict[str, np.ndarray]] = {}


def _generate() -> dict[str, np.ndarray]:
    """Run the package's generator with its default arguments, leaving global RNGs untouched."""
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())  # calls set_seed(42): reseeds random / np.random
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.ascontiguousarray(raw[k], dtype=_DTYPES[k]) for k in _SHAPES}


def _cache_path() -> Path:
    try:
        version = importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    key = hashlib.sha256(f"{_CACHE_FORMAT}|default-args|{version}".encode()).hexdigest()[:12]
    return cache_dir() / "mnist1d" / f"mnist1d-{version}-{key}.npz"


def _valid(arrays: dict[str, np.ndarray]) -> bool:
    return all(
        k in arrays and arrays[k].shape == shape and arrays[k].dtype == _DTYPES[k]
        for k, shape in _SHAPES.items()
    )


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in _SHAPES if k in f.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return arrays if _valid(arrays) else None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic write (temporary file in the same folder, then rename); failures are ignored."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp_name = f.name
            np.savez(f, **arrays)
        os.replace(tmp_name, path)
    except OSError:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def mnist1d_arrays() -> dict[str, np.ndarray]:
    """The package's arrays ``x, y, x_test, y_test`` (memo, then disk cache, then generation).

    The returned arrays are shared: do not modify them in place.

    Example:
        >>> mnist1d_arrays()["x"].shape
        (4000, 40)
    """
    path = _cache_path()
    key = str(path)
    if key not in _MEMO:
        arrays = _read_cache(path) if path.is_file() else None
        if arrays is None:
            arrays = _generate()
            _write_cache(path, arrays)
        _MEMO[key] = arrays
    return _MEMO[key]


@register_dataset("mnist1d", kind="tensor")
def load_mnist1d(root: Path | None, download: bool, seed: int) -> TensorData:
    """MNIST-1D: 5000 generated sequences of length 40, 10 classes, built in."""
    a = mnist1d_arrays()
    train, val = train_val_split(a["y"], VAL_FRACTION, seed)

    def part(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())

    spec = DataSpec(name="mnist1d", kind="tensor", input_shape=(40,), num_classes=10)
    return TensorData(
        spec=spec,
        train=part(a["x"][train], a["y"][train]),
        val=part(a["x"][val], a["y"][val]),
        test=part(a["x_test"], a["y_test"]),
    )
