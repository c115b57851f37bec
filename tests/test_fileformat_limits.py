"""Declared sizes, limits and odd-but-valid content of ticket files (issue 12, sections 1, 3, 5).

The hostile files themselves are in test_hostile_files.py; this module checks the other side:
valid files (including one written by ticketlab before the checksums) load bit-identically, the
limits can be raised, an invalid topology is dropped with a warning, unknown objects are
ignored, and non-finite weights are left out of the sign metrics.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab import _hdf5, fileformat
from ticketlab.errors import ConfigError, TicketFormatError
from ticketlab.ticket import Ticket

DATA = Path(__file__).parent / "data"


def legacy_ticket() -> Ticket:
    """The ticket in data/v1_before_checksums.h5, written by ticketlab at commit 331169c^ (before
    fletcher32 on weights, scores and history, and before the CRC-32 of string columns) with
    ``save(legacy_ticket(), path)``: the same code, so this rebuilds it exactly."""
    rng = np.random.default_rng(12)
    masks = {"conv.weight": rng.random((4, 3, 3, 3)) < 0.3, "fc.weight": rng.random((10, 36)) < 0.2}
    init = {n: rng.standard_normal(m.shape).astype(np.float32) for n, m in masks.items()}
    init["fc.bias"] = rng.standard_normal(10).astype(np.float32)
    final = {n: (w * masks[n]) if n in masks else w * 2 for n, w in init.items()}
    final = {n: w.astype(np.float64) for n, w in final.items()}
    scores = {n: np.abs(w) for n, w in init.items() if n in masks}
    topo = {"tensors": {"input": 3, "t1": 4, "t2": 10}, "input": "input", "output": "t2",
            "edges": [{"param": "conv.weight", "src": "input", "dst": "t1", "kind": "conv", "group": 1},
                      {"param": "fc.weight", "src": "t1", "dst": "t2", "kind": "linear", "group": 9}]}
    history = [{"round": i, "loss": 1.0 / (i + 1), "name": f"r{i}", "mixed": [i, "x"], "flag": i % 2 == 0}
               for i in range(4)]
    history[2].pop("name")
    return Ticket(masks=masks, provenance={"method": "magnitude", "seed": 12, "topology": topo, "nan": float("nan")},
                  weights={"init": init, "final": final}, scores=scores, history=history)


def _same(a: Ticket, b: Ticket) -> None:
    assert list(a.masks) == list(b.masks)
    for n in a.masks:
        assert a.masks[n].dtype == b.masks[n].dtype and np.array_equal(a.masks[n], b.masks[n])
    for group_a, group_b in ((a.weights.get("init", {}), b.weights.get("init", {})),
                             (a.weights.get("final", {}), b.weights.get("final", {})), (a.scores, b.scores)):
        assert list(group_a) == list(group_b)
        for n in group_a:
            assert group_a[n].dtype == group_b[n].dtype and group_a[n].tobytes() == group_b[n].tobytes()
    assert json.dumps(a.provenance) == json.dumps(b.provenance)
    assert json.dumps(a.history) == json.dumps(b.history)


def test_a_file_written_before_the_checksums_loads_bit_identically() -> None:
    path = DATA / "v1_before_checksums.h5"
    with h5py.File(path, "r") as f:  # it really is an old file
        assert f["masks/0"].fletcher32 and not f["weights/init/0"].fletcher32 and not f["history/0"].fletcher32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and it loads without a complaint
        back = ticketlab.load(path)
        info = fileformat.read_info(path, history=True, verify=True)
    _same(back, legacy_ticket())
    assert info["kept"] == sum(int(m.sum()) for m in back.masks.values())


def test_todays_files_round_trip_bit_identically(tmp_path: Path) -> None:
    t = legacy_ticket()
    _same(ticketlab.load(ticketlab.save(t, tmp_path / "t.h5")), t)


def test_large_compressed_arrays_pass_the_inflation_bound(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = {"a": rng.random(3_000_000) < 0.05, "b": rng.random((700, 1500)) < 0.5}
    final = {n: np.where(m, rng.standard_normal(m.shape), 0).astype(np.float32) for n, m in masks.items()}
    t = Ticket(masks=masks, weights={"final": final})
    path = ticketlab.save(t, tmp_path / "big.h5")
    with h5py.File(path, "r") as f:
        assert f["masks/0"].compression == "gzip" and f["weights/final/0"].compression == "gzip"
        assert f["masks/0"].id.get_num_chunks() == 1 and f["weights/final/0"].id.get_num_chunks() > 5
    _same(ticketlab.load(path), t)


def test_unknown_objects_are_ignored_with_a_warning(tmp_path: Path) -> None:
    """docs/format.md, 'Versions': a newer writer's optional objects are ignored, snapshots too."""
    t = legacy_ticket()
    path = ticketlab.save(t, tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:
        f.create_group("attention_maps").create_dataset("0", data=np.arange(5))
        best = f["weights"].create_group("best")
        best.attrs["count"] = np.int64(1)
        best.create_dataset("0", data=np.zeros(3)).attrs["name"] = "fc.bias"
        f.attrs["future_attribute"] = "ignored silently"
    with pytest.warns(UserWarning, match=r"ignores '/attention_maps', '/weights/best', which this ticketlab"):
        back = ticketlab.load(path)
    _same(back, t)
    assert list(back.weights) == ["init", "final"]
    with pytest.warns(UserWarning, match="does not know"):
        assert fileformat.read_info(path)["snapshots"] == ["init", "final"]


def test_max_params_is_an_argument_an_environment_variable_or_half_the_memory(tmp_path, monkeypatch) -> None:
    path = ticketlab.save(Ticket(masks={"w": np.ones(100, bool)}), tmp_path / "t.h5")
    with pytest.raises(TicketFormatError, match=r"declare 100 parameters, more than max_params = 99; .*max_params=N"):
        ticketlab.load(path, max_params=99)
    assert ticketlab.load(path, max_params=100).total == 100
    monkeypatch.setenv(fileformat.MAX_PARAMS_ENV, "50")
    with pytest.raises(TicketFormatError, match="more than max_params = 50"):
        fileformat.read_info(path)
    assert ticketlab.load(path, max_params=10**6).total == 100  # the argument wins over the variable
    monkeypatch.setenv(fileformat.MAX_PARAMS_ENV, "lots")
    with pytest.raises(ConfigError, match="TICKETLAB_MAX_PARAMS='lots' is not a positive whole number"):
        ticketlab.load(path)
    monkeypatch.delenv(fileformat.MAX_PARAMS_ENV)
    monkeypatch.setattr(_hdf5, "available_memory", lambda: 2 * 9 * 1000)
    assert fileformat.default_max_params() == 1000
    monkeypatch.setattr(_hdf5, "available_memory", lambda: 2 * 9 * 99)
    with pytest.raises(TicketFormatError, match="half the available memory at 9 bytes a parameter"):
        ticketlab.load(path)


def test_a_read_that_needs_more_memory_than_is_available_is_refused(tmp_path, monkeypatch) -> None:
    t = Ticket(masks={"w": np.ones(80_000_000, bool)})
    path = ticketlab.save(t, tmp_path / "t.h5")
    monkeypatch.setattr(_hdf5, "available_memory", lambda: 30 * 2**20)
    with pytest.raises(TicketFormatError, match=r"needs about 0.0\d+ GiB of memory, but 0.0293 GiB is available"):
        ticketlab.load(path, max_params=10**9)
    assert fileformat.read_info(path, max_params=10**9)["total"] == 80_000_000  # reads no mask


def test_available_memory_is_measured_from_the_kernel() -> None:
    meminfo = Path("/proc/meminfo")
    avail = _hdf5.available_memory()
    assert avail > 0
    if meminfo.exists():
        kernel = next(int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines()
                      if line.startswith("MemAvailable:"))
        assert avail <= kernel * 1.2


@pytest.mark.parametrize("topology, problem", [
    ("chain", "it is a str, not an object"),
    ({"tensors": {"input": 8, "t1": 6}, "input": "input", "output": "t1"}, "it has no 'edges'"),
    ({"tensors": {"input": 8, "t1": 10**13}, "input": "input", "output": "t1",
      "edges": [{"param": "other.weight", "src": "input", "dst": "t1", "kind": "linear"}]}, "10000000000000 units"),
    ({"tensors": {"input": 8, "t1": 6, "t2": 10**7}, "input": "input", "output": "t2",
      "edges": [{"param": "w", "src": "input", "dst": "t1", "kind": "linear"},
                {"param": "dense.weight", "src": "t1", "dst": "t2", "kind": "linear"}]}, "unmasked edge 'dense.weight'"),
    ({"tensors": {"input": 8, "t1": 6}, "input": "input", "output": "t1",
      "edges": [{"param": "w", "src": "input", "dst": "t1", "kind": "linear", "group": 2}]}, "its mask has shape (6, 8)"),
    ({"tensors": {"input": 8, "t1": 8}, "input": "input", "output": "t1",
      "edges": [{"identity": True, "src": "input", "dst": "t1"}, {"identity": True, "src": "t1", "dst": "input"}]},
     "it has a cycle"),
])
def test_an_invalid_topology_is_dropped_with_a_warning(tmp_path, monkeypatch, topology, problem) -> None:
    from ticketlab.metrics.graph import CHAIN_NOTE

    monkeypatch.setenv(fileformat.MAX_PARAMS_ENV, "10000000")  # the same bound on every machine
    masks = {"w": np.random.default_rng(0).random((6, 8)) < 0.5}
    path = ticketlab.save(Ticket(masks=masks, provenance={"topology": topology}), tmp_path / "t.h5")
    with pytest.warns(UserWarning, match="ignores the provenance's topology, which is invalid") as record:
        t = ticketlab.load(path)
    assert problem in str(record[0].message)
    assert "topology" not in t.provenance
    rec = next(r for r in ticketlab.compare([t, t], ["dead_units"]) if r["layer"] == "__total__")
    assert rec["note"] == CHAIN_NOTE and rec["value"] is not None


def test_a_valid_topology_is_kept() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ticketlab.load(DATA / "v1_before_checksums.h5").provenance["topology"] == legacy_ticket().provenance["topology"]


def test_non_finite_weights_are_left_out_of_the_sign_metrics() -> None:
    m = {"w": np.ones(6, bool)}
    init = np.array([1.0, -1.0, 1.0, np.nan, 1.0, -np.inf])
    final = np.array([2.0, 1.0, 1.0, 1.0, np.inf, -1.0])
    t = Ticket(masks=m, weights={"init": {"w": init}, "final": {"w": final}}, provenance={"seed": 0, "model": "x"})
    records = {r["metric"]: r for r in ticketlab.compare([t], ["sign_kept", "sign_flip"]) if r["layer"] == "__total__"}
    assert records["sign_kept"]["value"] == pytest.approx(2 / 3)  # of the 3 finite pairs, 2 keep their sign
    assert records["sign_flip"]["value"] == pytest.approx(1 / 3)
    assert records["sign_kept"]["note"] == "3 kept weights with a NaN or infinite value left out"
    u = Ticket(masks=m, weights={"init": {"w": np.ones(6)}, "final": {"w": final * [1, 1, -1, 1, 1, 1]}},
               provenance={"seed": 1, "model": "x"})
    rec = next(r for r in ticketlab.compare([t, u], ["sign_agree_final"]) if r["layer"] == "__total__")
    assert rec["value"] == pytest.approx(4 / 5)  # the infinite final weight is left out
    assert rec["note"].endswith("; 1 kept weight with a NaN or infinite value left out")


def test_inspect_refuses_what_load_refuses(tmp_path) -> None:
    from ticketlab.cli.main import cli

    path = ticketlab.save(Ticket(masks={"w": np.arange(20) % 3 == 0}), tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:
        f["masks/0"].attrs["kept"] = np.int64(6)  # the bits keep 7
    with pytest.raises(TicketFormatError, match="keeps 7 weights but records 6"):
        ticketlab.load(path)
    for args in (["inspect", str(path)], ["inspect", str(path), "--json"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "keeps 7 weights but records 6" in result.output


def test_inspect_bounds_what_it_prints(tmp_path) -> None:
    from ticketlab.cli.main import cli

    prov = {f"key{i:05d}": i for i in range(5000)}
    prov["a_long_value"] = "x" * 100_000
    path = ticketlab.save(Ticket(masks={"w": np.ones(4, bool)}, provenance=prov), tmp_path / "t.h5")
    result = CliRunner().invoke(cli, ["inspect", str(path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "... and 4,901 more provenance keys (--json shows all)" in result.output
    assert "(100,000 characters; --json shows all)" in result.output
    assert len(result.output) < 50_000
    full = json.loads(CliRunner().invoke(cli, ["inspect", str(path), "--json"]).output)
    assert len(full["provenance"]) == 5001 and len(full["provenance"]["a_long_value"]) == 100_000


def test_the_own_chunk_reader_equals_hdf5s(tmp_path: Path) -> None:
    """read_dataset undoes shuffle, gzip and fletcher32 itself: same arrays as h5py, every layout."""
    rng = np.random.default_rng(3)
    cases = []
    with h5py.File(tmp_path / "x.h5", "w") as f:
        for i in range(60):
            ndim = int(rng.integers(1, 5))
            shape = tuple(int(rng.integers(1, 40 if ndim > 2 else 3000)) for _ in range(ndim))
            chunks = tuple(int(rng.integers(1, n + 1)) for n in shape)
            dtype = rng.choice(["u1", "<f4", ">f8", "<i2", "?", "<c8"])
            data = (rng.standard_normal(shape) * 100).astype(dtype) if dtype != "?" else rng.random(shape) < 0.5
            data.flat[: data.size // 3] = 0
            f.create_dataset(str(i), data=data, chunks=chunks, compression="gzip", shuffle=bool(i % 2),
                             fletcher32=bool(i % 3))
            cases.append(str(i))
    read = 0
    with h5py.File(tmp_path / "x.h5", "r") as f:
        for key in cases:
            ds = f[key]
            if math.prod(ds.chunks) * ds.dtype.itemsize < min(_hdf5.nbytes(ds), _hdf5.MIN_CHUNK_BYTES):
                continue  # tiny chunks are refused (test_hostile_files)
            got = _hdf5.read_dataset(ds, key)
            assert got.dtype == ds.dtype and got.tobytes() == ds[()].tobytes(), key
            _hdf5.verify_dataset(ds, key)
            read += ds.id.get_num_chunks() > 1
    assert read >= 20  # many layouts with several (and partial edge) chunks were read


# ------------------------------------------------------------------ the trained state in 'final'
def _trained_state_ticket() -> Ticket:
    """A ticket whose ``final`` holds the whole trained state, as ``mine`` and ``train`` write it
    (``ticketlab.retraining.final_snapshot``): masked weights, then biases, batch norm (an int64
    0-d ``num_batches_tracked``) and an unpruned layer."""
    rng = np.random.default_rng(3)
    masks = {"conv.weight": rng.random((4, 3, 3, 3)) < 0.3, "fc.weight": rng.random((10, 36)) < 0.2}
    final = {n: (rng.standard_normal(m.shape) * m).astype(np.float32) for n, m in masks.items()}
    final.update({"stem.weight": rng.standard_normal((3, 3)), "conv.bias": rng.standard_normal(4).astype(np.float32),
                  "bn.weight": np.ones(4, np.float32), "bn.running_var": rng.random(4).astype(np.float32),
                  "bn.num_batches_tracked": np.array(18, np.int64), "fc.bias": np.zeros(10, np.float32)})
    return Ticket(masks=masks, provenance={"method": "snip", "seed": 0}, weights={"final": final})


def test_a_trained_state_in_final_round_trips_bit_identically(tmp_path: Path) -> None:
    t = _trained_state_ticket()
    path = ticketlab.save(t, tmp_path / "t.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'unknown object' note: the layout is unchanged
        back = ticketlab.load(path)
        info = fileformat.read_info(path, verify=True)
    _same(back, t)
    state = back.weights["final"]
    assert state["bn.num_batches_tracked"].shape == () and int(state["bn.num_batches_tracked"]) == 18
    assert state["stem.weight"].dtype == np.float64 and info["snapshots"] == ["final"]
    assert ticketlab.load(path, weights=False).weights == {}


def test_a_trained_state_entry_is_checked_like_every_array(tmp_path: Path) -> None:
    path = ticketlab.save(_trained_state_ticket(), tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        group = f["weights/final"]
        index = next(k for k in group if group[k].attrs["name"] == "bn.running_var")

    def replace(name: str, **kw) -> Path:
        bad = tmp_path / f"{name}.h5"
        bad.write_bytes(path.read_bytes())
        with h5py.File(bad, "r+") as f:
            del f[f"weights/final/{index}"]
            f["weights/final"].create_dataset(index, **kw).attrs["name"] = "bn.running_var"
        return bad

    unbacked = replace("unbacked", shape=(10**9,), dtype=np.float32)  # declared, nothing stored
    large = replace("large", data=np.zeros(1000, np.float32))  # stored, but over max_params (masks: 468)
    for reader in (ticketlab.load, fileformat.read_info):
        with pytest.raises(TicketFormatError, match=r"'bn.running_var' declares 4000000000 bytes but the file stores 0"):
            reader(unbacked, max_params=10**10)
        with pytest.raises(TicketFormatError, match=r"array 'bn.running_var' declares 1,000 values, more than max_params = 500"):
            reader(large, max_params=500)
    text = replace("text", data=np.array([b"x", b"y"]))
    with pytest.raises(TicketFormatError, match=r"'bn.running_var' holds \|S1 data, not numbers"):
        ticketlab.load(text)
