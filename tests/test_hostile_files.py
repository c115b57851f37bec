"""Hostile and damaged ticket files, generated at test time (issue 12, classes 1-5).

Every case is a small file made from a valid ticket by hand with h5py (or by cutting and
flipping bytes). For each, `inspect`, `inspect --json`, `compare` and `compare --metric all` run
as real processes (started warm, :mod:`warm`: 168 of them) and must exit 2 with one line on stderr:
no traceback, no raw control characters, within a timeout, and the largest process stays under
500 MB (its own ``VmHWM``).
``ticketlab.load`` raises only ``TicketlabError`` subclasses, and allocates little doing so.
"""

from __future__ import annotations

import json
import os
import subprocess
import tracemalloc
import zlib
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

import ticketlab
from ticketlab.errors import TicketlabError
from ticketlab.fileformat import save
from ticketlab.ticket import Ticket
from warm import run as warm_run

pytestmark = pytest.mark.xdist_group("subprocess")

PEAK_LIMIT_MB = 500
TIMEOUT_S = 60


def _base_ticket() -> Ticket:
    rng = np.random.default_rng(0)
    masks = {"fc1.weight": rng.random((6, 8)) < 0.5, "fc2.weight": rng.random((3, 6)) < 0.5}
    init = {n: rng.standard_normal(m.shape).astype(np.float32) for n, m in masks.items()}
    init["fc1.bias"] = np.zeros(6, np.float32)
    final = {n: (w * masks[n]).astype(np.float32) if n in masks else w for n, w in init.items()}
    topology = {"tensors": {"input": 8, "t1": 6, "t2": 3}, "input": "input", "output": "t2",
                "edges": [{"param": "fc1.weight", "src": "input", "dst": "t1", "kind": "linear", "group": 1},
                          {"param": "fc2.weight", "src": "t1", "dst": "t2", "kind": "linear", "group": 1}]}
    history = [{"round": i, "test_accuracy": 0.5 + i / 10, "note": f"r{i}", "extra": [i]} for i in range(3)]
    return Ticket(masks=masks, provenance={"method": "magnitude", "seed": 0, "topology": topology},
                  weights={"init": init, "final": final}, scores={n: np.abs(w) for n, w in init.items()},
                  history=history)


def _good(folder: Path, name: str = "good.h5") -> Path:
    return save(_base_ticket(), folder / name)


