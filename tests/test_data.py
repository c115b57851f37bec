"""Tests of the data registry (ticketlab.data): offline, seconds.

Built-in sets (digits, mnist1d, karate) load for real; cora/citeseer from the read-only
``../shared/data/planetoid``; mnist/fashion_mnist/cifar10/cifar100 from tiny files in the real
on-disk formats written by ``fakedata.py``.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import (
    _pickle,
    _s,
    write_fake_cifar10,
    write_fake_cifar100,
    write_fake_fashion_mnist,
    write_fake_mnist,
    write_idx,
)

import ticketlab.data.mnist1d_set as mnist1d_set
import ticketlab.data.registry as registry_module
from ticketlab.data import (
    DataSpec,
    GraphData,
    TensorData,
    get_dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from ticketlab.data.splits import split_sizes, stratified_split
from ticketlab.data.torchvision_sets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
)
from ticketlab.errors import ConfigError, DataNotFoundError, UnknownNameError
from ticketlab.registry import Registry

PLANETOID = Path(__file__).parents[1].parent / "shared" / "data" / "planetoid"
needs_planetoid = pytest.mark.skipif(
    not (PLANETOID / "Cora" / "raw").is_dir(),
    reason=f"shared Planetoid files not found at {PLANETOID}",
)

EXPECTED_NAMES = [
    "digits", "mnist1d", "mnist5k", "karate", "cora", "citeseer",
    "mnist", "fashion_mnist", "cifar10", "cifar100",
]
FAKE_WRITERS = {
    "mnist": write_fake_mnist,
    "fashion_mnist": write_fake_fashion_mnist,
    "cifar10": write_fake_cifar10,
    "cifar100": write_fake_cifar100,
}
# per-channel (mean, std) of the torchvision-layout sets
IMAGE_SETS = {
    "mnist": (MNIST_MEAN, MNIST_STD),
    "fashion_mnist": (FASHION_MNIST_MEAN, FASHION_MNIST_STD),
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}
FIXED_SPLIT = {"cora", "citeseer"}  # public split: the seed changes nothing
OFFICIAL_TEST = {"mnist1d", "mnist", "fashion_mnist", "cifar10", "cifar100"}  # seed-independent


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the MNIST-1D cache of these tests out of the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TICKETLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("TICKETLAB_DATA_ROOT", raising=False)
        yield


def root_for(name: str, tmp_path: Path) -> Path | None:
    """A data root from which ``name`` loads offline (writing fake files when needed)."""
    if not get_dataset_info(name).needs_root:
        return None
    if name in FAKE_WRITERS:
        FAKE_WRITERS[name](tmp_path)
        return tmp_path
    if name in FIXED_SPLIT:
        if not PLANETOID.is_dir():
            pytest.skip(f"shared Planetoid files not found at {PLANETOID}")
        return PLANETOID
    pytest.fail(f"no offline test data for data set '{name}': add a writer to tests/fakedata.py")


def assert_same(a: TensorData | GraphData, b: TensorData | GraphData) -> None:
    assert a.spec == b.spec
    if isinstance(a, TensorData):
        for sa, sb in zip((a.train, a.val, a.test), (b.train, b.val, b.test)):
            assert torch.equal(sa[0], sb[0]) and torch.equal(sa[1], sb[1])
    else:
        for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
            assert torch.equal(getattr(a.graph, key), getattr(b.graph, key)), key


def writable_copy(folder: str, root: Path) -> Path:
    """Copy ``PLANETOID/folder`` under ``root`` with write permission (the source is r-x)."""
    shutil.copytree(PLANETOID / folder, root / folder, copy_function=shutil.copyfile)
    for path in [root / folder, *(root / folder).rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root / folder


def rows_to_index(x: np.ndarray) -> dict[bytes, int]:
    return {row.tobytes(): i for i, row in enumerate(x.reshape(len(x), -1))}


def to_uint8(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo ``(pixel / 255 - mean) / std``."""
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    return torch.round((x * s + m) * 255).to(torch.uint8).numpy()


# ------------------------------------------------------------------------------ splits


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        (1797, [0.6, 0.2, 0.2], [1079, 359, 359]),
        (4000, [0.9, 0.1], [3600, 400]),
        (20, [0.9, 0.1], [18, 2]),
        (5, [0.9, 0.1], [4, 1]),  # round(0.5) = 0, raised to the minimum of 1
        (1, [0.9, 0.1], [1, 0]),  # too few items for the minimum
    ],
)
def test_split_sizes_exact(n, fractions, expected):
    assert split_sizes(n, fractions) == expected


