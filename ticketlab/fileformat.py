"""The ticket file format, version 1: one HDF5 file per :class:`~ticketlab.ticket.Ticket`.

This is the only module that reads or writes ticket files; ``docs/format.md`` describes the
layout byte for byte, with an example of reading a mask with plain h5py. Masks are bit-packed
(``np.packbits``, big-endian bit order, C-order flattening) and gzip-compressed; weight snapshots
and scores keep their dtype (compressed losslessly when mostly zeros); the history is a column
table; the provenance is a JSON string. Writes are atomic; reads validate everything and fail with one
:class:`~ticketlab.errors.TicketFormatError` sentence that names the file and the problem.
A snapshot holds every masked parameter and may hold more: the ``final`` snapshot of a trained
ticket holds the rest of the trained ``state_dict`` too (biases, batch norm; see
:func:`ticketlab.retraining.final_snapshot`), each entry checked like every other array.

This module never imports torch, so ``ticketlab inspect`` and ``ticketlab compare`` start fast.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from ticketlab.ticket import Ticket
    >>> t = Ticket(masks={"fc.weight": np.eye(3, dtype=bool)}, provenance={"method": "demo"})
    >>> path = save(t, pathlib.Path(tempfile.mkdtemp()) / "demo.h5")
    >>> int(load(path).masks["fc.weight"].sum())
    3
    >>> read_info(path)["layers"]["fc.weight"]
    {'shape': (3, 3), 'kept': 3, 'total': 9}
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ticketlab import _hdf5
from ticketlab._version import __version__
from ticketlab.atomic import atomic_path
from ticketlab.errors import ConfigError, TicketFormatError, TicketlabError, TicketlabWarning
from ticketlab.ticket import SNAPSHOTS, Ticket

#: Value of the root attribute ``format``; a file without it is not a ticket.
FORMAT = "ticketlab.ticket"
#: The format version this module writes, and the newest it reads.
FORMAT_VERSION = 1

# Storage choices, picked with benchmarks/bench_format.py (see docs/format.md, "Compression").
_MASK_FILTERS: dict[str, Any] = {"compression": "gzip", "compression_opts": 4}  # ~1.2 x entropy at d=0.1
_ARRAY_FILTERS: dict[str, Any] = {"shuffle": True, "compression": "gzip", "compression_opts": 1}
# Weights and scores are compressed only when at least this fraction of entries is exactly 0 (as
# in weights trained under a mask): dense float noise shrinks only ~14% but saves 10-30x slower.
_ARRAY_MIN_ZEROS = 0.25
_CHUNK_BYTES = 1 << 20  # target chunk size (uncompressed) of every compressed dataset
_ARRAY_KINDS = "biufc"  # numpy dtype kinds accepted for weights and scores
_HISTORY_KINDS = ("bool", "int", "float", "str", "json")
#: Largest provenance accepted on reading (bytes of its JSON text). ticketlab's own provenances
#: are a few KiB (a ResNet's topology included); the bound keeps ``json.loads`` and ``inspect``
#: fast on a file made to stall them.
MAX_PROVENANCE_BYTES = 16 * 2**20
#: Most rows a history without any column may declare (nothing stored bounds them).
MAX_EMPTY_HISTORY_ROWS = 1_000_000
#: Environment variable that overrides the default ``max_params`` of :func:`load` and :func:`read_info`.
MAX_PARAMS_ENV = "TICKETLAB_MAX_PARAMS"
#: Bytes per parameter in the default ``max_params``: an unpacked mask (1 byte) and two float32
#: weight snapshots (init and final, 4 bytes each).
BYTES_PER_PARAM = 9
_ROW_BYTES, _CELL_BYTES = 64, 100  # rough memory of one history row (a dict) and of one cell in it
_LIBVER = ("v110", "v110")  # HDF5 1.10 object formats: readable by any HDF5 >= 1.10 (2017), and
# a one-chunk dataset needs no chunk B-tree (~2 KiB less per mask than the 1.8 format)


# ---------------------------------------------------------------------------------- writing
def save(ticket: Ticket, path: str | os.PathLike[str]) -> Path:
    """Write ``ticket`` to ``path`` (HDF5, format version 1) atomically and return the path.

    The file is written to a temporary file in the same folder, flushed to disk and then
    renamed over ``path``, so a crash never leaves a half-written file and an existing file
    stays intact until the rename.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> t = Ticket(masks={"w": np.array([True, False, True])})
        >>> save(t, pathlib.Path(tempfile.mkdtemp()) / "t.h5").name
        't.h5'
    """
    target = Path(path)
    if not isinstance(ticket, Ticket):
        raise ConfigError(f"cannot write '{target}': expected a Ticket, got {type(ticket).__name__}")
    folder = target.parent
    if not folder.exists():
        raise ConfigError(f"cannot write '{target}': folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ConfigError(f"cannot write '{target}': '{folder}' is not a folder")
    if target.is_dir():
        raise ConfigError(f"cannot write '{target}': it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write '{target}': no permission to write in folder '{folder}'")

    # Encode everything first, so that bad input fails before any file is touched.
    provenance = _encode_provenance(target, ticket.provenance)
    masks = [(name, _pack(mask), mask.shape, int(np.count_nonzero(mask))) for name, mask in ticket.masks.items()]
    arrays = {f"weights/{snap}": ticket.weights[snap] for snap in SNAPSHOTS if snap in ticket.weights}
    if ticket.scores:
        arrays["scores"] = ticket.scores
    for group, items in arrays.items():
        for name, arr in items.items():
            if arr.dtype.kind not in _ARRAY_KINDS:
                raise ConfigError(f"cannot write '{target}': {group} '{name}' holds {arr.dtype} data, not numbers")
    columns = _history_columns(target, ticket.history)

    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w-", libver=_LIBVER, track_order=True) as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["created_by"] = f"ticketlab {__version__}"
            f.attrs["provenance"] = provenance
            _write_masks(f, masks)
            for group, items in arrays.items():
                _write_arrays(_new_group(f, group), items)
            if ticket.history:
                _write_history(f, len(ticket.history), columns)
    return target


def _encode_provenance(target: Path, provenance: Mapping[str, Any]) -> str:
    def default(obj: Any) -> Any:  # numpy scalars and arrays become plain JSON numbers and lists
        if isinstance(obj, (np.generic, np.ndarray)):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")

    try:
        return json.dumps(dict(provenance), default=default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot write '{target}': the provenance is not JSON ({exc})") from None


def _pack(mask: np.ndarray) -> np.ndarray:
    # C-order flattening, 8 mask entries per byte, first entry in the most significant bit.
    return np.packbits(mask.reshape(-1), bitorder="big")


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    """Chunk shape of at most ~_CHUNK_BYTES, cutting leading axes first; None = no chunking."""
    if not shape or 0 in shape:
        return None
    chunk = list(shape)
    nbytes = itemsize * math.prod(shape)
    for axis in range(len(shape)):
        if nbytes <= _CHUNK_BYTES:
            break
        per_unit = nbytes // chunk[axis]
        chunk[axis] = max(1, _CHUNK_BYTES // per_unit)
        nbytes = per_unit * chunk[axis]
    return tuple(chunk)


def _create(group: h5py.Group, key: str, data: np.ndarray, filters: Mapping[str, Any]) -> h5py.Dataset:
    chunks = _chunks(data.shape, data.dtype.itemsize)
    if chunks is None:  # empty or scalar arrays cannot be filtered
        return group.create_dataset(key, data=data)
    # fletcher32 on every array (compressed or not): a checksum per chunk, so a damaged file fails
    # to load, naming the object, instead of loading wrong values
    return group.create_dataset(key, data=data, chunks=chunks, fletcher32=True, **filters)


def _text_checksum(values: Sequence[str]) -> int:
    """CRC-32 of a string column (HDF5 cannot filter variable-length strings, so no fletcher32)."""
    return zlib.crc32(json.dumps(list(values), ensure_ascii=False).encode("utf-8"))


def _read(ds: h5py.Dataset, what: str) -> np.ndarray:
    """``ds[()]``, decompressing at most its declared size (``ticketlab._hdf5.read_dataset``);
    a failed checksum, or any damage h5py detects, is named as ``what``."""
    try:
        return _hdf5.read_dataset(ds, what)
    except _hdf5.DatasetError as exc:
        raise _Bad(str(exc)) from None


def _verify(ds: h5py.Dataset, what: str) -> None:
    """Verify a dataset's checksums chunk by chunk, without keeping its data."""
    try:
        _hdf5.verify_dataset(ds, what)
    except _hdf5.DatasetError as exc:
        raise _Bad(str(exc)) from None


