"""Corrupted training data: the data-side sanity check of pruning methods (Su et al. 2020).

Su et al. 2020 ("Sanity-Checking Pruning Methods: Random Tickets can Win the Jackpot", Sec. 4)
prune with corrupted training data and then train the ticket on the real data: a method whose
tickets are as good after pruning on noise "hardly exploits any information from the training
data". The corruptions are those of Zhang et al. 2017 ("Understanding deep learning requires
rethinking generalization", Sec. 2):

* ``random_labels``: the training labels are permuted among the training samples with a
  seeded generator. Every class keeps its frequency; the link between an input and its label
  is gone. (Zhang et al. draw each label uniformly instead; a permutation keeps the class
  balance, so any difference comes from the lost input-label relation only.)
* ``random_pixels``: each training sample's values are permuted by its own seeded random
  permutation (over all ``C x H x W`` values of an image, all ``L`` values of a vector):
  Zhang et al.'s "random pixels" (a different permutation per image), not their "shuffled
  pixels" (one permutation for all) and not noise. Pixel statistics are kept exactly.

Only the training split changes; validation and test are the real data. One seeded
``numpy.random.Generator`` (from ``SeedSequence([seed, stream])``, a stream per corruption)
drives every draw: same seed, same corrupted data.

Example:
    >>> from ticketlab.data import load_dataset
    >>> data = load_dataset("digits", seed=0)
    >>> bad = corrupt(data, "random_labels", seed=0)
    >>> bool((bad.train[1] != data.train[1]).any()), bad.test[1] is data.test[1]
    (True, True)
    >>> sorted(bad.train[1].tolist()) == sorted(data.train[1].tolist())
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ticketlab.data.base import Dataset, TensorData
from ticketlab.checks import check_seed
from ticketlab.errors import ConfigError
from ticketlab.streams import RANDOM_LABELS, RANDOM_PIXELS, numpy_rng

#: The corruptions ``mine --data-corruption`` takes.
CORRUPTIONS = ("random_labels", "random_pixels")
_STREAMS = {"random_labels": RANDOM_LABELS, "random_pixels": RANDOM_PIXELS}


def check_corruption(kind: str) -> str:
    """``kind`` if it is a known corruption, else a one-sentence :class:`ConfigError`."""
    if kind not in CORRUPTIONS:
        raise ConfigError(f"unknown data corruption '{kind}' (choose from: {', '.join(CORRUPTIONS)})")
    return kind


def corrupt(data: Dataset, kind: str, *, seed: int) -> TensorData:
    """``data`` with its training split corrupted by ``kind`` (a new :class:`TensorData`; the
    validation and test splits are the same tensors, ``data`` is not modified).

    Example:
        >>> x = torch.arange(12.0).reshape(3, 4); y = torch.tensor([0, 1, 2])
        >>> from ticketlab.data.base import DataSpec
        >>> d = TensorData(DataSpec("toy", "tensor", (4,), 3), (x, y), (x, y), (x, y))
        >>> p = corrupt(d, "random_pixels", seed=0)
        >>> [sorted(r.tolist()) == sorted(s.tolist()) for r, s in zip(p.train[0], x)], bool(torch.equal(p.train[1], y))
        ([True, True, True], True)
    """
    check_corruption(kind)
    seed = check_seed(seed, "a data corruption's seed")
    if not isinstance(data, TensorData):
        raise ConfigError(f"data corruption {kind} is defined for tensor data sets (images, vectors), "
                          f"not for graph data set '{data.spec.name}'")
    x, y = data.train
    rng = numpy_rng(seed, _STREAMS[kind])
    if kind == "random_labels":
        perm = torch.from_numpy(rng.permutation(len(y)))
        train = (x, y[perm].clone())
    else:
        flat = x.reshape(len(x), -1)
        # one independent uniform permutation per sample: argsort of i.i.d. uniforms (row-wise)
        perms = torch.from_numpy(np.argsort(rng.random(flat.shape), axis=1, kind="stable"))
        train = (torch.gather(flat, 1, perms.to(flat.device)).reshape(x.shape), y)
    return TensorData(data.spec, train, data.val, data.test)
