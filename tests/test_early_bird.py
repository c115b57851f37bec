"""Mask distance during training and the Early-Bird stop (issue 14, section 3; ticketlab.tracking)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ticketlab.cli.main import cli
from ticketlab.data.base import DataSpec, TensorData
from ticketlab.errors import ConfigError
from ticketlab.fileformat import load, save
from ticketlab.mining import mine
from ticketlab.tracking import MaskTracker
from ticketlab.training import TrainConfig, fit


def toy_data(n=40, dim=6, seed=0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorData(DataSpec("toy", "tensor", (dim,), 2), (x, y), (x, y), (x, y))


def hand_mask(w: np.ndarray, kept: int) -> np.ndarray:
    """The top-``kept`` entries of |w| (random floats: no ties)."""
    flat = np.abs(w).ravel()
    out = np.zeros(flat.size, dtype=bool)
    out[np.argsort(-flat, kind="stable")[:kept]] = True
    return out.reshape(w.shape)


def test_mask_distance_matches_a_hand_computation():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    params = {"weight": model.weight}
    tracker = MaskTracker(params, 0.5, every=2)
    seen: dict[int, np.ndarray] = {}

    def record(info):  # after the tracker: the weights it looked at
        if info.iteration % 2 == 0:
            seen[info.iteration] = model.weight.detach().numpy().copy()

    cfg = TrainConfig(optimizer="sgd", lr=0.5, epochs=4, batch_size=10)
    res = fit(model, toy_data(), cfg, device="cpu", seed=0, callbacks=[tracker, record])
    assert res.final_iteration == 16  # no early_bird: the run is not cut short
    assert [r["iteration"] for r in tracker.rows] == sorted(seen) == list(range(2, 17, 2))
    masks = [hand_mask(seen[t], 9) for t in sorted(seen)]  # 18 weights, density 0.5 -> 9 kept
    expected = [math.nan] + [float((a != b).sum()) / 18 for a, b in zip(masks, masks[1:])]
    got = [r["mask_distance"] for r in tracker.rows]
    assert math.isnan(got[0])
    assert got[1:] == pytest.approx(expected[1:], abs=0)
    assert any(d > 0 for d in got[1:])  # training moved the mask: the check can fail
    assert all(r["mask_distance_chance"] == 2 * 0.5 * 0.5 for r in tracker.rows)


def test_layer_scope_ranks_each_parameter_on_its_own():
    a = torch.nn.Parameter(torch.tensor([10.0, 9.0, 8.0, 7.0]))
    b = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    tr = MaskTracker({"a": a, "b": b}, 0.5, every=1, scope="layer")
    m = tr.mask()
    assert m["a"].tolist() == [True, True, False, False] and m["b"].tolist() == [False, False, True, True]
    glob = MaskTracker({"a": a, "b": b}, 0.5, every=1).mask()
    assert glob["a"].all() and not glob["b"].any()


def _forced(model, schedule):
    """A callback that writes ``schedule(iteration)`` into the weight (before the tracker looks)."""
    def cb(info):
        with torch.no_grad():
            model.weight.copy_(schedule(info.iteration))
    return cb


def test_early_bird_stops_after_five_distances_within_eps_of_chance():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2, bias=False)
    one = torch.tensor([[4.0, 3.0], [2.0, 1.0]])
    other = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    # the mask flips up to iteration 6 (distance 1 at 4 and 6), then stays: distance 0 at 8, 10, ...
    cb = _forced(model, lambda t: one if t <= 6 and (t // 2) % 2 else other)
    tracker = MaskTracker({"weight": model.weight}, 0.5, every=2, early_bird=0.1)
    cfg = TrainConfig(optimizer="sgd", lr=0.1, epochs=20, batch_size=10)
    res = fit(model, toy_data(dim=2), cfg, device="cpu", callbacks=[cb, tracker])
    # masks at 2 (row 0 kept), 4 (row 1), 6 (row 0), 8, 10, ... (row 1): distances 1, 1, 1, then 0
    dists = [r["mask_distance"] for r in tracker.rows]
    assert [r["iteration"] for r in tracker.rows] == list(range(2, 19, 2))
    assert dists[1:] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert tracker.stopped_at == 18 and tracker.rows[-1]["early_bird_stop"] is True  # 5 zeros: 10 .. 18
    assert res.final_iteration == 18 and res.log[-1]["iteration"] == 18
    assert not any(r.get("early_bird_stop") for r in tracker.rows[:-1])


def test_early_bird_is_relative_to_chance():
    """At density 0.05 a distance of 0.05 is raw-small but half of chance (0.095): EPS 0.4 does not stop."""
    w = torch.nn.Parameter(torch.arange(1.0, 41.0))
    tr = MaskTracker({"w": w}, 0.05, every=1, early_bird=0.4)  # 2 kept of 40
    stops = []
    for t in range(1, 12):
        with torch.no_grad():  # swap one kept weight each time: 2 entries differ = 0.05
            w[:] = torch.arange(1.0, 41.0)
            w[39 - (t % 2)] = 0.0
        stops.append(tr.track(t))
    assert tr.rows[-1]["mask_distance"] == pytest.approx(0.05)
    assert not any(stops)
    tr2 = MaskTracker({"w": w}, 0.05, every=1, early_bird=0.6)  # 0.05 / 0.095 = 0.53 <= 0.6
    assert [tr2.track(t) for t in range(6)] == [False] * 5 + [True]


@pytest.fixture(scope="module")
def tracked_run():
    return mine("magnitude", model="lenet_300_100", dataset="digits", density=0.05, seed=0, device="cpu",
                train_epochs=1, track_masks=3)


def test_mine_tracks_masks_into_the_history(tracked_run, tmp_path):
    rows = [r for r in tracked_run.history if r.get("stage") == "mask_tracking"]
    assert [r["iteration"] for r in rows] == list(range(3, 3 * len(rows) + 1, 3)) and len(rows) >= 2
    assert all(r["run"] == "dense" and r["mask_distance_chance"] == pytest.approx(2 * 0.05 * 0.95) for r in rows)
    assert all(0 <= r["mask_distance"] <= 1 for r in rows[1:])
    p = tracked_run.provenance
    assert p["track_masks"] == 3 and p["early_bird"] is None and p["early_bird_stops"] == []
    back = load(save(tracked_run, tmp_path / "t.h5"))
    got = [r for r in back.history if r.get("stage") == "mask_tracking"]
    assert [r["iteration"] for r in got] == [r["iteration"] for r in rows]


def test_default_off_leaves_the_history_unchanged():
    t = mine("magnitude", model="lenet_300_100", dataset="digits", density=0.05, seed=0, device="cpu",
             train_epochs=1)
    assert [r["stage"] for r in t.history] == ["dense", "round"]
    assert set(t.history[0]) == {"stage", "test_accuracy", "val_accuracy", "best_val_accuracy",
                                 "early_stop_iteration", "early_stop_test_accuracy", "iterations", "train_seconds"}
    assert not {"track_masks", "early_bird", "early_bird_stops"} & set(t.provenance)


def test_imp_tracks_every_training_run():
    t = mine("imp", model="lenet_300_100", dataset="digits", rounds=2, density=0.3, seed=0, device="cpu",
             train_epochs=3, track_masks=2, early_bird=1e9)  # any EPS stops after 5 distances
    runs = [r.get("run") for r in t.history if r.get("stage") == "mask_tracking"]
    assert set(runs) == {"dense", "round 1", "round 2"}
    assert t.history[-1]["stage"] == "round" and "test_accuracy" in t.provenance
    stops = t.provenance["early_bird_stops"]
    assert [s["run"] for s in stops] == ["dense", "round 1", "round 2"]
    assert all(s["iteration"] == 12 for s in stops)  # 6 tracked masks, every 2 iterations (of 30)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="early_bird needs track_masks"):
        mine("magnitude", dataset="digits", early_bird=0.1)
    with pytest.raises(ConfigError, match="does not support track_masks"):
        mine("random", dataset="digits", track_masks=5)
    with pytest.raises(ConfigError, match="track_masks must be"):
        mine("magnitude", dataset="digits", track_masks=0)


def test_cli_track_masks_and_early_bird(tmp_path):
    out = tmp_path / "m.h5"
    res = CliRunner().invoke(cli, ["mine", "--method", "magnitude", "--density", "0.05", "--train-epochs", "2",
                                   "--device", "cpu", "--track-masks", "2", "--early-bird", "1000", "-o", str(out),
                                   "--json"])
    assert res.exit_code == 0, res.output
    t = load(out)
    assert t.provenance["early_bird_stops"] == [{"run": "dense", "iteration": 12}]
    dense = next(r for r in t.history if r.get("stage") == "dense")
    assert dense["iterations"] == 12
    json.loads(res.stdout)


@pytest.mark.filterwarnings("ignore:.*freezing event")
@pytest.mark.parametrize("method", ["edge_popup", "gem_miner", "supermask_learned"])
def test_learned_miners_track_their_scores(method):
    t = mine(method, model="lenet_300_100", dataset="digits", density=0.1, seed=0, device="cpu",
             train_epochs=1, track_masks=2, early_bird=1e9)
    rows = [r for r in t.history if r.get("stage") == "mask_tracking"]
    assert [r["iteration"] for r in rows] == [2, 4, 6, 8, 10, 12][: len(rows)] and len(rows) >= 2
    assert all(r["run"] == "score_training" for r in rows)
    assert all(r["mask_distance_chance"] == pytest.approx(2 * 0.1 * 0.9) for r in rows)
    assert any(r["mask_distance"] > 0 for r in rows[1:])  # the scores moved the mask


def test_over_time_curves_and_plot(tracked_run, tmp_path):
    from ticketlab.metrics.over_time import mask_distance_curves

    path = save(tracked_run, tmp_path / "t.h5")
    rows = [r for r in tracked_run.history if r.get("stage") == "mask_tracking"][1:]  # the first has no distance
    c = mask_distance_curves(load(path).history)["dense"]
    assert c["iteration"].tolist() == [r["iteration"] for r in rows]
    assert c["distance"].tolist() == [r["mask_distance"] for r in rows]
    assert c["relative"] == pytest.approx([r["mask_distance"] / (2 * 0.05 * 0.95) for r in rows])
    png = tmp_path / "d.png"
    res = CliRunner().invoke(cli, ["compare", "--over-time", str(path), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "mask distance" in res.output
    res = CliRunner().invoke(cli, ["compare", "--over-time", str(path), "--json"])
    assert json.loads(res.stdout)["dense"]["iteration"] == c["iteration"].tolist()


def test_over_time_needs_tracked_distances(tmp_path):
    t = mine("random", model="lenet_300_100", dataset="digits", density=0.1, seed=0, device="cpu")
    path = save(t, tmp_path / "r.h5")
    res = CliRunner().invoke(cli, ["compare", "--over-time", str(path)])
    assert res.exit_code != 0 and "--track-masks" in res.output
    res = CliRunner().invoke(cli, ["compare", "--over-time", str(path), str(path)])
    assert res.exit_code != 0 and "one ticket file" in res.output


def test_supermask_tracks_its_criterion_during_dense_training():
    """Zhou et al.'s supermask: the tracked mask is its criterion of (θ0, w) at the given density;
    the last tracked mask (the end of training) is the ticket's mask, so the last distance is to
    it, and a sweep (no density) is refused in one line."""
    t = mine("supermask", model="lenet_300_100", dataset="digits", density=0.1, seed=0, device="cpu",
             train_epochs=2, track_masks=6, miner_config={"criterion": "large_final_same_sign"})
    rows = [r for r in t.history if r.get("stage") == "mask_tracking"]
    assert [r["iteration"] for r in rows] == list(range(6, 37, 6)) and all(r["run"] == "dense" for r in rows)
    assert all(r["mask_distance_chance"] == pytest.approx(2 * 0.1 * 0.9) for r in rows)
    assert any(r["mask_distance"] > 0 for r in rows[1:])  # training moved the criterion's mask
    with pytest.raises(ConfigError, match="supermask cannot track masks: the sweep picks the density"):
        mine("supermask", model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1,
             track_masks=6)


def test_supermask_tracked_mask_equals_its_criterion_mask():
    """The tracker's mask at the end of training equals the ticket's own mask (same criterion, same
    density, same scope): the tracked quantity is what the method would select there."""
    from ticketlab.miners.supermask import SupermaskMiner, criterion_scores
    from ticketlab.selection import select_top

    seen = {}
    orig = SupermaskMiner._trackers

    def spy(self, ctx, theta0):
        trackers = orig(self, ctx, theta0)
        seen["tracker"], seen["theta0"], seen["params"] = trackers[0], theta0, ctx.params
        return trackers

    SupermaskMiner._trackers = spy
    try:
        t = mine("supermask", model="lenet_300_100", dataset="digits", density=0.1, seed=0, device="cpu",
                 train_epochs=1, track_masks=18, scope="layer")
    finally:
        SupermaskMiner._trackers = orig
    final = {n: torch.as_tensor(t.weights["final"][n]) for n in t.masks}  # θT times the mask
    # the tracker's mask of the weights the model holds now: θT times the ticket's mask (mine applies
    # it at the end); the criterion's top-k of those is the ticket's mask again iff tracking ranks
    # what the method ranks
    tracked = seen["tracker"].mask()
    expected = select_top(criterion_scores("large_final_same_sign", seen["theta0"],
                                           {n: p.detach() for n, p in seen["params"].items()}), 0.1, scope="layer")
    assert all(torch.equal(tracked[n], expected[n]) for n in t.masks)
    assert all(np.array_equal(tracked[n].numpy(), t.masks[n]) for n in t.masks)
    assert all(not final[n][~torch.as_tensor(t.masks[n])].any() for n in t.masks)
