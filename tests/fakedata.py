"""Tiny data files in the REAL on-disk formats, for tests that must run offline.

Each writer puts random images (uint8) with balanced labels under ``root`` exactly where the
loaders in :mod:`ticketlab.data` (and torchvision) look for them, and returns the arrays it
wrote so tests can check values exactly:
``{"x_train": uint8 (n, C, H, W), "y_train": int64 (n,), "x_test": ..., "y_test": ...}``.

Example (from a test; ``tests/`` is on ``sys.path`` under pytest)::

    from fakedata import write_fake_cifar10
    arrays = write_fake_cifar10(tmp_path, n_train=20, n_test=10, seed=0)
    data = load_dataset("cifar10", root=tmp_path)
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

FakeArrays = dict[str, np.ndarray]


def _fake_split(rng: np.random.Generator, n: int, shape: tuple[int, ...], num_classes: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images and labels ``0, 1, ..., num_classes-1, 0, ...`` shuffled."""
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    return x, y


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write a uint8 array as an idx file (magic ``0x0800 + ndim``, big-endian sizes).

    Example:
        >>> write_idx(tmp / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))  # doctest: +SKIP
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(header + array.tobytes())
    else:
        path.write_bytes(header + array.tobytes())
    return path


def _write_mnist_like(root: Path, folder: str, n_train: int, n_test: int, seed: int,
                      compress: bool) -> FakeArrays:
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    out: FakeArrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = _fake_split(rng, n, (28, 28), 10)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x, compress=compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8), compress=compress)
        out[f"x_{split}"], out[f"y_{split}"] = x[:, None], y
    return out


def write_fake_mnist(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, *,
                     compress: bool = False) -> FakeArrays:
    """Write ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (``.gz`` when
    ``compress``) holding random 28x28 images with labels 0..9.

    Example:
        >>> arrays = write_fake_mnist(tmp_path, n_train=20, n_test=10)  # doctest: +SKIP
    """
    return _write_mnist_like(root, "MNIST", n_train, n_test, seed, compress)


def write_fake_fashion_mnist(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, *,
                             compress: bool = False) -> FakeArrays:
    """Like :func:`write_fake_mnist`, under ``root/FashionMNIST/raw/``."""
    return _write_mnist_like(root, "FashionMNIST", n_train, n_test, seed, compress)


class Py2Str(bytes):
    """Bytes pickled as a Python-2 ``str`` (opcodes SHORT_BINSTRING / BINSTRING).

    The official CIFAR pickles were written by Python 2, so their keys are Python-2 strings:
    ``pickle.load(f, encoding="latin1")`` (torchvision) reads them as ``"data"``,
    ``encoding="bytes"`` (the CIFAR web page's recipe) as ``b"data"``. Plain Python-3 ``bytes``
    or ``str`` keys would satisfy only one of the two.
    """


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table we extend
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj: Py2Str) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + bytes(obj))
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str


def _pickle(path: Path, obj: dict) -> None:
    """Write ``obj`` as the official CIFAR files are written: a protocol-2 pickle with
    Python-2 string keys (:class:`Py2Str`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _s(text: str) -> Py2Str:
    return Py2Str(text.encode("latin1"))


def write_fake_cifar10(
    root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0
) -> FakeArrays:
    """Write ``root/cifar-10-batches-py/`` with ``data_batch_1..5`` (``n_train`` images spread
    over the five batches), ``test_batch`` and ``batches.meta``: protocol-2 pickles of dicts
    with Python-2 string keys (:class:`Py2Str`) ``data`` (uint8 ``(n, 3072)``, R/G/B planes),
    ``labels`` (list of int), ``batch_label`` and ``filenames``, like the official files.

    Example:
        >>> arrays = write_fake_cifar10(tmp_path, n_train=20, n_test=10, seed=0)  # doctest: +SKIP
        >>> arrays["x_train"].shape  # doctest: +SKIP
        (20, 3, 32, 32)
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    x_train, y_train = _fake_split(rng, n_train, (3, 32, 32), 10)
    x_test, y_test = _fake_split(rng, n_test, (3, 32, 32), 10)
    chunks = np.array_split(np.arange(n_train), 5)
    for i, idx in enumerate(chunks, start=1):
        _pickle(folder / f"data_batch_{i}", {
            _s("batch_label"): _s(f"training batch {i} of 5"),
            _s("labels"): y_train[idx].tolist(),
            _s("data"): x_train[idx].reshape(len(idx), -1),
            _s("filenames"): [_s(f"train_{j}.png") for j in idx],
        })
    _pickle(folder / "test_batch", {
        _s("batch_label"): _s("testing batch 1 of 1"),
        _s("labels"): y_test.tolist(),
        _s("data"): x_test.reshape(n_test, -1),
        _s("filenames"): [_s(f"test_{j}.png") for j in range(n_test)],
    })
    names = [_s(c) for c in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                             "horse", "ship", "truck")]
    _pickle(folder / "batches.meta", {_s("num_cases_per_batch"): len(chunks[0]),
                                      _s("label_names"): names, _s("num_vis"): 3072})
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_fake_cifar100(
    root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0
) -> FakeArrays:
    """Write ``root/cifar-100-python/{train,test,meta}`` like :func:`write_fake_cifar10`, with
    keys ``data``, ``fine_labels`` (0..99), ``coarse_labels`` (0..19), ``filenames``.

    Example:
        >>> arrays = write_fake_cifar100(tmp_path, n_train=200, n_test=100)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    out: FakeArrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = _fake_split(rng, n, (3, 32, 32), 100)
        _pickle(folder / split, {
            _s("filenames"): [_s(f"{split}_{j}.png") for j in range(n)],
            _s("batch_label"): _s(f"{split}ing batch 1 of 1"),
            _s("fine_labels"): y.tolist(),
            _s("coarse_labels"): (y // 5).tolist(),
            _s("data"): x.reshape(n, -1),
        })
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    _pickle(folder / "meta", {
        _s("fine_label_names"): [_s(f"class_{c}") for c in range(100)],
        _s("coarse_label_names"): [_s(f"superclass_{c}") for c in range(20)],
    })
    return out


def write_fake_fashion_mnist_system(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0
                                    ) -> FakeArrays:
    """Fashion-MNIST as Debian's ``dataset-fashion-mnist`` installs it: the four gzip idx files
    flat in ``folder`` (``/usr/share/datasets/fashion-mnist/`` on a real system).

    Example:
        >>> arrays = write_fake_fashion_mnist_system(tmp_path / "fashion-mnist")  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    out: FakeArrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = _fake_split(rng, n, (28, 28), 10)
        write_idx(Path(folder) / f"{prefix}-images-idx3-ubyte", x, compress=True)
        write_idx(Path(folder) / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8), compress=True)
        out[f"x_{split}"], out[f"y_{split}"] = x[:, None], y
    return out
