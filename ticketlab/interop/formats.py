"""Mask files of other tools: read (untrusted, size-checked) and write torch, safetensors and npz.

A mask file holds named arrays. Which of them are masks follows one rule for every format: when
some names end in ``_mask`` (``torch.nn.utils.prune``'s buffers, as in a pruned model's
``state_dict()``), exactly those are the masks, named without the suffix (``fc.weight_mask`` ->
``fc.weight``) and every other entry (``fc.weight_orig``, biases) is ignored; otherwise every
entry is a mask under its own name (open_lth's ``mask.pth``: parameter name -> 0/1 int tensor).
An open_lth ``PrunedModel`` state dict (the wrapped model's entries as ``model.NAME``, a buffer
``mask_`` + NAME with ``.`` written ``___`` per pruned parameter) gives those buffers as masks
under the parameter's name (``mask_fc_layers___0___weight`` -> ``fc_layers.0.weight``).
A dict holding something else than tensors (a training checkpoint) is refused saying which
entry holds its state dict and whether that has masks.
A mask holds booleans, or integers or floats that are all exactly 0 or 1.

Nothing is unpickled and every size a file declares is checked before it is allocated
(``docs/interop.md``, "Untrusted files"):

* torch (``.pt`` / ``.pth``, torch's zip format): read by :func:`ticketlab.bounded.load_torch`,
  the one bounded torch reader (checkpoints use it too): the zip's declared sizes, compression
  ratios and inflated total are bounded first, then ``torch.load(weights_only=True)`` reads it
  (memory-mapped when its members are stored, as ``torch.save`` writes them), and every tensor's
  strides and storage are checked (no stride-0 or overlapping views declaring more values than
  are stored); a bare pickle (or torch's pre-1.6 format) is refused.
* npz: each member's ``.npy`` header is read and checked (dtype, no Python objects, shape
  against the member's declared size) before ``numpy.lib.format.read_array(allow_pickle=False)``.
* safetensors: the header length, every dtype, shape and data offset is checked against the
  file's size before the optional ``safetensors`` package reads the tensors.

The total of the masks is bounded by ``max_params`` (default
:func:`ticketlab.fileformat.default_max_params`). This module imports torch only to read and
write torch files.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
    >>> _ = write_masks({"fc.weight": np.array([[True, False]])}, path, "npz")
    >>> read_masks(path).masks["fc.weight"]
    array([[ True, False]])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ticketlab.atomic import atomic_path
from ticketlab.errors import ConfigError, TicketFormatError

#: Formats :func:`write_masks` writes (``ticketlab export --to``).
FORMATS = ("torch-prune", "safetensors", "npz")
#: The suffix of ``torch.nn.utils.prune``'s mask buffers.
MASK_SUFFIX = "_mask"
#: Largest safetensors header accepted (the safetensors package's own limit).
MAX_SAFETENSORS_HEADER = 100 * 2**20
#: Bytes a zip may declare beyond 8 per allowed parameter (torch's pickle, small members).
_ZIP_SLACK = 64 * 2**20
_NPY_MAX_HEADER = 10_000  # numpy's own default bound on a .npy header
_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_SAFETENSORS_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "U32": "<u4",
                       "I32": "<i4", "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8"}
_WEIGHTS_HINT = (" (weights rather than a mask? a state dict's masks are torch.nn.utils.prune's *_mask buffers "
                 "or open_lth's mask_* buffers)")
_INSTALL = ("reading or writing safetensors files needs the optional safetensors package: "
            "pip install safetensors (or pip install 'ticketlab[safetensors]')")


@dataclass(frozen=True)
class MaskFile:
    """What :func:`read_masks` found in a file.

    Attributes:
        masks: mask name -> boolean array, in the file's order.
        format: ``"torch"``, ``"safetensors"`` or ``"npz"``.
        convention: ``"*_mask"`` (names with the suffix, others ignored), ``"open_lth PrunedModel"``
            (``mask_fc___weight`` -> ``fc.weight``, others ignored) or ``"plain"``.
        sha256: hex digest of the file's bytes.
        ignored: how many entries were not masks (under the ``*_mask`` convention).
    """

    masks: dict[str, np.ndarray]
    format: str
    convention: str
    sha256: str
    ignored: int = 0


class _Bad(Exception):
    """A reason a file cannot be read; :func:`read_masks` names the file."""


# ------------------------------------------------------------------------------------ reading
def read_masks(path: str | os.PathLike[str], *, max_params: int | None = None) -> MaskFile:
    """The masks in a torch, safetensors or npz file (found from its first bytes, not its name).

    Raises :class:`~ticketlab.errors.TicketFormatError` (one sentence naming the file) for a
    file that is missing, of another kind, a pickle, damaged, declares more than ``max_params``
    mask entries or holds a mask with values other than 0 and 1.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = write_masks({"w": np.array([1, 0, 1], bool)}, pathlib.Path(tempfile.mkdtemp()) / "m.pt",
        ...                    "torch-prune")
        >>> found = read_masks(path)
        >>> found.format, found.convention, found.masks["w"].tolist()
        ('torch', '*_mask', [True, False, True])
    """
    from ticketlab.fileformat import MAX_PARAMS_ENV, default_max_params

    p = Path(path)
    limit = default_max_params() if max_params is None else int(max_params)
    try:
        if not p.is_file():
            raise _Bad("no such file" if not p.exists() else "it is not a file")
        kind = _detect(p)
        reader = {"torch": _read_torch, "npz": _read_npz, "safetensors": _read_safetensors}[kind]
        masks, convention, ignored, order = reader(p, limit)
        if not masks:
            raise _Bad("it holds no arrays")
        for name in masks:
            _check_name(name)
        total = sum(m.size for m in masks.values())
        if total > limit:
            raise _Bad(f"its masks hold {total:,} values, more than max_params = {limit:,}")
        digest = _sha256(p)
    except _Bad as exc:
        hint = f"; a genuine file this large reads with {MAX_PARAMS_ENV}=N" if "max_params" in str(exc) else ""
        raise TicketFormatError(f"cannot read masks from '{p}': {exc}{hint}") from None
    except OSError as exc:
        raise TicketFormatError(f"cannot read masks from '{p}': {exc.strerror or exc}") from None
    ordered = {n: masks[n] for n in order if n in masks} if order else masks
    return MaskFile(ordered, kind, convention, digest, ignored)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _detect(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, OverflowError) as exc:
            raise _Bad(f"it is a damaged zip file ({_first_line(exc)})") from None
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise _Bad("it is a zip file, but neither a torch file nor an npz file")
    if head[:1] == b"\x80":
        raise _Bad("it is a pickle (or a torch file in the pre-1.6 format), and ticketlab never unpickles "
                   "files; save the masks with a current torch.save, safetensors or numpy.savez")
    if head[:4] == b"\x89HDF":
        raise _Bad("it is an HDF5 file (a ticketlab ticket is read by ticketlab inspect / load, not imported)")
    if len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    raise _Bad("it is not a torch, safetensors or npz file")


def _check_name(name: str) -> None:
    """A mask name must be text a ticket file can store: UTF-8 without NUL characters (a lone
    surrogate or an embedded NUL would only fail later, when the ticket is saved)."""
    if "\0" in name:
        raise _Bad(f"mask name {name!r} holds a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(f"mask name {name!r} is not valid Unicode text (a lone surrogate)") from None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def _select(names: list[str]) -> tuple[dict[str, str], str]:
    """File key -> mask name, and the convention (see the module docstring)."""
    suffixed = [n for n in names if n.endswith(MASK_SUFFIX)]
    pruned_model = _pruned_model_masks(names)
    if pruned_model and not suffixed:
        return pruned_model, "open_lth PrunedModel"
    if not suffixed:
        return {n: n for n in names}, "plain"
    selected = {n: n[: -len(MASK_SUFFIX)] for n in suffixed}
    empty = next((k for k, v in selected.items() if not v), None)
    if empty is not None:
        raise _Bad(f"entry '{empty}' names no parameter")
    return selected, "*_mask"


def as_bool(name: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` as a boolean mask: booleans as they are, numbers only when all are 0 or 1.

    Example:
        >>> as_bool("w", np.array([0.0, 1.0])).tolist()
        [False, True]
    """
    if arr.ndim == 0:
        raise _Bad(f"mask '{name}' is a scalar, not an array")
    if arr.dtype.kind == "b":
        return arr.astype(np.bool_, copy=False)
    if arr.dtype.kind not in _KINDS:
        raise _Bad(f"mask '{name}' holds {arr.dtype} values, not booleans or numbers")
    if arr.size and not ((arr == 0) | (arr == 1)).all():
        raise _Bad(f"mask '{name}' holds values other than 0 and 1{_WEIGHTS_HINT}")
    return arr != 0


