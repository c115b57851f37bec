"""``digits``: scikit-learn's 1797 real 8x8 handwritten digits (UCI optdigits test set), the
default data set because it ships inside scikit-learn.

Preprocessing: pixel values 0..16 are divided by 16, then standardised with ONE scalar mean and
standard deviation computed over all pixels of the training split (a per-pixel statistic would
divide by zero on the always-blank border pixels). Splits: 60 / 20 / 20 % train / val / test
(1079 / 359 / 359), class-stratified, drawn with :func:`~ticketlab.data.splits.stratified_split`
from ``seed``.

Example:
    >>> from ticketlab.data import load_dataset
    >>> d = load_dataset("digits")
    >>> tuple(d.train[0].shape), d.spec.num_classes
    ((1079, 1, 8, 8), 10)
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ticketlab.data.base import DataSpec, TensorData
from ticketlab.data.registry import register_dataset
from ticketlab.data.splits import split_sizes, stratified_split

DIGITS_FRACTIONS = (0.6, 0.2, 0.2)  # train, val, test


@register_dataset("digits", kind="tensor")
def load_digits(root: Path | None, download: bool, seed: int) -> TensorData:
    """scikit-learn digits: 1797 8x8 images, 10 classes, built in (the default)."""
    images, target = _raw_digits()
    x = images.astype(np.float64) / 16.0
    y = target.astype(np.int64)
    train, val, test = stratified_split(y, split_sizes(len(y), DIGITS_FRACTIONS), seed)
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(np.float32)[:, None, :, :]

    def part(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x[idx]), torch.from_numpy(y[idx])

    spec = DataSpec(name="digits", kind="tensor", input_shape=(1, 8, 8), num_classes=10)
    return TensorData(spec=spec, train=part(train), val=part(val), test=part(test))


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """The images (1797, 8, 8) and targets of ``sklearn.datasets.load_digits()``, bit for bit.

    Read as scikit-learn reads them (``np.loadtxt`` of its ``datasets/data/digits.csv.gz``), from
    the installed package's folder without importing it: ``import sklearn.datasets`` also imports
    scipy.stats and pandas, several seconds of every ``ticketlab`` process that mines on digits.
    Falls back to scikit-learn itself where that file is not found (another layout)."""
    spec = importlib.util.find_spec("sklearn")  # locates the package; runs none of its code
    folders = spec.submodule_search_locations if spec is not None else None
    csv = Path(next(iter(folders))) / "datasets" / "data" / "digits.csv.gz" if folders else None
    if csv is None or not csv.is_file():
        from sklearn.datasets import load_digits as sk_load_digits

        raw = sk_load_digits()
        return raw.images, raw.target
    with gzip.open(csv, mode="rt", encoding="utf-8") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)
