"""``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``: image data sets read from a data
root in torchvision's on-disk layout, downloaded (by torchvision) only when ``download=True``.

Layout under the data root (what ``torchvision.datasets.X(root, download=True)`` writes):

* ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or the same names ``.gz``);
  Fashion-MNIST the same under ``FashionMNIST/raw/``.
* ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch`` (pickled dicts with ``data``,
  ``labels``).
* ``cifar-100-python/train``, ``test`` (pickled dicts with ``data``, ``fine_labels``; the 100
  fine classes are used).

Fashion-MNIST also has a system copy: Debian's ``dataset-fashion-mnist`` installs the four
``.gz`` files flat into ``/usr/share/datasets/fashion-mnist/``
(:data:`ticketlab.data.paths.SYSTEM_DATA_DIR` / :data:`FASHION_MNIST_SYSTEM_NAME`); with no data
root passed it is read, when complete, before any other default.

The files are parsed here, not by torchvision's dataset classes: those insist on extracted idx
files and on the official MD5 checksums, so they reject a read-only folder holding only the
``.gz`` files, and any test file. Pickles are read with an unpickler that only admits numpy
arrays, so a foreign file cannot run code.

Preprocessing: ``x = (pixel / 255 - mean_c) / std_c`` per channel ``c`` with the constants
below (the usual published statistics of each training set), stored as float32 tensors in memory
(CIFAR-10: 60000 x 3 x 32 x 32 x 4 bytes = 737 MB). Splits: val = a class-stratified 10 % of the
official training set drawn from ``seed`` (6000 for MNIST, 5000 for CIFAR), train = the other
90 %, test = the official test set. ``download=True`` asks torchvision to fetch the files only
when some are missing.

Example:
    >>> from ticketlab.data import load_dataset
    >>> d = load_dataset("cifar10", root="~/data")  # doctest: +SKIP
    >>> tuple(d.train[0].shape), tuple(d.val[0].shape), tuple(d.test[0].shape)  # doctest: +SKIP
    ((45000, 3, 32, 32), (5000, 3, 32, 32), (10000, 3, 32, 32))
"""

from __future__ import annotations

import codecs
import gzip
import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ticketlab import limits
from ticketlab.bounded import DEFLATE_MAX_RATIO, Refused, check_regular
from ticketlab.data.base import DataSpec, TensorData
from ticketlab.data.paths import download_failed_error, missing_files_error, system_data_dir
from ticketlab.data.registry import register_dataset
from ticketlab.data.splits import train_val_split
from ticketlab.errors import DataNotFoundError

VAL_FRACTION = 0.1

# Per-channel mean and std of the training images, pixel values scaled to [0, 1].
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

