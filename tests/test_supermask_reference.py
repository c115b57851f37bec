"""The supermask miner's ``protocol="reference"``: Zhou et al.'s conventions
(uber-research/deconstructing-lottery-tickets, ``get_weight_init.py`` and ``train_lottery.py``),
each checked on hand-computed tiny tensors, then end to end on lenet_300_100 / digits."""

import math

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab.errors import ConfigError
from ticketlab.miners.supermask import CRITERIA, criterion_scores
from ticketlab.mining import mine
from ticketlab.selection import (
    density_for_count, keep_count, keep_count_truncated, keep_count_truncated_percent, select_target, select_top,
    target_count,
)
from ticketlab.streams import TIE
from ticketlab.weights import (
    KEPT_ACTIONS, bias_masks, bias_record, kept_weights, layer_biases, recorded_conventions, start_biases,
    start_weights,
)

# six weights: signs agree at 0, 2, 3, 5; differ at 1, 4 (as in test_supermask.py)
T0 = torch.tensor([0.5, -0.2, 0.1, -0.4, 0.3, 0.05])
TT = torch.tensor([0.6, 0.9, 0.05, -0.1, -0.7, 0.8])


def _kept(scores, density=0.5, seed=0):
    m = select_top(scores, density, scope="layer", generator=torch.Generator().manual_seed(seed))["w"]
    return set(torch.nonzero(m).flatten().tolist())


# ---------------------------------------------------------------------------------------------- scoring

def test_reference_scores_of_the_four_sign_criteria_by_hand():
    # |TT| = .6 .9 .05 .1 .7 .8; |TT| - |T0| = .1 .7 -.05 -.3 .4 .75; the other sign group scores 0
    want = {"large_final_same_sign": [0.6, 0, 0.05, 0.1, 0, 0.8],
            "large_final_diff_sign": [0, 0.9, 0, 0, 0.7, 0],
            "magnitude_increase_same_sign": [0.1, 0, -0.05, -0.3, 0, 0.75],
            "magnitude_increase_diff_sign": [0, 0.7, 0, 0, 0.4, 0]}
    for name, values in want.items():
        got = criterion_scores(name, {"w": T0}, {"w": TT}, protocol="reference")["w"]
        assert torch.allclose(got, torch.tensor(values, dtype=torch.float64), atol=1e-7), name
    # the other criteria score the same under both protocols
    for name in set(CRITERIA) - set(want) - {"random"}:
        a = criterion_scores(name, {"w": T0}, {"w": TT})["w"]
        b = criterion_scores(name, {"w": T0}, {"w": TT}, protocol="reference")["w"]
        assert torch.equal(a, b), name


def test_exact_scores_rank_the_other_sign_group_last():
    inc = torch.tensor([0.1, 0.7, -0.05, -0.3, 0.4, 0.75], dtype=torch.float64)
    same = criterion_scores("magnitude_increase_same_sign", {"w": T0}, {"w": TT})["w"]
    diff = criterion_scores("magnitude_increase_diff_sign", {"w": T0}, {"w": TT})["w"]
    agree = torch.tensor([True, False, True, True, False, True])
    assert torch.allclose(same[agree], inc[agree]) and torch.isinf(same[~agree]).all() and (same[~agree] < 0).all()
    assert torch.allclose(diff[~agree], inc[~agree]) and torch.isinf(diff[agree]).all() and (diff[agree] < 0).all()


def test_magnitude_increase_same_sign_ranks_a_flipped_weight_above_a_shrunk_one_under_reference():
    # 3 of 6 kept: exact keeps .75, .1 and the shrunk same-sign weight 2 (-.05), the flipped ones
    # (1, 4) rank below every same-sign weight; the reference scores them 0, above -.05 and -.3,
    # so one of them (a seeded draw: they tie at 0) takes weight 2's place
    exact = _kept(criterion_scores("magnitude_increase_same_sign", {"w": T0}, {"w": TT}))
    assert exact == {5, 0, 2}
    for seed in range(6):
        ref = _kept(criterion_scores("magnitude_increase_same_sign", {"w": T0}, {"w": TT}, protocol="reference"),
                    seed=seed)
        assert {5, 0} < ref and len(ref & {1, 4}) == 1 and 2 not in ref