def test_split_sizes_rejects_impossible_fractions():
    with pytest.raises(ValueError):
        split_sizes(10, [0.5, 0.8, 0.8])


def test_stratified_split_hand_case():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    a, b = stratified_split(y, [5, 5], seed=3)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(10))  # disjoint cover
    assert list(a) == sorted(a) and list(b) == sorted(b)
    assert (np.bincount(y[a]) == [3, 2]).all() and (np.bincount(y[b]) == [3, 2]).all()


def test_stratified_split_seeded():
    y = np.arange(200) % 7
    first = stratified_split(y, [150, 30, 20], seed=5)
    again = stratified_split(y, [150, 30, 20], seed=5)
    other = stratified_split(y, [150, 30, 20], seed=6)
    assert all((p == q).all() for p, q in zip(first, again))
    assert not (first[1] == other[1]).all()
    for part, size in zip(first, [150, 30, 20]):
        assert len(part) == size
        counts = np.bincount(y[part], minlength=7)
        assert counts.max() - counts.min() <= 1  # 7 equal classes spread evenly


def test_stratified_split_rejects_wrong_total():
    with pytest.raises(ValueError):
        stratified_split(np.zeros(10), [5, 4], seed=0)


# ------------------------------------------------------------------------------ registry


def test_registered_names_in_order():
    assert list_datasets() == EXPECTED_NAMES
    assert list_datasets("cifar*") == ["cifar10", "cifar100"]
    assert list_datasets("nothing*") == []


def test_unknown_name_is_a_typed_error():
    with pytest.raises(UnknownNameError, match="imagenet"):
        load_dataset("imagenet")
    with pytest.raises(UnknownNameError, match="digits"):  # the message lists the choices
        get_dataset_info("imagenet")


def test_duplicate_name_is_an_error():
    with pytest.raises(ConfigError, match="digits"):
        register_dataset("digits")(lambda root, download, seed: None)
    assert list_datasets() == EXPECTED_NAMES


def test_bad_kind_is_an_error():
    with pytest.raises(ConfigError, match="kind"):
        register_dataset("x_bad_kind", kind="image")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed_is_an_error(seed):
    with pytest.raises(ConfigError, match="seed"):
        load_dataset("digits", seed=seed)


def test_register_and_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setattr(registry_module, "_DATASETS", Registry("data set"))
    calls = []

    @register_dataset("toy", needs_root=True, root_hint="toy/*.bin")
    def toy(root, download, seed):
        """Toy set: first docstring line.

        More text."""
        calls.append((root, download, seed))
        spec = DataSpec("toy", "tensor", (2,), 2)
        x, y = torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64)
        return TensorData(spec, (x, y), (x, y), (x, y))

    info = get_dataset_info("toy")
    assert (info.kind, info.description, info.needs_root, info.default_root_hint) == (
        "tensor", "Toy set: first docstring line.", True, "toy/*.bin")
    load_dataset("toy", root=str(tmp_path), download=True, seed=4)
    monkeypatch.setenv("TICKETLAB_DATA_ROOT", str(tmp_path / "env"))
    load_dataset("toy")
    monkeypatch.delenv("TICKETLAB_DATA_ROOT")
    monkeypatch.setenv("TICKETLAB_CACHE_DIR", str(tmp_path / "cache"))
    load_dataset("toy")
    assert calls == [
        (tmp_path, True, 4),
        (tmp_path / "env", False, 0),
        (tmp_path / "cache" / "data", False, 0),
    ]


def test_info_matches_loaders():
    on_disk = {"cora", "citeseer", "mnist", "fashion_mnist", "cifar10", "cifar100"}
    for name in list_datasets():
        info = get_dataset_info(name)
        assert info.name == name and info.description
        assert info.needs_root == (name in on_disk)
        assert bool(info.default_root_hint) == info.needs_root
        assert info.kind == ("graph" if name in {"karate", "cora", "citeseer"} else "tensor")


# ------------------------------------------------------------------------------ mnist1d
# (first, so that the one real generation also fills the session cache)


