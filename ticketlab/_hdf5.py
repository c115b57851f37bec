"""Reading untrusted HDF5 datasets without trusting the sizes they declare.

A few-kilobyte HDF5 file can declare a dataset of 10**12 elements (HDF5 then returns fill values
for the bytes it never stored), or a chunk that gzip inflates to gigabytes: HDF5's deflate
filter grows its output buffer until the stream ends, whatever the chunk's size. The checks
here, used by :mod:`ticketlab.fileformat` (the one owner of the ticket format), look at what a
dataset *stores* before anything is allocated:

* :func:`check_dataset` (metadata only, no data read): the shape has at most
  :data:`MAX_NDIM` axes; the filter pipeline uses only the filters ticketlab writes, each at most
  once, in the order it writes them; a contiguous dataset stores exactly the bytes its shape
  needs; a chunked one stores every one of its chunks (missing chunks would read as fill values),
  chunks are not absurdly small (an unfiltered chunk stores exactly its bytes).
* :func:`read_dataset`: reads the data after inflating every gzip-compressed chunk once with
  ``zlib`` into a buffer of at most the chunk's declared size, so a chunk that inflates beyond
  it is an error, and no read decompresses more than the declared shape needs.
* :func:`available_memory`: how much memory this process can still get (see its docstring).

Errors are :class:`DatasetError` sentences naming the object; the caller adds the file's name.
This module never imports torch.
"""

from __future__ import annotations

import math
import os
import resource
import zlib
from pathlib import Path

import h5py
import numpy as np

#: Most axes a dataset (or a mask's ``shape`` attribute) may have (numpy's own limit is 64).
MAX_NDIM = 32
#: The HDF5 filters ticketlab writes, in the order it writes them (shuffle, then gzip, then the
#: checksum over the compressed bytes). A pipeline must be a subsequence of this order.
ALLOWED_FILTERS = {h5py.h5z.FILTER_SHUFFLE: "shuffle", h5py.h5z.FILTER_DEFLATE: "gzip",
                   h5py.h5z.FILTER_FLETCHER32: "fletcher32"}
_FILTER_ORDER = list(ALLOWED_FILTERS)
_FILTER_NAMES = {h5py.h5z.FILTER_SZIP: "szip", h5py.h5z.FILTER_NBIT: "nbit",
                 h5py.h5z.FILTER_SCALEOFFSET: "scaleoffset", 32000: "lzf", 32001: "blosc",
                 32004: "lz4", 32008: "bitshuffle", 32015: "zstd"}
#: Smallest chunk (bytes) accepted for a dataset larger than it; ticketlab writes ~1 MiB chunks
#: (never under 512 KiB unless the whole dataset is smaller), so tiny chunks mean a file made to
#: cost one Python call per few bytes.
MIN_CHUNK_BYTES = 4096
#: Bytes a variable-length string element takes in the dataset itself (HDF5's heap reference).
_VLEN_REF_BYTES = 16


class DatasetError(Exception):
    """A dataset whose declared size or storage does not hold up; the message names it."""


def nbytes(ds: h5py.Dataset) -> int:
    """Bytes the dataset's shape and dtype declare (no data read)."""
    return math.prod(ds.shape) * ds.dtype.itemsize


def _filters(ds: h5py.Dataset) -> list[int]:
    plist = ds.id.get_create_plist()
    return [int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters())]


def check_dataset(ds: h5py.Dataset, what: str) -> None:
    """Refuse a dataset whose declared size is not backed by stored bytes (see module docstring).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.h5"
        >>> with h5py.File(path, "w") as f:
        ...     _ = f.create_dataset("big", shape=(10**12,), dtype="u1")   # declared, never written
        >>> with h5py.File(path, "r") as f:
        ...     check_dataset(f["big"], "mask 'w'")
        Traceback (most recent call last):
        ...
        ticketlab._hdf5.DatasetError: mask 'w' declares 1000000000000 bytes but the file stores 0 of them
    """
    if ds.ndim > MAX_NDIM:
        raise DatasetError(f"{what} has {ds.ndim} dimensions (at most {MAX_NDIM} are allowed)")
    codes = _filters(ds)
    for code in codes:
        if code not in ALLOWED_FILTERS:
            name = _FILTER_NAMES.get(code, f"number {code}")
            raise DatasetError(f"{what} uses the HDF5 filter {name}; ticket files use only gzip, shuffle "
                               "and fletcher32")
    positions = [_FILTER_ORDER.index(c) for c in codes]
    if positions != sorted(set(positions)):
        names = ", ".join(ALLOWED_FILTERS[c] for c in codes)
        raise DatasetError(f"{what} has the filter pipeline [{names}]; ticket files apply each filter at most "
                           "once, in the order shuffle, gzip, fletcher32")
    declared = nbytes(ds)
    if ds.dtype.kind == "O":  # variable-length strings: the dataset stores heap references
        declared = math.prod(ds.shape) * _VLEN_REF_BYTES
    if declared == 0:
        return
    layout = ds.id.get_create_plist().get_layout()
    stored = ds.id.get_storage_size()
    if layout != h5py.h5d.CHUNKED:
        if codes:
            raise DatasetError(f"{what} has filters but is not chunked")
        if stored < declared:
            raise DatasetError(f"{what} declares {declared} bytes but the file stores {stored} of them")
        return
    _check_chunks(ds, what, codes, declared, stored)