def test_large_final_diff_sign_fills_ties_by_a_seeded_draw_never_by_position():
    # 100 weights, 2 of them sign-flipped: the reference scores the 98 others 0, so keeping 50
    # draws 48 of 98 tied zeros (exact: -sign(θ0)·θT keeps the 48 smallest same-sign |θT|)
    g = torch.Generator().manual_seed(1)
    w0 = torch.rand(100, generator=g) + 0.1
    wt = w0 + 0.1
    wt[[7, 60]] = -1.0
    scores = criterion_scores("large_final_diff_sign", {"w": w0}, {"w": wt}, protocol="reference")
    assert int((scores["w"] == 0).sum()) == 98
    draws = []
    for seed in (0, 0, 1, 2):
        ties = []
        m = select_top(scores, 0.5, scope="layer", generator=torch.Generator().manual_seed(seed), ties=ties)["w"]
        assert bool(m[7]) and bool(m[60]) and int(m.sum()) == 50
        assert [(t.tied, t.kept) for t in ties] == [(98, 48)]
        draws.append(torch.nonzero(m).flatten().tolist())
    assert draws[0] == draws[1] and draws[0] != draws[2] and draws[2] != draws[3]  # same seed, same mask
    positional = sorted({7, 60} | set([i for i in range(100) if i not in (7, 60)][:48]))
    assert all(d != positional for d in draws)
    exact = criterion_scores("large_final_diff_sign", {"w": w0}, {"w": wt})["w"]
    keep = torch.nonzero(select_top({"w": exact}, 0.5, scope="layer")["w"]).flatten().tolist()
    smallest = torch.argsort(wt.abs() + 10 * (wt < 0))[:48].tolist()  # the smallest same-sign |θT|
    assert sorted(keep) == sorted(smallest + [7, 60])


# ---------------------------------------------------------------------------------------------- counts

def test_reference_count_rule_hand_values():
    # Zhou: keep N - int(N * pp / 100), pp = (1 - d) * 100 (get_weight_init.py l. 47, l. 100)
    assert (1 - 0.8) * 100 == 19.999999999999996  # so 1000 * pp / 100 = 199.99999999999997
    assert [keep_count_truncated_percent(0.8, 1000), keep_count(0.8, 1000)] == [801, 800]
    assert [keep_count_truncated_percent(0.8 ** 3, 1000), keep_count(0.8 ** 3, 1000)] == [513, 512]
    assert [keep_count_truncated_percent(0.3, 90), keep_count_truncated(0.3, 90), keep_count(0.3, 90)] == [27, 28, 27]
    assert keep_count_truncated_percent(0.9, 10) == 10 and keep_count_truncated_percent(1.0, 7) == 7
    assert keep_count_truncated_percent(0.9 ** 2, 1000) == 811  # the output layer at 0.9^2 = 0.81
    assert [target_count(0.3, 90, r) for r in ("exact", "truncated", "truncated_percent", "threshold")] == [27, 28, 27, 27]
    for rule in ("exact", "truncated", "truncated_percent"):
        for k, n in ((27, 90), (0, 10), (10, 10), (801, 1000), (1, 7)):
            assert target_count(density_for_count(k, n, rule), n, rule) == k


def test_select_top_keeps_the_truncated_percent_count():
    x = {"a": torch.arange(10.0), "b": torch.arange(90.0)}
    # pp = (1 - 0.9) * 100 = 9.999999999999998: a keeps 10 - int(0.999...) = 10, b 90 - int(8.999...) = 82
    m = select_top(x, 0.9, scope="layer", count_rule="truncated_percent")
    assert int(m["a"].sum()) == 10 and int(m["b"].sum()) == keep_count_truncated_percent(0.9, 90) == 82
    assert (keep_count(0.9, 10), keep_count(0.9, 90)) == (9, 81)
    m = select_target(x, {"a": 0.3, "b": 0.3}, count_rule="truncated_percent")
    assert int(m["a"].sum()) == 3 and int(m["b"].sum()) == 27 and m["b"][63:].all() and not m["b"][:63].any()


# ---------------------------------------------------------------------------------------------- actions