def _check(ds: h5py.Dataset, what: str) -> h5py.Dataset:
    """``ds``, once its declared size is known to be backed by stored bytes (nothing is read)."""
    try:
        _hdf5.check_dataset(ds, what)
    except _hdf5.DatasetError as exc:
        raise _Bad(str(exc)) from None
    return ds


def _new_group(f: h5py.File, path: str) -> h5py.Group:
    """Create group ``path`` (and its parents) keeping creation order, so h5py lists 0, 1, 2, ..."""
    group: h5py.Group = f
    for part in path.split("/"):
        group = group[part] if part in group else group.create_group(part, track_order=True)
    return group


def _write_masks(f: h5py.File, masks: list[tuple[str, np.ndarray, tuple[int, ...], int]]) -> None:
    f.create_dataset("names", data=[name for name, *_ in masks], dtype=h5py.string_dtype())
    group = _new_group(f, "masks")
    group.attrs["count"] = np.int64(len(masks))
    for i, (name, packed, shape, kept) in enumerate(masks):
        ds = _create(group, str(i), packed, _MASK_FILTERS)
        ds.attrs["name"] = name
        ds.attrs["shape"] = np.array(shape, dtype=np.int64)
        ds.attrs["kept"] = np.int64(kept)


def _write_arrays(group: h5py.Group, arrays: Mapping[str, np.ndarray]) -> None:
    group.attrs["count"] = np.int64(len(arrays))
    for i, (name, arr) in enumerate(arrays.items()):
        zeros = arr.size - np.count_nonzero(arr)
        ds = _create(group, str(i), arr, _ARRAY_FILTERS if zeros >= _ARRAY_MIN_ZEROS * arr.size else {})
        ds.attrs["name"] = name


