"""Invariants every registered miner must satisfy (parametrized over the registry)."""

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab.errors import ConfigError, IncompatibleError, UnknownNameError
from ticketlab.miners import get_miner, list_miners
from ticketlab.mining import mine
from ticketlab.selection import keep_count

MINERS = list_miners()
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA parity test: needs a CUDA GPU")
FAST = {"rounds": 3, "train_epochs": 1}


def _mine(method, **kw):
    args = {"model": "lenet_300_100", "dataset": "digits", "density": 0.137, "seed": 0, "device": "cpu", **FAST}
    args.update(kw)
    return mine(method, **args)


@pytest.fixture(scope="module")
def rounds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("rounds")


@pytest.fixture(scope="module")
def tickets(rounds_dir):
    """Every miner's ticket; each round's ticket is also saved, in ``rounds_dir / method``."""
    out = {}
    for m in MINERS:
        (rounds_dir / m).mkdir()
        out[m] = _mine(m, save_rounds=rounds_dir / m)
    return out


def test_builtin_miners_registered():
    assert {"random", "magnitude", "synflow"} <= set(MINERS)


@pytest.mark.parametrize("method", MINERS)
def test_exact_count_global(method, tickets):
    t = tickets[method]
    assert t.kept == keep_count(0.137, t.total)
    assert t.provenance["kept"] == t.kept and t.provenance["method"] == method
    assert [r["round"] for r in t.history if r.get("stage") == "round"] == [1, 2, 3]


@pytest.mark.parametrize("method", MINERS)
def test_exact_count_per_layer(method):
    t = _mine(method, scope="layer", rounds=1)
    for name, m in t.masks.items():
        assert int(m.sum()) == keep_count(0.137, m.size), name


@pytest.mark.parametrize("method", MINERS)
def test_same_seed_same_mask(method, tickets):
    again = _mine(method)
    for n in tickets[method].masks:
        assert np.array_equal(again.masks[n], tickets[method].masks[n])


@pytest.mark.parametrize("method", MINERS)
def test_file_round_trip(method, tickets, tmp_path):
    t = tickets[method]
    back = ticketlab.load(ticketlab.save(t, tmp_path / "t.h5"))
    assert list(back.masks) == list(t.masks)
    for n in t.masks:
        assert np.array_equal(back.masks[n], t.masks[n])
        assert np.array_equal(back.weights["init"][n], t.weights["init"][n])
        assert np.array_equal(back.scores[n], t.scores[n])
    assert back.provenance == t.provenance
    assert back.history == t.history


def _assert_rounds_shrink(method, t, folder):
    """Every round's ticket as the run saved it (round 0: after the preparation): each mask lies
    inside the one before, the counts follow the schedule, the last one is the result."""
    files = sorted(folder.glob("round_*.h5"))
    assert [f.name for f in files] == [f"round_{k:02d}.h5" for k in range(FAST["rounds"] + 1)]
    masks = [ticketlab.load(f).masks for f in files]
    for k in range(1, len(masks)):
        for n in t.masks:
            grown = masks[k][n] & ~masks[k - 1][n]
            assert not grown.any(), f"{method}: round {k} keeps {int(grown.sum())} weights of '{n}' pruned before"
    rounds = [r for r in t.history if r.get("stage") == "round"]
    kept = [sum(int(m.sum()) for m in ms.values()) for ms in masks[1:]]
    assert kept == [r["kept"] for r in rounds] == [keep_count(r["target_density"], t.total) for r in rounds]
    assert all(b < a for a, b in zip(kept, kept[1:]))
    assert all(np.array_equal(masks[-1][n], t.masks[n]) for n in t.masks)


@pytest.mark.parametrize("method", MINERS)
def test_masks_only_shrink_across_rounds(method, tickets, rounds_dir):
    _assert_rounds_shrink(method, tickets[method], rounds_dir / method)


@needs_cuda
@pytest.mark.parametrize("method", MINERS)
def test_cuda_parity_exact_count_and_masks_only_shrink(method, tmp_path):
    t = _mine(method, device="cuda", save_rounds=tmp_path)
    assert t.kept == keep_count(0.137, t.total) and t.provenance["device"].startswith("cuda")
    _assert_rounds_shrink(method, t, tmp_path)


def test_random_miner_different_seed_different_mask_and_init_stored():
    a, b = _mine("random", seed=0), _mine("random", seed=1)
    assert any(not np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert "final" not in a.weights and set(a.weights["init"]) == set(a.masks)


def test_magnitude_keeps_largest_trained_weights():
    t = _mine("magnitude", rounds=1)
    final = np.concatenate([t.weights["final"][n].ravel() for n in t.masks])
    mask = np.concatenate([t.masks[n].ravel() for n in t.masks])
    scores = np.concatenate([t.scores[n].ravel() for n in t.masks])
    assert np.all(final[~mask] == 0)
    assert scores[mask].min() >= scores[~mask].max()
    assert any(r.get("stage") == "dense" and r["test_accuracy"] > 0.5 for r in t.history)


def test_train_ticket_records_accuracy():
    t = _mine("random", rounds=1, train_ticket=True)
    assert 0.0 <= t.provenance["test_accuracy"] <= 1.0
    for n in t.masks:
        assert np.all(t.weights["final"][n][~t.masks[n]] == 0)


def test_errors():
    with pytest.raises(UnknownNameError, match="unknown miner 'nope'"):
        get_miner("nope")
    with pytest.raises(ConfigError, match="no option"):
        _mine("synflow", miner_config={"temperature": 3})
    with pytest.raises(ConfigError, match="density"):
        _mine("random", density=1.5)
    with pytest.raises(IncompatibleError):
        _mine("random", model="gcn")
    with pytest.raises(UnknownNameError):
        _mine("random", model="resnet1000")
    with pytest.raises(UnknownNameError):
        _mine("random", dataset="imagenet")