def _edit(fn: Callable[[h5py.File], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = _good(folder, "hostile.h5")
        with h5py.File(path, "r+") as f:
            fn(f)
        return path

    return build


def _replace(f: h5py.File, where: str, **kwargs) -> h5py.Dataset:
    """Replace dataset ``where`` by a new one, keeping its attributes."""
    attrs = dict(f[where].attrs)
    del f[where]
    ds = f.create_dataset(where, **kwargs)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _low_level(f: h5py.File, where: str, shape: tuple[int, ...], chunk: tuple[int, ...], deflates: int,
               dtype=h5py.h5t.NATIVE_UINT8) -> h5py.Dataset:
    """A chunked dataset with ``deflates`` gzip filters in its pipeline (h5py's high level allows one)."""
    attrs = dict(f[where].attrs)
    del f[where]
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunk)
    for _ in range(deflates):
        dcpl.set_deflate(9)
    ds = h5py.Dataset(h5py.h5d.create(f.id, where.encode(), dtype, h5py.h5s.create_simple(shape), dcpl=dcpl))
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _huge_mask(n: int) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:  # a shape attribute of n weights, backed by a never-written dataset
        ds = _replace(f, "masks/0", shape=((n + 7) // 8,), dtype=np.uint8)
        ds.attrs["shape"] = np.array([n], dtype=np.int64)
        ds.attrs["kept"] = np.int64(0)

    return fn


def _huge_history(f: h5py.File) -> None:
    f["history"].attrs["rows"] = np.int64(10**12)
    for j in range(f["history"].attrs["columns"]):
        kind = f[f"history/{j}"].attrs["kind"]
        dtype = h5py.string_dtype() if kind in ("str", "json") else np.int64 if kind == "int" else np.float64
        _replace(f, f"history/{j}", shape=(10**12,), dtype=dtype)


def _empty_history_rows(f: h5py.File) -> None:
    del f["history"]
    g = f.create_group("history")
    g.attrs["rows"], g.attrs["columns"] = np.int64(10**12), np.int64(0)


def _huge_unmasked_weight(f: h5py.File) -> None:  # 40 GB of float32 declared for a bias
    _replace(f, "weights/init/2", shape=(10**5, 10**5), dtype=np.float32)


def _huge_scores(f: h5py.File) -> None:  # 16 GB of float64 scores, chunked and never written
    _replace(f, "scores/2", shape=(2 * 10**9,), dtype=np.float64, chunks=(1 << 17,), compression="gzip")


def _gzip_of_gzip(f: h5py.File) -> None:  # < 2 KB that inflates to 1 GiB through two gzip passes
    ds = _low_level(f, "masks/0", (1 << 30,), (1 << 30,), deflates=2)
    ds.attrs["shape"] = np.array([8 << 30], dtype=np.int64)
    ds.id.write_direct_chunk((0,), zlib.compress(zlib.compress(bytes(1 << 30), 9), 9))


def _inflating_chunk(where: str, dtype) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:  # one gzip pass: ~500 stored bytes inflate to 512 KiB for a small chunk
        shape = f[where].shape
        ds = _low_level(f, where, shape, shape, deflates=1, dtype=dtype)
        ds.id.write_direct_chunk((0,) * len(shape), zlib.compress(bytes(512 << 10), 9))

    return fn


def _filter(name: str) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        data = f["weights/init/0"][()]
        _replace(f, "weights/init/0", data=data, chunks=data.shape, **({"compression": name}))

    return fn


def _unwritten_mask(f: h5py.File) -> None:  # right shape, never written: would read as fill values
    _replace(f, "masks/0", shape=f["masks/0"].shape, dtype=np.uint8)


def _missing_chunks(f: h5py.File) -> None:
    ds = _replace(f, "weights/final/2", shape=(4096,), dtype=np.float32, chunks=(1024,), compression="gzip")
    ds[:1024] = np.ones(1024, np.float32)  # one chunk of four written: the rest would read as fill values


def _tiny_chunks(f: h5py.File) -> None:
    _replace(f, "weights/init/2", data=np.zeros(100_000, np.float32), chunks=(1,))


def _many_dims(f: h5py.File) -> None:
    f["masks/0"].attrs["shape"] = np.ones(10**6, dtype=np.int64)


def _shape_mismatch(f: h5py.File) -> None:
    _replace(f, "weights/final/0", data=np.zeros((8, 6), np.float32))


def _packed_length(f: h5py.File) -> None:
    f["masks/0"].attrs["shape"] = np.array([600, 8], dtype=np.int64)


def _kept_too_many(f: h5py.File) -> None:
    f["masks/1"].attrs["kept"] = np.int64(19)


def _uneven_history(f: h5py.File) -> None:
    _replace(f, "history/0", data=np.arange(5, dtype=np.int64))


def _names_unwritten(f: h5py.File) -> None:
    del f["names"]
    f.create_dataset("names", shape=(10**9,), dtype=h5py.string_dtype())


def _masks_count(f: h5py.File) -> None:
    f["masks"].attrs["count"] = np.int64(10**12)


def _external_link(f: h5py.File) -> None:
    other = Path(f.filename).with_name("other.h5")
    with h5py.File(other, "w") as g:
        g.create_dataset("x", data=np.zeros(6, np.uint8))
    attrs = dict(f["masks/0"].attrs)
    del f["masks/0"]
    f["masks/0"] = h5py.ExternalLink(str(other), "/x")
    del attrs


def _soft_link(f: h5py.File) -> None:
    del f["masks/1"]
    f["masks/1"] = h5py.SoftLink("/masks/0")


def _external_storage(f: h5py.File) -> None:  # the mask bits read from another file
    target = Path(f.filename).with_name("bits.bin")
    target.write_bytes(b"\xff" * 64)
    attrs = dict(f["masks/0"].attrs)
    del f["masks/0"]
    ds = f.create_dataset("masks/0", shape=(6,), dtype=np.uint8, external=[(str(target), 0, 6)])
    for k, v in attrs.items():
        ds.attrs[k] = v


def _virtual(f: h5py.File) -> None:
    other = Path(f.filename).with_name("source.h5")
    with h5py.File(other, "w") as g:
        g.create_dataset("x", data=np.zeros(6, np.uint8))
    layout = h5py.VirtualLayout(shape=(6,), dtype=np.uint8)
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(6,))
    attrs = dict(f["masks/0"].attrs)
    del f["masks/0"]
    ds = f.create_virtual_dataset("masks/0", layout)
    for k, v in attrs.items():
        ds.attrs[k] = v


def _flip(where: str, compressed: bool = False) -> Callable[[Path], Path]:
    """Flip one byte inside the stored data of dataset ``where`` (found by its file offset)."""

    def build(folder: Path) -> Path:
        t = _base_ticket()
        if compressed:  # mostly zeros: stored compressed
            t.weights["final"] = {n: np.zeros_like(w) for n, w in t.weights["final"].items()}
        path = save(t, folder / "hostile.h5")
        with h5py.File(path, "r") as f:
            ds = f[where]
            info = ds.id.get_chunk_info(0) if ds.chunks else None
            offset = info.byte_offset if info else ds.id.get_offset()
            size = info.size if info else ds.id.get_storage_size()
        data = bytearray(path.read_bytes())
        data[offset + size // 2] ^= 0x5A
        path.write_bytes(bytes(data))
        return path

    return build


def _string_column_damage(f: h5py.File) -> None:
    j = next(j for j in range(f["history"].attrs["columns"]) if f[f"history/{j}"].attrs["kind"] == "str")
    f[f"history/{j}"][1] = "r9"  # the crc32 attribute no longer matches


def _truncated(fraction: float) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = _good(folder, "hostile.h5")
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
        return path

    return build


def _evil_name(f: h5py.File) -> None:  # markup, ANSI, a newline: and an error that names it
    evil = "fc1[/]\x1b[2J\x1b]0;pwned\x07\nweight"
    f["masks/0"].attrs["name"] = evil
    names = f["names"].asstr()[()].tolist()
    del f["names"]
    f.create_dataset("names", data=[evil, *names[1:]], dtype=h5py.string_dtype())
    f["masks/0"].attrs["kept"] = np.int64(49)  # more than 6 x 8


def _evil_path(folder: Path) -> Path:
    (folder / "bad[").mkdir()
    path = folder / "bad[" / "]\x1b[2Jname\n.h5"  # the path reads 'bad[/]...': rich markup
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    return path


def _big_provenance(f: h5py.File) -> None:  # 1M keys, ~20 MB of JSON
    f.attrs["provenance"] = json.dumps({f"key{i}": "x" * 10 for i in range(1_000_000)})


def _nested_provenance(f: h5py.File) -> None:
    f.attrs["provenance"] = "[" * 100_000 + "]" * 100_000


def _provenance_array(f: h5py.File) -> None:
    f.attrs["provenance"] = "[1, 2, 3]"


def _provenance_not_string(f: h5py.File) -> None:
    f.attrs["provenance"] = np.arange(10**5)


def _history_wrong_type(f: h5py.File) -> None:  # an 'int' column that holds strings
    j = next(j for j in range(f["history"].attrs["columns"]) if f[f"history/{j}"].attrs["kind"] == "int")
    attrs = dict(f[f"history/{j}"].attrs)
    _replace(f, f"history/{j}", data=["a", "b", "c"], dtype=h5py.string_dtype())
    f[f"history/{j}"].attrs.update(attrs)


def _history_bad_json(f: h5py.File) -> None:
    j = next(j for j in range(f["history"].attrs["columns"]) if f[f"history/{j}"].attrs["kind"] == "json")
    ds = _replace(f, f"history/{j}", data=["[0]", "{not json", "[2]"], dtype=h5py.string_dtype())
    del ds.attrs["crc32"]  # as in a file written before the checksums


def _version_string(f: h5py.File) -> None:
    f.attrs["format_version"] = "1"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", **extra}


# name -> (class, builder, extra environment, the reason the refusal must give). The reason is what
# makes a case able to fail: with a guard removed, a file is often still refused, by coincidence
# and for another reason (a link case then fails on a missing 'name' attribute, say).
CASES: dict[str, tuple[int, Callable[[Path], Path], dict[str, str], str]] = {
    "mask_declares_1e12_weights": (1, _edit(_huge_mask(10**12)), {},
        "mask 'fc1.weight' declares 125000000000 bytes but the file stores 0 of them"),
    "mask_declares_3e10_weights": (1, _edit(_huge_mask(3 * 10**10)), {},
        "mask 'fc1.weight' declares 3750000000 bytes but the file stores 0 of them"),
    "history_of_1e12_rows": (1, _edit(_huge_history), {},
        "history column 'round' declares 8000000000000 bytes but the file stores 0 of them"),
    "history_of_1e12_empty_rows": (1, _edit(_empty_history_rows), {},
        'the history declares 1,000,000,000,000 rows without any column'),
    "weights_of_40_GB": (1, _edit(_huge_unmasked_weight), {},
        "weight snapshot 'init' 'fc1.bias' declares 40000000000 bytes but the file stores 0 of them"),
    "scores_of_16_GB_chunked": (1, _edit(_huge_scores), {},
        "scores 'fc1.bias' stores 0 of its 15259 chunks"),
    "gzip_of_gzip_bomb": (1, _edit(_gzip_of_gzip), {},
        "mask 'fc1.weight' has the filter pipeline [gzip, gzip]"),
    "mask_chunk_inflates_beyond_its_size": (1, _edit(_inflating_chunk("masks/0", h5py.h5t.NATIVE_UINT8)), {},
        "mask 'fc1.weight' has a compressed chunk that inflates beyond its declared 6 bytes"),
    "weight_chunk_inflates_beyond_its_size": (
        1, _edit(_inflating_chunk("weights/init/0", h5py.h5t.NATIVE_FLOAT)), {},
        "weight snapshot 'init' 'fc1.weight' has a compressed chunk that inflates beyond its declared 192 bytes"),
    "lzf_filter": (1, _edit(_filter("lzf")), {},
        "weight snapshot 'init' 'fc1.weight' uses the HDF5 filter lzf"),
    "mask_never_written": (1, _edit(_unwritten_mask), {},
        "mask 'fc1.weight' declares 6 bytes but the file stores 0 of them"),
    "chunks_missing": (1, _edit(_missing_chunks), {},
        "weight snapshot 'final' 'fc1.bias' stores 1 of its 4 chunks"),
    "tiny_chunks": (1, _edit(_tiny_chunks), {},
        "weight snapshot 'init' 'fc1.bias' is cut into chunks of 4 bytes"),
    "shape_of_1e6_dimensions": (1, _edit(_many_dims), {},
        "mask 'fc1.weight' has a 'shape' attribute of more than 32 dimensions"),
    "weight_shape_differs_from_mask": (1, _edit(_shape_mismatch), {},
        "weight snapshot 'final' 'fc1.weight' has shape (8, 6) but its mask has shape (6, 8)"),
    "packed_length_differs_from_shape": (1, _edit(_packed_length), {},
        "mask 'fc1.weight' holds (6,) uint8 packed data but its shape (600, 8) needs (600,) uint8"),
    "kept_exceeds_size": (1, _edit(_kept_too_many), {},
        "mask 'fc2.weight' records 19 kept weights out of 18"),
    "history_columns_of_unequal_length": (1, _edit(_uneven_history), {},
        'history column 0 is missing or does not have 3 rows'),
    "names_list_of_1e9_unwritten": (1, _edit(_names_unwritten), {},
        "the 'names' list has shape (1000000000,), not one name for each of the 2 masks"),
    "masks_count_1e12": (1, _edit(_masks_count), {},
        "dataset '/masks/2' is missing"),
    "over_max_params": (1, _good, {"TICKETLAB_MAX_PARAMS": "10"},
        'its masks declare 66 parameters, more than max_params = 10'),
    "external_link": (2, _edit(_external_link), {},
        "'/masks/0' is an external link to '"),
    "soft_link": (2, _edit(_soft_link), {},
        "'/masks/1' is a soft link to '/masks/0': a ticket file holds no links"),
    "external_storage": (2, _edit(_external_storage), {},
        "dataset '/masks/0' stores its bytes in another file ("),
    "virtual_dataset": (2, _edit(_virtual), {},
        "dataset '/masks/0' is virtual (its data lives in other files)"),
    "bit_flip_in_mask": (3, _flip("masks/0"), {},
        "mask 'fc1.weight' is damaged ("),
    "bit_flip_in_weights": (3, _flip("weights/init/0"), {},
        "weight snapshot 'init' 'fc1.weight' is damaged ("),
    "bit_flip_in_compressed_weights": (3, _flip("weights/final/0", compressed=True), {},
        "weight snapshot 'final' 'fc1.weight' is damaged ("),
    "bit_flip_in_scores": (3, _flip("scores/0"), {},
        "scores 'fc1.weight' is damaged ("),
    "bit_flip_in_history_column": (3, _flip("history/1"), {},
        "history column 'test_accuracy' is damaged ("),
    "string_history_column_changed": (3, _edit(_string_column_damage), {},
        "history column 'note' is damaged (checksum mismatch)"),
    "truncated_to_half": (3, _truncated(0.5), {},
        'the HDF5 file is truncated or damaged ('),
    "truncated_to_one_tenth": (3, _truncated(0.1), {},
        'the HDF5 file is truncated or damaged ('),
    "name_with_markup_ansi_newline": (4, _edit(_evil_name), {},
        'records 49 kept weights out of 48'),
    "path_with_markup_ansi_newline": (4, _evil_path, {},
        'the HDF5 file is truncated or damaged ('),
    "provenance_of_20_MB": (5, _edit(_big_provenance), {},
        'the provenance is 26,888,890 bytes of JSON, more than the 16,777,216'),
    "provenance_nested_100000_deep": (5, _edit(_nested_provenance), {},
        'the provenance is JSON nested too deeply'),
    "provenance_is_an_array": (5, _edit(_provenance_array), {},
        'the provenance is a JSON list, not an object'),
    "provenance_is_not_a_string": (5, _edit(_provenance_not_string), {},
        'the provenance attribute is not one string'),
    "history_cell_of_the_wrong_type": (5, _edit(_history_wrong_type), {},
        "history column 'round' of kind 'int' holds object data"),
    "history_cell_of_bad_json": (5, _edit(_history_bad_json), {},
        "history column 'extra' holds malformed JSON"),
    "format_version_is_a_string": (5, _edit(_version_string), {},
        "the format_version attribute is '1', not an integer"),
}

PRELOAD = ("ticketlab.fileformat", "ticketlab.metrics")  # what inspect and compare import first (not torch)
COMMANDS = {
    "inspect": lambda bad, good: ["inspect", str(bad)],
    "inspect --json": lambda bad, good: ["inspect", str(bad), "--json"],
    "compare": lambda bad, good: ["compare", str(bad), str(good)],
    "compare --metric all": lambda bad, good: ["compare", str(good), str(bad), "--metric", "all"],
}


def test_there_are_at_least_30_cases_over_classes_1_to_5() -> None:
    assert len(CASES) >= 30
    assert {cls for cls, _, _, _ in CASES.values()} == {1, 2, 3, 4, 5}
    # the four cases of class 2 are refused by the self-contained-file guard, each for its own reason
    assert [r for cls, _, _, r in CASES.values() if cls == 2] == [
        "'/masks/0' is an external link to '", "'/masks/1' is a soft link to '/masks/0': a ticket file holds no links",
        "dataset '/masks/0' stores its bytes in another file (",
        "dataset '/masks/0' is virtual (its data lives in other files)"]


@pytest.mark.parametrize("case", list(CASES))
def test_load_raises_only_ticketlab_errors_and_allocates_little(tmp_path: Path, case: str) -> None:
    _, build, env, reason = CASES[case]
    path = build(tmp_path)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    tracemalloc.start()
    try:
        with pytest.raises(TicketlabError) as info:
            ticketlab.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    message = str(info.value)
    assert message.startswith(f"cannot read '{path}': "), message
    assert reason in message, f"{case}: refused for another reason than {reason!r}: {message}"
    assert peak < 100 * 2**20, f"{case}: load allocated {peak / 2**20:.0f} MiB before refusing"


# Runs the ticketlab command line in this process and, at exit, writes its peak resident memory in
# KiB to the file named by its first argument: the kernel's VmHWM of this process's own address
# space. (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` survives exec on Linux, so a child started
# by the big pytest process would report the parent's peak; it is the fallback off Linux.) Run warm
# (:func:`warm.run`), with the modules every one of these commands imports first (the file reader
# and the metrics: h5py, scipy.sparse) imported beforehand, but not torch: a forked process's VmHWM
# counts the memory those imports allocated, and misses only the pages of their code files that
# it does not touch again, some 10 MB against a bound of hundreds of MB.
_MEASURED = ("import atexit, resource, sys\n"
             "out = sys.argv.pop(1)\n"
             "def peak():\n"
             "    try:\n"
             "        for line in open('/proc/self/status'):\n"
             "            if line.startswith('VmHWM:'):\n"
             "                return int(line.split()[1])\n"
             "    except OSError:\n"
             "        pass\n"
             "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "atexit.register(lambda: open(out, 'w').write(str(peak())))\n"
             "from ticketlab.cli.main import main\n"
             "main(sys.argv[1:])\n")


def test_every_cli_command_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    good = _good(tmp_path)
    failures, peaks = [], {}
    for case, (_, build, env, reason) in CASES.items():
        folder = tmp_path / case
        folder.mkdir()
        bad = build(folder)
        for command, argv in COMMANDS.items():
            rss = folder / f"rss-{len(peaks)}"
            try:
                proc = warm_run([str(rss), *argv(bad, good)], code=_MEASURED, timeout=TIMEOUT_S, env=_env(**env),
                                preload=PRELOAD)
            except subprocess.TimeoutExpired:
                failures.append(f"{case} / {command}: no answer within {TIMEOUT_S} s")
                continue
            peaks[f"{case} / {command}"] = int(rss.read_text()) / 1024 if rss.exists() else float("inf")
            lines = proc.stderr.splitlines()
            ok = (proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: cannot read '")
                  and reason in lines[0]
                  and "Traceback" not in proc.stderr and "\x1b" not in proc.stderr + proc.stdout
                  and "\x07" not in proc.stderr + proc.stdout)
            if not ok:
                failures.append(f"{case} / {command}: exit {proc.returncode}, stderr {proc.stderr[-600:]!r}")
    assert not failures, "\n".join(failures)
    worst = max(peaks, key=peaks.get)
    assert peaks[worst] < PEAK_LIMIT_MB, f"{worst} peaked at {peaks[worst]:.0f} MB"
