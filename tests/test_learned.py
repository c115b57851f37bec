"""The learned-mask miners (gem_miner, edge_popup, supermask_learned) and their shared engine.

Hand-computed cases on a 2x3 weight for each forward rule and its straight-through gradient,
then the engine's invariants on real runs (frozen weights, freezing, clamp, fine-tuning, seeds),
the weight treatments and the CLI.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn.utils import parametrize

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError
from ticketlab.masking import MaskedOptimizer
from ticketlab.miners._learned import straight_through
from ticketlab.miners.edge_popup import TopKRule
from ticketlab.miners.gem_miner import GemMiner, GemRule, freeze_events
from ticketlab.miners.supermask_learned import BernoulliRule
from ticketlab.mining import mine
from ticketlab.selection import keep_count
from ticketlab.training import evaluate_masked
from ticketlab.weights import apply_treatment_, fan_in, treat_weights

LEARNED = ["gem_miner", "edge_popup", "supermask_learned"]
PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planetoid"
W0 = torch.tensor([[0.5, -1.0, 2.0], [1.5, -0.25, 0.75]])
X = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]])


def _linear_with(rule):
    lin = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(W0)
    lin.weight.requires_grad_(False)
    parametrize.register_parametrization(lin, "weight", rule)
    return lin


def _grads(rule):
    """(effective weight, dL/d scores, dL/dw_eff) for L = sum(lin(X) * C)."""
    lin = _linear_with(rule)
    c = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    w_eff = lin.weight
    w_eff.retain_grad()
    (torch.nn.functional.linear(X, w_eff) * c).sum().backward()
    return w_eff.detach(), rule.scores.grad.clone(), w_eff.grad.clone()


def test_straight_through_is_identity_backward():
    s = torch.tensor([0.2, 0.9], requires_grad=True)
    out = straight_through((s > 0.5).float(), s * 3)
    assert out.tolist() == [0.0, 1.0]
    (out * torch.tensor([5.0, 7.0])).sum().backward()
    assert s.grad.tolist() == [15.0, 21.0]  # d(3s)/ds = 3 times the upstream gradient


def test_gem_rule_forward_and_gradient():
    scores = torch.tensor([[0.7, 0.2, 0.51], [0.5, 0.9, 0.0]])
    w_eff, g_s, g_w = _grads(GemRule(scores.clone()))
    m = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # s > 0.5 (0.5 itself is not kept)
    assert torch.equal(w_eff, W0 * m)
    assert torch.allclose(g_s, W0 * g_w)


def test_edge_popup_rule_forward_and_gradient():
    scores = torch.tensor([[0.3, -0.9, 0.1], [0.8, 0.05, -0.2]])
    w_eff, g_s, g_w = _grads(TopKRule(scores.clone(), k=3))
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # top 3 of |s|: 0.9, 0.8, 0.3
    assert torch.equal(w_eff, W0 * m)
    # straight-through to |s|: w0 * dL/dw_eff times sign(s) (the paper's update for s > 0)
    assert torch.allclose(g_s, W0 * g_w * torch.sign(scores))
    positive = torch.tensor([[0.3, 0.9, 0.1], [0.8, 0.05, 0.2]])
    _, g_pos, g_w2 = _grads(TopKRule(positive.clone(), k=3))
    assert torch.allclose(g_pos, W0 * g_w2)


def test_edge_popup_rule_keeps_exactly_k_with_ties():
    rule = TopKRule(torch.tensor([[0.5, -0.5, 0.5], [0.5, 0.1, 0.2]]), k=2)
    assert rule.hard().tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]  # ties: lower index first


def test_supermask_rule_forward_and_gradient():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(3)
    rule = BernoulliRule(logits.clone(), gen)
    replay = torch.Generator().manual_seed(3)
    torch.rand(logits.shape, generator=replay)  # parametrize's own check on registration draws once
    expected = (torch.rand(logits.shape, generator=replay) < torch.sigmoid(logits)).float()  # u < sigma(s)
    w_eff, g_s, g_w = _grads(rule)
    assert torch.equal(w_eff, W0 * expected)  # the seeded Bernoulli draw, exactly
    sig = torch.sigmoid(logits)
    assert torch.allclose(g_s, W0 * g_w * sig * (1 - sig))  # w0 * dL/dw_eff * sigma'(s)
    rule.eval()
    assert torch.equal(rule.hard(), (logits > 0).float())  # evaluation: the mode 1[sigma(s) > 1/2]


def test_freeze_events_and_rate():
    assert [freeze_events(e, 5) for e in (1, 5, 6, 10, 11, 150)] == [0, 0, 1, 1, 2, 29]
    # after floor((E-1)/T) events at rate p = 1 - d^(1/events) the flag mask is at d
    d, events = 0.05, freeze_events(150, 5)
    p = 1 - d ** (1 / events)
    assert math.isclose((1 - p) ** events, d)


def test_weight_treatments_hand_computed():
    w = torch.tensor([[0.5, -2.0, 0.0], [1.0, 3.0, -1.0]])
    assert fan_in(w) == 3 and fan_in(torch.zeros(4, 2, 3, 3)) == 18
    assert torch.allclose(treat_weights("signed_constant", w), torch.sign(w) * math.sqrt(2 / 3))
    std = float(np.std(w.numpy().ravel()))
    assert torch.allclose(treat_weights("signed_std", w), torch.sign(w) * std)
    assert torch.equal(treat_weights("init", w), w)
    with pytest.raises(ConfigError, match="unknown weight treatment 'nope'"):
        treat_weights("nope", w)
    p = torch.nn.Parameter(w.clone())
    apply_treatment_({"w": p}, "signed_constant")
    assert p[0, 2].item() == 0.0 and math.isclose(p[1, 1].item(), math.sqrt(2 / 3), rel_tol=1e-6)


def test_shrink_masks_zeroes_state_and_refuses_revival():
    w = torch.nn.Parameter(torch.ones(3))
    opt = MaskedOptimizer(torch.optim.SGD([w], lr=0.1, momentum=0.9), {"w": w}, {"w": torch.ones(3, dtype=torch.bool)})
    for _ in range(2):
        w.grad = torch.ones(3)
        opt.step()
    opt.shrink_masks_({"w": torch.tensor([True, False, True])})
    for _ in range(3):
        w.grad = torch.ones(3)
        opt.step()
    assert w[1].item() == 0.0 and opt.optimizer.state[w]["momentum_buffer"][1].item() == 0.0
    with pytest.raises(Exception, match="revive"):
        opt.shrink_masks_({"w": torch.ones(3, dtype=torch.bool)})


# ---------------------------------------------------------------------------------------------
# Real runs (lenet_300_100 on digits unless said otherwise; a few epochs)


def _mine(method, **kw):
    args = dict(model="lenet_300_100", dataset="digits", density=0.1, seed=0, device="cpu", train_epochs=2)
    args.update(kw)
    return mine(method, **args)


@pytest.fixture(scope="module")
def gem():
    # 11 epochs, freezing every 5: events at epochs 5 and 10, flag mask at 0.1 after the second
    return _mine("gem_miner", train_epochs=11, miner_config={"freeze_every": 5})


@pytest.mark.parametrize("method", LEARNED)
def test_weights_biases_bn_bit_identical_after_score_training(method):
    from ticketlab.data import load_dataset
    from ticketlab.miners import get_miner
    from ticketlab.miners.base import MiningContext
    from ticketlab.models import create_model, prunable_parameters

    data = load_dataset("digits", seed=0)
    net = create_model("resnet20", data.spec, seed=0)  # batch norm, residuals
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    objects = {n: p for n, p in net.named_parameters()}
    params = prunable_parameters(net)
    miner = get_miner(method)(score_epochs=1, score_batch_size=256)
    ctx = MiningContext(net, params, data.spec, data, torch.device("cpu"), 0, torch.Generator().manual_seed(1),
                        schedule=[0.2])
    miner.prepare(ctx)
    after = dict(net.named_parameters())
    assert list(after) == list(before)  # parametrizations removed, names as before
    for n, p in after.items():
        assert p is objects[n], n  # the same parameter objects
        assert torch.equal(p, before[n]), n
        assert p.requires_grad
    assert not parametrize.is_parametrized(net)
    assert any(r["stage"] == "score_training" for r in ctx.records)
    # batch norm ran in train mode: running statistics were updated
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_gem_freezing_reaches_exact_count_and_frozen_never_return(gem):
    n = gem.total
    info = gem.provenance
    assert gem.kept == keep_count(0.1, n) == info["target_kept"]
    rows = [r for r in gem.history if r["stage"] == "score_training"]
    gem_row = next(r for r in gem.history if r["stage"] == "gem")
    assert gem_row["density"] <= 0.1 + 1e-12 and gem_row["density"] == info["own_rule_density"]
    # the gem's density never increases once freezing started (frozen scores never come back)
    dens = [r["density"] for r in rows]
    assert dens[-1] <= 0.1 + 1e-12
    # the final ticket = the final flag mask: every kept score is active (>= 0), every dropped one frozen (< 0)
    for name, m in gem.masks.items():
        s = gem.scores[name]
        assert (s[m] >= 0).all() and (s[m] <= 1).all() and (s[~m] < 0).all()
    # frozen at event 1 rank below those frozen at event 2
    all_s = np.concatenate([gem.scores[n].ravel() for n in gem.masks])
    assert set(np.unique(all_s[all_s < 0]).tolist()) == {-2.0, -1.0}


def test_gem_freezing_unit_frozen_scores_get_no_gradient():
    # drive the real callbacks on a tiny model: after a freeze the frozen scores stay exactly 0
    from ticketlab.data.base import DataSpec, TensorData
    from ticketlab.miners.base import MiningContext

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    data = TensorData(DataSpec("toy", "tensor", (6,), 2), (x, y), (x, y), (x, y))
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    params = {"0.weight": net[0].weight, "2.weight": net[2].weight}
    ctx = MiningContext(net, params, data.spec, data, torch.device("cpu"), 0, torch.Generator().manual_seed(0),
                        schedule=[0.25])
    miner = GemMiner(score_epochs=11, freeze_every=5, score_batch_size=16, score_lr=0.5)
    seen = []
    original = miner.callbacks

    def spy(*args):
        cbs = original(*args)
        rules = args[1]

        def check(info):
            for n, r in rules.items():
                frozen = ~miner.active[n]
                assert (r.scores.detach()[frozen] == 0).all()
                assert r.scores.detach().min() >= 0 and r.scores.detach().max() <= 1  # the clamp
            seen.append(sum(int(a.sum()) for a in miner.active.values()))

        return cbs + [check]

    miner.callbacks = spy
    miner.prepare(ctx)
    total = 6 * 8 + 8 * 2
    assert seen[0] == total and seen[-1] == keep_count(0.25, total)
    assert all(b <= a for a, b in zip(seen, seen[1:]))  # the flag mask only shrinks
    assert len(set(seen)) == 3  # two freezing events


def test_gem_finetune_keeps_pruned_weights_zero_and_reports_both(gem):
    stages = [r["stage"] for r in gem.history]
    assert stages[-3:] == ["gem", "round", "ticket"]
    ticket = gem.history[-1]
    assert ticket["density"] == gem.density and 0 <= ticket["test_accuracy"] <= 1
    for n, m in gem.masks.items():
        assert np.all(gem.weights["final"][n][~m] == 0)
        assert not np.array_equal(gem.weights["final"][n][m], gem.weights["init"][n][m])  # trained
    assert gem.provenance["weights"] == "signed_constant"
    # lenet_300_100 has no batch norm: fine-tuned with its own training config for the score epochs
    tc = gem.provenance["train_config"]
    assert (tc["optimizer"], tc["lr"], tc["batch_size"], tc["schedule"], tc["epochs"]) == ("adam", 1.2e-3, 60, "constant", 11)
    # the stored init weights are the treated (frozen) weights: signed constants per layer
    for n, w in gem.weights["init"].items():
        assert np.allclose(np.abs(w), math.sqrt(2 / w[0].size))


def test_gem_no_finetune_leaves_weights_untrained():
    t = _mine("gem_miner", miner_config={"finetune": False})
    assert [r["stage"] for r in t.history][-1] == "round" and "final" not in t.weights
    assert t.provenance["trained"] is False


@pytest.mark.parametrize("method", LEARNED)
def test_history_provenance_scores_round_trip(method, tmp_path):
    t = _mine(method)
    back = ticketlab.load(ticketlab.save(t, tmp_path / "t.h5"))
    assert back.history == t.history and back.provenance == t.provenance
    assert set(back.scores) == set(t.masks) and set(back.weights["init"]) == set(t.masks)
    rows = [r for r in t.history if r["stage"] == "score_training"]
    assert len(rows) == 2 and {"train_loss", "density", "val_accuracy"} <= set(rows[0])
    rnd = next(r for r in t.history if r["stage"] == "round")
    # the round's untrained accuracy is that of w0 * mask, recomputed by hand
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters

    data = load_dataset("digits", seed=0)
    net = create_model("lenet_300_100", data.spec, seed=0)
    params = prunable_parameters(net)
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(torch.from_numpy(t.weights["init"][n] * t.masks[n]))
    net.eval()
    x, y = data.test
    acc = (net(x).argmax(1) == y).sum().item() / len(y)
    assert math.isclose(rnd["untrained_test_accuracy"], acc, abs_tol=1e-9)


def test_supermask_learned_seeds():
    a, b, c = _mine("supermask_learned"), _mine("supermask_learned"), _mine("supermask_learned", seed=1)
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert any(not np.array_equal(a.masks[n], c.masks[n]) for n in a.masks)


def test_edge_popup_is_layerwise_and_refuses_global():
    t = _mine("edge_popup")
    assert t.provenance["scope"] == "layer"
    assert all(int(m.sum()) == keep_count(0.1, m.size) for m in t.masks.values())
    popup = next(r for r in t.history if r["stage"] == "popup")
    assert popup["kept"] == t.kept  # the forward mask of the last step is the ticket
    with pytest.raises(ConfigError, match="scope layer only"):
        _mine("edge_popup", scope="global")


def test_evaluate_masked_restores_weights():
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters

    data = load_dataset("digits", seed=0)
    net = create_model("lenet_300_100", data.spec, seed=0)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in prunable_parameters(net).items()}
    ev = evaluate_masked(net, data, masks)
    # all weights masked: the output is the last bias alone, one class for every sample
    x, y = data.test
    cls = int(net.fc3.bias.argmax())
    assert math.isclose(ev["test"][1], (y == cls).sum().item() / len(y))
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())


@pytest.mark.parametrize("method", LEARNED)
@pytest.mark.parametrize("model, dataset", [("conv2", "digits"), ("gcn", "karate")])
def test_learned_miners_on_conv_and_gcn(method, model, dataset):
    t = _mine(method, model=model, dataset=dataset, train_epochs=3, density=0.2)
    scope = t.provenance["scope"]
    expected = (sum(keep_count(0.2, m.size) for m in t.masks.values()) if scope == "layer"
                else keep_count(0.2, t.total))
    assert t.kept == expected == t.provenance["target_kept"]


@pytest.mark.skipif(not PLANETOID.exists(), reason="shared Planetoid data not present")
def test_gem_miner_gcn_on_cora(tmp_path):
    import shutil

    root = tmp_path / "planetoid"
    shutil.copytree(PLANETOID / "Cora", root / "Cora")  # never write into ../shared
    t = _mine("gem_miner", model="gcn", dataset="cora", data_root=root, train_epochs=6, density=0.2)
    assert t.kept == keep_count(0.2, t.total) and t.history[-1]["stage"] == "ticket"


def test_cli_mine_gem_and_compare_with_imp(tmp_path):
    runner = CliRunner()
    gem_path, imp_path = tmp_path / "gem.h5", tmp_path / "imp.h5"
    res = runner.invoke(cli, ["mine", "--method", "gem_miner", "--density", "0.2", "--train-epochs", "6",
                              "-o", str(gem_path), "--quiet"])
    assert res.exit_code == 0, res.output
    # gem's own mask is the ticket here (it reached the density): one line says both
    assert "untrained test accuracy of the ticket, which is the method's own mask" in res.output
    assert res.output.count("untrained test accuracy") == 1 and "trained ticket (density 0.2)" in res.output
    res = runner.invoke(cli, ["mine", "--method", "imp", "--rounds", "2", "--train-epochs", "1", "-o", str(imp_path),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["compare", str(gem_path), str(imp_path), "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["mine", "--method", "edge_popup", "--scope", "global", "-o", str(tmp_path / "e.h5")])
    assert res.exit_code == 2 and "scope layer only" in res.output
    res = runner.invoke(cli, ["mine", "--method", "gem_miner", "--weights", "bogus", "-o", str(tmp_path / "g.h5")])
    assert res.exit_code == 2 and "unknown weight treatment 'bogus'" in res.output


def test_gem_resume_from_checkpoint_is_bit_identical(tmp_path):
    ckpt = tmp_path / "gem.ckpt"
    kw = dict(train_epochs=6, miner_config={"freeze_every": 2}, rounds=2)
    a = _mine("gem_miner", checkpoint=ckpt, **kw)  # leaves the checkpoint of its last round
    b = _mine("gem_miner", checkpoint=ckpt, resume=True, **kw)  # resumes: no score training again
    assert b.provenance["resumed_after_round"] == 2
    def untimed(history):  # NaN (a test split not scored at that row, test_eval="stops") equals NaN
        return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items() if "seconds" not in k}
                for r in history]

    assert untimed(b.history) == untimed(a.history)
    for n in a.masks:
        assert np.array_equal(a.masks[n], b.masks[n]) and np.array_equal(a.scores[n], b.scores[n])
        assert np.array_equal(a.weights["final"][n], b.weights["final"][n])
    assert b.provenance["own_rule_density"] == a.provenance["own_rule_density"]
    volatile = {"created", "wall_seconds", "resumed_after_round"}
    assert {k: v for k, v in b.provenance.items() if k not in volatile} == {
        k: v for k, v in a.provenance.items() if k not in volatile}


def test_gem_interrupted_after_score_training_resumes_without_retraining(tmp_path, monkeypatch):
    kw = dict(train_epochs=6, miner_config={"freeze_every": 2}, rounds=2)
    whole = _mine("gem_miner", **kw)
    ckpt = tmp_path / "gem.ckpt"
    original = GemMiner.after_round

    def crash(self, ctx, masks, k):
        raise KeyboardInterrupt  # killed in round 1, after the round-0 checkpoint

    monkeypatch.setattr(GemMiner, "after_round", crash)
    with pytest.raises(KeyboardInterrupt):
        _mine("gem_miner", checkpoint=ckpt, **kw)
    monkeypatch.setattr(GemMiner, "after_round", original)
    monkeypatch.setattr(GemMiner, "prepare", lambda self, ctx: pytest.fail("score training ran again"))
    resumed = _mine("gem_miner", checkpoint=ckpt, resume=True, **kw)
    assert resumed.provenance["resumed_after_round"] == 0
    for n in whole.masks:
        assert np.array_equal(whole.masks[n], resumed.masks[n])
        assert np.array_equal(whole.weights["final"][n], resumed.weights["final"][n])


def test_edge_popup_incremental_kth_largest_is_exact():
    # drifting scores with duplicates: every step's k-th largest equals a full selection's
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5000, generator=g).round(decimals=2)  # many ties
    rule = TopKRule(s.clone(), k=1234)
    for step in range(40):
        rule.scores.data.add_(0.01 * torch.randn(5000, generator=g) * (1 + (step % 7 == 0) * 50))
        a = rule.scores.detach().abs()
        assert rule.kth_largest(a) == torch.kthvalue(a, 5000 - 1234 + 1).values
        assert int(rule.hard().sum()) == 1234


# ---------------------------------------------------------------------------------------------
# protocol="reference" (issue 21, item 2): each convention on tiny hand-computed tensors, by
# driving GemMiner's callbacks directly, then a few real runs.


def _drive(protocol, scores, density=0.25, epochs=11, every=5, per_epoch=1):
    """Run GemMiner's score-training callbacks over fixed scores (no training): returns the miner,
    its rules, its freezing rows and [(iteration, active count)] at every change."""
    from types import SimpleNamespace

    miner = GemMiner(protocol=protocol, freeze_every=every)
    rules = {"w": miner.make_rule(None, "w", torch.tensor(scores), density)}
    miner.score_masks(None, rules)
    miner.score_names = {"w": "w"}
    miner.event_rows = []
    ctx = SimpleNamespace(provenance={}, scope="global", tie_generator=torch.Generator().manual_seed(0))
    callbacks = miner.callbacks(ctx, rules, density, epochs * per_epoch, per_epoch)
    optimizer = SimpleNamespace(shrink_masks_=lambda masks: None)
    changes, active = [], len(scores)
    for it in range(1, epochs * per_epoch + 1):
        for cb in callbacks:
            cb(SimpleNamespace(iteration=it, optimizer=optimizer))
        now = int(miner.active["w"].sum())
        if now != active:
            changes.append((it, now))
            active = now
    return miner, rules, miner.event_rows, changes


DISTINCT = [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99]


def test_reference_freezing_times_and_compound_count():
    from ticketlab.miners.gem_miner import freeze_epochs, reference_rate
    from ticketlab.selection import prune_count_ceil

    # 11 epochs, T = 5: exact after epochs 5 and 10; reference after 0-based epochs 5 and 10 (6 and 11 done)
    assert freeze_epochs(11, 5) == [5, 10] and freeze_epochs(11, 5, "reference") == [6, 11]
    assert freeze_epochs(10, 5, "reference") == [6] and freeze_epochs(5, 5, "reference") == []
    # d = 0.25 in 2 events: rate 1 - 0.25^(1/2) = 0.5; ceil(0.5 * 10) = 5, then ceil(0.5 * 5) = 3 of 5
    assert math.isclose(reference_rate(0.25, 2), 0.5)
    assert [prune_count_ceil(0.5, 10), prune_count_ceil(0.5, 5), prune_count_ceil(0.07, 100)] == [5, 3, 8]
    _, _, _, exact = _drive("exact", DISTINCT, per_epoch=2)
    _, rules, rows, reference = _drive("reference", DISTINCT, per_epoch=2)
    assert exact == [(10, 5), (20, 3)]  # exact counts: round(0.5 * 10), round(0.25 * 10)
    assert reference == [(12, 5), (22, 2)]  # one epoch later each, and 10 -> 5 -> 2: the count compounds
    assert [(e["iteration"], e["active"], e["asked"], e["frozen"], e["tied"]) for e in rows] == [
        (12, 10, 5, 5, 1), (22, 5, 3, 3, 1)]
    assert rules["w"].flag.tolist() == [0.0] * 8 + [1.0] * 2  # the two highest scores stay flagged


def test_reference_strict_threshold_freezes_every_tie():
    scores = [0.55, 0.6, 0.65, 0.7, 0.7, 0.7, 0.8, 0.9, 0.95, 0.99]
    with pytest.warns(UserWarning, match="1 of 5 kept weights"):  # exact: the tie draw is reported
        exact, _, exact_rows, _ = _drive("exact", scores, density=0.5, epochs=6)  # one event, rate 0.5
    reference, _, rows, _ = _drive("reference", scores, density=0.5, epochs=6)
    # 5 to go: the 5th smallest is 0.7. exact: exactly 5, one of the three tied 0.7s kept by the
    # seeded draw; reference: every score <= 0.7 goes, so the three tied 0.7s all go (6 frozen)
    kept = exact.active["w"].tolist()
    assert kept[:3] == [False] * 3 and sum(kept[3:6]) == 1 and kept[6:] == [True] * 4
    assert (exact_rows[0]["tied"], exact_rows[0]["tied_kept"]) == (3, 1)
    assert reference.active["w"].tolist() == [False] * 6 + [True] * 4
    assert (rows[0]["asked"], rows[0]["frozen"], rows[0]["tied"], rows[0]["tied_kept"]) == (5, 6, 3, 0)
    assert math.isclose(rows[0]["threshold"], 0.7, rel_tol=1e-6)


def test_reference_stops_when_a_tie_empties_the_network():
    from ticketlab.errors import MiningError

    # every score tied at the clamp bound 1.0: the first event asks for 5 and its strict > takes all 10
    with pytest.raises(MiningError, match=r"network is empty: freezing event 1 of 2 \(after 0-based epoch 5\) "
                                          r"had to freeze ceil\(p \* 10\) = 5 scores.*\(shared by 10\) froze 10"):
        _drive("reference", [1.0] * 10)
    with pytest.warns(UserWarning, match="drawn at random"):
        _, _, _, changes = _drive("exact", [1.0] * 10)  # exact: 5, then 3, ties by the seeded draw
    assert changes == [(5, 5), (10, 3)]
    # no event needed: a gem with no score above 0.5 is empty after the first epoch
    with pytest.raises(MiningError, match="after 0-based epoch 0 no active score is above 0.5"):
        _drive("reference", [0.5, 0.2, 0.4])


def test_reference_frozen_scores_drift_hidden_by_the_flag():
    from ticketlab.miners.gem_miner import GemMiner as G

    scores = torch.tensor([[0.8, 0.2, 0.9], [0.6, 0.7, 0.3]])
    flag = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # (0, 0) frozen although 0.8 > 0.5
    rule = GemRule(scores.clone(), flag)
    w_eff, g_s, g_w = _grads(rule)
    m = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert torch.equal(w_eff, W0 * m)
    assert g_s[0, 0].item() == 0.0 and torch.allclose(g_s, W0 * g_w * flag)  # no loss gradient when frozen
    # no optimizer mask: L2 (weight decay 2λ) and momentum keep moving the frozen score
    s = torch.nn.Parameter(torch.tensor([0.8]))
    opt = torch.optim.SGD([s], lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(2):
        s.grad = torch.zeros(1)  # what the flag lets through from the loss
        opt.step()
    # s1 = 0.8 - 0.1 * 0.4 = 0.76; buffer 0.9 * 0.4 + 0.38 = 0.74; s2 = 0.76 - 0.074 = 0.686
    assert math.isclose(s.item(), 0.686, rel_tol=1e-6)
    miner = G(protocol="reference")
    assert miner.score_masks(None, {"w": GemRule(scores.clone(), flag)}) is None
    assert G().score_masks(None, {"w": GemRule(scores.clone())}) is not None  # exact: zeroed by the optimizer


def test_reference_per_epoch_cosine():
    from ticketlab.errors import ConfigError as CE
    from ticketlab.training import TrainConfig, lr_at

    cfg = TrainConfig(lr=0.1, schedule="cosine_epoch", epochs=4)  # 3 steps an epoch, 12 in all
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]  # 0.1, 0.0854, 0.05, 0.0146
    assert [lr_at(cfg, t, 12) for t in range(12)] == [lr for lr in expected for _ in range(3)]
    per_step = TrainConfig(lr=0.1, schedule="cosine", epochs=4)
    assert lr_at(per_step, 1, 12) < 0.1 == lr_at(cfg, 1, 12)
    with pytest.raises(CE, match="cosine_epoch steps once per epoch"):
        TrainConfig(schedule="cosine_epoch", iterations=10)
    t = _mine("edge_popup", train_epochs=3, miner_config={"protocol": "reference"})
    rows = [r for r in t.history if r.get("stage") == "score_training"]
    assert [r["lr"] for r in rows] == pytest.approx([0.1, 0.075, 0.025], rel=1e-12)  # each epoch's last step
    assert t.provenance["score_train_config"]["schedule"] == "cosine_epoch"


def test_reference_count_rules_in_the_shared_selection():
    from ticketlab.selection import keep_count_truncated, prune_lowest_strict, select_above, select_top

    # edge-popup: N - int((1 - k) N); 1 - 0.9 = 0.0999..98, so 10 weights at 0.9 keep all 10 (exact: 9)
    assert [keep_count_truncated(0.9, 10), keep_count(0.9, 10)] == [10, 9]
    assert [keep_count_truncated(0.1, 25), keep_count_truncated(0.5, 3), keep_count_truncated(0.3, 7)] == [3, 2, 3]
    x = {"a": torch.tensor([0.3, 0.1, 0.2, 0.4]), "b": torch.arange(10.0)}
    m = select_top(x, 0.9, scope="layer", count_rule="truncated")  # a: 4 - int(0.4) = 4; b: 10
    assert m["a"].all() and m["b"].all()
    m = select_top(x, 0.6, scope="layer", count_rule="truncated")  # a: 4 - int(1.6) = 3; b: 10 - 4 = 6
    assert m["a"].tolist() == [True, False, True, True] and m["b"].tolist() == [False] * 4 + [True] * 6
    # "positive": every alive score > 0, whatever the density
    pos = {"a": torch.tensor([-0.5, 0.0, 0.25]), "b": torch.tensor([0.5, -1.0])}
    m = select_top(pos, 0.5, count_rule="positive", masks={"a": torch.tensor([True, True, True]),
                                                            "b": torch.tensor([False, True])})
    assert m["a"].tolist() == [False, False, True] and m["b"].tolist() == [False, False]
    assert select_above({"a": torch.tensor([0.5, 0.51, float("nan")])}, 0.5)["a"].tolist() == [False, True, False]
    keep, t = prune_lowest_strict({"a": torch.tensor([0.3, 0.3, 0.1, 0.9])}, 2)  # 2nd smallest 0.3: both go
    assert keep["a"].tolist() == [False, False, False, True] and math.isclose(t, 0.3, rel_tol=1e-6)
    with pytest.raises(ConfigError, match="cannot prune 3 of 2"):
        prune_lowest_strict({"a": torch.tensor([0.3, 0.2])}, 3)


def test_reference_finetune_milestones():
    from ticketlab.miners.gem_miner import reference_milestones

    assert reference_milestones(100) == [50, 80] and reference_milestones(150) == [80, 120]
    assert reference_milestones(200) == [100, 150] and reference_milestones(6) == [3]
    assert reference_milestones(11) == [5, 7] and reference_milestones(20) == [10, 13]


def test_gem_reference_run_saves_the_gem():
    t = _mine("gem_miner", density=0.2, train_epochs=11, miner_config={"freeze_every": 5, "protocol": "reference"})
    p = t.provenance
    gem_row = next(r for r in t.history if r.get("stage") == "gem")
    assert p["protocol"] == "reference" and p["count_rule"] == "positive"
    assert t.kept == gem_row["kept"] and p["target_density"] == 0.2 and p["target_kept"] == keep_count(0.2, t.total)
    assert p["achieved_density"] == t.kept / t.total and t.kept <= p["target_kept"]
    assert [r["iteration"] for r in t.history if r.get("stage") == "freeze"] == [54, 99]  # after epochs 6, 11
    # fine-tuning: the reference's table for 11 epochs, [5, 7], in iterations (9 batches of 128 an epoch)
    assert p["train_config"]["milestones"] == [45, 63]
    rows = [r for r in t.history if r.get("stage") == "score_training"]
    assert all(0.0 <= r["at_upper"] <= 1.0 and 0.0 <= r["at_lower"] <= 1.0 for r in rows)
    with pytest.raises(ConfigError, match="use scope global"):
        _mine("gem_miner", scope="layer", train_epochs=1, miner_config={"protocol": "reference"})
    with pytest.raises(ConfigError, match="leave the count rule at exact"):
        _mine("gem_miner", count_rule="threshold", miner_config={"protocol": "reference"})
    with pytest.raises(ConfigError, match="option protocol must be one of exact, reference"):
        _mine("edge_popup", miner_config={"protocol": "paper"})


def test_edge_popup_reference_keeps_the_truncated_count_per_layer():
    from ticketlab.selection import keep_count_truncated

    t = _mine("edge_popup", density=0.9, train_epochs=1, miner_config={"protocol": "reference"})
    sizes = {n: m.size for n, m in t.masks.items()}
    assert t.provenance["layer_kept"] == {n: keep_count_truncated(0.9, s) for n, s in sizes.items()}
    assert t.provenance["layer_kept"] != {n: keep_count(0.9, s) for n, s in sizes.items()}  # 17281 vs 17280, ...
    assert t.provenance["count_rule"] == "truncated" and t.kept == t.provenance["target_kept"]


def test_cli_protocol_reference_and_its_empty_network_line(tmp_path, monkeypatch):
    runner = CliRunner()
    res = runner.invoke(cli, ["mine", "--help"])
    assert "--protocol [exact|reference]" in res.output
    # scores all at 1.0, a learning rate too small to move them in float32: the first event empties the net
    monkeypatch.setattr(GemMiner, "init_scores", lambda self, ctx, name, w0: torch.ones(w0.shape))
    res = runner.invoke(cli, ["mine", "--method", "gem_miner", "--protocol", "reference", "--train-epochs", "6",
                              "--score-lr", "1e-12", "--lmbda", "0", "-o", str(tmp_path / "g.h5"), "--quiet"])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "freezing event 1 of 1 (after 0-based epoch 5)" in errors[0]
    assert not (tmp_path / "g.h5").exists()


def test_gem_logs_the_share_of_active_scores_at_the_clamp_bounds():
    miner = GemMiner()
    rules = {"a": GemRule(torch.tensor([1.0, 0.0, 0.5, 1.0])), "b": GemRule(torch.tensor([[0.0, 0.999], [1.0, 0.3]]))}
    miner.active = {"a": torch.tensor([True, True, True, False]), "b": torch.tensor([[True, True], [True, False]])}
    row = miner.log_values(rules)
    # active: a 1.0, 0.0, 0.5 and b 0.0, 0.999, 1.0; at 1: two of six, at 0: two of six (inactive ones ignored)
    assert row["at_upper"] == 2 / 6 and row["at_lower"] == 2 / 6
    assert math.isclose(row["l2"], 3e-4 * (1 + 0.25 + 1 + 0.999 ** 2 + 1 + 0.09), rel_tol=1e-6)  # every score