def _history_columns(target: Path, rows: list[dict[str, Any]]) -> list[tuple[str, str, Any, np.ndarray | None]]:
    """Split history rows into typed columns: (name, kind, values, present-or-None)."""
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        for key in row:
            if not isinstance(key, str):
                raise ConfigError(f"cannot write '{target}': history row {i} has a non-string key {key!r}")
            names.setdefault(key)
    columns = []
    for name in names:
        present = np.array([name in row for row in rows], dtype=bool)
        values = [row[name] for row in rows if name in row]
        kind, data = _encode_column(target, name, values)
        fill = {"str": "", "json": "null"}.get(kind, 0)  # absent cells; the 'present' list flags them
        full = np.full(len(rows), fill, dtype=data.dtype)
        full[present] = data
        columns.append((name, kind, full, None if present.all() else present))
    return columns


def _encode_column(target: Path, name: str, values: list[Any]) -> tuple[str, np.ndarray]:
    def every(types: tuple[type, ...], exclude: tuple[type, ...] = ()) -> bool:
        return all(isinstance(v, types) and not isinstance(v, exclude) for v in values)

    if every((bool, np.bool_)):
        return "bool", np.array(values, dtype=bool)
    if every((int, np.integer), (bool, np.bool_)) and all(-(2**63) <= int(v) < 2**63 for v in values):
        return "int", np.array([int(v) for v in values], dtype=np.int64)
    if every((float, np.floating, type(None))) and any(v is not None for v in values):
        return "float", np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    if every((str,)) and not any("\0" in v for v in values):  # HDF5 strings end at a NUL
        return "str", np.array(values, dtype=object)
    try:  # mixed or nested values: one JSON text per cell, exact for JSON data
        return "json", np.array([json.dumps(v, ensure_ascii=False) for v in values], dtype=object)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot write '{target}': history column '{name}' holds a value that is not JSON ({exc})"
        ) from None


def _write_history(f: h5py.File, n_rows: int, columns: list[tuple[str, str, Any, np.ndarray | None]]) -> None:
    group = _new_group(f, "history")
    group.attrs["rows"] = np.int64(n_rows)
    group.attrs["columns"] = np.int64(len(columns))
    for j, (name, kind, data, present) in enumerate(columns):
        if data.dtype == object:
            ds = group.create_dataset(str(j), data=data, dtype=h5py.string_dtype())
            ds.attrs["crc32"] = np.int64(_text_checksum(data.tolist()))
        else:
            ds = _create(group, str(j), data, {})
        ds.attrs["name"] = name
        ds.attrs["kind"] = kind
        if present is not None:
            _create(_new_group(f, "history/present"), str(j), present, {})


# ---------------------------------------------------------------------------------- reading
class _Bad(Exception):
    """A problem found while reading; turned into a TicketFormatError naming the file."""


@contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[tuple[Path, h5py.File]]:
    """Open a ticket file for reading, check the marker and version, and map every failure to
    one TicketFormatError sentence."""
    p = Path(path)
    if not p.exists():
        raise TicketFormatError(f"cannot read '{p}': no such file")
    if p.is_dir():
        raise TicketFormatError(f"cannot read '{p}': it is a folder, not a ticket file")
    if not os.access(p, os.R_OK):
        raise TicketFormatError(f"cannot read '{p}': permission denied")
    try:
        if not h5py.is_hdf5(p):
            raise _Bad("not an HDF5 file, so not a ticket file")
        try:
            f = h5py.File(p, "r")
        except OSError as exc:
            raise _Bad(f"the HDF5 file is truncated or damaged ({_h5_reason(exc)})") from None
        with f:
            _check_header(f)
            yield p, f
    except TicketlabError:
        raise
    except _Bad as exc:
        raise TicketFormatError(f"cannot read '{p}': {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
        raise TicketFormatError(f"cannot read '{p}': the file is damaged ({_h5_reason(exc)})") from None


_h5_reason = _hdf5.h5_reason


def _check_header(f: h5py.File) -> None:
    marker = f.attrs.get("format")
    if marker != FORMAT:
        raise _Bad(f"an HDF5 file but not a ticket file (no format marker '{FORMAT}')")
    version = f.attrs.get("format_version")
    if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
        raise _Bad(f"the format_version attribute is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise _Bad(
            f"written by a newer ticketlab (format version {int(version)}; this ticketlab reads up to "
            f"{FORMAT_VERSION}): upgrade ticketlab"
        )
    if version < 1:
        raise _Bad(f"unknown format version {int(version)}")
    _check_self_contained(f)


def _check_self_contained(f: h5py.File) -> None:
    """Refuse a file whose data would come from elsewhere: external or soft links, datasets with
    external storage (bytes in another file, e.g. a system file or a device) and virtual datasets.
    Only groups and datasets stored in this file are allowed (hard links within the file)."""
    pending: list[h5py.Group] = [f]
    while pending:
        group = pending.pop()
        for key in group:
            link = group.get(key, getlink=True)
            where = f"{group.name.rstrip('/')}/{key}"
            if isinstance(link, h5py.ExternalLink):
                raise _Bad(f"'{where}' is an external link to '{link.filename}': a ticket must be one self-contained file")
            if isinstance(link, h5py.SoftLink):
                raise _Bad(f"'{where}' is a soft link to '{link.path}': a ticket file holds no links")
            obj = group.get(key)
            if isinstance(obj, h5py.Group):
                pending.append(obj)
            elif isinstance(obj, h5py.Dataset):
                if obj.external:
                    raise _Bad(f"dataset '{where}' stores its bytes in another file ({obj.external[0][0]}): "
                               "a ticket must be one self-contained file")
                if obj.is_virtual:
                    raise _Bad(f"dataset '{where}' is virtual (its data lives in other files): "
                               "a ticket must be one self-contained file")


def _provenance(f: h5py.File) -> dict[str, Any]:
    if "provenance" in f.attrs and f.attrs.get_id("provenance").shape not in ((), None):
        raise _Bad("the provenance attribute is not one string")
    text = f.attrs.get("provenance")
    if not isinstance(text, str):
        raise _Bad("the provenance attribute is missing or not a string")
    if len(text) > MAX_PROVENANCE_BYTES // 4 and len(text.encode("utf-8")) > MAX_PROVENANCE_BYTES:
        raise _Bad(f"the provenance is {len(text.encode('utf-8')):,} bytes of JSON, more than the "
                   f"{MAX_PROVENANCE_BYTES:,} a ticket's provenance may hold")
    from ticketlab.bounded import Malformed, Refused, parse_json

    try:
        value = parse_json(text)
    except Malformed as exc:
        raise _Bad(f"the provenance is malformed JSON: {exc}") from None
    except Refused as exc:
        raise _Bad(f"the provenance is JSON nested too deeply: {exc}") from None
    if not isinstance(value, dict):
        raise _Bad(f"the provenance is a JSON {type(value).__name__}, not an object")
    return value


def _int_attr(ds: h5py.HLObject, key: str) -> int:
    value = ds.attrs.get(key)
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        raise _Bad(f"'{ds.name}' has no valid '{key}' attribute")
    return int(value)


def _group(parent: h5py.Group, key: str) -> h5py.Group:
    group = parent.get(key)
    if not isinstance(group, h5py.Group):
        raise _Bad(f"'{parent.name.rstrip('/')}/{key}' is missing or not a group")
    return group


def _indexed(group: h5py.Group) -> list[tuple[str, h5py.Dataset]]:
    """The (name, dataset) pairs of a group of datasets '0'..'count-1', in order."""
    out: list[tuple[str, h5py.Dataset]] = []
    for i in range(_int_attr(group, "count")):  # stops at the first missing one, so a huge count is harmless
        ds = group.get(str(i))
        if not isinstance(ds, h5py.Dataset):
            raise _Bad(f"dataset '{group.name}/{i}' is missing")
        name = ds.attrs.get("name")
        if not isinstance(name, str):
            raise _Bad(f"dataset '{ds.name}' has no 'name' attribute")
        out.append((name, ds))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _Bad(f"'{group.name}' names parameter '{dup}' twice")
    return out


def _mask_meta(f: h5py.File) -> list[tuple[str, h5py.Dataset, tuple[int, ...], int]]:
    """Names, datasets, shapes and kept counts of the masks, checked without reading the bits."""
    group, names = f.get("masks"), f.get("names")
    if not isinstance(group, h5py.Group) or not isinstance(names, h5py.Dataset):
        raise _Bad("the 'masks' group or the 'names' list is missing")
    entries = _indexed(group)
    if names.shape != (len(entries),) or names.dtype.kind != "O":
        raise _Bad(f"the 'names' list has shape {names.shape}, not one name for each of the {len(entries)} masks")
    _check(names, "the 'names' list")
    try:
        order = [str(n) for n in names.asstr()[()].tolist()]
    except (OSError, TypeError, ValueError) as exc:
        raise _Bad(f"the 'names' list is damaged ({_h5_reason(exc)})") from None
    if order != [n for n, _ in entries]:
        raise _Bad("the 'names' list disagrees with the masks' 'name' attributes")
    if not entries:
        raise _Bad("it holds no masks")
    out = []
    for name, ds in entries:
        if "shape" in ds.attrs and math.prod(ds.attrs.get_id("shape").shape or ()) > _hdf5.MAX_NDIM:
            raise _Bad(f"mask '{name}' has a 'shape' attribute of more than {_hdf5.MAX_NDIM} dimensions")
        shape_attr = ds.attrs.get("shape")
        shape_arr = np.asarray(shape_attr) if shape_attr is not None else None
        if (
            shape_arr is None
            or shape_arr.ndim != 1
            or shape_arr.size == 0
            or shape_arr.dtype.kind not in "iu"
            or (shape_arr < 0).any()
        ):
            raise _Bad(f"mask '{name}' has no valid 'shape' attribute (masks have 1 or more dimensions)")
        shape = tuple(int(s) for s in shape_arr)
        size = math.prod(shape)
        need = (size + 7) // 8
        if ds.dtype != np.uint8 or ds.shape != (need,):
            raise _Bad(
                f"mask '{name}' holds {ds.shape} {ds.dtype} packed data but its shape {shape} needs ({need},) uint8"
            )
        kept = _int_attr(ds, "kept")
        if kept > size:
            raise _Bad(f"mask '{name}' records {kept} kept weights out of {size}")
        out.append((name, _check(ds, f"mask '{name}'"), shape, kept))
    return out


def _unpack(name: str, ds: h5py.Dataset, shape: tuple[int, ...], kept: int) -> np.ndarray:
    size = math.prod(shape)
    packed = _read(ds, f"mask '{name}'")
    mask = np.unpackbits(packed, count=size, bitorder="big").view(np.bool_).reshape(shape)
    if int(np.count_nonzero(mask)) != kept:
        raise _Bad(f"mask '{name}' keeps {np.count_nonzero(mask)} weights but records {kept}")
    if size % 8 and packed[-1] & ((1 << (8 - size % 8)) - 1):
        raise _Bad(f"mask '{name}' has set padding bits after its last entry")
    return mask


def _array_meta(group: h5py.Group, where: str, shapes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, h5py.Dataset]]:
    entries = _indexed(group)
    for name, ds in entries:
        if ds.dtype.kind not in _ARRAY_KINDS:
            raise _Bad(f"{where} '{name}' holds {ds.dtype} data, not numbers")
        if name in shapes and ds.shape != shapes[name]:
            raise _Bad(f"{where} '{name}' has shape {ds.shape} but its mask has shape {shapes[name]}")
        _check(ds, f"{where} '{name}'")
    return entries


