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
* :func:`read_dataset`: reads a gzip-compressed dataset chunk by chunk itself (fletcher32
  checked on the stored bytes, then ``zlib`` inflation into at most the chunk's declared size,
  then unshuffling), so a chunk that inflates beyond its size is an error and no read
  decompresses more than the declared shape needs; other datasets are read by HDF5.
* :func:`verify_dataset`: the checksums of a dataset's stored chunks, without decompressing it
  (for the parts of a file a reader leaves out).
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
        return _read_compressed(ds, what, codes)
    try:
        return ds[()]
    except OSError as exc:
        raise DatasetError(f"{what} is damaged ({h5_reason(exc)})") from None


def _read_compressed(ds: h5py.Dataset, what: str, codes: list[int]) -> np.ndarray:
    """Read a gzip-filtered dataset chunk by chunk, undoing its filters here rather than in HDF5,
    so that each chunk is inflated once and into at most its declared size: verify the fletcher32
    checksum of the stored bytes, inflate (an error past the chunk's size), unshuffle (byte ``j``
    of element ``i`` was stored at ``j * n + i``), and copy the chunk's part into the array."""
    bits = {code: 1 << i for i, code in enumerate(codes)}
    chunk_shape, dtype = ds.chunks, ds.dtype
    chunk = _chunk_bytes(ds)
    out = np.empty(ds.shape, dtype)
    dsid = ds.id
    for i in range(dsid.get_num_chunks()):
        info = dsid.get_chunk_info(i)
        if info.size > 2 * chunk + 1024:  # deflate never stores more than ~1.001 x its input
            raise DatasetError(f"{what} stores a chunk of {info.size} bytes for {chunk} bytes of data")
        skipped, raw = dsid.read_direct_chunk(info.chunk_offset)
        if h5py.h5z.FILTER_FLETCHER32 in bits and not skipped & bits[h5py.h5z.FILTER_FLETCHER32]:
            if len(raw) < 4 or fletcher32(raw[:-4]) not in _stored_checksum(raw[-4:]):
                raise DatasetError(f"{what} is damaged (its fletcher32 checksum does not match)")
            raw = raw[:-4]
        if not skipped & bits[h5py.h5z.FILTER_DEFLATE]:
            raw = _inflate(raw, chunk, what)
        if len(raw) != chunk:
            raise DatasetError(f"{what} is damaged (a chunk holds {len(raw)} bytes, not {chunk})")
        data = np.frombuffer(raw, np.uint8)
        if h5py.h5z.FILTER_SHUFFLE in bits and not skipped & bits[h5py.h5z.FILTER_SHUFFLE] and dtype.itemsize > 1:
            data = data.reshape(dtype.itemsize, -1).T.copy()
        block = data.view(dtype).reshape(chunk_shape)
        where = tuple(slice(o, min(o + c, n)) for o, c, n in zip(info.chunk_offset, chunk_shape, ds.shape))
        out[where] = block[tuple(slice(0, w.stop - w.start) for w in where)]
    return out


def _inflate(raw: bytes, limit: int, what: str) -> bytes:
    """zlib-inflate ``raw`` into at most ``limit`` bytes; more is an error (a decompression bomb)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise DatasetError(f"{what} is damaged (a compressed chunk is corrupt: {exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise DatasetError(f"{what} has a compressed chunk that inflates beyond its declared {limit} bytes")
    return out


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 checksum of ``data`` (``H5_checksum_fletcher32``), computed with numpy.

    HDF5 sums big-endian 16-bit words (an odd last byte is the high byte of a last word) into
    ``sum1`` and the running ``sum2``, folding both modulo 65535 as it goes, and returns
    ``sum2 << 16 | sum1``. Folding never takes a positive sum to 0, so each half is 0 only when
    every word is 0, and otherwise the residue modulo 65535 in 1..65535. With ``n`` words
    ``w_0..w_{n-1}``: ``sum1 = sum(w_i)`` and ``sum2 = sum((n - i) * w_i)``.

    Example:
        >>> hex(fletcher32(b"abcde"))  # big-endian words: the usual 0xf04fc729 sums little-endian ones
        '0x4ff029c7'
    """
    if len(data) % 2:
        data = data + b"\0"
    words = np.frombuffer(data, dtype=">u2")
    n = words.size
    if not words.any():
        return 0
    # In blocks of B words, block b starting at word bB (the last one padded with zero words):
    # sum2 = sum_b [(n - bB - B) * S_b + T_b], with S_b the sum of its words and
    # T_b = sum_j (B - j) w_{bB+j}.
    B = 4096
    pad = (-n) % B
    w = np.zeros(n + pad, np.float64)  # float64 is exact here: T_b < 2**40
    w[:n] = words
    w = w.reshape(-1, B)
    s_b = w.sum(axis=1).astype(np.int64)
    t_b = np.einsum("ij,j->i", w, np.arange(B, 0, -1, dtype=np.float64)).astype(np.int64)  # no BLAS threads
    m = 65535
    s1 = int(s_b.sum()) % m
    after = n - B * np.arange(1, w.shape[0] + 1, dtype=np.int64)  # n - bB - B: words after block b
    s2 = int(((after % m) * (s_b % m)).sum() + (t_b % m).sum()) % m
    return ((s2 or m) << 16) | (s1 or m)