def test_mnist1d_generates_without_network_and_keeps_global_rng(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to use the network")

    import requests
    import urllib.request

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    mnist1d_set._MEMO.clear()
    cache = mnist1d_set._cache_path()
    cache.unlink(missing_ok=True)

    np.random.seed(123)
    random.seed(7)
    data = load_dataset("mnist1d")
    after_np, after_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(7)
    assert (after_np, after_py) == (np.random.random(), random.random())

    assert cache.is_file()
    assert data.spec == DataSpec("mnist1d", "tensor", (40,), 10)
    assert [len(s[1]) for s in (data.train, data.val, data.test)] == [3600, 400, 1000]
    # MNIST-1D generated with seed 42 by the package: 5000 samples, 500 per class
    counts = torch.bincount(torch.cat([data.train[1], data.val[1], data.test[1]]), minlength=10)
    assert counts.tolist() == [500] * 10


def test_mnist1d_splits_come_from_the_package_arrays():
    data = load_dataset("mnist1d", seed=3)
    arrays = mnist1d_set.mnist1d_arrays()
    assert torch.equal(data.test[0], torch.from_numpy(arrays["x_test"]))
    assert torch.equal(data.test[1], torch.from_numpy(arrays["y_test"]))
    index = rows_to_index(arrays["x"])
    train_rows = [index[r.tobytes()] for r in data.train[0].numpy()]
    val_rows = [index[r.tobytes()] for r in data.val[0].numpy()]
    assert sorted(train_rows + val_rows) == list(range(4000))
    assert (arrays["y"][train_rows] == data.train[1].numpy()).all()
    val_counts = np.bincount(data.val[1].numpy(), minlength=10)
    assert val_counts.min() >= 38 and val_counts.max() <= 42  # stratified: ~10 % of ~400


def test_mnist1d_reads_the_disk_cache(monkeypatch):
    first = mnist1d_set.mnist1d_arrays()
    assert mnist1d_set._cache_path().is_file()
    mnist1d_set._MEMO.clear()
    monkeypatch.setattr(mnist1d_set, "_generate", lambda: pytest.fail("cache was not used"))
    again = mnist1d_set.mnist1d_arrays()
    assert all((first[k] == again[k]).all() for k in first)


def test_mnist1d_regenerates_a_corrupt_cache(monkeypatch, tmp_path):
    arrays = {k: v.copy() for k, v in mnist1d_set.mnist1d_arrays().items()}
    monkeypatch.setenv("TICKETLAB_CACHE_DIR", str(tmp_path))
    path = mnist1d_set._cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    calls = []
    monkeypatch.setattr(mnist1d_set, "_generate", lambda: calls.append(1) or arrays)
    assert mnist1d_set.mnist1d_arrays()["x"] is arrays["x"]
    assert calls == [1]
    assert mnist1d_set._read_cache(path) is not None  # rewritten, valid


def test_mnist1d_without_writable_cache(monkeypatch, tmp_path):
    arrays = mnist1d_set.mnist1d_arrays()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("TICKETLAB_CACHE_DIR", str(blocker))
    monkeypatch.setattr(mnist1d_set, "_generate", lambda: arrays)
    data = load_dataset("mnist1d")
    assert len(data.train[1]) == 3600
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind


# ------------------------------------------------------------------------------ every data set


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_dataset_invariants(name, tmp_path):
    data = load_dataset(name, root=root_for(name, tmp_path), seed=0)
    info = get_dataset_info(name)
    assert data.spec.name == name and data.spec.kind == info.kind
    if info.kind == "tensor":
        assert isinstance(data, TensorData)
        for x, y in (data.train, data.val, data.test):
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            assert tuple(x.shape[1:]) == data.spec.input_shape
            assert len(x) == len(y) > 0
            assert 0 <= int(y.min()) and int(y.max()) < data.spec.num_classes
            assert torch.isfinite(x).all()
    else:
        assert isinstance(data, GraphData)
        g = data.graph
        assert g.x.dtype == torch.float32 and g.y.dtype == torch.int64
        assert tuple(g.x.shape[1:]) == data.spec.input_shape
        assert g.edge_index.dtype == torch.int64 and g.edge_index.shape[0] == 2
        assert int(g.edge_index.max()) < g.num_nodes
        assert int(g.y.max()) == data.spec.num_classes - 1
        masks = [g.train_mask, g.val_mask, g.test_mask]
        assert all(m.dtype == torch.bool and m.shape == (g.num_nodes,) and m.any() for m in masks)
        assert int(sum(m.long() for m in masks).max()) == 1  # pairwise disjoint


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_same_seed_same_tensors_other_seed_other_split(name, tmp_path):
    root = root_for(name, tmp_path)
    a = load_dataset(name, root=root, seed=0)
    assert_same(a, load_dataset(name, root=root, seed=0))
    b = load_dataset(name, root=root, seed=1)
    if name in FIXED_SPLIT:
        assert_same(a, b)
    elif isinstance(a, TensorData):
        assert not torch.equal(a.val[0], b.val[0])
        assert torch.equal(a.test[0], b.test[0]) == (name in OFFICIAL_TEST)
    else:
        assert torch.equal(a.graph.train_mask, b.graph.train_mask)
        assert not torch.equal(a.graph.val_mask, b.graph.val_mask)


# ------------------------------------------------------------------------------ digits


def test_digits_split_and_standardisation():
    from sklearn.datasets import load_digits

    raw = load_digits()
    data = load_dataset("digits", seed=2)
    assert data.spec == DataSpec("digits", "tensor", (1, 8, 8), 10)
    train, val, test = stratified_split(raw.target, [1079, 359, 359], seed=2)
    x = torch.from_numpy(raw.images / 16.0)
    mean, std = x[train].mean(), x[train].std(unbiased=False)
    for (xs, ys), idx in zip((data.train, data.val, data.test), (train, val, test)):
        assert torch.equal(ys, torch.from_numpy(raw.target[idx]))
        expected = ((x[idx] - mean) / std).float()[:, None]
        assert torch.allclose(xs, expected, atol=1e-6)
    assert abs(float(data.train[0].mean())) < 1e-5
    assert abs(float(data.train[0].std(unbiased=False)) - 1) < 1e-5
    counts = np.bincount(data.val[1].numpy(), minlength=10)
    expected_counts = np.bincount(raw.target, minlength=10) * 0.2
    assert np.abs(counts - expected_counts).max() <= 1


def test_digits_are_read_bit_for_bit_as_scikit_learn_reads_them(monkeypatch):
    """The loader reads scikit-learn's file without importing scikit-learn (seconds per process)."""
    import importlib.util

    from sklearn.datasets import load_digits

    from ticketlab.data.sklearn_sets import _raw_digits

    raw = load_digits()
    own = _raw_digits()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # file not found: scikit-learn's own
    for images, target in (own, _raw_digits()):
        assert images.dtype == raw.images.dtype and np.array_equal(images, raw.images)
        assert target.dtype == raw.target.dtype and np.array_equal(target, raw.target)


# ------------------------------------------------------------------------------ karate


def test_karate_masks():
    from torch_geometric.datasets import KarateClub

    club = KarateClub()[0]
    g = load_dataset("karate", seed=0).graph
    assert g.train_mask.nonzero().flatten().tolist() == [0, 4, 8, 24]
    assert int(g.val_mask.sum()) == 15 and int(g.test_mask.sum()) == 15
    assert bool((g.train_mask | g.val_mask | g.test_mask).all())
    assert torch.equal(g.y, club.y) and torch.equal(g.edge_index, club.edge_index)
    assert load_dataset("karate").spec == DataSpec("karate", "graph", (34,), 4)


# ------------------------------------------------------------------------------ planetoid


@needs_planetoid
@pytest.mark.parametrize(
    ("name", "folder", "nodes", "features", "classes", "edges", "train"),
    [
        ("cora", "Cora", 2708, 1433, 7, 10556, 140),
        ("citeseer", "CiteSeer", 3327, 3703, 6, 9104, 120),
    ],
)
def test_planetoid_from_read_only_root(name, folder, nodes, features, classes, edges, train):
    before = sorted(p.name for p in (PLANETOID / folder).iterdir())
    data = load_dataset(name, root=PLANETOID)
    g = data.graph
    assert data.spec == DataSpec(name, "graph", (features,), classes)
    assert (g.num_nodes, g.edge_index.shape[1]) == (nodes, edges)
    assert [int(m.sum()) for m in (g.train_mask, g.val_mask, g.test_mask)] == [train, 500, 1000]
    assert sorted(p.name for p in (PLANETOID / folder).iterdir()) == before  # nothing written


@needs_planetoid
def test_planetoid_writable_root_is_never_written_nor_its_processed_files_read(tmp_path):
    import pickle

    folder = writable_copy("Cora", tmp_path)
    data = load_dataset("cora", root=tmp_path)
    assert not (folder / "processed").exists()  # processed in a private temporary folder
    assert_same(data, load_dataset("cora", root=PLANETOID))
    # a processed/ folder from someone else is never loaded (PyG loads it with weights_only=False)
    marker = tmp_path / "pwned"
    (folder / "processed").mkdir()
    payload = pickle.dumps(_Boom(str(marker)))
    for name in ("data.pt", "pre_transform.pt", "pre_filter.pt"):
        (folder / "processed" / name).write_bytes(payload)
    assert_same(load_dataset("cora", root=tmp_path), data)
    assert not marker.exists()


class _Boom:
    """Unpickling it would create a marker file (a stand-in for arbitrary code)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@needs_planetoid
@pytest.mark.parametrize("which", ["x", "graph"])
def test_planetoid_raw_pickle_that_runs_code_is_refused(tmp_path, which):
    import pickle

    folder = writable_copy("Cora", tmp_path)
    marker = tmp_path / "pwned"
    (folder / "raw" / f"ind.cora.{which}").write_bytes(pickle.dumps(_Boom(str(marker)), protocol=2))
    with pytest.raises(DataNotFoundError, match=f"ind.cora.{which} is not a valid Planetoid raw file") as err:
        load_dataset("cora", root=tmp_path)
    assert "\n" not in str(err.value) and "open' is not allowed" in str(err.value)
    assert not marker.exists()


@needs_planetoid
def test_planetoid_folder_marked_read_only_is_left_alone(tmp_path):
    folder = writable_copy("Cora", tmp_path)
    folder.chmod(0o555)  # root ignores permission bits; the loader must not
    try:
        data = load_dataset("cora", root=tmp_path)
        assert not (folder / "processed").exists()
    finally:
        folder.chmod(0o755)
    assert data.graph.num_nodes == 2708


@needs_planetoid
def test_planetoid_root_from_environment(monkeypatch):
    monkeypatch.setenv("TICKETLAB_DATA_ROOT", str(PLANETOID))
    assert load_dataset("citeseer").graph.num_nodes == 3327


def test_planetoid_missing_files(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cora", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "Cora" / "raw" / "ind.cora.x") in message
    assert "--data-root" in message and "--download" in message and "\n" not in message


@needs_planetoid
def test_planetoid_one_missing_file_is_named(tmp_path):
    writable_copy("CiteSeer", tmp_path)
    (tmp_path / "CiteSeer" / "raw" / "ind.citeseer.graph").unlink()
    with pytest.raises(DataNotFoundError, match="ind.citeseer.graph"):
        load_dataset("citeseer", root=tmp_path)


def test_planetoid_default_root_is_named_in_the_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TICKETLAB_CACHE_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="TICKETLAB_DATA_ROOT") as err:
        load_dataset("citeseer")
    assert str(tmp_path / "data" / "CiteSeer" / "raw") in str(err.value)


def test_planetoid_failed_download_is_a_typed_error(monkeypatch, tmp_path):
    import torch_geometric.datasets

    def offline(root, name):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch_geometric.datasets, "Planetoid", offline)
    with pytest.raises(DataNotFoundError, match="network unreachable"):
        load_dataset("cora", root=tmp_path, download=True)


@needs_planetoid
def test_planetoid_download_flag_with_files_present_downloads_nothing(monkeypatch, tmp_path):
    import torch_geometric.datasets

    real = torch_geometric.datasets.Planetoid
    roots = []

    def spy(root, name):
        roots.append(root)
        return real(root, name)

    monkeypatch.setattr(torch_geometric.datasets, "Planetoid", spy)
    g = load_dataset("cora", root=PLANETOID, download=True).graph
    assert g.num_nodes == 2708
    assert len(roots) == 1 and roots[0] != str(PLANETOID)  # a temporary copy was processed
    assert sorted(p.name for p in (PLANETOID / "Cora").iterdir()) == ["raw"]


# ------------------------------------------------------------------------------ image sets


@pytest.mark.parametrize("name", list(IMAGE_SETS))
def test_image_set_values_and_splits(name, tmp_path):
    written = FAKE_WRITERS[name](tmp_path, seed=11)
    mean, std = IMAGE_SETS[name]
    data = load_dataset(name, root=tmp_path, seed=0)
    n_train = len(written["y_train"])
    assert [len(data.train[1]), len(data.val[1])] == split_sizes(n_train, [0.9, 0.1])
    # test split: the official one, normalised per channel
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    expected = (torch.from_numpy(written["x_test"]).float() / 255 - m) / s
    assert torch.allclose(data.test[0], expected, atol=1e-6)
    assert torch.equal(data.test[1], torch.from_numpy(written["y_test"]))
    # train + val: a disjoint cover of the official training images, labels kept
    index = rows_to_index(written["x_train"])
    rows = [
        index[r.tobytes()] for part in (data.train, data.val) for r in to_uint8(part[0], mean, std)
    ]
    assert sorted(rows) == list(range(n_train))
    labels = torch.cat([data.train[1], data.val[1]]).numpy()
    assert (written["y_train"][rows] == labels).all()


def test_mnist_reads_gzip_files(tmp_path):
    write_fake_mnist(tmp_path / "plain", seed=4)
    write_fake_mnist(tmp_path / "gz", seed=4, compress=True)
    assert sorted(p.name for p in (tmp_path / "gz" / "MNIST" / "raw").iterdir())[0].endswith(".gz")
    plain = load_dataset("mnist", root=tmp_path / "plain")
    assert_same(plain, load_dataset("mnist", root=tmp_path / "gz"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100", "cifar-100-python/train"),
    ],
)
def test_image_set_missing_files(name, expected, tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(name, root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / expected) in message
    assert "--data-root" in message and "--download" in message and "\n" not in message


def test_mnist_missing_test_labels_are_named(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_bad_magic_number(tmp_path):
    write_fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + path.read_bytes()[4:])  # a labels header on images
    with pytest.raises(DataNotFoundError, match="magic number 2049, expected 2051"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_truncated_file(tmp_path):
    write_fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", root=tmp_path)


def test_labels_out_of_range(tmp_path):
    write_fake_fashion_mnist(tmp_path)
    labels = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.full(10, 12, np.uint8))
    with pytest.raises(DataNotFoundError, match="outside 0..9"):
        load_dataset("fashion_mnist", root=tmp_path)


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_fake_cifar10(tmp_path)
    batch = {_s("data"): _RunsCode(), _s("labels"): []}
    _pickle(tmp_path / "cifar-10-batches-py" / "test_batch", batch)
    with pytest.raises(DataNotFoundError, match="getcwd' is not allowed"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_batch_with_python3_bytes_keys(tmp_path):
    written = write_fake_cifar10(tmp_path, n_train=10, n_test=4)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        batch = {b"data": written["x_test"].reshape(4, -1), b"labels": written["y_test"].tolist()}
        pickle.dump(batch, f)
    data = load_dataset("cifar10", root=tmp_path)
    assert torch.equal(data.test[1], torch.from_numpy(written["y_test"]))


def test_fake_files_are_read_by_torchvision(tmp_path, monkeypatch):
    """The fakes are in the real formats: torchvision's own readers agree (MD5 check off)."""
    import torchvision.datasets as tvd
    import torchvision.datasets.cifar as tv_cifar

    mnist = write_fake_mnist(tmp_path)
    tv = tvd.MNIST(str(tmp_path), train=False)
    assert (tv.data.numpy() == mnist["x_test"][:, 0]).all()
    assert (tv.targets.numpy() == mnist["y_test"]).all()

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    for writer, cls in ((write_fake_cifar10, tvd.CIFAR10), (write_fake_cifar100, tvd.CIFAR100)):
        arrays = writer(tmp_path)
        tv = cls(str(tmp_path), train=True)
        assert (tv.data.transpose(0, 3, 1, 2) == arrays["x_train"]).all()
        assert tv.targets == arrays["y_train"].tolist()


def test_download_only_when_files_are_missing(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            if train:
                write_fake_mnist(Path(root))

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    data = load_dataset("mnist", root=tmp_path / "new", download=True)
    assert calls == [(str(tmp_path / "new"), True, True), (str(tmp_path / "new"), False, True)]
    assert len(data.test[1]) == 10
    load_dataset("mnist", root=tmp_path / "new", download=True)  # files present: no download
    assert len(calls) == 2


def test_failed_download_is_one_line(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    class Offline:
        def __init__(self, root, train, download):
            raise RuntimeError("Error downloading data_batch_1:\nTried mirror, got: timeout")

    monkeypatch.setattr(tvd, "CIFAR10", Offline)
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", root=tmp_path, download=True)
    message = str(err.value)
    assert message.startswith(f"downloading CIFAR-10 into {tmp_path} failed (Error downloading")
    assert "\n" not in message and "--data-root" in message