def _snapshots(f: h5py.File, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, list[tuple[str, h5py.Dataset]]]:
    group = f.get("weights")
    if group is None:
        return {}
    if not isinstance(group, h5py.Group):
        raise _Bad("'weights' is not a group")
    out = {}
    for snap in group:
        if snap not in SNAPSHOTS:
            continue  # an unknown snapshot (a newer writer's) is ignored: see _unknown_objects
        entries = _array_meta(_group(group, snap), f"weight snapshot '{snap}'", shapes)
        have = {n for n, _ in entries}
        missing = [n for n in shapes if n not in have]
        if missing:
            raise _Bad(f"weight snapshot '{snap}' has no weights for masked parameter '{missing[0]}'")
        out[snap] = entries
    return {snap: out[snap] for snap in SNAPSHOTS if snap in out}


_Column = tuple[str, str, h5py.Dataset, "h5py.Dataset | None"]  # name, kind, values, present


def _history_meta(f: h5py.File) -> tuple[int, list[_Column]]:
    group = f.get("history")
    if group is None:
        return 0, []
    group = _group(f, "history")
    n_rows, n_cols = _int_attr(group, "rows"), _int_attr(group, "columns")
    if n_cols == 0 and n_rows > MAX_EMPTY_HISTORY_ROWS:  # rows with columns are bounded by their storage
        raise _Bad(f"the history declares {n_rows:,} rows without any column (at most "
                   f"{MAX_EMPTY_HISTORY_ROWS:,} empty rows are accepted)")
    present = group.get("present")
    if present is not None and not isinstance(present, h5py.Group):
        raise _Bad("'history/present' is not a group")
    columns = []
    for j in range(n_cols):
        ds = group.get(str(j))
        if not isinstance(ds, h5py.Dataset) or ds.shape != (n_rows,):
            raise _Bad(f"history column {j} is missing or does not have {n_rows} rows")
        name, kind = ds.attrs.get("name"), ds.attrs.get("kind")
        if not isinstance(name, str) or kind not in _HISTORY_KINDS:
            raise _Bad(f"history column {j} has no valid 'name' and 'kind' attributes")
        if (ds.dtype.kind == "O") != (kind in ("str", "json")):
            raise _Bad(f"history column '{name}' of kind '{kind}' holds {ds.dtype} data")
        mask = present.get(str(j)) if present is not None else None
        if mask is not None and (not isinstance(mask, h5py.Dataset) or mask.shape != (n_rows,)
                                 or mask.dtype != np.bool_):
            raise _Bad(f"history column '{name}' has a malformed 'present' list")
        _check(ds, f"history column '{name}'")
        if mask is not None:
            _check(mask, f"history column '{name}'")
        columns.append((name, kind, ds, mask))
    return n_rows, columns


