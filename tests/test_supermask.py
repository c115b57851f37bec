"""Zhou et al.'s supermask criteria, weights actions (what the kept weights are set to), the validation-selected sweep,
batch-norm recalibration and untrained evaluation (``ticketlab evaluate``)."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError
from ticketlab.miners.supermask import CRITERIA, SupermaskMiner, criterion_scores, parse_sweep
from ticketlab.mining import mine
from ticketlab.selection import keep_count, select_top
from ticketlab.training import recalibrate_batchnorm
from ticketlab.weights import kept_weights

# six weights: signs agree at 0, 2, 3, 5; disagree at 1, 4
T0 = torch.tensor([0.5, -0.2, 0.1, -0.4, 0.3, 0.05])
TT = torch.tensor([0.6, 0.9, 0.05, -0.1, -0.7, 0.8])

# the kept set of 3 weights under each criterion, computed by hand from T0 / TT
HAND = {
    "large_final": {1, 4, 5},            # |TT| = .6 .9 .05 .1 .7 .8
    "small_final": {2, 3, 0},            # smallest |TT|: .05, .1, .6
    "large_init": {0, 3, 4},             # |T0| = .5 .2 .1 .4 .3 .05
    "small_init": {5, 2, 1},
    "magnitude_increase": {1, 5, 4},     # |TT|-|T0| = .1 .7 -.05 -.3 .4 .75
    "movement": {1, 4, 5},               # |TT-T0| = .1 1.1 .05 .3 1.0 .75
    "large_final_same_sign": {5, 0, 3},  # sign(T0)*TT = .6 -.9 .05 .1 -.7 .8
    "large_final_diff_sign": {1, 4, 2},  # -sign(T0)*TT = -.6 .9 -.05 -.1 .7 -.8
    "magnitude_increase_same_sign": {5, 0, 2},  # same sign: .1, -.05, -.3, .75; others -inf
    # ranks of |T0|: 5 2 1 4 3 0; of |TT|: 2 5 0 1 3 4; min: 2 2 0 1 3 0 -> 4 (3), then 0 and 1 (2)
    "large_init_large_final": {0, 4, 1},
    # ranks of -|T0|: 0 3 4 1 2 5; of -|TT|: 3 0 5 4 2 1; min: 0 0 4 1 2 1 -> 2 (4), 4 (2), then 3 (1, lower index)
    "small_init_small_final": {2, 4, 3},
}


@pytest.mark.parametrize("criterion", sorted(HAND))
def test_each_criterion_hand_computed(criterion):
    scores = criterion_scores(criterion, {"w": T0}, {"w": TT})
    kept = select_top(scores, 0.5, scope="layer")["w"]  # keep_count(0.5, 6) = 3
    assert set(torch.nonzero(kept).flatten().tolist()) == HAND[criterion]


def test_every_criterion_is_covered_and_single_criteria_are_sign_masks():
    assert set(HAND) | {"random", "same_sign_single", "diff_sign_single", "magnitude_increase_diff_sign"} == set(CRITERIA)
    same = criterion_scores("same_sign_single", {"w": T0}, {"w": TT})["w"]
    assert same.tolist() == [1, 0, 1, 1, 0, 1]
    assert criterion_scores("diff_sign_single", {"w": T0}, {"w": TT})["w"].tolist() == [0, 1, 0, 0, 1, 0]


def test_seed_recipe_example():
    t0, tt = {"w": torch.tensor([0.1, 0.2, 0.3])}, {"w": torch.tensor([-0.2, 0.05, 0.3])}
    keep = criterion_scores("large_final_same_sign", t0, tt)["w"] >= 0.1
    assert keep.tolist() == [False, False, True]
    assert (criterion_scores("large_final", t0, tt)["w"] >= 0.1).tolist() == [True, False, True]


def test_normalize_layer_divides_by_init_std():
    t0 = {"a": torch.tensor([1.0, -1.0]), "b": torch.tensor([10.0, -10.0])}
    tt = {"a": torch.tensor([2.0, 1.0]), "b": torch.tensor([5.0, 30.0])}
    s = criterion_scores("large_final", t0, tt, normalize="layer")
    assert s["a"].tolist() == [2.0, 1.0] and s["b"].tolist() == [0.5, 3.0]


def test_parse_sweep():
    assert len(parse_sweep("0.8^1..0.8^24")) == 24 and math.isclose(parse_sweep("0.8^1..0.8^24")[-1], 0.8 ** 24)
    with pytest.raises(ConfigError, match="sweep"):
        parse_sweep("0.8^1..0.5^3")


def test_kept_actions_hand_checked():
    w0 = torch.tensor([[0.3, -0.1, 0.2, -0.4], [0.5, 0.6, -0.7, 0.8]])
    m = torch.tensor([[True, True, False, True], [True, False, True, True]])
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    std = float(w0.std(correction=0))
    assert torch.allclose(kept_weights("signed_std", w0, m, generator=g()), torch.sign(w0) * std * m)
    rs = kept_weights("rand_signed_std", w0, m, generator=g())
    assert torch.allclose(rs.abs(), std * m.float())  # same constant magnitude on every kept weight
    assert sorted(torch.sign(rs[m]).tolist()) == sorted(torch.sign(w0[m]).tolist())  # signs shuffled
    rr = kept_weights("random_reshuffle", w0, m, generator=g())
    assert sorted(rr[m].tolist()) == sorted(w0[m].tolist()) and (rr[~m] == 0).all()
    sr = kept_weights("signed_reshuffle", w0, m, generator=g())
    assert torch.equal(torch.sign(sr[m]), torch.sign(w0[m])) and sorted(sr[m].abs().tolist()) == sorted(w0[m].abs().tolist())
    fresh = torch.full_like(w0, 9.0)
    assert torch.equal(kept_weights("reinit", w0, m, generator=g(), fresh=fresh), 9.0 * m)
    with pytest.raises(ConfigError, match="fresh draw"):
        kept_weights("reinit", w0, m, generator=g())


def test_recalibration_changes_running_stats_and_nothing_else():
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model

    data = load_dataset("digits", seed=0)
    net = create_model("resnet20", data.spec, seed=0)
    net.eval()
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    rng = torch.get_rng_state()
    assert recalibrate_batchnorm(net, data, batches=2, seed=0) > 0
    assert all(torch.equal(p, params[n]) for n, p in net.named_parameters())
    changed = {n for n, b in net.named_buffers() if not torch.equal(b, buffers[n])}
    assert changed and all(n.endswith(("running_mean", "running_var", "num_batches_tracked")) for n in changed)
    assert not net.training and torch.equal(torch.get_rng_state(), rng)
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.momentum == 0.1
    again = create_model("resnet20", data.spec, seed=0)
    recalibrate_batchnorm(again, data, batches=2, seed=0)
    assert torch.equal(next(m for m in again.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean,
                       bn.running_mean)  # seeded batches: the same statistics


def test_sweep_selects_on_validation_never_on_test(monkeypatch):
    import ticketlab.training as training

    # fake untrained evaluations: validation peaks at the 2nd grid point, test at the 4th
    val = [0.5, 0.9, 0.7, 0.6, 0.2]
    test = [0.5, 0.6, 0.7, 0.99, 0.2]
    calls = []

    def fake(model, data, masks, weights, **kw):
        i = len(calls)
        calls.append(sum(int(m.sum()) for m in masks.values()))
        if i >= len(val):  # after the sweep: the round's own evaluation
            return {"val": (0.0, -1.0), "test": (0.0, -1.0)}
        return {"val": (1.0 - val[i], val[i]), "test": (1.0 - test[i], test[i])}

    monkeypatch.setattr(training, "evaluate_untrained", fake)
    t = mine("supermask", model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1,
             miner_config={"sweep": "0.5,0.3,0.2,0.1,0.05"})
    rows = [r for r in t.history if r["stage"] == "sweep"]
    assert [r["val_accuracy"] for r in rows] == val and [r["test_accuracy"] for r in rows] == test
    assert [r.get("selected", False) for r in rows] == [False, True, False, False, False]
    assert t.density == rows[1]["density"] and t.kept == rows[1]["kept"] == calls[1]
    assert t.provenance["supermask"]["selected_val_accuracy"] == 0.9


@pytest.fixture(scope="module")
def swept():
    return mine("supermask", model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=2,
                miner_config={"sweep": "0.8^1..0.8^6"}, train_ticket=True)


def test_sweep_ticket_is_the_selected_point_and_evaluates_as_recorded(swept):
    rows = [r for r in swept.history if r["stage"] == "sweep"]
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert [r for r in rows if r.get("selected")] == [best]
    assert swept.kept == best["kept"] and swept.provenance["scope"] == "layer"  # Zhou: per layer
    assert all(int(m.sum()) == keep_count(best["density"], m.size) for m in swept.masks.values())
    # `evaluate` re-creates exactly the sweep's untrained validation accuracy from the file alone
    assert math.isclose(ticketlab.evaluate(swept, split="val", device="cpu")["accuracy"], best["val_accuracy"])
    ticket_row = swept.history[-1]
    assert ticket_row["stage"] == "ticket"
    for n, m in swept.masks.items():
        assert np.all(swept.weights["final"][n][~m] == 0)


def test_evaluate_equals_a_hand_masked_forward_pass(swept):
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model

    data = load_dataset("digits", seed=0)
    net = create_model("lenet_300_100", data.spec, seed=0)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in swept.masks:
                p.copy_(torch.from_numpy(swept.weights["init"][n] * swept.masks[n]))
    net.eval()
    x, y = data.test
    logits = net(x)
    expected_acc = (logits.argmax(1) == y).sum().item() / len(y)
    expected_loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
    r = ticketlab.evaluate(swept, split="test", device="cpu")
    assert math.isclose(r["accuracy"], expected_acc) and math.isclose(r["loss"], expected_loss, rel_tol=1e-5)


def test_thresholds_and_single_criteria_keep_exact_sets():
    t = mine("supermask", model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1,
             miner_config={"thresholds": "0,0.05,0.1"}, scope="global")
    chosen = t.provenance["supermask"]["selected_threshold"]
    assert chosen in (0.0, 0.05, 0.1)
    # the ticket is exactly {score >= t} for the chosen t
    for n, m in t.masks.items():
        assert np.array_equal(m, t.scores[n] >= np.float32(chosen)) or np.array_equal(
            m, t.scores[n].astype(np.float64) >= chosen)
    s = mine("supermask", model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1,
             miner_config={"criterion": "same_sign_single"})
    assert s.provenance["supermask"]["mode"] == "single"
    assert s.kept == int(sum(m.sum() for m in s.masks.values())) == s.provenance["supermask"]["kept_count"]
    with pytest.raises(ConfigError, match="no count control"):
        mine("supermask", density=0.1, device="cpu", train_epochs=1, miner_config={"criterion": "same_sign_single"})


def test_empty_layer_warns():
    miner = SupermaskMiner()
    masks = {"a": torch.tensor([True, False]), "b": torch.tensor([False, False])}
    with pytest.warns(UserWarning, match="b keep no weight"):
        row = miner._row(masks, {"val": (1.0, 0.5), "test": (1.0, 0.5)}, threshold=0.3)
    assert row["empty_layers"] == 1 and row["threshold"] == 0.3


def test_supermask_resume_does_not_sweep_again(tmp_path, monkeypatch):
    kw = dict(model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1,
              miner_config={"sweep": "0.5,0.2"})
    ckpt = tmp_path / "s.ckpt"
    first = mine("supermask", checkpoint=ckpt, **kw)
    monkeypatch.setattr(SupermaskMiner, "prepare", lambda self, ctx: pytest.fail("swept again"))
    again = mine("supermask", checkpoint=ckpt, resume=True, **kw)
    assert again.kept == first.kept and all(np.array_equal(first.masks[n], again.masks[n]) for n in first.masks)


def test_cli_supermask_train_ticket_and_evaluate(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s.h5"
    res = runner.invoke(cli, ["mine", "--method", "supermask", "--criterion", "large_final_same_sign",
                              "--select", "best", "--train-ticket", "--train-epochs", "2", "--sweep", "0.5,0.2",
                              "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["evaluate", str(out), "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["evaluate", str(out), "--weights", "bogus"])
    assert res.exit_code == 2 and "unknown weights action 'bogus'" in res.output
    # a ticket without stored weights: the init is re-created from the provenance
    bare = tmp_path / "bare.h5"
    assert runner.invoke(cli, ["mine", "--method", "synflow", "--rounds", "2", "--no-weights", "-o", str(bare),
                               "--quiet"]).exit_code == 0
    res = runner.invoke(cli, ["evaluate", str(bare), "--json"])
    assert res.exit_code == 0 and '"weights_source": "recreated"' in res.output
    t = ticketlab.load(bare)
    del t.provenance["model"]
    with pytest.raises(ConfigError, match="cannot re-create the ticket's network: its provenance has no 'model'"):
        ticketlab.evaluate(t)
