"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (issue 23): where it is found without a
data root, the error when it is nowhere, the bounded gzip reader, and the real files.

The discovery tests use a fake system folder (``TICKETLAB_SYSTEM_DATA_DIR`` pointed at
``tmp_path``) and run everywhere. The tests marked ``needs_real`` read the installed package and
skip with the install command when it is absent; CI (``.ci/run``) installs it.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fakedata import write_fake_fashion_mnist, write_fake_fashion_mnist_system, write_idx

from ticketlab.cli.main import cli
from ticketlab.data import load_dataset
from ticketlab.data.paths import SYSTEM_DATA_DIR
from ticketlab.data.torchvision_sets import (
    FASHION_MNIST,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    read_idx,
)
from ticketlab.errors import DataNotFoundError

REAL = SYSTEM_DATA_DIR / "fashion-mnist"
REAL_FILES = [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
INSTALL_HINT = "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"
needs_real = pytest.mark.skipif(not all((REAL / f).is_file() for f in REAL_FILES), reason=INSTALL_HINT)


@pytest.fixture
def system(monkeypatch, tmp_path) -> Path:
    """An empty fake system data folder (``$TICKETLAB_SYSTEM_DATA_DIR``), no data root set; the
    Fashion-MNIST folder in it is returned (not created)."""
    monkeypatch.setenv("TICKETLAB_SYSTEM_DATA_DIR", str(tmp_path / "system"))
    monkeypatch.setenv("TICKETLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TICKETLAB_DATA_ROOT", raising=False)
    return tmp_path / "system" / "fashion-mnist"


def expected_message(root: Path, system: Path) -> str:
    return (
        f"Fashion-MNIST files not found: expected {root / 'FashionMNIST/raw/train-images-idx3-ubyte'}; "
        f"install them with 'apt-get install dataset-fashion-mnist' (read from {system} when no "
        "--data-root is given), pass --data-root DIR holding FashionMNIST/raw/*-ubyte[.gz] "
        "(or set TICKETLAB_DATA_ROOT), or add --download"
    )


# ------------------------------------------------------------------------------ discovery


def test_system_folder_is_read_without_a_data_root(system):
    written = write_fake_fashion_mnist_system(system, seed=3)
    data = load_dataset("fashion_mnist")
    assert torch.equal(data.test[1], torch.from_numpy(written["y_test"]))
    assert len(data.train[1]) + len(data.val[1]) == 20


def test_system_folder_comes_before_the_other_defaults(system, monkeypatch, tmp_path):
    on_system = write_fake_fashion_mnist_system(system, seed=1)
    in_env = write_fake_fashion_mnist(tmp_path / "env", seed=2)
    write_fake_fashion_mnist(tmp_path / "cache" / "data", seed=4)
    monkeypatch.setenv("TICKETLAB_DATA_ROOT", str(tmp_path / "env"))
    assert torch.equal(load_dataset("fashion_mnist").test[1], torch.from_numpy(on_system["y_test"]))
    # a data root passed explicitly wins over the system copy
    explicit = write_fake_fashion_mnist(tmp_path / "explicit", n_test=7, seed=5)
    data = load_dataset("fashion_mnist", root=tmp_path / "explicit")
    assert torch.equal(data.test[1], torch.from_numpy(explicit["y_test"]))
    # an incomplete system copy is passed over: the next default, TICKETLAB_DATA_ROOT
    (system / "t10k-labels-idx1-ubyte.gz").unlink()
    assert torch.equal(load_dataset("fashion_mnist").test[1], torch.from_numpy(in_env["y_test"]))


def test_system_folder_is_only_for_fashion_mnist(system, tmp_path):
    write_fake_fashion_mnist_system(system)
    # MNIST's files carry the same names: a flat folder of them must not be read as MNIST
    with pytest.raises(DataNotFoundError, match="MNIST files not found"):
        load_dataset("mnist")


def test_missing_everywhere_is_one_line_naming_every_way_to_get_it(system, tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("fashion_mnist")
    assert str(err.value) == expected_message(tmp_path / "cache" / "data", system)


def test_cli_error_line_without_the_package(system, tmp_path):
    res = CliRunner().invoke(cli, ["mine", "--method", "snip", "--dataset", "fashion_mnist",
                                   "-o", str(tmp_path / "t.h5")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0
    assert expected_message(tmp_path / "cache" / "data", system) in res.output


def test_real_subprocess_error_line_without_the_package(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TICKETLAB_DATA_ROOT"}
    env.update(TICKETLAB_SYSTEM_DATA_DIR=str(tmp_path / "system"), TICKETLAB_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "ticketlab", "mine", "--method", "snip", "--dataset",
                           "fashion_mnist", "-o", str(tmp_path / "t.h5")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert expected_message(tmp_path / "cache" / "data", tmp_path / "system" / "fashion-mnist") in proc.stderr


# ------------------------------------------------------------------------------ bounded gzip reader


def _gz(path: Path, payload: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(payload)
    return path


def test_gzip_declaring_more_than_it_can_hold_is_refused_before_inflating(tmp_path):
    header = IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (60000, 28, 28))
    path = _gz(tmp_path / "x.gz", header + bytes(100))  # 47 MB declared, 100 bytes stored
    with pytest.raises(DataNotFoundError, match="declares 47,040,000 data bytes, more than its "
                       r"\d+ compressed bytes can hold") as err:
        read_idx(path, IDX_IMAGES_MAGIC)
    assert "\n" not in str(err.value)


def test_gzip_inflating_past_its_declared_size_is_refused(tmp_path):
    path = _gz(tmp_path / "y.gz", IDX_LABELS_MAGIC.to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(4))
    with pytest.raises(DataNotFoundError, match="more than 3 data bytes for shape"):
        read_idx(path, IDX_LABELS_MAGIC)
    short = _gz(tmp_path / "z.gz", IDX_LABELS_MAGIC.to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes(4))
    with pytest.raises(DataNotFoundError, match="4 data bytes for shape"):
        read_idx(short, IDX_LABELS_MAGIC)


def test_gzip_over_the_inflated_bytes_limit_is_refused(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "l", np.zeros(5000, np.uint8), compress=True)
    assert read_idx(path, IDX_LABELS_MAGIC).shape == (5000,)
    monkeypatch.setenv("TICKETLAB_LIMIT_INFLATED_BYTES", "4999")
    with pytest.raises(DataNotFoundError, match="TICKETLAB_LIMIT_INFLATED_BYTES=N"):
        read_idx(path, IDX_LABELS_MAGIC)


def test_plain_idx_size_is_checked_against_the_file_before_reading(tmp_path):
    path = tmp_path / "p"
    path.write_bytes(IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (2**32 - 1,) * 3))
    with pytest.raises(DataNotFoundError, match="0 data bytes for shape"):
        read_idx(path, IDX_IMAGES_MAGIC)


def test_not_gzip_and_fifo_are_one_line_errors(tmp_path):
    bad = tmp_path / "b.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataNotFoundError, match="b.gz is not a valid idx file"):
        read_idx(bad, IDX_LABELS_MAGIC)
    fifo = tmp_path / "f.gz"
    os.mkfifo(fifo)
    with pytest.raises(DataNotFoundError, match="FIFO"):
        read_idx(fifo, IDX_LABELS_MAGIC)


# ------------------------------------------------------------------------------ the real files


@needs_real
def test_real_counts_and_class_balance():
    for prefix, n, per_class in (("train", 60_000, 6_000), ("t10k", 10_000, 1_000)):
        images = read_idx(REAL / f"{prefix}-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC)
        labels = read_idx(REAL / f"{prefix}-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC)
        assert images.shape == (n, 28, 28) and labels.shape == (n,)
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10


@needs_real
def test_real_split_sizes_without_a_data_root(monkeypatch):
    monkeypatch.delenv("TICKETLAB_SYSTEM_DATA_DIR", raising=False)
    monkeypatch.delenv("TICKETLAB_DATA_ROOT", raising=False)
    assert FASHION_MNIST.find_system() == REAL
    data = load_dataset("fashion_mnist", seed=0)
    assert [len(s[1]) for s in (data.train, data.val, data.test)] == [54_000, 6_000, 10_000]
    assert torch.bincount(data.train[1], minlength=10).tolist() == [5_400] * 10  # stratified
    assert torch.bincount(data.val[1], minlength=10).tolist() == [600] * 10
    assert torch.bincount(data.test[1], minlength=10).tolist() == [1_000] * 10
    # normalised with the published training statistics: mean ~0, std ~1 on the training split
    assert abs(float(data.train[0].mean())) < 0.01 and abs(float(data.train[0].std()) - 1) < 0.01


@needs_real
def test_real_mine_a_ticket(tmp_path):
    """The acceptance command (data-free SynFlow) and a data-driven SNIP ticket, both with no
    data root, in real subprocesses."""
    import ticketlab

    env = {k: v for k, v in os.environ.items() if k not in {"TICKETLAB_DATA_ROOT", "TICKETLAB_SYSTEM_DATA_DIR"}}
    env["TICKETLAB_CACHE_DIR"] = str(tmp_path / "empty-cache")
    for method, extra in (("synflow", ["--rounds", "5"]), ("snip", [])):
        out = tmp_path / f"{method}.h5"
        proc = subprocess.run([sys.executable, "-m", "ticketlab", "mine", "--method", method, "--dataset",
                               "fashion_mnist", *extra, "-o", str(out), "--quiet"],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        t = ticketlab.load(out)
        assert t.provenance["dataset"] == "fashion_mnist"
        assert t.provenance["data_read"] is (method == "snip")
        assert t.kept == round(0.1 * t.total)


# ------------------------------------------------------------------------------ the benchmark


def test_benchmark_compares_like_with_like(system, capsys):
    """bench_real_data's bare loop sees the batches, optimizer and initial weights that train
    does: after one epoch the weights agree bit for bit (on a fake 200-image system copy)."""
    from benchscripts import load_script

    bench = load_script("bench_real_data")
    write_fake_fashion_mnist_system(system, n_train=200, n_test=20)
    data = load_dataset("fashion_mnist")
    r = bench.bench_model("lenet_300_100", data, repeats=2, seed=0)
    assert r["identical"] is True
    assert (r["steps"], r["cadence"], r["evaluations"]) == (3, 100, 1)  # 180 images / 60; the end
    assert len(r["ratios"]) == len(r["shares"]) == 2


def test_benchmark_without_the_package_says_how_to_install_it(system, capsys):
    from benchscripts import load_script

    assert load_script("bench_real_data").main(["--repeats", "1"]) == 0
    assert capsys.readouterr().out.strip() == "skipped: Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"