def _read_history(n_rows: int, columns: list[_Column], build: bool = True) -> list[dict[str, Any]]:
    """The history rows; with ``build=False`` only the columns are read and checked (checksums,
    JSON cells), and no rows are made."""
    rows: list[dict[str, Any]] = [{} for _ in range(n_rows)] if build else []
    for name, kind, ds, present in columns:
        if kind in ("str", "json"):
            try:
                values = ds.asstr()[()].tolist()
            except (OSError, TypeError, ValueError) as exc:
                raise _Bad(f"history column '{name}' is damaged ({_h5_reason(exc)})") from None
            if "crc32" in ds.attrs and int(ds.attrs["crc32"]) != _text_checksum(values):
                raise _Bad(f"history column '{name}' is damaged (checksum mismatch)")
        else:
            values = _read(ds, f"history column '{name}'").tolist()
        if not build:
            if kind == "json":
                for value in values:
                    _json_cell(name, value)
            if present is not None:
                _read(present, f"history column '{name}'")
            continue
        here = _read(present, f"history column '{name}'").tolist() if present is not None else [True] * n_rows
        for row, value, keep in zip(rows, values, here):
            if keep:
                row[name] = _json_cell(name, value) if kind == "json" else value
    return rows


def _json_cell(name: str, text: str) -> Any:
    from ticketlab.bounded import Malformed, Refused, parse_json

    try:
        return parse_json(text)
    except Malformed:
        raise _Bad(f"history column '{name}' holds malformed JSON") from None
    except Refused as exc:
        raise _Bad(f"history column '{name}' holds JSON nested too deeply: {exc}") from None


@dataclass
class _Contents:
    """What a file declares, checked without reading any array (shared by load and read_info)."""

    provenance: dict[str, Any]
    masks: list[tuple[str, h5py.Dataset, tuple[int, ...], int]]
    snapshots: dict[str, list[tuple[str, h5py.Dataset]]]
    scores: list[tuple[str, h5py.Dataset]]
    n_rows: int
    columns: list[_Column]
    notes: list[str]  # warnings to give once the file is read


