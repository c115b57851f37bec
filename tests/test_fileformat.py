"""Tests of the ticket file format (ticketlab.fileformat): exact round-trips, atomic writes, one
clear error per kind of bad file, compression against the entropy bound, and no torch import."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ticketlab import fileformat
from ticketlab.errors import ConfigError, TicketFormatError
from ticketlab.fileformat import FORMAT_VERSION, load, read_info, save
from ticketlab.ticket import Ticket

DOCS = Path(__file__).resolve().parents[1] / "docs" / "format.md"


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mask(shape: tuple[int, ...], density: float = 0.3, seed: int = 0) -> np.ndarray:
    return _rng(seed).random(shape) < density


def _full_ticket() -> Ticket:
    """A ticket with every optional part filled in, names with dots, out of alphabetical order."""
    rng = _rng(1)
    shapes = {"fc2.weight": (3, 7), "conv.0.weight": (4, 3, 3, 3), "emb.weight": (7,), "fc1.weight": (5, 3)}
    masks = {name: rng.random(shape) < 0.4 for name, shape in shapes.items()}
    init = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    final = {name: rng.standard_normal(shape) for name, shape in shapes.items()}  # float64
    final["bias.unmasked"] = np.arange(3, dtype=np.float32)
    scores = {name: rng.random(shape).astype(np.float32) for name, shape in shapes.items()}
    history = [
        {"round": 0, "density": 1.0, "note": "start", "ok": True},
        {"round": 1, "density": 0.5, "note": "héllo ✓", "ok": False, "extra": [1, {"a": None}]},
        {"round": 2, "density": math.inf, "note": "", "ok": True, "loss": None},
        {"round": 3, "density": -0.0, "note": "end", "ok": True, "loss": 0.25},
    ]
    provenance = {
        "method": "synflow",
        "config": {"rounds": 100, "lr": 1e-3, "nested": {"list": [1, 2.5, "x", None, [True]]}},
        "seed": 7,
        "layout": {"tensors": {"input": 3, "t1": 4}, "edges": [{"param": "conv.0.weight", "src": "input"}]},
    }
    weights = {"init": init, "final": final}
    return Ticket(masks=masks, provenance=provenance, weights=weights, scores=scores, history=history)


def _assert_arrays_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name])


# ---------------------------------------------------------------------------------- round-trips
@pytest.mark.parametrize("size", range(1, 18))
def test_mask_round_trip_every_packing_remainder(tmp_path: Path, size: int) -> None:
    mask = _mask((size,), 0.5, seed=size)
    back = load(save(Ticket(masks={"w": mask}), tmp_path / "t.h5")).masks["w"]
    assert back.dtype == np.bool_
    np.testing.assert_array_equal(back, mask)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 5), (3, 2, 3, 3), (1, 1, 1, 1), (0, 4), (4, 0, 3)])
def test_mask_shapes_round_trip(tmp_path: Path, shape: tuple[int, ...]) -> None:
    mask = _mask(shape, 0.3, seed=len(shape))
    back = load(save(Ticket(masks={"layer.w": mask}), tmp_path / "t.h5")).masks["layer.w"]
    assert back.shape == shape
    np.testing.assert_array_equal(back, mask)


def test_packing_is_big_endian_c_order(tmp_path: Path) -> None:
    # Hand-computed: row-major entries 1,0,0,0,0,0,0,1 | 1,1 -> bytes 0b10000001, 0b11000000.
    mask = np.array([[1, 0, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=bool)
    path = save(Ticket(masks={"w": mask}), tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        assert f["masks/0"][()].tolist() == [0b10000001, 0b11000000]
        assert f["masks/0"].attrs["shape"].tolist() == [2, 5]
        assert f["masks/0"].attrs["kept"] == 4
        assert f["masks/0"].attrs["name"] == "w"


def test_scalar_masks_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scalar"):
        Ticket(masks={"s": np.array(True)})
    path = save(Ticket(masks={"s": np.ones(1, bool)}), tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:  # a file that claims a 0-d mask
        f["masks/0"].attrs["shape"] = np.zeros(0, dtype=np.int64)
    with pytest.raises(TicketFormatError, match="mask 's' has no valid 'shape' attribute"):
        load(path)


def test_full_ticket_round_trips_exactly(tmp_path: Path) -> None:
    ticket = _full_ticket()
    back = load(save(ticket, tmp_path / "full.h5"))
    _assert_arrays_equal(back.masks, ticket.masks)
    assert list(back.weights) == ["init", "final"]
    _assert_arrays_equal(back.weights["init"], ticket.weights["init"])
    _assert_arrays_equal(back.weights["final"], ticket.weights["final"])
    assert back.weights["init"]["fc1.weight"].dtype == np.float32
    assert back.weights["final"]["fc1.weight"].dtype == np.float64
    _assert_arrays_equal(back.scores, ticket.scores)
    assert back.provenance == ticket.provenance
    assert json.dumps(back.provenance) == json.dumps(ticket.provenance)  # key order kept too


def test_history_round_trips_with_types(tmp_path: Path) -> None:
    ticket = _full_ticket()
    rows = load(save(ticket, tmp_path / "h.h5")).history
    assert len(rows) == 4
    assert [type(r["round"]) for r in rows] == [int] * 4
    assert [type(r["density"]) for r in rows] == [float] * 4
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    assert rows[2]["density"] == math.inf and math.copysign(1, rows[3]["density"]) == -1
    assert [r["note"] for r in rows] == ["start", "héllo ✓", "", "end"]
    assert [r["ok"] for r in rows] == [True, False, True, True] and type(rows[0]["ok"]) is bool
    assert "extra" not in rows[0] and rows[1]["extra"] == [1, {"a": None}]  # absent stays absent
    assert "loss" not in rows[1]
    assert math.isnan(rows[2]["loss"]) and rows[3]["loss"] == 0.25  # documented: None -> NaN in float columns
    for got, want in zip(rows, ticket.history):
        assert set(got) == set(want)


def test_history_mixed_int_float_column_stays_exact(tmp_path: Path) -> None:
    history = [{"x": 1}, {"x": 0.5}, {"x": None}, {"x": 2**40}]
    rows = load(save(Ticket(masks={"w": np.ones(2, bool)}, history=history), tmp_path / "h.h5")).history
    assert rows == history
    assert [type(r["x"]) for r in rows] == [int, float, type(None), int]


def test_history_edge_values_round_trip(tmp_path: Path) -> None:
    history = [
        {"s": "a\0b", "f": np.float32(0.5), "i": np.int64(-3), "b": np.bool_(True), "big": 2**70},
        {"s": "c", "f": 1.5, "i": 2**63 - 1, "b": False, "big": 1},
        {},
    ]
    rows = load(save(Ticket(masks={"w": np.ones(2, bool)}, history=history), tmp_path / "h.h5")).history
    assert rows == [
        {"s": "a\0b", "f": 0.5, "i": -3, "b": True, "big": 2**70},
        {"s": "c", "f": 1.5, "i": 2**63 - 1, "b": False, "big": 1},
        {},
    ]
    assert [type(v) for v in rows[0].values()] == [str, float, int, bool, int]


def test_history_columns_are_stored_as_numbers_and_strings(tmp_path: Path) -> None:
    history = [{"step": 1, "acc": 0.5, "phase": "train"}, {"step": 2, "acc": 0.75, "phase": "val"}]
    path = save(Ticket(masks={"w": np.ones(2, bool)}, history=history), tmp_path / "h.h5")
    with h5py.File(path, "r") as f:
        g = f["history"]
        assert [g[str(j)].attrs["name"] for j in range(3)] == ["step", "acc", "phase"]
        assert g["0"].dtype == np.int64 and g["1"].dtype == np.float64
        assert g["2"].asstr()[()].tolist() == ["train", "val"]


def test_empty_extras_round_trip(tmp_path: Path) -> None:
    back = load(save(Ticket(masks={"w": np.zeros(3, bool)}), tmp_path / "t.h5"))
    assert back.weights == {} and back.scores == {} and back.history == [] and back.provenance == {}


def test_order_is_preserved(tmp_path: Path) -> None:
    # 12 entries so that HDF5's alphabetical listing ("10" < "2") would scramble a naive reader.
    names = [f"z.{i}.weight" if i % 2 else f"a.{11 - i}.w" for i in range(12)]
    masks = {n: _mask((i + 1, 2), seed=i) for i, n in enumerate(names)}
    weights = {"init": {n: np.full(m.shape, i, np.float32) for i, (n, m) in enumerate(reversed(list(masks.items())))}}
    back = load(save(Ticket(masks=masks, weights=weights), tmp_path / "t.h5"))
    assert list(back.masks) == names
    assert list(back.weights["init"]) == list(weights["init"])
    assert list(read_info(tmp_path / "t.h5")["layers"]) == names


def test_load_flags_skip_parts(tmp_path: Path) -> None:
    path = save(_full_ticket(), tmp_path / "t.h5")
    back = load(path, weights=False, scores=False, history=False)
    assert back.weights == {} and back.scores == {} and back.history == []
    assert list(back.masks) == list(_full_ticket().masks)


def test_read_info_counts_without_unpacking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = _full_ticket()
    path = save(ticket, tmp_path / "t.h5")

    def boom(*args: object) -> None:
        raise AssertionError("read_info must not unpack masks")

    monkeypatch.setattr(fileformat, "_unpack", boom)
    info = read_info(path)
    assert info["format_version"] == FORMAT_VERSION
    assert info["provenance"] == ticket.provenance
    assert {n: (v["kept"], v["total"]) for n, v in info["layers"].items()} == {
        n: (int(m.sum()), m.size) for n, m in ticket.masks.items()
    }
    assert info["layers"]["conv.0.weight"]["shape"] == (4, 3, 3, 3)
    assert (info["kept"], info["total"]) == (ticket.kept, ticket.total)
    assert info["density"] == pytest.approx(ticket.density)
    assert info["snapshots"] == ["init", "final"] and info["scores"] is True
    assert info["history_rows"] == 4 and info["history_columns"] == ["round", "density", "note", "ok", "extra", "loss"]
    assert info["created_by"].startswith("ticketlab ")


def test_root_attributes(tmp_path: Path) -> None:
    path = save(_full_ticket(), tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "ticketlab.ticket"
        assert f.attrs["format_version"] == 1
        assert json.loads(f.attrs["provenance"])["method"] == "synflow"
        assert f["names"].asstr()[()].tolist() == list(_full_ticket().masks)


def test_docs_worked_example_runs(tmp_path: Path) -> None:
    """The h5py example in docs/format.md reads a mask without ticketlab."""
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- worked-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/format.md lost its worked example"
    ticket = _full_ticket()
    path = save(ticket, tmp_path / "ticket.h5")
    scope: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(block.group(1).replace('"ticket.h5"', repr(str(path))), "format.md", "exec"), scope)
    np.testing.assert_array_equal(scope["mask"], ticket.masks["fc1.weight"])
    np.testing.assert_array_equal(scope["init"], ticket.weights["init"]["fc1.weight"])


# ---------------------------------------------------------------------------------- writing
def test_save_returns_path_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    assert save(Ticket(masks={"w": np.ones(3, bool)}), str(path)) == path
    save(Ticket(masks={"w": np.zeros(3, bool)}), path)
    assert not load(path).masks["w"].any()
    assert os.listdir(tmp_path) == ["t.h5"]


def test_save_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "t.h5"
    with pytest.raises(ConfigError) as err:
        save(Ticket(masks={"w": np.ones(3, bool)}), target)
    assert str(err.value) == f"cannot write '{target}': folder '{target.parent}' does not exist"


def test_save_rejects_bad_input_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "t.h5"
    with pytest.raises(ConfigError, match="provenance must be JSON"):
        Ticket(masks={"w": np.ones(3, bool)}, provenance={"f": object()})
    mutated = Ticket(masks={"w": np.ones(3, bool)})
    mutated.provenance["f"] = object()  # changed after the ticket was made: save checks again
    with pytest.raises(ConfigError, match="provenance is not JSON"):
        save(mutated, target)
    with pytest.raises(ConfigError, match="non-string key"):
        save(Ticket(masks={"w": np.ones(3, bool)}, history=[{1: 2}]), target)
    with pytest.raises(ConfigError, match="scores 'w' holds <U1 data, not numbers"):
        save(Ticket(masks={"w": np.ones(3, bool)}, scores={"w": np.array(["a", "b", "c"])}), target)
    assert os.listdir(tmp_path) == []


def test_save_converts_numpy_scalars_in_provenance(tmp_path: Path) -> None:
    prov = {"density": np.float32(0.5), "seed": np.int64(3), "shape": np.array([2, 3])}
    back = load(save(Ticket(masks={"w": np.ones(3, bool)}, provenance=prov), tmp_path / "t.h5")).provenance
    assert back == {"density": 0.5, "seed": 3, "shape": [2, 3]}


@pytest.mark.parametrize("fail_at", ["_write_arrays", "replace"])
def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str) -> None:
    target = tmp_path / "t.h5"
    save(Ticket(masks={"w": np.ones(9, bool)}), target)
    before = target.read_bytes()
    calls = []

    def crash(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise RuntimeError("simulated crash")

    if fail_at == "replace":
        monkeypatch.setattr(fileformat.os, "replace", crash)
    else:
        monkeypatch.setattr(fileformat, fail_at, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save(_full_ticket(), target)
    assert calls, "the simulated crash never happened"
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.h5"]  # no temporary file left behind
    assert load(target).masks["w"].all()


def test_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileformat, "_write_history", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save(_full_ticket(), tmp_path / "t.h5")
    assert os.listdir(tmp_path) == []


def test_mask_compression_near_entropy_bound(tmp_path: Path) -> None:
    """A random 1M mask at density 0.1 costs <= 1.3 x H(0.1) bits per parameter; the rest of the
    file (attributes, names, HDF5 headers) is a small constant, not a per-parameter cost."""
    d = 0.1
    mask = _rng(42).random(1_000_000) < d
    path = save(Ticket(masks={"w": mask}), tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        stored = f["masks/0"].id.get_storage_size()
    entropy = -(d * math.log2(d) + (1 - d) * math.log2(1 - d))
    assert entropy == pytest.approx(0.469, abs=1e-3)
    bits = stored * 8 / mask.size
    assert bits <= 1.3 * entropy, f"{bits:.3f} bits/parameter"
    assert path.stat().st_size - stored <= 8 * 1024


def test_module_does_not_import_torch() -> None:
    code = "import sys, ticketlab.fileformat; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------- bad files
def _error(path: Path, *, reader=load) -> str:
    with pytest.raises(TicketFormatError) as err:
        reader(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message
    return message


def _good(tmp_path: Path) -> Path:
    return save(_full_ticket(), tmp_path / "t.h5")


@pytest.mark.parametrize("reader", [load, read_info])
def test_no_such_file(tmp_path: Path, reader) -> None:
    assert "no such file" in _error(tmp_path / "missing.h5", reader=reader)


def test_folder_is_not_a_ticket(tmp_path: Path) -> None:
    assert "folder" in _error(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n" * 100])
def test_not_hdf5(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.h5"
    path.write_bytes(content)
    assert "not an HDF5 file" in _error(path)


@pytest.mark.parametrize("reader", [load, read_info])
def test_truncated(tmp_path: Path, reader) -> None:
    path = _good(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(path, reader=reader)


def test_hdf5_but_not_a_ticket(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    assert "not a ticket file (no format marker 'ticketlab.ticket')" in _error(path)


@pytest.mark.parametrize("reader", [load, read_info])
def test_newer_format_version(tmp_path: Path, reader) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = np.int64(2)
    assert _error(path, reader=reader).endswith(
        "written by a newer ticketlab (format version 2; this ticketlab reads up to 1): upgrade ticketlab"
    )


def test_packed_length_disagrees_with_shape(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f["masks/0"].attrs["shape"] = np.array([3, 70], dtype=np.int64)
    assert "mask 'fc2.weight' holds (3,) uint8 packed data but its shape (3, 70) needs (27,) uint8" in _error(path)


def _replace(f: h5py.File, key: str, data: np.ndarray) -> None:
    attrs = dict(f[key].attrs)
    del f[key]
    f.create_dataset(key, data=data)
    f[key].attrs.update(attrs)


@pytest.mark.parametrize("where,key", [("weight snapshot 'init'", "weights/init/1"), ("scores", "scores/1")])
def test_shape_disagrees_with_mask(tmp_path: Path, where: str, key: str) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        _replace(f, key, np.zeros((4, 3, 3), np.float32))
    message = _error(path)
    assert f"{where} 'conv.0.weight' has shape (4, 3, 3) but its mask has shape (4, 3, 3, 3)" in message
    assert "has shape (4, 3, 3)" in _error(path, reader=read_info)


def test_snapshot_missing_a_masked_parameter(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["weights/init/3"]
        f["weights/init"].attrs["count"] = np.int64(3)
    assert "weight snapshot 'init' has no weights for masked parameter 'fc1.weight'" in _error(path)


def test_malformed_provenance(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["provenance"] = '{"method": "synflow",'
    assert "the provenance is malformed JSON" in _error(path)
    assert "malformed JSON" in _error(path, reader=read_info)


def test_kept_count_disagrees_with_bits(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f["masks/2"].attrs["kept"] = f["masks/2"].attrs["kept"] + 1
    assert re.search(r"mask 'emb.weight' keeps \d+ weights but records \d+", _error(path))


def test_names_list_disagrees_with_masks(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f["masks/0"].attrs["name"] = "renamed"
    assert "the 'names' list disagrees" in _error(path)


def test_missing_mask_dataset(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["masks/1"]
    assert "dataset '/masks/1' is missing" in _error(path)


def test_corrupted_bytes_are_detected(tmp_path: Path) -> None:
    path = save(Ticket(masks={"w": _mask((4000,), 0.5)}), tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        offset = f["masks/0"].id.get_offset() if f["masks/0"].chunks is None else None
        chunk = f["masks/0"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    start = offset if offset is not None else chunk.byte_offset
    data[start + 100] ^= 0xFF  # flip a byte in the middle of the compressed mask
    path.write_bytes(bytes(data))
    assert "damaged" in _error(path)


def test_unknown_extra_objects_are_ignored(tmp_path: Path) -> None:
    """Docs, 'Versions': additions old readers can ignore keep format_version 1."""
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["future_attribute"] = "x"
        f.create_group("future_group").create_dataset("0", data=np.arange(3))
        f["masks/0"].attrs["future"] = 1
    back = load(path)
    assert list(back.masks) == list(_full_ticket().masks)


def test_a_killed_writes_temporary_is_removed_by_the_next_write(tmp_path):
    import os
    import subprocess
    import sys
    import time

    import ticketlab
    from ticketlab.atomic import remove_stale_temporaries

    target = tmp_path / "t.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".t.h5.{dead_pid}-abcdef.tmp"  # a writer that was killed
    stale.write_bytes(b"x" * 100)
    old = tmp_path / ".t.h5.0123456789ab.tmp"  # an old-style leftover, two days old
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    live = tmp_path / f".t.h5.{os.getpid()}-fedcba.tmp"  # a write in progress (this process)
    live.write_bytes(b"x")
    other = tmp_path / f".u.h5.{dead_pid}-abcdef.tmp"  # another target's: not ours to touch
    other.write_bytes(b"x")
    ticketlab.save(ticketlab.Ticket(masks={"w": np.array([1, 0], bool)}), target)
    assert target.exists() and not stale.exists() and not old.exists()
    assert live.exists() and other.exists()
    assert remove_stale_temporaries(target) == []


def _flip_in(path, dataset):
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        start = ds.id.get_chunk_info(0).byte_offset if ds.chunks else ds.id.get_offset()
    data = bytearray(path.read_bytes())
    data[start + 3] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_array_is_checksummed_and_damage_names_the_object(tmp_path):
    import ticketlab

    rng = np.random.default_rng(0)
    t = Ticket(masks={"w": _mask((4000,), 0.5)}, weights={"init": {"w": rng.standard_normal(4000).astype(np.float32)}},
               scores={"w": rng.standard_normal(4000).astype(np.float32)},
               history=[{"loss": float(i), "note": f"row {i}"} for i in range(50)])
    path = ticketlab.save(t, tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        assert f["masks/0"].fletcher32 and f["weights/init/0"].fletcher32 and f["scores/0"].fletcher32
        assert f["history/0"].fletcher32 and "crc32" in f["history/1"].attrs
    for dataset, named in (("weights/init/0", "weight snapshot 'init' 'w' is damaged"),
                           ("scores/0", "scores 'w' is damaged"), ("history/0", "history column 'loss' is damaged")):
        copy = tmp_path / f"c{len(named)}.h5"
        copy.write_bytes(path.read_bytes())
        _flip_in(copy, dataset)
        assert named in _error(copy), dataset
    with h5py.File(path, "r+") as f:  # a damaged string column: its CRC-32 no longer matches
        del f["history/1"]
        ds = f["history"].create_dataset("1", data=np.array([f"row {i}" for i in range(49)] + ["tampered"],
                                                             dtype=object), dtype=h5py.string_dtype())
        ds.attrs.update({"name": "note", "kind": "str", "crc32": np.int64(0)})
    assert "history column 'note' is damaged (checksum mismatch)" in _error(path)


def test_files_written_without_checksums_still_load(tmp_path):
    import ticketlab

    path = ticketlab.save(Ticket(masks={"w": _mask((100,), 0.5)}, weights={"init": {"w": np.ones(100, np.float32)}},
                                 history=[{"note": "a"}]), tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:  # as an older ticketlab wrote them: plain datasets, no crc32
        data = f["weights/init/0"][()]
        attrs = dict(f["weights/init/0"].attrs)
        del f["weights/init/0"]
        f["weights/init"].create_dataset("0", data=data).attrs.update(attrs)
        del f["history/0"].attrs["crc32"]
    back = ticketlab.load(path)
    assert np.array_equal(back.weights["init"]["w"], np.ones(100)) and back.history == [{"note": "a"}]


def test_inconsistent_density_and_non_finite_weights_warn(tmp_path):
    import ticketlab

    w = np.ones(8, np.float32)
    w[3] = np.nan
    t = Ticket(masks={"w": _mask((8,), 0.5)}, weights={"init": {"w": w}}, provenance={"achieved_density": 0.9})
    path = ticketlab.save(t, tmp_path / "t.h5")
    with pytest.warns(UserWarning) as record:
        ticketlab.load(path)
    text = " ".join(str(r.message) for r in record)
    assert "records density 0.9 but the masks keep" in text and "'init' holds NaN or infinite values in w" in text


def test_a_ticket_must_be_one_self_contained_file(tmp_path):
    import ticketlab

    good = ticketlab.save(Ticket(masks={"w": _mask((64,), 0.5)}), tmp_path / "good.h5")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 4)

    def variant(name, edit):
        path = tmp_path / f"{name}.h5"
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "r+") as f:
            edit(f)
        return path

    def external_storage(f):
        f["masks"].create_dataset("ext", shape=(8,), dtype="u1", external=[(str(secret), 0, 8)])

    cases = {
        "external link": (lambda f: f.__setitem__("extra", h5py.ExternalLink(str(good), "/masks")), "external link"),
        "soft link": (lambda f: f.__setitem__("extra", h5py.SoftLink("/masks/0")), "soft link"),
        "external storage": (external_storage, "stores its bytes in another file"),
    }
    for name, (edit, message) in cases.items():
        path = variant(name.replace(" ", "_"), edit)
        for reader in (ticketlab.load, lambda p: __import__("ticketlab.fileformat").fileformat.read_info(p)):
            with pytest.raises(TicketFormatError, match=message):
                reader(path)
    ticketlab.load(good)  # the plain file is fine
