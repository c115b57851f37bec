"""The data set registry: ``register_dataset`` / ``load_dataset`` / ``list_datasets`` /
``get_dataset_info``.

A loader is a plain function ``fn(root, download, seed) -> TensorData | GraphData``. For data
sets read from disk (``needs_root=True``) it receives the resolved data root (see
:mod:`ticketlab.data.paths`), otherwise ``root`` exactly as the caller passed it (usually None).
A data set that a distribution package can install (Fashion-MNIST: Debian's
``dataset-fashion-mnist``) registers ``system=``, a function returning that package's folder when
its files are all there; with no ``root`` passed, the loader then receives that folder instead of
the default data root.

Example:
    >>> from ticketlab.data import load_dataset, list_datasets
    >>> "digits" in list_datasets()
    True
    >>> load_dataset("digits", seed=0).spec.input_shape
    (1, 8, 8)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from ticketlab.data.base import DataSpec, GraphData, TensorData
from ticketlab.data.paths import resolve_root
from ticketlab.errors import ConfigError
from ticketlab.registry import Registry

Loader = Callable[[Union[Path, None], bool, int], Union[TensorData, GraphData]]
KINDS = ("tensor", "graph")


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a data set without loading it.

    Attributes:
        name: registry name.
        kind: ``"tensor"`` or ``"graph"``.
        description: one line for ``ticketlab list``.
        needs_root: True when the files come from a data root (the user's or a download).
        default_root_hint: what the data root must hold, relative to it (e.g.
            ``"Cora/raw/ind.cora.*"``); ``""`` when ``needs_root`` is False.
        spec: the :class:`DataSpec` when it is known without reading files (image sets of a
            fixed shape), so that data-free methods can build a model without the files.
    """

    name: str
    kind: str
    description: str
    needs_root: bool
    default_root_hint: str
    spec: DataSpec | None = None


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Loader
    system: Callable[[], Union[Path, None]] | None = None


_DATASETS: Registry[_Entry] = Registry("data set")


def register_dataset(
    name: str,
    *,
    kind: str = "tensor",
    description: str | None = None,
    needs_root: bool = False,
    root_hint: str = "",
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    system: Callable[[], Path | None] | None = None,
) -> Callable[[Loader], Loader]:
    """Decorator registering ``fn(root, download, seed)`` as the loader of data set ``name``.

    ``description`` defaults to the first line of the loader's docstring. ``input_shape`` and
    ``num_classes``, when given, make the data set's :class:`DataSpec` known without loading it
    (:func:`shape_only`). ``system`` (``needs_root`` only) returns the folder of a complete
    system-wide copy, or None; it is asked when no root is passed, before any other default. A
    duplicate name raises :class:`~ticketlab.errors.ConfigError`.

    Example (not run as a doctest, since it would add a name to the global registry)::

        @register_dataset("my_set", kind="tensor")
        def my_set(root: Path | None, download: bool, seed: int) -> TensorData:
            '''My data set: 100 random vectors (shown by ``ticketlab list``).'''
            ...
    """
    if kind not in KINDS:
        raise ConfigError(f"data set kind must be one of {', '.join(KINDS)} (got '{kind}')")

    def deco(fn: Loader) -> Loader:
        doc = (fn.__doc__ or "").strip().splitlines()
        info = DatasetInfo(
            name=name,
            kind=kind,
            description=description if description is not None else (doc[0] if doc else ""),
            needs_root=needs_root,
            default_root_hint=root_hint,
            spec=DataSpec(name, kind, tuple(input_shape), int(num_classes))
            if input_shape is not None and num_classes is not None else None,
        )
        _DATASETS.add(name, _Entry(info, fn, system if needs_root else None))
        return fn

    return deco


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
) -> TensorData | GraphData:
    """Load data set ``name`` with its splits fixed by ``seed``.

    Args:
        name: a name from :func:`list_datasets`.
        root: data root for on-disk data sets (default: a complete system copy such as
            ``/usr/share/datasets/fashion-mnist``, else ``$TICKETLAB_DATA_ROOT``, else
            ``~/.cache/ticketlab/data``); ignored by data sets that need none.
        download: allow downloading missing files into ``root`` (never done otherwise).
        seed: seed of the train/val split (non-negative integer); same seed, same tensors.

    Raises:
        UnknownNameError: ``name`` is not registered.
        DataNotFoundError: the files are not under ``root`` (the message says how to get them).

    Example:
        >>> data = load_dataset("digits", seed=1)
        >>> data.train[0].dtype, data.train[1].dtype
        (torch.float32, torch.int64)
    """
    entry = _DATASETS.get(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"data seed must be a non-negative integer (got {seed!r})")
    if entry.info.needs_root:
        system = entry.system() if root is None and entry.system is not None else None
        path: Path | None = system if system is not None else resolve_root(root)
    else:
        path = Path(root) if root is not None else None
    return entry.loader(path, bool(download), seed)


def shape_only(name: str) -> TensorData:
    """Data set ``name`` with its shape and class count but no samples (empty splits), for
    data-free methods (SynFlow, random, magnitude at init) when the files are not needed.

    Raises ConfigError when the shape of ``name`` is not known without its files.

    Example:
        >>> shape_only("cifar10").spec
        DataSpec(name='cifar10', kind='tensor', input_shape=(3, 32, 32), num_classes=10)
    """
    import torch

    info = get_dataset_info(name)
    if info.spec is None:
        raise ConfigError(f"the shape of data set '{name}' is not known without its files")
    x = torch.zeros((0, *info.spec.input_shape))
    y = torch.zeros(0, dtype=torch.int64)
    return TensorData(info.spec, (x, y), (x, y), (x, y))


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered data set names matching the shell-style ``pattern``, in registration order.

    Example:
        >>> list_datasets("cifar*")
        ['cifar10', 'cifar100']
    """
    return _DATASETS.list(pattern)


def get_dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (raises UnknownNameError for an unknown name).

    Example:
        >>> get_dataset_info("cora").kind
        'graph'
    """
    return _DATASETS.get(name).info