def test_random_and_signed_reinit_permute_the_whole_layers_theta0():
    w0 = torch.tensor([[0.3, -0.1, 0.2, -0.4], [0.5, 0.6, -0.7, 0.8]])
    m = torch.tensor([[True, True, False, True], [True, False, True, True]])
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    full = start_weights("random_reinit", w0, m, generator=g())
    assert sorted(full.flatten().tolist()) == sorted(w0.flatten().tolist()) and not torch.equal(full, w0)
    kept = kept_weights("random_reinit", w0, m, generator=g())
    assert torch.equal(kept, torch.where(m, full, torch.zeros_like(full)))  # the same draw, then masked
    signed = start_weights("signed_reinit", w0, m, generator=g())
    assert torch.equal(torch.sign(signed), torch.sign(w0))
    assert sorted(signed.abs().flatten().tolist()) == sorted(w0.abs().flatten().tolist())
    assert torch.equal(signed.abs(), full.abs())  # the same permutation of the magnitudes
    # rand_signed_std: signs shuffled among the kept weights (ticketlab) or over the layer (Zhou)
    std = float(w0.std(correction=0))
    layer = start_weights("rand_signed_std", w0, m, generator=g(), within="layer")
    assert torch.allclose(layer.abs(), torch.full_like(w0, std))
    assert sorted(torch.sign(layer).flatten().tolist()) == sorted(torch.sign(w0).flatten().tolist())
    kept_only = kept_weights("rand_signed_std", w0, m, generator=g())
    assert sorted(torch.sign(kept_only[m]).tolist()) == sorted(torch.sign(w0[m]).tolist())
    assert {"random_reinit", "signed_reinit"} < set(KEPT_ACTIONS)


def test_bias_helpers_by_hand():
    lin = torch.nn.Linear(3, 4)
    named = {f"fc.{k}": v for k, v in lin.named_parameters()}
    assert layer_biases(named, ["fc.weight"]) == {"fc.weight": "fc.bias"}
    b = {"fc.bias": torch.tensor([0.25, -0.5, 0.0, 0.75])}
    m = {"fc.bias": torch.tensor([True, True, True, False])}
    assert start_biases("init", b, m, seed=0)["fc.bias"].tolist() == [0.25, -0.5, 0.0, 0.0]
    s = math.sqrt(((0.125 ** 2) * 2 + (0.625 ** 2) * 2) / 4)  # population std of b: mean 0.125
    assert torch.allclose(start_biases("signed_std", b, m, seed=0)["fc.bias"], torch.tensor([s, -s, 0.0, 0.0]))
    assert start_biases("random_reshuffle", b, m, seed=5)["fc.bias"][3] == 0
    assert torch.equal(start_biases("random_reinit", b, m, seed=5)["fc.bias"],
                       start_biases("random_reinit", b, m, seed=5)["fc.bias"])  # its own seeded stream
    with pytest.raises(ConfigError, match="no value for a bias"):
        start_biases("signed_constant", b, m, seed=0)
    assert bias_record(m) == {"fc.bias": [3]}
    assert bias_masks({"fc.bias": [3]}, named)["fc.bias"].tolist() == [True, True, True, False]
    for bad in ({"fc.bias": [4]}, {"fc.bias": [1, 1]}, {"nope.bias": [0]}):
        with pytest.raises(ConfigError):
            bias_masks(bad, named)
    assert recorded_conventions({}) == ("kept", None, {})
    for bad in ({"signs": "all"}, {"action": "bogus"}, {"biases": {"fc.bias": ["0"]}}, []):
        with pytest.raises(ConfigError, match="kept_conventions"):
            recorded_conventions({"kept_conventions": bad})


# ---------------------------------------------------------------------------------------------- the miner

REF = dict(model="lenet_300_100", dataset="digits", seed=0, device="cpu", train_epochs=1)


