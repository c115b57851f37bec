"""Tiny inputs that would cost gigabytes (issue 22, section 3), each refused before it allocates.

Each case is a small file (or option) built at test time and run as a real ``ticketlab`` process
(started warm, :mod:`warm`, with nothing but the command line imported; stdin from /dev/null, a
6 GiB address-space limit, a timeout): it must exit 2 with one line on
stderr and no traceback, and the process's peak resident memory (``VmHWM``, measured by
``test_hostile_files``'s wrapper) stays under :data:`PEAK_LIMIT_MB`: the same command on the
unfixed code peaked at 1.2 to 7.5 GiB, hung, or ended in a traceback. Unit tests check the
shared pieces (:mod:`ticketlab.bounded`, :mod:`ticketlab.limits`, the model validator) directly.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import h5py
import pytest
import torch

from test_hostile_files import _MEASURED, _env
from warm import run as warm_run

pytestmark = pytest.mark.xdist_group("subprocess")

PEAK_LIMIT_MB = 900  # the acceptance bound is 1 GiB; a refusal here costs the interpreter and torch
TIMEOUT_S = 60
ADDRESS_SPACE = 6 * 2**30  # as in the audit: a runaway case fails instead of taking the machine


# ------------------------------------------------------------------------------- builders
def _deflate_bomb(total: int, head: bytes = b"", chunk: int = 64 << 20) -> tuple[bytes, int]:
    """A raw deflate stream of ``head`` then zeros, ``total`` bytes, and its CRC-32, made in a
    second: after a full flush a compressor starts afresh, so every zero chunk compresses alike."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(chunk)
    first = head + zeros[len(head):]
    start = c.compress(first) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert total % chunk == 0 and len(head) < chunk
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert again == piece
    n = total // chunk
    crc = zlib.crc32(first)
    for _ in range(n - 1):
        crc = zlib.crc32(zeros, crc)
    return start + piece * (n - 1) + c.flush(), crc


def _zip_with_bomb(path: Path, members: dict[str, bytes], bomb: str, total: int, head: bytes = b"") -> Path:
    """A zip of stored ``members`` plus member ``bomb``: deflated, inflating to ``total`` bytes
    (``head``, then zeros)."""
    stream, crc = _deflate_bomb(total, head)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(bomb, stream)
        offset = zf.getinfo(bomb).header_offset
    data = bytearray(path.read_bytes())
    # local header: method at +8, crc at +14, uncompressed size at +22
    struct.pack_into("<H", data, offset + 8, zipfile.ZIP_DEFLATED)
    struct.pack_into("<I", data, offset + 14, crc)
    struct.pack_into("<I", data, offset + 22, total)
    pos = 0
    while True:  # the central directory entry of the bomb: method +10, crc +16, uncompressed +24
        pos = data.index(b"PK\x01\x02", pos)
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46: pos + 46 + name_len]) == bomb.encode():
            struct.pack_into("<H", data, pos + 10, zipfile.ZIP_DEFLATED)
            struct.pack_into("<I", data, pos + 16, crc)
            struct.pack_into("<I", data, pos + 24, total)
            break
        pos += 4
    path.write_bytes(bytes(data))
    return path


def _torch_members(obj: object, folder: Path) -> dict[str, bytes]:
    tmp = folder / "plain.pt"
    torch.save(obj, tmp)
    with zipfile.ZipFile(tmp) as zf:
        out = {i.filename: zf.read(i) for i in zf.infolist()}
    tmp.unlink()
    return out


def _checkpoint_bomb(folder: Path) -> Path:
    """``t.h5.ckpt``: a checkpoint whose tensor record inflates to 1.5 GiB from ~1.5 MB."""
    members = _torch_members({"format": "ticketlab.checkpoint", "version": 1, "w": torch.zeros(4)}, folder)
    record = next(n for n in members if n.endswith("/data/0"))
    data = {n: b for n, b in members.items() if n != record}
    return _zip_with_bomb(folder / "t.h5.ckpt", data, record, 3 * 2**29)