def _stored_checksum(tail: bytes) -> tuple[int, int]:
    """The 4-byte checksum HDF5 appends to a chunk (little-endian), and its byte-swapped form
    (which HDF5 also accepts, for files of early 1.6 versions)."""
    value = int.from_bytes(tail, "little")
    swapped = ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00) | (value >> 24)
    return value, swapped


def verify_dataset(ds: h5py.Dataset, what: str) -> None:
    """Check a dataset as :func:`read_dataset` would, in memory of one chunk: a compressed one by
    the fletcher32 checksum of every stored chunk (over the stored, compressed bytes, as HDF5
    computes it: nothing is inflated), an uncompressed one by letting HDF5 read it chunk by chunk
    into one buffer (HDF5 verifies the checksums). A compressed dataset without checksums (an
    older file) is inflated instead, within its declared size, so a corrupt stream still fails."""
    check_dataset(ds, what)
    if not nbytes(ds) or ds.chunks is None:
        return  # an empty or contiguous dataset has no checksum to verify
    codes = _filters(ds)
    if h5py.h5z.FILTER_FLETCHER32 not in codes:
        if h5py.h5z.FILTER_DEFLATE in codes:
            _read_compressed(ds, what, codes)  # an older file: a corrupt stream fails to inflate
        return
    if h5py.h5z.FILTER_DEFLATE not in codes:  # HDF5 checks its own checksums fastest: read each chunk
        buffer = np.empty(ds.chunks, ds.dtype)
        try:
            for part in ds.iter_chunks():
                ds.read_direct(buffer, part, tuple(slice(0, p.stop - p.start) for p in part))
        except OSError as exc:
            raise DatasetError(f"{what} is damaged ({h5_reason(exc)})") from None
        return
    bit = 1 << codes.index(h5py.h5z.FILTER_FLETCHER32)  # over the compressed bytes: no inflation
    dsid = ds.id
    for i in range(dsid.get_num_chunks()):
        mask, raw = dsid.read_direct_chunk(dsid.get_chunk_info(i).chunk_offset)
        if mask & bit:
            continue  # HDF5 skipped the checksum for this chunk
        if len(raw) < 4 or fletcher32(raw[:-4]) not in _stored_checksum(raw[-4:]):
            raise DatasetError(f"{what} is damaged (its fletcher32 checksum does not match)")


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


def _proc_kib(path: str, key: str) -> int | None:
    """The ``key:`` line of a /proc file (a number of KiB) in bytes, or None where there is none."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _meminfo_available() -> int | None:
    found = _proc_kib("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    for name, share in (("SC_AVPHYS_PAGES", 1), ("SC_PHYS_PAGES", 2)):  # no /proc: free, else half of all
        try:
            return os.sysconf(name) * os.sysconf("SC_PAGE_SIZE") // share
        except (ValueError, OSError, AttributeError):
            continue
    return None


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None  # absent, or "max" (no limit)


def _virtual_size() -> int:
    return _proc_kib("/proc/self/status", "VmSize") or 0