def test_reference_refusals_are_one_line():
    for cfg, match in (({"weights": "signed_constant"}, "use signed_std"), ({"weights": "reinit"}, "random_reinit"),
                       ({"weights": "rand_signed_constant"}, "rand_signed_std"), ({"thresholds": "0,0.1"}, "thresholds"),
                       ({"sweep": "0.5,0.2"}, "output_sweep"), ({"output_sweep": "0.9"}, "as many densities")):
        with pytest.raises(ConfigError, match=match):
            mine("supermask", miner_config={"protocol": "reference", **cfg}, **REF)
    with pytest.raises(ConfigError, match="drop scope global"):
        mine("supermask", scope="global", miner_config={"protocol": "reference"}, **REF)
    with pytest.raises(ConfigError, match="leave the count rule at exact"):
        mine("supermask", count_rule="threshold", miner_config={"protocol": "reference"}, **REF)


@pytest.fixture(scope="module")
def reference_ticket():
    return mine("supermask", miner_config={"protocol": "reference", "criterion": "large_final_diff_sign",
                                           "weights": "signed_std", "sweep": "0.8^1..0.8^3"}, **REF)


def test_reference_sweep_is_zhous_per_layer_rates_and_counts(reference_ticket):
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.retraining import resolve_train_config
    from ticketlab.training import fit

    t = reference_ticket
    rows = [r for r in t.history if r.get("stage") == "sweep"]
    assert [r["target_density"] for r in rows] == [0.8, 0.8 ** 2, 0.8 ** 3]
    assert [r["target_output_density"] for r in rows] == [0.9, 0.9 ** 2, 0.9 ** 3]  # the output layer: 0.9^p
    sizes = {"fc1.weight": 64 * 300, "fc2.weight": 300 * 100, "fc3.weight": 100 * 10}
    for r in rows:
        want = {n: keep_count_truncated_percent(r["target_output_density"] if n == "fc3.weight" else r["target_density"], s)
                for n, s in sizes.items()}
        assert r["kept"] == sum(want.values())
    chosen = next(r for r in rows if r.get("selected"))
    assert t.provenance["count_rule"] == "truncated_percent" and t.provenance["schedule"] == "per-layer"
    assert t.provenance["layer_kept"] == {
        n: keep_count_truncated_percent(chosen["target_output_density"] if n == "fc3.weight" else chosen["target_density"], s)
        for n, s in sizes.items()}
    assert t.provenance["target_kept"] == t.kept
    # the ticket is the reference scores' per-layer top-k with the run's seeded tie stream
    data = load_dataset("digits", seed=0)
    net = create_model("lenet_300_100", data.spec, seed=0)
    params = prunable_parameters(net)
    theta0 = {n: p.detach().clone() for n, p in params.items()}
    fit(net, data, resolve_train_config("lenet_300_100", "digits", train_epochs=1), seed=0, device="cpu")
    scores = criterion_scores("large_final_diff_sign", theta0, {n: p.detach() for n, p in params.items()},
                              protocol="reference")
    target = {n: chosen["target_output_density"] if n == "fc3.weight" else chosen["target_density"] for n in params}
    want = select_target(scores, target, count_rule="truncated_percent",
                         generator=torch.Generator().manual_seed(0 + TIE))
    assert all(np.array_equal(t.masks[n], want[n].numpy()) for n in params)
    round_row = next(r for r in t.history if r.get("stage") == "round")
    assert round_row["tied_kept"] > 0  # same-sign weights tie at 0 and were drawn


def test_reference_biases_take_the_action_and_rebuild_reproduces_them(reference_ticket):
    from ticketlab.retraining import rebuild

    t = reference_ticket
    conv = t.provenance["kept_conventions"]
    assert conv["action"] == "signed_std" and conv["signs"] == "layer"
    assert conv["biases"] == {"fc1.bias": [], "fc2.bias": [], "fc3.bias": []}  # ranked criteria: no bias pruned
    rb = rebuild(t, device="cpu")
    from ticketlab.models import create_model
    net0 = create_model("lenet_300_100", rb.data.spec, seed=0)
    for name in ("fc1.bias", "fc2.bias", "fc3.bias"):
        b0 = dict(net0.named_parameters())[name].detach()
        want = torch.sign(b0) * b0.double().std(correction=0).to(b0.dtype)  # Zhou's signed constant, biases too
        assert torch.equal(rb.state[name], want)
    chosen = next(r for r in t.history if r.get("selected"))
    assert ticketlab.evaluate(t, split="val", device="cpu")["accuracy"] == chosen["val_accuracy"]