def default_max_params() -> int:
    """The default ``max_params`` of :func:`load`: ``$TICKETLAB_MAX_PARAMS`` when set, else as many
    parameters as fit in half the available memory (:func:`ticketlab._hdf5.available_memory`) at
    :data:`BYTES_PER_PARAM` bytes each (an unpacked mask and two float32 snapshots).

    Example:
        >>> default_max_params() > 10**6
        True
    """
    text = os.environ.get(MAX_PARAMS_ENV, "").strip()
    if text:
        try:
            value = int(float(text)) if "e" in text.lower() else int(text.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"{MAX_PARAMS_ENV}={text!r} is not a positive whole number of parameters")
        return value
    return max(1, _hdf5.available_memory() // 2 // BYTES_PER_PARAM)


def _contents(f: h5py.File, max_params: int | None) -> _Contents:
    provenance = _provenance(f)
    meta = _mask_meta(f)
    shapes = {name: shape for name, _, shape, _ in meta}
    snaps = _snapshots(f, shapes)
    scores = _array_meta(_group(f, "scores"), "scores", shapes) if "scores" in f else []
    n_rows, columns = _history_meta(f)
    limit = default_max_params() if max_params is None else max_params
    n_params = sum(math.prod(shape) for shape in shapes.values())
    where = (f"max_params = {limit:,}" + ("" if max_params is not None or os.environ.get(MAX_PARAMS_ENV)
                                          else f", half the available memory at {BYTES_PER_PARAM} bytes a parameter"))
    override = f"a genuine ticket this large loads with {MAX_PARAMS_ENV}=N or load(..., max_params=N)"
    if n_params > limit:
        raise _Bad(f"its masks declare {n_params:,} parameters, more than {where}; {override}")
    for name, ds in [*(x for items in snaps.values() for x in items), *scores]:
        if math.prod(ds.shape) > limit:
            raise _Bad(f"array '{name}' declares {math.prod(ds.shape):,} values, more than {where}; {override}")
    notes = _unknown_objects(f)
    topo = provenance.get("topology")
    if topo is not None:
        from ticketlab.topology import topology_problem

        problem = topology_problem(topo, shapes, limit)
        if problem:  # the graph metrics then read the masks as a chain, and say so
            del provenance["topology"]
            notes.append(f"ignores the provenance's topology, which is invalid ({problem})")
    return _Contents(provenance, meta, snaps, scores, n_rows, columns, notes)


def _unknown_objects(f: h5py.File) -> list[str]:
    """A note naming the objects this ticketlab does not know (a newer writer's optional parts):
    readers ignore them (docs/format.md, "Versions"), and a ticket saved again drops them."""
    known = {"names", "masks", "weights", "scores", "history"}
    unknown = [f"/{k}" for k in f if k not in known]
    weights = f.get("weights")
    if isinstance(weights, h5py.Group):
        unknown += [f"/weights/{k}" for k in weights if k not in SNAPSHOTS]
    if not unknown:
        return []
    shown = ", ".join(f"'{u}'" for u in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
    return [f"ignores {shown}, which this ticketlab does not know (written by a newer version?)"]


def _check_memory(c: _Contents, *, masks: bool, weights: bool, scores: bool, history: bool) -> None:
    """Refuse a read that would need more memory than is available, before allocating any."""
    need = 0
    if masks:  # the packed bytes, then the unpacked bool array
        need += sum(_hdf5.nbytes(ds) + math.prod(shape) for _, ds, shape, _ in c.masks)
    if weights:
        need += sum(_hdf5.nbytes(ds) for items in c.snapshots.values() for _, ds in items)
    if scores:
        need += sum(_hdf5.nbytes(ds) for _, ds in c.scores)
    if history:
        need += c.n_rows * (_ROW_BYTES + _CELL_BYTES * len(c.columns))
    if need > 1 << 26:  # measuring costs a few file reads; below 64 MiB it cannot matter
        avail = _hdf5.available_memory()
        if need > avail:
            raise _Bad(f"reading it needs about {_gib(need)} of memory, but {_gib(avail)} is available")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def _verify_skipped(c: _Contents, *, weights: bool, scores: bool, history: bool) -> None:
    """Check the parts a reader skips as fully as if it read them (checksums, JSON cells), chunk by
    chunk, so that a damaged file fails whichever parts a command needs."""
    if not weights:
        for snap, items in c.snapshots.items():
            for n, ds in items:
                _verify(ds, f"weight snapshot '{snap}' '{n}'")
    if not scores:
        for n, ds in c.scores:
            _verify(ds, f"scores '{n}'")
    if not history:
        _read_history(c.n_rows, c.columns, build=False)


def load(path: str | os.PathLike[str], *, weights: bool = True, scores: bool = True, history: bool = True,
         max_params: int | None = None, verify: bool = True) -> Ticket:
    """Read a ticket file written by :func:`save`, checking it fully.

    ``weights=False``, ``scores=False`` or ``history=False`` leave those (possibly large) parts
    out of the ticket; they are still checked (shapes against the masks and, unless
    ``verify=False``, their checksums, read chunk by chunk without keeping them). Raises
    :class:`~ticketlab.errors.TicketFormatError` (one sentence naming the file) when the file is
    missing, not HDF5, truncated, not a ticket, of a newer format version or inconsistent.

    Every size the file declares is checked before anything is allocated: against the bytes the
    file stores, against the other declarations, against ``max_params`` (the most parameters a
    ticket may have; default :func:`default_max_params`) and against the available memory
    (``docs/format.md``, "Untrusted files").

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = save(Ticket(masks={"w": np.ones(5, bool)}), pathlib.Path(tempfile.mkdtemp()) / "t.h5")
        >>> load(path, weights=False).density
        1.0
    """
    with _open(path) as (p, f):
        c = _contents(f, max_params)
        _check_memory(c, masks=True, weights=weights, scores=scores, history=history or verify)
        masks = {name: _unpack(name, ds, shape, kept) for name, ds, shape, kept in c.masks}
        weight_arrays = ({snap: {n: _read(ds, f"weight snapshot '{snap}' '{n}'") for n, ds in items}
                          for snap, items in c.snapshots.items()} if weights else {})
        score_arrays = {n: _read(ds, f"scores '{n}'") for n, ds in c.scores} if scores else {}
        rows = _read_history(c.n_rows, c.columns) if history else []
        if verify:
            _verify_skipped(c, weights=weights, scores=scores, history=history)
    try:
        ticket = Ticket(masks=masks, provenance=c.provenance, weights=weight_arrays, scores=score_arrays,
                        history=rows)
    except ConfigError as exc:
        raise TicketFormatError(f"cannot read '{p}': {exc}") from None
    for note in c.notes:
        warnings.warn(f"'{p}': {note}", TicketlabWarning, stacklevel=2)
    _warn_inconsistent(p, ticket)
    return ticket


def _warn_inconsistent(path: Path, ticket: Ticket) -> None:
    """Warn (once per file) when the provenance's density disagrees with the masks, or when a
    weight snapshot holds NaN or infinite values (the sign metrics leave those weights out)."""
    achieved = ticket.provenance.get("achieved_density")
    if isinstance(achieved, (int, float)) and not isinstance(achieved, bool) and ticket.total:
        if abs(float(achieved) - ticket.density) > 1e-9:
            warnings.warn(f"'{path}': the provenance records density {achieved:.6g} but the masks keep "
                          f"{ticket.density:.6g}", TicketlabWarning, stacklevel=3)
    for snap, arrays in ticket.weights.items():
        bad = [n for n, w in arrays.items() if np.issubdtype(w.dtype, np.floating) and not np.isfinite(w).all()]
        if bad:
            warnings.warn(f"'{path}': weight snapshot '{snap}' holds NaN or infinite values in "
                          f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}", TicketlabWarning, stacklevel=3)


def read_info(path: str | os.PathLike[str], *, history: bool = False,
              max_params: int | None = None, verify: bool = False) -> dict[str, Any]:
    """Provenance and per-layer counts of a ticket file, without unpacking its masks (fast).

    Returns a dict with keys ``path``, ``format_version``, ``created_by``, ``file_bytes``,
    ``provenance`` (dict), ``layers`` (name -> ``{"shape", "kept", "total"}``, in order),
    ``kept``, ``total``, ``density``, ``snapshots`` (list of weight snapshot names),
    ``scores`` (bool), ``history_rows`` and ``history_columns`` (list of names); with
    ``history=True`` also ``history`` (the rows, as :func:`load` reads them). Every declared size
    is checked as by :func:`load`; ``verify=True`` also reads every part as :func:`load` does
    (masks unpacked and counted, checksums of every array, chunk by chunk), so that a file
    ``read_info`` accepts is one that ``load`` accepts (``ticketlab inspect`` does this).

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = save(Ticket(masks={"w": np.array([1, 0, 0, 1])}), pathlib.Path(tempfile.mkdtemp()) / "t.h5")
        >>> info = read_info(path)
        >>> info["kept"], info["total"], info["density"]
        (2, 4, 0.5)
    """
    with _open(path) as (p, f):  # the same checks as load, without reading masks or arrays
        c = _contents(f, max_params)
        _check_memory(c, masks=verify, weights=False, scores=False, history=history or verify)
        provenance, meta, snaps, n_rows, columns = c.provenance, c.masks, c.snapshots, c.n_rows, c.columns
        has_scores = bool(c.scores)
        rows = _read_history(n_rows, columns) if history else None
        if verify:
            for name, ds, shape, kept in meta:
                _unpack(name, ds, shape, kept)
            _verify_skipped(c, weights=False, scores=False, history=history)
        created_by = f.attrs.get("created_by", "")
        version = int(f.attrs["format_version"])
    for note in c.notes:
        warnings.warn(f"'{p}': {note}", TicketlabWarning, stacklevel=2)
    layers = {name: {"shape": shape, "kept": kept, "total": math.prod(shape)} for name, _, shape, kept in meta}
    kept = sum(layer["kept"] for layer in layers.values())
    total = sum(layer["total"] for layer in layers.values())
    info = {
        "path": str(p),
        "format_version": version,
        "created_by": str(created_by),
        "file_bytes": p.stat().st_size,
        "provenance": provenance,
        "layers": layers,
        "kept": kept,
        "total": total,
        "density": kept / total if total else 0.0,
        "snapshots": list(snaps),
        "scores": has_scores,
        "history_rows": n_rows,
        "history_columns": [name for name, *_ in columns],
    }
    if rows is not None:
        info["history"] = rows
    return info
