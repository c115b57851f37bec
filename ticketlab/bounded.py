"""The one reader of untrusted JSON, TOML, zip and torch files: bounded before it allocates.

Every reader here refuses, with :class:`Refused` (one phrase; the caller names the file):

* anything but a regular file: a FIFO (which would block), a device such as ``/dev/zero`` (or a
  symlink to one), a folder. The file is opened non-blocking and checked with ``fstat`` on the
  open descriptor; at most ``limit + 1`` bytes are ever read;
* JSON and TOML over :data:`ticketlab.limits` ``text_bytes`` or nested deeper than ``depth``;
* zip archives (torch files are zips) that declare more members than ``zip_entries``, a
  compression method other than stored or deflate, a stored member whose declared size is not
  its stored size, a deflated member claiming more than deflate's largest ratio
  (:data:`DEFLATE_MAX_RATIO`), members whose stored bytes do not fit in the file, more
  uncompressed bytes than the caller's bound, or compressed members that inflate to more than
  ``inflated_bytes``, all from the central directory, before a byte is inflated;
* torch files (:func:`load_torch`) holding a tensor whose strides overlap (an ``expand``-ed,
  stride-0 tensor declares far more values than it stores), that reaches past its storage, or
  views of one storage that together declare more bytes than the storage holds. Nothing is
  unpickled: ``torch.load(weights_only=True)``, memory-mapped when every member is stored.

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = path.write_text(json.dumps({"a": [1, 2]}))
    >>> read_json(path)
    {'a': [1, 2]}
    >>> read_json("/dev/zero")
    Traceback (most recent call last):
    ...
    ticketlab.bounded.Refused: it is a character device, not a regular file
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zipfile
from typing import Any, Iterable

from ticketlab import limits
from ticketlab.errors import TicketlabError

#: Deflate's largest compression ratio (1032:1, zlib's technical notes); a deflated zip member
#: declaring more than this times its stored bytes (plus a little for tiny members) is lying.
DEFLATE_MAX_RATIO = 1032
_RATIO_SLACK = 1024
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class Refused(TicketlabError):
    """An input refused by a bound or a check; the message is a phrase such as ``"it is a FIFO"``,
    for the caller to put after the file's name."""


class Malformed(Refused):
    """Text that is not UTF-8, JSON or TOML at all (rather than valid but over a bound)."""


# ---------------------------------------------------------------------------------- files
def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """An open descriptor of ``path`` and its ``fstat``, once it is a regular file.

    Opened non-blocking, so that a FIFO cannot hang; checked on the descriptor, so that a symlink
    to ``/dev/zero`` is seen as the device it opens.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except IsADirectoryError:
        raise Refused("it is a folder, not a regular file") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO (or socket) with no writer, opened non-blocking
            raise Refused("it is a FIFO (named pipe), not a regular file") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused(f"it is {_kind(st.st_mode)}, not a regular file")
    return fd, st


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> bytes:
    """The bytes of regular file ``path``, at most ``max_bytes`` (default: limit ``text_bytes``).

    Raises :class:`FileNotFoundError` / :class:`OSError` as ``open`` does, and :class:`Refused`
    for a FIFO, a device or a folder and for a file larger than the limit (never more than
    limit + 1 bytes are read).
    """
    limit = limits.value("text_bytes") if max_bytes is None else int(max_bytes)
    hint = limits.LIMITS["text_bytes"].hint() if max_bytes is None else f"more than the limit of {limit:,}"
    fd, st = _open_regular(path)
    with os.fdopen(fd, "rb", closefd=True) as fh:
        if st.st_size > limit:
            raise Refused(f"it is {st.st_size:,} bytes, {hint}")
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew after fstat
        raise Refused(f"it holds more bytes than stated, {hint}")
    return data


def check_regular(path: str | os.PathLike[str]) -> int:
    """The size of ``path`` once it is a regular file (:class:`Refused` otherwise), without reading it."""
    fd, st = _open_regular(path)
    os.close(fd)
    return st.st_size


# ---------------------------------------------------------------------------------- JSON / TOML
def check_depth(value: Any, max_depth: int | None = None) -> Any:
    """``value`` once no list or dict in it is nested deeper than ``max_depth`` (default limit ``depth``).

    Iterative, so it cannot itself overflow the stack.

    Example:
        >>> check_depth([[1]], 2)
        [[1]]
        >>> check_depth([[[1]]], 2)
        Traceback (most recent call last):
        ...
        ticketlab.bounded.Refused: it nests values 3 levels deep, more than the limit of 2
    """
    limit = limits.value("depth") if max_depth is None else int(max_depth)
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            depth += 1
            if depth > limit:
                hint = f" (raise it with {limits.LIMITS['depth'].env}=N)" if max_depth is None else ""
                raise Refused(f"it nests values {depth} levels deep, more than the limit of {limit:,}{hint}")
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return value


def _too_deep() -> Refused:
    limit = limits.LIMITS["depth"]
    return Refused(f"it nests values deeper than Python can parse, {limit.hint()}")


def parse_json(data: bytes | str) -> Any:
    """Parse JSON text (bytes must be UTF-8) and check its depth.

    Raises :class:`Malformed` for text that is not JSON, :class:`Refused` for one nested deeper
    than limit ``depth`` (``NaN`` and ``Infinity`` are read, as Python writes them).

    Example:
        >>> parse_json('{"a": NaN}')
        {'a': nan}
        >>> parse_json("[" * 100_000 + "]" * 100_000)
        Traceback (most recent call last):
        ...
        ticketlab.bounded.Refused: it nests values deeper than Python can parse, more than the limit of 64 (raise it with TICKETLAB_LIMIT_DEPTH=N)
    """
    return _parse(data, json.loads, ValueError, "JSON")


def parse_toml(data: bytes | str) -> dict[str, Any]:
    """Parse TOML text (bytes must be UTF-8) and check its depth (as :func:`parse_json`)."""
    import tomllib

    return _parse(data, tomllib.loads, tomllib.TOMLDecodeError, "TOML")


def _parse(data: bytes | str, loads: Any, error: type[Exception], kind: str) -> Any:
    """``loads`` of UTF-8 text, its errors as one line each, then :func:`check_depth`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = loads(text)
    except UnicodeDecodeError:  # a ValueError too: before the parser's own error
        raise Malformed("it is not UTF-8 text") from None
    except RecursionError:
        raise _too_deep() from None
    except error as exc:
        raise Malformed(f"it is not valid {kind} ({str(exc).splitlines()[0][:200]})") from None
    return check_depth(value)