# Debian's dataset-fashion-mnist installs the four gzip idx files into
# /usr/share/datasets/fashion-mnist/ (paths.SYSTEM_DATA_DIR / this name).
FASHION_MNIST_SYSTEM_NAME = "fashion-mnist"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
MNIST_FILES = {  # the same names for Fashion-MNIST
    "train": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
    "test": ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES = {"train": ["train"], "test": ["test"]}


# ---------------------------------------------------------------------------- file readers


def _corrupt(path: Path, what: str, problem: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{path} is not a valid {what} file ({problem}); replace it or re-download with --download"
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an idx file of unsigned bytes (LeCun's MNIST format), plain or gzip-compressed.

    Header: 4-byte big-endian magic (``0x0803`` images, ``0x0801`` labels), then one 4-byte
    big-endian size per dimension, then the bytes. The declared size is checked before the data
    is read: a plain file must hold exactly that many bytes; a ``.gz`` file may declare at most
    deflate's largest ratio (:data:`ticketlab.bounded.DEFLATE_MAX_RATIO`) times its compressed
    size and at most the ``inflated_bytes`` limit (``TICKETLAB_LIMIT_INFLATED_BYTES``), and is
    then inflated to that size plus one byte, never further.

    Example:
        >>> labels = Path("MNIST/raw/t10k-labels-idx1-ubyte")
        >>> read_idx(labels, IDX_LABELS_MAGIC).shape  # doctest: +SKIP
        (10000,)
    """
    compressed = path.suffix == ".gz"
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    try:
        size = check_regular(path)
        with (gzip.open if compressed else open)(path, "rb") as f:
            head = f.read(header)
            if len(head) < header or int.from_bytes(head[:4], "big") != magic:
                got = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
                raise _corrupt(path, "idx", f"magic number {got}, expected {magic}")
            dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
            declared = math.prod(dims)  # exact: 4-byte sizes cannot overflow a Python int
            if compressed:
                _check_inflated(path, declared, size)
            elif size - header != declared:
                raise _corrupt(path, "idx", f"{size - header} data bytes for shape {dims}")
            buf = f.read(declared + 1)
    except Refused as err:
        raise _corrupt(path, "idx", str(err)) from err
    except (OSError, EOFError, zlib.error) as err:
        raise _corrupt(path, "idx", str(err)) from err
    if len(buf) != declared:
        got = f"more than {declared}" if len(buf) > declared else str(len(buf))
        raise _corrupt(path, "idx", f"{got} data bytes for shape {dims}")
    return np.frombuffer(buf, dtype=np.uint8).reshape(dims)


def _check_inflated(path: Path, declared: int, compressed_size: int) -> None:
    """Refuse a gzip idx file whose declared data cannot fit in its compressed bytes, or that
    exceeds the ``inflated_bytes`` limit, before anything is inflated."""
    most = compressed_size * DEFLATE_MAX_RATIO + 1024
    if declared > most:
        raise _corrupt(path, "idx", f"it declares {declared:,} data bytes, more than its "
                       f"{compressed_size:,} compressed bytes can hold")
    limit = limits.LIMITS["inflated_bytes"]
    if declared > limit.value():
        raise _corrupt(path, "idx", f"it declares {declared:,} data bytes, {limit.hint()}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch holds: dicts, lists, strings, ints and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # protocol-2 bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 3, 32, 32)`` uint8 and labels ``(n,)`` int64 of one CIFAR python batch.

    Keys may be ``bytes`` (Python-3 pickles, ``b"data"``) or ``str`` (the official Python-2
    pickles read with ``encoding="latin1"``).

    Example:
        >>> path = Path("cifar-10-batches-py/test_batch")
        >>> x, y = read_cifar_batch(path, "labels")  # doctest: +SKIP
        >>> x.shape, y.shape  # doctest: +SKIP
        ((10000, 3, 32, 32), (10000,))
    """
    try:
        with open(path, "rb") as f:
            entry = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise _corrupt(path, "CIFAR batch", str(err)) from err
    if not isinstance(entry, dict):
        raise _corrupt(path, "CIFAR batch", "not a dict")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or label_key not in entry:
        raise _corrupt(path, "CIFAR batch", f"keys 'data' and '{label_key}' expected")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise _corrupt(path, "CIFAR batch", f"data {data.shape} with {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R(1024) G(1024) B(1024) planes


# ---------------------------------------------------------------------------- loaders


Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images, int64 labels)


@dataclass(frozen=True)
class _ImageSet:
    """Where one torchvision-layout data set lives and how it is normalised."""

    name: str  # registry name
    title: str  # for messages
    torchvision_class: str  # downloads it
    folder: str  # under the data root
    files: dict[str, list[str]]  # split -> file names (idx: images then labels)
    label_key: str  # CIFAR pickles only
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    system_name: str = ""  # its folder under paths.system_data_dir(), when a package installs it
    package: str = ""  # the Debian package that installs it there

    @property
    def is_idx(self) -> bool:
        return not self.label_key

    @property
    def layout(self) -> str:
        if self.is_idx:
            return f"{self.folder}/*-ubyte[.gz]"
        names = ",".join(n for names in self.files.values() for n in names)
        return f"{self.folder}/{{{names}}}"

    def system_dir(self) -> Path | None:
        """The folder a distribution package installs the files into (flat, no ``raw/``)."""
        return system_data_dir() / self.system_name if self.system_name else None

    def find_system(self) -> Path | None:
        """:meth:`system_dir` when all of its files are there, else None."""
        folder = self.system_dir()
        return folder if folder is not None and self.first_missing(folder) is None else None

    def files_dir(self, root: Path) -> Path:
        """The folder holding the files: ``root/<folder>``, or the system folder itself."""
        return root if root == self.system_dir() else root / self.folder

    def locate(self, root: Path, name: str) -> Path | None:
        """The file ``name`` under ``root`` (idx files may also be ``.gz``), None if absent."""
        plain = self.files_dir(root) / name
        for candidate in (plain, plain.with_name(name + ".gz")) if self.is_idx else (plain,):
            if candidate.is_file():
                return candidate
        return None

    def first_missing(self, root: Path) -> Path | None:
        for names in self.files.values():
            for name in names:
                if self.locate(root, name) is None:
                    return self.files_dir(root) / name
        return None

    def read(self, root: Path) -> Arrays:
        out: Arrays = {}
        for split, names in self.files.items():
            paths = [self.locate(root, n) for n in names]
            assert all(p is not None for p in paths)  # checked by first_missing
            if self.is_idx:
                images = read_idx(paths[0], IDX_IMAGES_MAGIC)
                labels = read_idx(paths[1], IDX_LABELS_MAGIC).astype(np.int64)
                if len(images) != len(labels):
                    problem = f"{len(labels)} labels for {len(images)} images"
                    raise _corrupt(paths[1], "idx", problem)
                out[split] = (images[:, None, :, :], labels)
            else:
                parts = [read_cifar_batch(p, self.label_key) for p in paths]
                x = np.concatenate([images for images, _ in parts])
                out[split] = (x, np.concatenate([labels for _, labels in parts]))
        return out

MNIST = _ImageSet(
    "mnist", "MNIST", "MNIST", "MNIST/raw", MNIST_FILES, "", 10, MNIST_MEAN, MNIST_STD
)
FASHION_MNIST = _ImageSet(
    "fashion_mnist", "Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", MNIST_FILES, "", 10,
    FASHION_MNIST_MEAN, FASHION_MNIST_STD, FASHION_MNIST_SYSTEM_NAME, FASHION_MNIST_PACKAGE,
)
CIFAR10 = _ImageSet(
    "cifar10", "CIFAR-10", "CIFAR10", CIFAR10_FOLDER, CIFAR10_FILES, "labels", 10,
    CIFAR10_MEAN, CIFAR10_STD,
)
CIFAR100 = _ImageSet(
    "cifar100", "CIFAR-100", "CIFAR100", CIFAR100_FOLDER, CIFAR100_FILES, "fine_labels", 100,
    CIFAR100_MEAN, CIFAR100_STD,
)


def _download(image_set: _ImageSet, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, image_set.torchvision_class)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except (OSError, RuntimeError) as err:
        raise download_failed_error(image_set.title, root, err, image_set.layout) from err


def _to_tensor_data(image_set: _ImageSet, arrays: Arrays, seed: int) -> TensorData:
    """Check labels, carve the seeded val split from train, normalise per channel to float32."""
    top = image_set.num_classes - 1
    for split, (_, y) in arrays.items():
        if len(y) and (y.min() < 0 or y.max() > top):
            raise DataNotFoundError(
                f"{image_set.title} {split} labels lie outside 0..{top}; the files under the data "
                "root are not the expected data set"
            )
    x_all, y_all = arrays["train"]
    train, val = train_val_split(y_all, VAL_FRACTION, seed)
    m = torch.tensor(image_set.mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(image_set.std, dtype=torch.float32).view(-1, 1, 1)

    def part(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        xt = torch.from_numpy(x.astype(np.float32))  # a fresh copy; the uint8 arrays are dropped
        xt.div_(255.0).sub_(m).div_(s)
        return xt, torch.from_numpy(np.array(y, dtype=np.int64))

    spec = DataSpec(image_set.name, "tensor", tuple(x_all.shape[1:]), image_set.num_classes)
    return TensorData(
        spec=spec,
        train=part(x_all[train], y_all[train]),
        val=part(x_all[val], y_all[val]),
        test=part(*arrays["test"]),
    )


def _load(image_set: _ImageSet, root: Path | None, download: bool, seed: int) -> TensorData:
    """Read ``image_set`` from ``root``; download only if files are missing and allowed."""
    assert root is not None  # needs_root: the registry passes the resolved root
    missing = image_set.first_missing(root)
    if missing is not None and download:
        _download(image_set, root)
        missing = image_set.first_missing(root)
    if missing is not None:
        raise missing_files_error(image_set.title, missing, image_set.layout, image_set.package,
                                  image_set.system_dir())
    return _to_tensor_data(image_set, image_set.read(root), seed)


@register_dataset("mnist", kind="tensor", needs_root=True, root_hint=MNIST.layout,
                  input_shape=(1, 28, 28), num_classes=10)
def load_mnist(root: Path | None, download: bool, seed: int) -> TensorData:
    """MNIST: 70000 28x28 grey digits, 10 classes, from the data root."""
    return _load(MNIST, root, download, seed)


@register_dataset("fashion_mnist", kind="tensor", needs_root=True, root_hint=FASHION_MNIST.layout,
                  input_shape=(1, 28, 28), num_classes=10, system=FASHION_MNIST.find_system)
def load_fashion_mnist(root: Path | None, download: bool, seed: int) -> TensorData:
    """Fashion-MNIST: 70000 28x28 grey clothing images, 10 classes (apt-get install dataset-fashion-mnist)."""
    return _load(FASHION_MNIST, root, download, seed)


@register_dataset("cifar10", kind="tensor", needs_root=True, root_hint=CIFAR10.layout,
                  input_shape=(3, 32, 32), num_classes=10)
def load_cifar10(root: Path | None, download: bool, seed: int) -> TensorData:
    """CIFAR-10: 60000 32x32 colour images, 10 classes, from the data root."""
    return _load(CIFAR10, root, download, seed)


@register_dataset("cifar100", kind="tensor", needs_root=True, root_hint=CIFAR100.layout,
                  input_shape=(3, 32, 32), num_classes=100)
def load_cifar100(root: Path | None, download: bool, seed: int) -> TensorData:
    """CIFAR-100: 60000 32x32 colour images, 100 fine classes, from the data root."""
    return _load(CIFAR100, root, download, seed)