def _chunk_bytes(ds: h5py.Dataset) -> int:
    itemsize = _VLEN_REF_BYTES if ds.dtype.kind == "O" else ds.dtype.itemsize
    return math.prod(ds.chunks) * itemsize


def _check_chunks(ds: h5py.Dataset, what: str, codes: list[int], declared: int, stored: int) -> None:
    chunk = _chunk_bytes(ds)
    if chunk < min(declared, MIN_CHUNK_BYTES):
        raise DatasetError(f"{what} is cut into chunks of {chunk} bytes (ticket files use chunks of at least "
                           f"{MIN_CHUNK_BYTES} bytes)")
    expected = math.prod(math.ceil(n / c) for n, c in zip(ds.shape, ds.chunks))
    have = ds.id.get_num_chunks()
    if have != expected:
        raise DatasetError(f"{what} stores {have} of its {expected} chunks")
    if h5py.h5z.FILTER_DEFLATE in codes:
        return  # compressed chunks are bounded when they are read (read_dataset)
    per_chunk = chunk + 4 * (h5py.h5z.FILTER_FLETCHER32 in codes)
    if stored != expected * per_chunk:
        raise DatasetError(f"{what} stores {stored} bytes in {expected} uncompressed chunks of {per_chunk} bytes")


def read_dataset(ds: h5py.Dataset, what: str) -> np.ndarray:
    """``ds[()]`` once :func:`check_dataset` holds and every gzip chunk is known to inflate to at
    most its declared size (each is inflated once into a buffer of that size and dropped).

    Damage that HDF5 detects (a failed fletcher32 checksum, a corrupt stream) is raised as a
    :class:`DatasetError` naming ``what``.
    """
    check_dataset(ds, what)
    codes = _filters(ds)
    if h5py.h5z.FILTER_DEFLATE in codes and nbytes(ds):
        _check_inflation(ds, what, codes)
    try:
        return ds[()]
    except OSError as exc:
        raise DatasetError(f"{what} is damaged ({h5_reason(exc)})") from None


def verify_dataset(ds: h5py.Dataset, what: str) -> None:
    """Check a dataset as :func:`read_dataset` would, without keeping its data: each chunk is read
    on its own (so HDF5 verifies its fletcher32 checksum), in memory of one chunk at most."""
    check_dataset(ds, what)
    if not nbytes(ds) or ds.chunks is None:
        return  # an empty or contiguous dataset has no checksum to verify
    codes = _filters(ds)
    if h5py.h5z.FILTER_DEFLATE in codes:
        _check_inflation(ds, what, codes)
    try:
        for part in ds.iter_chunks():
            ds[part]
    except OSError as exc:
        raise DatasetError(f"{what} is damaged ({h5_reason(exc)})") from None


def _check_inflation(ds: h5py.Dataset, what: str, codes: list[int]) -> None:
    chunk = _chunk_bytes(ds)
    fletcher = h5py.h5z.FILTER_FLETCHER32 in codes
    deflate_bit = 1 << codes.index(h5py.h5z.FILTER_DEFLATE)
    fletcher_bit = 1 << codes.index(h5py.h5z.FILTER_FLETCHER32) if fletcher else 0
    dsid = ds.id
    for i in range(dsid.get_num_chunks()):
        info = dsid.get_chunk_info(i)
        if info.size > 2 * chunk + 1024:  # deflate never stores more than ~1.001 x its input
            raise DatasetError(f"{what} stores a chunk of {info.size} bytes for {chunk} bytes of data")
        mask, raw = dsid.read_direct_chunk(info.chunk_offset)
        if fletcher and not mask & fletcher_bit:
            raw = raw[:-4]  # the checksum (over the compressed bytes) is checked by HDF5 on read
        if mask & deflate_bit:
            out_len = len(raw)
        else:
            inflater = zlib.decompressobj()
            try:
                out = inflater.decompress(raw, chunk + 1)
            except zlib.error as exc:
                raise DatasetError(f"{what} is damaged (a compressed chunk is corrupt: {exc})") from None
            out_len = len(out)
            if inflater.unconsumed_tail and out_len <= chunk:
                out_len = chunk + 1  # pragma: no cover - decompress stops only at max_length
        if out_len > chunk:
            raise DatasetError(f"{what} has a compressed chunk that inflates beyond its declared {chunk} bytes")


def h5_reason(exc: BaseException) -> str:
    """The innermost, most specific part of an h5py error message, on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1 : -1]
    return text.rstrip(".")


# ---------------------------------------------------------------------------------- memory
def available_memory() -> int:
    """Bytes this process can still allocate: the least of

    * the kernel's ``MemAvailable`` (``/proc/meminfo``: free memory plus reclaimable caches),
      or, where there is no ``/proc``, free physical pages (``os.sysconf``);
    * the cgroup's limit minus its usage (``/sys/fs/cgroup/memory.max`` and
      ``memory.current``, cgroup v2; ``memory.limit_in_bytes`` and ``memory.usage_in_bytes``, v1),
      as in a container or a batch job;
    * the soft address-space limit (``ulimit -v``, ``RLIMIT_AS``) minus this process's
      current virtual size.

    Example:
        >>> available_memory() > 0
        True
    """
    candidates = [_meminfo_available()]
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            candidates.append(max(0, limit - usage))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        candidates.append(max(0, soft - _virtual_size()))
    return max(0, min(c for c in candidates if c is not None))


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2 if hasattr(os, "sysconf") else None


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None  # absent, or "max" (no limit)


def _virtual_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