def read_json(path: str | os.PathLike[str]) -> Any:
    """:func:`read_bytes` then :func:`parse_json`."""
    return parse_json(read_bytes(path))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`read_bytes` then :func:`parse_toml`."""
    return parse_toml(read_bytes(path))


# ---------------------------------------------------------------------------------- zip
def check_zip(zf: zipfile.ZipFile, archive_size: int, max_bytes: int, *, what: str = "max_bytes"
              ) -> list[zipfile.ZipInfo]:
    """The members of ``zf`` once the central directory's declarations are within bounds.

    ``archive_size`` is the file's size; ``max_bytes`` bounds the members' total declared
    uncompressed size (``what`` names that bound in the message). Nothing is inflated.
    """
    infos = zf.infolist()
    entries = limits.LIMITS["zip_entries"]
    if len(infos) > entries.value():
        raise Refused(f"it declares {len(infos):,} zip members, {entries.hint()}")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise Refused("it declares the same zip member twice")
    stored_total = inflated = declared = 0
    for info in infos:
        name = info.filename[:80]
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise Refused(f"zip member '{name}' is stored but declares {info.file_size:,} bytes "
                              f"for {info.compress_size:,} stored")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + _RATIO_SLACK:
                raise Refused(f"zip member '{name}' declares {info.file_size:,} bytes from {info.compress_size:,} "
                              f"compressed, more than deflate's largest ratio ({DEFLATE_MAX_RATIO}:1)")
            inflated += info.file_size
        else:
            raise Refused(f"zip member '{name}' uses compression method {info.compress_type}, "
                          "not stored or deflate")
        stored_total += info.compress_size
        declared += info.file_size
    if stored_total > archive_size:
        raise Refused(f"its zip members declare {stored_total:,} stored bytes, more than the file's "
                      f"{archive_size:,}")
    if declared > max_bytes:
        raise Refused(f"its zip members declare {declared:,} bytes, more than {what} allows ({max_bytes:,})")
    limit = limits.LIMITS["inflated_bytes"]
    if inflated > limit.value():
        raise Refused(f"its compressed zip members inflate to {inflated:,} bytes, {limit.hint()}")
    return infos


def open_zip(path: str | os.PathLike[str], max_bytes: int, *, what: str = "max_bytes"
             ) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """A regular file opened as a zip, and its members checked by :func:`check_zip`."""
    size = check_regular(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, OverflowError) as exc:
        raise Refused(f"it is a damaged zip file ({_first_line(exc)})") from None
    try:
        return zf, check_zip(zf, size, max_bytes, what=what)
    except BaseException:
        zf.close()
        raise


# ---------------------------------------------------------------------------------- torch
def load_torch(path: str | os.PathLike[str], max_bytes: int, *, what: str = "max_bytes") -> Any:
    """``torch.load(path, weights_only=True)`` of a torch zip file, bounded (module docstring).

    The zip is checked first (:func:`check_zip`, ``max_bytes`` as there); a bare pickle (torch's
    pre-1.6 format) is refused; every tensor of the result is checked by :func:`check_tensors`.
    Raises :class:`Refused` (``pickle.UnpicklingError``'s refusals included).
    """
    import pickle
    import warnings

    zf, infos = open_zip(path, max_bytes, what=what)
    with zf:
        if not any(i.filename == "data.pkl" or i.filename.endswith("/data.pkl") for i in infos):
            raise Refused("it is a zip file but not a torch file (no data.pkl)")
    import torch

    stored = all(i.compress_type == zipfile.ZIP_STORED for i in infos)  # mmap reads stored bytes only
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=stored)
    except pickle.UnpicklingError:
        raise Refused("it holds objects other than tensors and plain containers, which torch.load("
                      "weights_only=True) refuses and ticketlab never unpickles") from None
    except RecursionError:
        raise _too_deep() from None
    except Exception as exc:  # noqa: BLE001  (RuntimeError and friends for a damaged file)
        if "TorchScript" in str(exc):
            raise Refused("it is a TorchScript archive (a scripted model), not a state dict of tensors") from None
        raise Refused(f"torch cannot read it ({_first_line(exc)})") from None
    check_tensors(_walk(obj))
    return obj


def _walk(obj: Any) -> Iterable[Any]:
    """Every tensor in nested dicts, lists and tuples (iteratively, at most ``zip_entries`` x 10 items)."""
    import torch

    budget = 10 * limits.value("zip_entries")
    stack = [obj]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise Refused(f"it holds more than {10 * limits.value('zip_entries'):,} values, "
                          f"{limits.LIMITS['zip_entries'].hint()} (ten values a member)")
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def check_tensors(tensors: Iterable[Any]) -> None:
    """Refuse tensors that declare more values than their storage holds.

    A strided tensor must not overlap itself (every dimension of size > 1 steps past the span of
    the smaller-stride ones: no stride 0, no ``expand``), must end within its storage, and the
    distinct views of one storage (views of the same bytes, e.g. tied weights, count once) must
    declare no more bytes together than the storage holds. So a tensor's values cost no more than
    the bytes the file stores. Sparse and quantized tensors are left to the caller.

    Example:
        >>> import torch
        >>> check_tensors([torch.zeros(3, 4), torch.zeros(4, 3).t()])
        >>> check_tensors([torch.zeros(1).expand(10**6)])
        Traceback (most recent call last):
        ...
        ticketlab.bounded.Refused: a tensor of shape (1000000,) has overlapping strides (0,) (an expanded view): it declares 4,000,000 bytes over a storage of 4
    """
    import torch

    views: dict[int, dict[tuple[int, int], int]] = {}
    sizes: dict[int, int] = {}
    for t in tensors:
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.is_quantized:
            continue
        shape, strides = tuple(t.shape), tuple(t.stride())
        item = t.element_size()
        storage = t.untyped_storage()
        nbytes = storage.nbytes()
        numel = t.numel()
        if numel == 0:
            continue
        declared = numel * item
        where = f"a tensor of shape {shape}"
        if any(s < 0 for s in strides):
            raise Refused(f"{where} has negative strides {strides}")
        expected = 1
        for size, stride in sorted(((s, st) for s, st in zip(shape, strides) if s > 1), key=lambda x: x[1]):
            if stride < expected:
                raise Refused(f"{where} has overlapping strides {strides} (an expanded view): it declares "
                              f"{declared:,} bytes over a storage of {nbytes:,}")
            expected = stride * size
        begin = t.storage_offset() * item
        end = begin + (1 + sum((s - 1) * st for s, st in zip(shape, strides))) * item
        if end > nbytes:
            raise Refused(f"{where} reaches byte {end:,} of a storage of {nbytes:,}")
        key = storage.data_ptr() if nbytes else id(storage)
        sizes[key] = nbytes
        views.setdefault(key, {})[(begin, end)] = max(declared, views.get(key, {}).get((begin, end), 0))
    for key, found in views.items():
        total = sum(found.values())
        if total > sizes[key]:
            raise Refused(f"{len(found)} tensors over one storage of {sizes[key]:,} bytes declare "
                          f"{total:,} bytes together (overlapping views)")


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "..."