def _zip_bound(limit: int) -> tuple[int, str]:
    """The bytes a mask file's zip may declare, and how a message names that bound."""
    return 8 * limit + _ZIP_SLACK, f"max_params = {limit:,} (8 bytes a value)"


def _check_zip(path: Path, zf: zipfile.ZipFile, limit: int) -> list[zipfile.ZipInfo]:
    """The members, once :func:`ticketlab.bounded.check_zip` finds their declarations within bounds."""
    from ticketlab.bounded import Refused, check_zip

    bound, what = _zip_bound(limit)
    try:
        return check_zip(zf, path.stat().st_size, bound, what=what)
    except Refused as exc:
        raise _Bad(str(exc)) from None


#: What a reader returns: masks, convention, entries ignored, and the stored order (or []).
_Found = tuple[dict[str, np.ndarray], str, int, list[str]]


def _read_npz(path: Path, limit: int) -> _Found:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename[: -len(".npy")]: i for i in _check_zip(path, zf, limit)}
            selected, convention = _select(list(infos))
            headers = {key: _npy_header(zf, infos[key]) for key in selected}  # all checked first
            count = sum(math.prod(shape) for shape, _ in headers.values())
            if count > limit:
                raise _Bad(f"its masks declare {count:,} values, more than max_params = {limit:,}")
            masks = {}
            for key, name in selected.items():
                with zf.open(infos[key]) as fh:
                    arr = np.lib.format.read_array(fh, allow_pickle=False, max_header_size=_NPY_MAX_HEADER)
                masks[name] = as_bool(name, arr)
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise _Bad(f"it is damaged or encrypted ({_first_line(exc)})") from None  # RuntimeError: encrypted
    return masks, convention, len(infos) - len(selected), []


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """A member's shape and dtype from its ``.npy`` header, checked against its declared size."""
    name = info.filename
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_NPY_MAX_HEADER)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_NPY_MAX_HEADER)
            else:
                raise _Bad(f"member '{name}' is a .npy file of version {version}, not 1.0 or 2.0")
        except ValueError as exc:
            raise _Bad(f"member '{name}' is not a valid .npy file ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise _Bad(f"member '{name}' holds Python objects (a pickle), which ticketlab never loads")
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Bad(f"member '{name}' holds {dtype} values, not booleans or numbers")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > info.file_size:
        raise _Bad(f"member '{name}' declares shape {shape} ({nbytes:,} bytes) but stores {info.file_size:,} bytes")
    return shape, dtype


def _read_safetensors(path: Path, limit: int) -> _Found:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise _Bad(f"its header declares {n:,} bytes, more than the file or {MAX_SAFETENSORS_HEADER:,} bytes")
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _Bad("its header is not JSON") from None
    from ticketlab.limits import LIMITS

    entries = LIMITS["zip_entries"].value()
    if not isinstance(header, dict) or len(header) > entries + 1:
        raise _Bad(f"its header is not an object of at most {entries:,} entries")
    meta = header.pop("__metadata__", None) or {}
    data_bytes = size - 8 - n
    shapes = {str(k): _safetensors_entry(str(k), v, data_bytes) for k, v in header.items()}
    selected, convention = _select(list(shapes))
    count = sum(math.prod(shapes[k]) for k in selected)
    if count > limit:
        raise _Bad(f"its masks declare {count:,} values, more than max_params = {limit:,}")
    try:
        from safetensors import safe_open
    except ImportError:
        raise ConfigError(_INSTALL) from None
    masks = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key, name in selected.items():
                masks[name] = as_bool(name, f.get_tensor(key))
    except _Bad:
        raise
    except Exception as exc:  # the package's SafetensorError and friends: the file is damaged
        raise _Bad(f"the safetensors package cannot read it ({_first_line(exc)})") from None
    order = _stored_order(meta, list(masks))
    return masks, convention, len(shapes) - len(selected), order


def _safetensors_entry(key: str, entry: Any, data_bytes: int) -> tuple[int, ...]:
    """The shape of one header entry, once its dtype, shape and offsets fit the stored bytes."""
    if not isinstance(entry, dict):
        raise _Bad(f"header entry '{key}' is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _SAFETENSORS_DTYPES:
        raise _Bad(f"tensor '{key}' has dtype {str(dtype)[:20]}, not one of {', '.join(_SAFETENSORS_DTYPES)}")
    ok_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
    if not isinstance(shape, list) or len(shape) > 32 or not all(ok_int(d) for d in shape):
        raise _Bad(f"tensor '{key}' has a malformed shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(ok_int(o) for o in offsets):
        raise _Bad(f"tensor '{key}' has malformed data offsets")
    begin, end = offsets
    nbytes = math.prod(shape) * np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
    if not begin <= end <= data_bytes or end - begin != nbytes:
        raise _Bad(f"tensor '{key}' declares {nbytes:,} bytes at offsets {begin:,}-{end:,}, "
                   f"but the file stores {data_bytes:,} bytes of data")
    return tuple(shape)


def _stored_order(meta: Any, names: list[str]) -> list[str]:
    """The mask order ``write_masks`` records in safetensors metadata, when it is valid."""
    try:
        order = json.loads(meta.get("names", "null")) if isinstance(meta, dict) else None
    except (TypeError, ValueError):
        return []
    if isinstance(order, list) and sorted(map(str, order)) == sorted(names) and len(order) == len(names):
        return [str(n) for n in order]
    return []


def _read_torch(path: Path, limit: int) -> _Found:
    import torch

    from ticketlab.bounded import Refused, load_torch
    from ticketlab.limits import LIMITS

    try:
        bound, what = _zip_bound(limit)
        obj = load_torch(path, bound, what=what)
    except Refused as exc:
        raise _Bad(str(exc)) from None
    if not isinstance(obj, Mapping):
        raise _Bad(f"it holds a {type(obj).__name__}, not a mapping of names to tensors (a state dict)")
    entries = LIMITS["zip_entries"].value()
    if len(obj) > entries:
        raise _Bad(f"it holds {len(obj):,} entries, more than {entries:,}")
    bad_key = next((k for k in obj if not isinstance(k, str)), None)
    if bad_key is not None:
        raise _Bad(f"it has a key of type {type(bad_key).__name__}, not a parameter name")
    odd = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise _Bad(_not_a_mask_file(obj, odd))
    selected, convention = _select(list(obj))
    for key in selected:
        if obj[key].layout != torch.strided:
            raise _Bad(f"entry '{key}' is a {obj[key].layout} tensor, not a dense tensor")
    count = sum(obj[k].numel() for k in selected)
    if count > limit:
        raise _Bad(f"its masks declare {count:,} values, more than max_params = {limit:,}")
    masks = {name: _torch_bool(name, obj[key]) for key, name in selected.items()}
    return masks, convention, len(obj) - len(selected), []


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind


def _not_a_mask_file(obj: Mapping[str, Any], odd: str) -> str:
    """Why a dict holding something other than tensors is no mask file, and what to pass instead.

    A training checkpoint (open_lth's ``checkpoint.pth``: ``ep``, ``it``, ``model_state_dict``,
    ``optimizer_state_dict``, ``logger``; read from open_lth's ``training/checkpointing.py``)
    holds its state dict as an entry: say which entry, and whether it has masks.
    """
    keys = list(obj)
    shown = ", ".join(f"'{k}'" for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
    what = f"entry '{odd}' is {_a(type(obj[odd]).__name__)}, not a tensor"
    inner = next((k for k, v in obj.items() if isinstance(v, Mapping) and v and all(isinstance(n, str) for n in v)), None)
    if inner is None:
        return f"{what}: a mask file is a dict of parameter names to 0/1 tensors (its entries: {shown})"
    names = list(obj[inner])
    head = f"it is a checkpoint, not a mask file (entries {shown}; {what})"
    save = f"save that entry alone (torch.save(checkpoint['{inner}'], 'sd.pth')) and import sd.pth"
    if _pruned_model_masks(names):
        return (f"{head}; entry '{inner}' is an open_lth PrunedModel state dict with mask_* buffers: "
                f"import open_lth's mask.pth from the same folder, or {save}")
    if any(n.endswith(MASK_SUFFIX) for n in names):
        return f"{head}; entry '{inner}' holds *_mask buffers: {save}"
    return (f"{head}; entry '{inner}' holds no masks (no *_mask or mask_* buffers): import the mask file "
            "instead (open_lth writes mask.pth next to each level's checkpoint)")


#: The prefix of open_lth's ``PrunedModel`` mask buffers, and the stand-in for each ``.`` of the
#: parameter name (``PrunedModel.to_mask_name`` in open_lth's ``pruning/pruned_model.py``).
OPEN_LTH_MASK_PREFIX = "mask_"
OPEN_LTH_DOT = "___"
#: The prefix of the wrapped model's own entries in a ``PrunedModel`` state dict (``self.model``).
OPEN_LTH_MODEL_PREFIX = "model."


def _pruned_model_masks(names: list[str]) -> dict[str, str]:
    """File key -> parameter name when ``names`` are an open_lth ``PrunedModel`` state dict, else ``{}``.

    Such a dict holds the wrapped model's entries as ``model.NAME`` and one buffer
    ``mask_`` + NAME with every ``.`` written ``___`` per pruned parameter.

    Example:
        >>> _pruned_model_masks(["model.fc.weight", "model.fc.bias", "mask_fc___weight"])
        {'mask_fc___weight': 'fc.weight'}
    """
    masks = {n: n[len(OPEN_LTH_MASK_PREFIX):].replace(OPEN_LTH_DOT, ".") for n in names
             if n.startswith(OPEN_LTH_MASK_PREFIX)}
    if not masks or not any(n.startswith(OPEN_LTH_MODEL_PREFIX) for n in names):
        return {}
    present = set(names)
    if any(not name or OPEN_LTH_MODEL_PREFIX + name not in present for name in masks.values()):
        return {}  # every buffer masks one of the wrapped model's entries
    return masks


def _torch_bool(name: str, t: Any) -> np.ndarray:
    import torch

    ints = [getattr(torch, n) for n in ("uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64")
            if hasattr(torch, n)]
    if t.dim() == 0:
        raise _Bad(f"mask '{name}' is a scalar, not an array")
    if t.dtype == torch.bool:
        return t.numpy().copy()
    if t.is_complex() or not (t.is_floating_point() or t.dtype in ints):
        raise _Bad(f"mask '{name}' holds {t.dtype} values, not booleans or numbers")
    try:
        if t.numel() and not bool(((t == 0) | (t == 1)).all()):
            raise _Bad(f"mask '{name}' holds values other than 0 and 1{_WEIGHTS_HINT}")
        return (t != 0).numpy()
    except RuntimeError as exc:  # a dtype torch cannot compare on the CPU (float8 variants)
        raise _Bad(f"mask '{name}' holds {t.dtype} values that cannot be read ({_first_line(exc)})") from None


# ------------------------------------------------------------------------------------ writing
def write_masks(masks: Mapping[str, np.ndarray], path: str | os.PathLike[str], fmt: str,
                *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write boolean ``masks`` to ``path`` atomically as ``fmt`` (one of :data:`FORMATS`).

    ``torch-prune``: a ``torch.save`` state dict of ``NAME_mask`` float32 0/1 tensors, the buffers
    ``torch.nn.utils.prune`` keeps (apply each with ``prune.custom_from_mask``: ``docs/interop.md``
    has the recipe, and why ``prune.identity`` then ``load_state_dict`` leaves the weights unmasked
    until a forward pass). ``safetensors``: boolean tensors under the plain names,
    with their order and ``metadata`` in the header's metadata. ``npz``: one boolean ``NAME.npy``
    member per mask (what ``numpy.savez_compressed`` writes; ``numpy.load`` reads it).

    Example:
        >>> import tempfile, pathlib
        >>> path = write_masks({"w": np.ones(2, bool)}, pathlib.Path(tempfile.mkdtemp()) / "m.npz", "npz")
        >>> sorted(np.load(path, allow_pickle=False).files)
        ['w']
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown mask format '{fmt}' (choose from: {', '.join(FORMATS)})")
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write '{target}': folder '{target.parent}' does not exist")
    if target.is_dir():
        raise ConfigError(f"cannot write '{target}': it is a folder")
    arrays = {str(n): np.ascontiguousarray(m, dtype=np.bool_) for n, m in masks.items()}
    if fmt == "safetensors":
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise ConfigError(_INSTALL) from None
        meta = {**dict(metadata or {}), "names": json.dumps(list(arrays))}
        with atomic_path(target) as tmp:
            save_file(arrays, str(tmp), metadata=meta)
    elif fmt == "npz":
        with atomic_path(target) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                for name, arr in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, arr, allow_pickle=False)
    else:
        import torch

        state = {n + MASK_SUFFIX: torch.from_numpy(a.astype(np.float32)) for n, a in arrays.items()}
        with atomic_path(target) as tmp:
            torch.save(state, tmp)
    return target
