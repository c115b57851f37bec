"""Corrupted training data (issue 13, Su et al. 2020's check): ``ticketlab.data.corrupt`` and
``mine --data-corruption``. Only the training split changes, deterministically per seed; the
miner sees it, ``--train-ticket`` does not; data-free miners refuse in one line."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.data import CORRUPTIONS, corrupt, load_dataset
from ticketlab.data.base import DataSpec, TensorData
from ticketlab.errors import ConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _copy(d: TensorData) -> list[torch.Tensor]:
    return [t.clone() for split in (d.train, d.val, d.test) for t in split]


def test_random_labels_permute_the_training_labels_only(digits):
    before = _copy(digits)
    bad = corrupt(digits, "random_labels", seed=0)
    x, y = digits.train
    assert torch.equal(bad.train[0], x)  # the inputs are untouched
    assert torch.equal(torch.sort(bad.train[1]).values, torch.sort(y).values)  # a permutation: same class counts
    assert (bad.train[1] != y).float().mean() > 0.8  # ... that really moved the labels (10 classes)
    for split in ("val", "test"):
        assert getattr(bad, split) is getattr(digits, split)
    assert all(torch.equal(a, b) for a, b in zip(before, _copy(digits)))  # the input data set is not modified
    again = corrupt(digits, "random_labels", seed=0)
    other = corrupt(digits, "random_labels", seed=1)
    assert torch.equal(again.train[1], bad.train[1]) and not torch.equal(other.train[1], bad.train[1])


def test_random_pixels_permute_each_sample_on_its_own():
    x = torch.arange(40, dtype=torch.float32).reshape(4, 1, 2, 5)  # distinct values: permutations readable
    y = torch.tensor([0, 1, 0, 1])
    d = TensorData(DataSpec("toy", "tensor", (1, 2, 5), 2), (x, y), (x + 100, y), (x + 200, y))
    bad = corrupt(d, "random_pixels", seed=0)
    assert bad.train[0].shape == x.shape and torch.equal(bad.train[1], y)
    flat, orig = bad.train[0].reshape(4, -1), x.reshape(4, -1)
    perms = flat - orig[:, :1]  # row i holds i*10 + its permutation of 0..9
    for p in perms:
        assert sorted(p.tolist()) == list(range(10))
    assert len({tuple(p.tolist()) for p in perms}) == 4  # a different permutation per sample
    assert not torch.equal(flat, orig)
    assert bad.val is d.val and bad.test is d.test
    assert torch.equal(corrupt(d, "random_pixels", seed=0).train[0], bad.train[0])
    assert not torch.equal(corrupt(d, "random_pixels", seed=1).train[0], bad.train[0])


def test_unknown_corruption_and_bad_seed_are_one_line(digits):
    with pytest.raises(ConfigError, match="unknown data corruption 'gaussian'"):
        corrupt(digits, "gaussian", seed=0)
    with pytest.raises(ConfigError, match="seed must be an integer from 0 to"):
        corrupt(digits, "random_labels", seed=-1)


def test_mine_records_the_corruption_and_the_miner_sees_it():
    clean = ticketlab.mine("snip", density=0.1, seed=0, device="cpu")
    bad = ticketlab.mine("snip", density=0.1, seed=0, device="cpu", data_corruption="random_labels")
    assert bad.provenance["data_corruption"] == {"kind": "random_labels", "seed": 0, "split": "train"}
    assert "data_corruption" not in clean.provenance
    assert any(not np.array_equal(bad.masks[n], clean.masks[n]) for n in clean.masks)  # SNIP's gradients changed
    again = ticketlab.mine("snip", density=0.1, seed=0, device="cpu", data_corruption="random_labels")
    assert all(np.array_equal(again.masks[n], bad.masks[n]) for n in bad.masks)


def test_train_ticket_uses_the_real_data():
    t = ticketlab.mine("snip", density=0.1, seed=0, device="cpu", data_corruption="random_pixels",
                       train_ticket=True, train_epochs=1)
    again = ticketlab.train(t, train_epochs=1, device="cpu")  # ticketlab train always trains on real data
    assert all(np.array_equal(again.weights["final"][n], t.weights["final"][n]) for n in t.masks)


@pytest.mark.parametrize("method", ["synflow", "random", "magnitude_init"])
def test_data_free_miners_refuse(method):
    with pytest.raises(ConfigError, match=f"method '{method}' is data-free"):
        ticketlab.mine(method, device="cpu", data_corruption="random_labels")


def test_cli_data_corruption(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["mine", "--method", "synflow", "--data-corruption", "random_labels",
                              "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "synflow' is data-free: --data-corruption only applies" in res.output
    res = runner.invoke(cli, ["mine", "--method", "snip", "--data-corruption", "random_pixels", "--quiet",
                              "-o", str(tmp_path / "p.h5")])
    assert res.exit_code == 0, res.output
    assert "corrupted training split: random_pixels" in res.output
    assert ticketlab.load(tmp_path / "p.h5").provenance["data_corruption"]["kind"] == "random_pixels"
    res = runner.invoke(cli, ["mine", "--method", "snip", "--data-corruption", "noise"])
    assert res.exit_code == 2 and "noise" in res.output


def test_cli_choices_are_the_apis():
    from ticketlab.cli.mine import CORRUPTION_CHOICES

    assert CORRUPTION_CHOICES == CORRUPTIONS