def _stride_zero(folder: Path) -> Path:
    """A 1.6 KB torch file: one float, expanded (stride 0) to 3e8 values (run with max_params 1e9,
    so that the stored-bytes check, not the memory-dependent default max_params, refuses it)."""
    path = folder / "masks.pt"
    torch.save({"fc1.weight_mask": torch.ones(1).expand(3 * 10**8)}, path)
    return path


def _npz_bomb(folder: Path) -> Path:
    """An npz of ~1.5 MB whose one member is a valid ``.npy`` of 1.5 GiB of False."""
    total = 3 * 2**29
    text = "{'descr': '|b1', 'fortran_order': False, 'shape': (%d,), }" % (total - 128)
    header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + text.ljust(117).encode() + b"\n"
    assert len(header) == 128
    return _zip_with_bomb(folder / "masks.npz", {}, "w.npy", total, head=header)


def _ticket(folder: Path, name: str = "t.h5") -> Path:
    import ticketlab

    t = ticketlab.mine("random", density=0.5, seed=0, device="cpu", omit_weights=True)
    return ticketlab.save(t, folder / name)


def _provenance_model(hidden: list[int]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = _ticket(folder)
        with h5py.File(path, "r+") as f:
            prov = json.loads(f.attrs["provenance"])
            prov["model_config"] = {"hidden": hidden}
            f.attrs["provenance"] = json.dumps(prov)
        return path

    return build


def _study_file(text: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "s.toml"
        path.write_text('name = "s"\nmodel = "lenet_300_100"\ndataset = "digits"\nmethods = ["random"]\n'
                        'seeds = [0]\ndensities = [0.5]\n' + text)
        return path

    return build


def _replace_key(key: str, value: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = _study_file("")(folder)
        lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")
        return path

    return build


def _study_symlink_to_dev_zero(folder: Path) -> Path:
    path = folder / "s.toml"
    path.symlink_to("/dev/zero")
    return path


def _study_fifo(folder: Path) -> Path:
    path = folder / "s.toml"
    os.mkfifo(path)
    return path


def _manifest(content: Callable[[Path], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        study = folder / "study"
        study.mkdir()
        content(study / "study.json")
        return study

    return build


def _imp_study(densities: str, rate: str | None = None) -> Callable[[Path], Path]:
    extra = f"[method.imp]\nrate = {rate}\n" if rate else ""
    def build(folder: Path) -> Path:
        path = _study_file(extra)(folder)
        text = path.read_text().replace('methods = ["random"]', 'methods = ["imp"]')
        path.write_text(text.replace("densities = [0.5]", f"densities = {densities}"))
        return path

    return build


# name -> (builder, argv from the built path and the folder)
CASES: dict[str, tuple[Callable[[Path], Path], Callable[[Path, Path], list[str]]]] = {
    "checkpoint_zip_bomb_1.5_MB": (
        _checkpoint_bomb, lambda p, d: ["mine", "-m", "random", "--density", "0.5", "-o", str(d / "t.h5"), "--resume"]),
    "torch_stride_0_tensor": (_stride_zero, lambda p, d: ["import", str(p), "-o", str(d / "out.h5")]),
    "npz_zip_bomb": (_npz_bomb, lambda p, d: ["import", str(p), "-o", str(d / "out.h5")]),
    "provenance_model_of_1.6_GB": (_provenance_model([20_000, 20_000]), lambda p, d: ["evaluate", str(p)]),
    "provenance_model_of_100_GB": (_provenance_model([160_000, 160_000]), lambda p, d: ["evaluate", str(p)]),
    "study_file_symlink_to_dev_zero": (_study_symlink_to_dev_zero,
                                       lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "study_file_fifo": (_study_fifo, lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "study_json_symlink_to_dev_zero": (_manifest(lambda m: m.symlink_to("/dev/zero")),
                                       lambda p, d: ["study", "report", str(p)]),
    "study_json_fifo": (_manifest(lambda m: os.mkfifo(m)), lambda p, d: ["study", "report", str(p)]),
    "study_json_nested_100000_deep": (_manifest(lambda m: m.write_text("[" * 100_000 + "]" * 100_000)),
                                      lambda p, d: ["study", "report", str(p)]),
    "study_file_nested_100000_deep": (_study_file("x = " + "[" * 100_000 + "]" * 100_000 + "\n"),
                                      lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "seeds_of_1e6": (_replace_key("seeds", "[" + ",".join(map(str, range(10**6))) + "]"),
                     lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "imp_rate_1e-12": (_imp_study("[0.5]", "1e-12"), lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "imp_density_1e-300": (_imp_study("[1e-300]"), lambda p, d: ["study", "run", str(p), "-o", str(d / "out")]),
    "barrier_alphas_1e9": (_ticket, lambda p, d: ["barrier", str(p), str(p), "--alphas", "1000000000"]),
    "mine_rounds_1e9": (lambda d: d, lambda p, d: ["mine", "-m", "synflow", "--rounds", "1000000000",
                                                   "-o", str(d / "t.h5")]),
}


#: Extra environment of a case.
#: (A raised max_params, so that the unfixed code would not refuse them by its memory-dependent default.)
ENV = {"torch_stride_0_tensor": {"TICKETLAB_MAX_PARAMS": str(10**9)},
       "npz_zip_bomb": {"TICKETLAB_MAX_PARAMS": str(10**10)}}


@pytest.mark.parametrize("case", list(CASES))
def test_tiny_input_is_refused_in_one_line_within_the_memory_bound(tmp_path: Path, case: str) -> None:
    build, argv = CASES[case]
    path = build(tmp_path)
    if path.is_file() and not path.is_symlink():
        assert path.stat().st_size < 8 * 2**20, f"{case}: the input is {path.stat().st_size:,} bytes"
    rss = tmp_path / "rss"
    try:
        proc = warm_run([str(rss), *argv(path, tmp_path)], code=_MEASURED, timeout=TIMEOUT_S,
                        env=_env(**ENV.get(case, {})), address_space=ADDRESS_SPACE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: no answer within {TIMEOUT_S} s")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") \
        and "Traceback" not in proc.stderr, f"{case}: exit {proc.returncode}, stderr {proc.stderr[-600:]!r}"
    peak_mb = int(rss.read_text()) / 1024
    print(f"{case}: peak {peak_mb:.0f} MB: {lines[0]}")
    assert peak_mb < PEAK_LIMIT_MB, f"{case}: peaked at {peak_mb:.0f} MB"


def test_a_limit_is_raised_by_its_variable(tmp_path: Path) -> None:
    """The same option passes once its limit is raised, so the bound is the limit, not the parser."""
    from ticketlab.limits import LimitError, check
    from ticketlab.metrics.barrier import alpha_grid

    with pytest.raises(LimitError, match="TICKETLAB_LIMIT_ALPHAS=N"):
        alpha_grid(2000)
    os.environ["TICKETLAB_LIMIT_ALPHAS"] = "2000"
    try:
        assert len(alpha_grid(2000)) == 2000
        with pytest.raises(LimitError):
            check("alphas", 2001, "x")
    finally:
        del os.environ["TICKETLAB_LIMIT_ALPHAS"]
    os.environ["TICKETLAB_LIMIT_ALPHAS"] = "lots"
    try:
        with pytest.raises(Exception, match="not a positive whole number"):
            alpha_grid(3)
    finally:
        del os.environ["TICKETLAB_LIMIT_ALPHAS"]


# ------------------------------------------------------------------------------- unit tests
def test_read_bytes_refuses_what_is_not_a_regular_file_and_reads_at_most_the_limit_plus_one(tmp_path: Path) -> None:
    from ticketlab.bounded import Refused, read_bytes

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(Refused, match="FIFO"):
        read_bytes(fifo)
    with pytest.raises(Refused, match="character device"):
        read_bytes("/dev/zero")
    with pytest.raises(Refused, match="folder"):
        read_bytes(tmp_path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(Refused, match="101 bytes, more than the limit of 100"):
        read_bytes(big, max_bytes=100)
    assert read_bytes(big, max_bytes=101) == b"x" * 101


def test_nesting_depth_is_bounded_in_json_and_toml() -> None:
    from ticketlab.bounded import Malformed, Refused, parse_json, parse_toml

    assert parse_json("[" * 64 + "]" * 64) is not None
    with pytest.raises(Refused, match="65 levels deep"):
        parse_json("[" * 65 + "]" * 65)
    with pytest.raises(Refused, match="TICKETLAB_LIMIT_DEPTH"):
        parse_toml("a = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(Refused, match="levels deep"):  # dotted keys nest without recursion
        parse_toml(".".join(f"k{i}" for i in range(100)) + " = 1")
    with pytest.raises(Malformed):
        parse_json("{")


def test_check_zip_refuses_lying_and_oversized_declarations(tmp_path: Path) -> None:
    from ticketlab.bounded import Refused, check_zip

    bomb = _zip_with_bomb(tmp_path / "b.zip", {"a": b"1"}, "big", 3 * 2**29)
    assert bomb.stat().st_size < 2 * 2**20
    with zipfile.ZipFile(bomb) as zf:
        with pytest.raises(Refused, match="inflate to 1,610,612,736 bytes, more than the limit"):
            check_zip(zf, bomb.stat().st_size, 2**40)
        with pytest.raises(Refused, match="more than the cap allows"):
            check_zip(zf, bomb.stat().st_size, 2**20, what="the cap")
    lying = tmp_path / "l.zip"
    with zipfile.ZipFile(lying, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x", b"abc" * 100)
    data = bytearray(lying.read_bytes())
    pos = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, pos + 24, 10**9)  # the central directory claims 1 GB from a few bytes
    lying.write_bytes(bytes(data))
    with zipfile.ZipFile(lying) as zf:
        with pytest.raises(Refused, match="deflate's largest ratio"):
            check_zip(zf, lying.stat().st_size, 2**40)


def test_check_tensors_counts_only_what_storages_hold() -> None:
    from ticketlab.bounded import Refused, check_tensors

    w = torch.zeros(6, 4)
    check_tensors([w, w, w.t(), torch.zeros(3)[1:], torch.zeros(8)[2:]])  # tied, transposed, sliced views
    with pytest.raises(Refused, match="overlapping strides"):
        check_tensors([torch.zeros(3, 1).expand(3, 10**6)])
    with pytest.raises(Refused, match="overlapping strides"):
        check_tensors([torch.zeros(10).as_strided((5, 5), (1, 1))])
    with pytest.raises(Refused, match="overlapping views"):
        base = torch.zeros(10)
        check_tensors([base[:6], base[4:]])


def test_model_config_is_validated_before_anything_is_built() -> None:
    from ticketlab.data.base import DataSpec
    from ticketlab.errors import ConfigError
    from ticketlab.limits import LimitError
    from ticketlab.models import create_model
    from ticketlab.models.registry import validate_model_config

    spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
    assert validate_model_config("lenet_300_100", spec, {"hidden": [300, 100]}) == 50_610
    for bad, match in (({"hidden": "300"}, "list of 1 to 64"), ({"hidden": [0]}, "whole numbers"),
                       ({"hidden": [1.5]}, "whole numbers"), ({"hidden": [1] * 65}, "list of 1 to 64"),
                       ({"seed": 3}, "has no option seed"), ({"zero_bias": "yes"}, "true or false")):
        with pytest.raises(ConfigError, match=match):
            validate_model_config("lenet_300_100", spec, bad)
    with pytest.raises(ConfigError, match="dropout must be in"):
        validate_model_config("gcn", DataSpec("g", "graph", (5,), 3), {"dropout": 2.0})
    with pytest.raises(LimitError, match="TICKETLAB_LIMIT_MODEL_PARAMS"):
        create_model("lenet_300_100", spec, hidden=[100_000, 100_000])


def test_checkpoints_round_trip_through_the_bounded_reader(tmp_path: Path) -> None:
    from ticketlab.checkpoint import read_checkpoint, write_checkpoint

    state = {"round": 1, "fingerprint": {"a": 1}, "model": {"w": torch.arange(6.0).reshape(2, 3)},
             "generator": torch.Generator().manual_seed(0).get_state()}
    write_checkpoint(tmp_path / "c.ckpt", state)
    back = read_checkpoint(tmp_path / "c.ckpt", {"a": 1})
    assert torch.equal(back["model"]["w"], state["model"]["w"])
    torch.Generator().set_state(back["generator"])