def test_exact_protocol_records_no_conventions_and_keeps_initial_biases():
    t = mine("supermask", miner_config={"sweep": "0.5"}, **REF)
    assert "kept_conventions" not in t.provenance and t.provenance["count_rule"] == "exact"


def test_single_sign_criteria_mask_biases_and_training_keeps_them_zero():
    # zero initial biases (Keras' default): sign(0) = 0 agrees only with a trained bias that is
    # still exactly 0 (a unit that never fired), so same_sign_single prunes every other bias
    # (get_weight_init.py l. 176-182 masks the whole vector, biases included)
    cfg = {"protocol": "reference", "criterion": "same_sign_single", "weights": "random_reinit"}
    t = mine("supermask", model_kwargs={"zero_bias": True}, miner_config=cfg, **REF)
    pruned = t.provenance["kept_conventions"]["biases"]
    for n in ("fc1.bias", "fc2.bias", "fc3.bias"):  # "final": the dense network's trained state
        assert pruned[n] == np.flatnonzero(t.weights["final"][n] != 0).tolist()
    assert sum(map(len, pruned.values())) > 400  # of 410
    trained = ticketlab.train(t, train_epochs=1, device="cpu")
    for n, idx in pruned.items():  # trained under the bias masks: the pruned biases stay exactly zero
        assert not np.any(trained.weights["final"][n][idx])
    both = mine("supermask", model_kwargs={"zero_bias": True}, miner_config=cfg, train_ticket=True, **REF)
    assert both.provenance["test_accuracy"] == trained.provenance["test_accuracy"]  # the same start and masks
    # the kept weights are a permutation of the whole layer's θ0 (random_reinit), then masked
    from ticketlab.data import load_dataset
    from ticketlab.models import create_model

    net0 = create_model("lenet_300_100", load_dataset("digits", seed=0).spec, seed=0, zero_bias=True)
    w0 = dict(net0.named_parameters())["fc2.weight"].detach()
    init = torch.as_tensor(t.weights["init"]["fc2.weight"])
    kept = torch.as_tensor(t.masks["fc2.weight"])
    assert torch.isin(init[kept], w0.flatten()).all() and (init[~kept] == 0).all()
    d = mine("supermask", model_kwargs={"zero_bias": True},
             miner_config={"protocol": "reference", "criterion": "diff_sign_single"}, **REF)
    for n, idx in d.provenance["kept_conventions"]["biases"].items():  # the mirror: the biases still at 0
        assert idx == np.flatnonzero(t.weights["final"][n] == 0).tolist()


def test_output_sweep_under_the_exact_protocol():
    t = mine("supermask", miner_config={"sweep": "0.5,0.2", "output_sweep": "0.9,0.6"}, **REF)
    rows = [r for r in t.history if r.get("stage") == "sweep"]
    assert [(r["target_density"], r["target_output_density"]) for r in rows] == [(0.5, 0.9), (0.2, 0.6)]
    assert rows[1]["kept"] == keep_count(0.2, 64 * 300) + keep_count(0.2, 300 * 100) + keep_count(0.6, 1000)
    with pytest.raises(ConfigError, match="drop --density"):
        mine("supermask", density=0.2, miner_config={"sweep": "0.5", "output_sweep": "0.9"}, **REF)


def test_reference_resume_keeps_the_bias_record(tmp_path, monkeypatch):
    from ticketlab.miners.supermask import SupermaskMiner

    kw = dict(REF, miner_config={"protocol": "reference", "weights": "signed_std", "sweep": "0.8^2..0.8^3"})
    ckpt = tmp_path / "s.ckpt"
    first = mine("supermask", checkpoint=ckpt, **kw)
    monkeypatch.setattr(SupermaskMiner, "prepare", lambda self, ctx: pytest.fail("swept again"))
    again = mine("supermask", checkpoint=ckpt, resume=True, **kw)
    assert again.provenance["kept_conventions"] == first.provenance["kept_conventions"]
    assert all(np.array_equal(first.masks[n], again.masks[n]) for n in first.masks)
    assert all(np.array_equal(first.weights["init"][n], again.weights["init"][n]) for n in first.masks)
