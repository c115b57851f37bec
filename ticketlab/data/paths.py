"""Where data sets live on disk: the data root (user files) and the cache (generated files).

* Data root: the ``root`` argument of :func:`ticketlab.data.load_dataset`, else the environment
  variable ``TICKETLAB_DATA_ROOT``, else ``<cache>/data``. It holds torchvision's and PyG's
  on-disk layouts (``MNIST/raw/...``, ``cifar-10-batches-py/...``, ``Cora/raw/...``).
* System data: :data:`SYSTEM_DATA_DIR` (``/usr/share/datasets``), where Debian's ``dataset-*``
  packages install data sets (``dataset-fashion-mnist`` puts Fashion-MNIST's four gzip idx files
  in ``/usr/share/datasets/fashion-mnist/``). When no ``root`` is passed, a data set that has a
  system copy reads it, when complete, before any other default (``TICKETLAB_DATA_ROOT``, the
  cache); ``TICKETLAB_SYSTEM_DATA_DIR`` moves this folder (tests point it at a fake one).
* Cache: ``TICKETLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/ticketlab``, else
  ``~/.cache/ticketlab``. Only files ticketlab can regenerate itself go there (MNIST-1D arrays).

Example:
    >>> import os
    >>> os.environ["TICKETLAB_DATA_ROOT"] = "/data"
    >>> str(resolve_root(None))
    '/data'
    >>> del os.environ["TICKETLAB_DATA_ROOT"]
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ticketlab.errors import DataNotFoundError

DATA_ROOT_ENV = "TICKETLAB_DATA_ROOT"
CACHE_DIR_ENV = "TICKETLAB_CACHE_DIR"
#: Where Debian's ``dataset-*`` packages install data sets (one folder per data set).
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
SYSTEM_DATA_DIR_ENV = "TICKETLAB_SYSTEM_DATA_DIR"


def system_data_dir() -> Path:
    """``$TICKETLAB_SYSTEM_DATA_DIR`` if set, else :data:`SYSTEM_DATA_DIR`.

    Example:
        >>> str(system_data_dir()) == "/usr/share/datasets" or SYSTEM_DATA_DIR_ENV in os.environ
        True
    """
    if os.environ.get(SYSTEM_DATA_DIR_ENV):
        return Path(os.environ[SYSTEM_DATA_DIR_ENV]).expanduser()
    return SYSTEM_DATA_DIR


def cache_dir() -> Path:
    """The user cache folder of ticketlab (it may not exist yet).

    Example:
        >>> cache_dir().name in {"ticketlab"} or "TICKETLAB_CACHE_DIR" in os.environ
        True
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ticketlab"


def default_data_root() -> Path:
    """``$TICKETLAB_DATA_ROOT`` if set, else ``<cache>/data``.

    Example:
        >>> default_data_root().name in {"data"} or "TICKETLAB_DATA_ROOT" in os.environ
        True
    """
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    return cache_dir() / "data"


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root to use: ``root`` when given, else :func:`default_data_root`.

    Example:
        >>> str(resolve_root("~/x")).endswith("/x")
        True
    """
    return Path(root).expanduser() if root is not None else default_data_root()


def is_writable_dir(path: Path) -> bool:
    """True when ``path`` is a directory that we may write into.

    Besides ``os.access`` (which honours read-only mounts) the permission bits must grant write
    access to someone: root bypasses permission bits, and a folder marked ``r-x`` is meant to
    stay untouched even then.

    Example:
        >>> is_writable_dir(Path("/nonexistent/folder"))
        False
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return stat.S_ISDIR(mode) and bool(mode & write_bits) and os.access(path, os.W_OK)


def missing_files_error(
    what: str, expected: Path, layout: str, package: str = "", system: Path | None = None
) -> DataNotFoundError:
    """The one-sentence error for data files that are not on disk.

    ``package`` names the distribution package that installs the files into the folder
    ``system`` (read when no data root is passed).

    Example:
        >>> err = missing_files_error("Cora", Path("/d/Cora/raw/ind.cora.x"), "Cora/raw/ind.cora.*")
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        Cora files not found: expected /d/Cora/raw/ind.cora.x; pass --data-root DIR holding
        Cora/raw/ind.cora.* (or set TICKETLAB_DATA_ROOT), or add --download
        >>> err = missing_files_error("F", Path("/d/F/x"), "F/*", "dataset-f", Path("/usr/share/f"))
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        F files not found: expected /d/F/x; install them with 'apt-get install dataset-f' (read from
        /usr/share/f when no --data-root is given), pass --data-root DIR holding F/* (or set
        TICKETLAB_DATA_ROOT), or add --download
    """
    install = ""
    if package:
        where = f" (read from {system} when no --data-root is given)" if system is not None else ""
        install = f" install them with 'apt-get install {package}'{where},"
    return DataNotFoundError(
        f"{what} files not found: expected {expected};{install} pass --data-root DIR holding "
        f"{layout} (or set {DATA_ROOT_ENV}), or add --download"
    )


def download_failed_error(
    what: str, root: Path, err: BaseException, layout: str
) -> DataNotFoundError:
    """The one-sentence error for a failed download (the cause squeezed onto one line).

    Example:
        >>> err = OSError("no   network")
        >>> print(download_failed_error("MNIST", Path("/d"), err, "MNIST/*"))
        downloading MNIST into /d failed (no network); pass --data-root DIR holding MNIST/* instead
    """
    cause = " ".join(str(err).split()) or type(err).__name__
    return DataNotFoundError(
        f"downloading {what} into {root} failed ({cause}); pass --data-root DIR holding {layout} "
        "instead"
    )
