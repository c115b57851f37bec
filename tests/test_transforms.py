"""Ticket transforms (issue 13): exact counts, determinism per seed, no mutation, inversion by
rank order (hand-computed, signed scores and ties), reinit's recorded fresh draw, the registry."""

import copy
import math
import subprocess
import sys

import numpy as np
import pytest

from ticketlab.errors import ConfigError, UnknownNameError
from ticketlab.selection import keep_count, select_bottom
from ticketlab.ticket import Ticket
from ticketlab.transforms import (
    TRANSFORMS, get_transform, invert, list_transforms, register_transform, reinit, reinit_model_seed,
    shuffle_global, shuffle_layerwise,
)

CASES = 200  # random tickets of the property tests (hypothesis is not installed: seeded loops)


def random_ticket(case: int) -> Ticket:
    """A ticket with 1-4 layers of random shapes and densities (empty and full layers included),
    integer-valued signed scores (many ties), init and final weights, history and a result."""
    rng = np.random.default_rng(case)
    masks, scores, init = {}, {}, {}
    for i in range(int(rng.integers(1, 5))):
        shape = tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        p = rng.choice([0.0, 1.0, rng.random()])
        masks[f"l{i}.weight"] = rng.random(shape) < p
        scores[f"l{i}.weight"] = rng.integers(-3, 4, size=shape).astype(np.float32)
        init[f"l{i}.weight"] = rng.standard_normal(shape).astype(np.float32)
    final = {n: init[n] * masks[n] for n in masks}
    kept = {n: int(m.sum()) for n, m in masks.items()}
    return Ticket(masks=masks, provenance={"method": "test", "scope": str(rng.choice(["global", "layer"])),
                                           "seed": case, "test_accuracy": 0.5, "kept": sum(kept.values()),
                                           "layer_kept": kept, "collapsed": False},
                  weights={"init": init, "final": final}, scores=scores,
                  history=[{"stage": "round", "round": 1, "test_accuracy": 0.5}])


def snapshot(t: Ticket):
    return (copy.deepcopy(t.masks), copy.deepcopy(t.provenance), copy.deepcopy(t.weights),
            copy.deepcopy(t.scores), copy.deepcopy(t.history))


def assert_unchanged(t: Ticket, before) -> None:
    masks, prov, weights, scores, history = before
    assert list(t.masks) == list(masks) and all(np.array_equal(t.masks[n], masks[n]) for n in masks)
    assert t.provenance == prov and t.history == history
    assert set(t.weights) == set(weights)
    for snap in weights:
        assert all(np.array_equal(t.weights[snap][n], weights[snap][n]) for n in weights[snap])
    assert all(np.array_equal(t.scores[n], scores[n]) for n in scores)


def same_masks(a: Ticket, b: Ticket) -> bool:
    return list(a.masks) == list(b.masks) and all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)


# ------------------------------------------------------------------ properties over random masks
def test_shuffle_layerwise_keeps_every_layer_count_and_shape():
    for case in range(CASES):
        t = random_ticket(case)
        s = shuffle_layerwise(t, seed=case)
        assert s.layer_kept() == t.layer_kept(), case
        assert {n: m.shape for n, m in s.masks.items()} == {n: m.shape for n, m in t.masks.items()}
        assert all(m.dtype == np.bool_ for m in s.masks.values())


def test_shuffle_global_keeps_the_total_and_moves_weights_between_layers():
    moved = 0
    for case in range(CASES):
        t = random_ticket(case)
        s = shuffle_global(t, seed=case)
        assert s.kept == t.kept and s.total == t.total, case
        moved += s.layer_kept() != t.layer_kept()
    assert moved > CASES // 4  # one permutation over all weights: layer counts do not survive


@pytest.mark.parametrize("name", list_transforms())
def test_every_transform_is_deterministic_keeps_the_total_and_never_mutates(name):
    fn = get_transform(name)
    for case in range(CASES):
        t = random_ticket(case)
        before = snapshot(t)
        a, b = fn(t, seed=7), fn(t, seed=7)
        assert same_masks(a, b) and a.provenance == b.provenance, case
        assert a.kept == t.kept, case
        assert a.provenance["transforms"][-1]["name"] == name
        assert a.provenance["kept"] == a.kept and a.provenance["layer_kept"] == a.layer_kept()
        assert a.provenance["collapsed"] == a.collapsed
        assert_unchanged(t, before)
        a.masks[next(iter(a.masks))][...] = True  # the result owns its arrays
        for snap in a.weights.values():
            for w in snap.values():
                w[...] = 0
        assert_unchanged(t, before)


@pytest.mark.parametrize("fn", [shuffle_layerwise, shuffle_global])
def test_shuffles_differ_across_seeds_and_really_move_the_mask(fn):
    # Synaptic-Flow's shuffle returns the mask unchanged (it rebinds a local name): not here
    t = Ticket(masks={"a": np.arange(40).reshape(5, 8) < 10, "b": np.arange(12) < 6})
    results = [fn(t, seed=s) for s in range(10)]
    assert all(not same_masks(r, t) for r in results)
    assert len({tuple(np.concatenate([m.ravel() for m in r.masks.values()])) for r in results}) == 10


def test_shuffle_layerwise_is_uniform_over_masks():
    """Over 4000 seeds a 3-of-10 layer takes every one of its C(10, 3) = 120 masks about equally
    often (expected 33.3 each; a biased permutation, e.g. a random roll with its 10 masks, fails),
    and each position is kept in about 30 % of them."""
    t = Ticket(masks={"w": np.arange(10) < 3, "v": np.arange(4) < 4})
    draws = np.array([shuffle_layerwise(t, seed=s).masks["w"] for s in range(4000)])
    _, freq = np.unique(draws, axis=0, return_counts=True)
    assert len(freq) == math.comb(10, 3) and freq.min() >= 10 and freq.max() <= 60, freq
    assert np.all(np.abs(draws.mean(axis=0) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000))


def test_transformed_ticket_is_untrained_and_records_its_chain():
    t = random_ticket(3)
    s = reinit(shuffle_layerwise(t, seed=1), seed=2)
    assert [r["name"] for r in s.provenance["transforms"]] == ["shuffle_layerwise", "reinit"]
    assert s.provenance["transforms"][0] == {"name": "shuffle_layerwise", "seed": 1, "source_test_accuracy": 0.5}
    assert "test_accuracy" not in s.provenance and s.history == [] and "final" not in s.weights
    assert shuffle_layerwise(t, seed=1).weights["init"].keys() == t.weights["init"].keys()
    assert shuffle_layerwise(t, seed=1).scores == {}  # the scores no longer explain the mask


def test_transformed_ticket_round_trips_through_a_file(tmp_path):
    from ticketlab.fileformat import load, save

    t = reinit(invert(random_ticket(5)), seed=3)
    back = load(save(t, tmp_path / "t.h5"))
    assert same_masks(back, t) and back.provenance == t.provenance


def test_bad_seed_is_one_line_config_error():
    t = random_ticket(0)
    for bad in (-1, 1.5, True, "3", 2**64):
        with pytest.raises(ConfigError, match="seed must be an integer from 0 to"):
            shuffle_layerwise(t, seed=bad)


# ------------------------------------------------------------------ invert: hand-computed
def _ticket(masks, scores, scope):
    return Ticket(masks={n: np.array(m, dtype=bool) for n, m in masks.items()},
                  scores={n: np.array(s, dtype=np.float64) for n, s in scores.items()},
                  provenance={"scope": scope})


def test_invert_global_hand_computed():
    # ranking 5 (b1), 3 (a0), then 2 (a2) and 2 (b0) tied, 1 (a1); keep the last 2: a1 and one of
    # the tied 2s, drawn: the tie order is numpy's default_rng(seed).permutation over a0 a1 a2 b0 b1
    t = _ticket({"a": [True, False, False], "b": [False, True]}, {"a": [3, 1, 2], "b": [2, 5]}, "global")
    for seed in (None, 0, 1, 2, 3):
        key = np.random.default_rng(0 if seed is None else seed).permutation(5)
        m = invert(t, seed=seed).masks
        lower = "a2" if key[2] > key[3] else "b0"  # the larger key ranks later, i.e. lower
        assert m["a"].tolist() == [False, True, lower == "a2"] and m["b"].tolist() == [lower == "b0", False], seed


def test_invert_layer_scope_keeps_each_layer_count():
    t = _ticket({"a": [True, False, False], "b": [False, True]}, {"a": [3, 1, 2], "b": [2, 5]}, "layer")
    m = invert(t).masks
    assert m["a"].tolist() == [False, True, False] and m["b"].tolist() == [True, False]
    t = _ticket({"a": [True, True, False], "b": [False, True]}, {"a": [3, 1, 2], "b": [2, 5]}, "layer")
    m = invert(t).masks  # a keeps 2: 2 and 1; b keeps 1: its 2
    assert m["a"].tolist() == [False, True, True] and m["b"].tolist() == [True, False]
    m = invert(t, scope="global").masks  # 3 in all: 2 (a2), 2 (b0), 1 (a1)
    assert m["a"].tolist() == [False, True, True] and m["b"].tolist() == [True, False]


def test_invert_signed_scores_by_order_not_reciprocal():
    # GraSP-like signed scores: ranking 4, 0.2, -0.1, -2, -3; the lowest two are -2 and -3
    scores = [-3.0, -0.1, 0.2, 4.0, -2.0]
    t = _ticket({"w": [False, False, True, True, False]}, {"w": scores}, "global")
    assert invert(t).masks["w"].tolist() == [True, False, False, False, True]
    reciprocal = np.argsort(-1.0 / np.array(scores))[:2]  # the wrong rule keeps 0.2 and 4
    assert sorted(reciprocal.tolist()) == [2, 3]


def test_invert_ties_and_nonfinite():
    t = _ticket({"w": [True, False, False, False]}, {"w": [1, 1, 1, 1]}, "global")
    key = np.random.default_rng(0).permutation(4)  # invert's default seed 0
    assert np.flatnonzero(invert(t).masks["w"]).tolist() == [int(np.argmax(key))]  # the last in the drawn order
    t = _ticket({"a": [True, True], "b": [True, False]}, {"a": [1, 1], "b": [1, 1]}, "global")
    m = invert(t).masks  # keep 3 of 4 equal: all but the first in the drawn order a0 a1 b0 b1
    assert np.concatenate([m["a"], m["b"]]).tolist() == [i != int(np.argmin(key)) for i in range(4)]
    t = _ticket({"w": [False, True, False, True]}, {"w": [np.nan, 0.0, -np.inf, 1.0]}, "global")
    assert invert(t).masks["w"].tolist() == [True, False, True, False]  # NaN and -inf rank lowest


def test_invert_is_the_complement_of_the_shared_top_selection():
    """select_bottom at N - k is exactly ~select_top at k (global and per layer) wherever no score
    ties at the boundary; where one does, both keep the same untied weights and complementary counts
    (each draws its ties from its own stream)."""
    import torch

    from ticketlab.distributions import selection_density
    from ticketlab.selection import select_top

    torch.set_num_threads(1)

    def check(top, bottom, scores, case):
        flat = lambda d: np.concatenate([np.asarray(d[n]).ravel() for n in t.masks])  # noqa: E731
        top_, bottom_, s = flat({n: top[n].numpy() for n in top}), flat(bottom), flat(scores).astype(float)
        s = np.where(np.isnan(s), -np.inf, s)
        assert top_.sum() + bottom_.sum() == s.size, case
        if top_.any() and bottom_.any():
            boundary = s[top_].min()  # the lowest kept score; only weights scoring it can differ
            untied = s != boundary
            assert np.array_equal(bottom_[untied], ~top_[untied]), case
        else:
            assert np.array_equal(bottom_, ~top_), case

    for case in range(CASES):
        t = random_ticket(case)
        scores = {n: torch.as_tensor(s) for n, s in t.scores.items()}
        k = int(np.random.default_rng(case).integers(0, t.total + 1))
        top = select_top(scores, selection_density(k, t.total), scope="global")
        check(top, select_bottom(t.scores, t.total - k, rng=np.random.default_rng(case)), t.scores, case)
        counts = {n: keep_count(0.37, m.size) for n, m in t.masks.items()}
        top = select_top(scores, 0.37, scope="layer")
        bottom = select_bottom(t.scores, {n: t.masks[n].size - counts[n] for n in t.masks}, rng=np.random.default_rng(case))
        for n in t.masks:
            assert int(top[n].sum()) + int(bottom[n].sum()) == t.masks[n].size, case


def test_invert_draws_its_ties_from_its_seed_not_by_position():
    # all scores equal: keep 6 of 8 lowest -> which ones is the seed's draw, about 3/4 each over seeds
    t = Ticket(masks={"a": np.ones(4, bool), "b": np.array([True, True, False, False])},
               scores={"a": np.zeros(4), "b": np.zeros(4)}, provenance={"scope": "global"})
    kept = np.zeros(8)
    for seed in range(400):
        m = invert(t, seed=seed).masks
        assert int(m["a"].sum() + m["b"].sum()) == 6
        kept += np.concatenate([m["a"], m["b"]])
    share = kept / 400  # binomial sd 0.022: a positional rule would give [1, 1, 1, 1, 1, 1, 0, 0]
    assert np.all(np.abs(share - 0.75) < 0.11), share
    same = invert(t, seed=7).masks
    assert all(np.array_equal(same[n], invert(t, seed=7).masks[n]) for n in same)
    assert invert(t).provenance["transforms"][-1]["ties"] == "seeded"


def test_invert_of_a_one_shot_ticket_keeps_none_of_its_weights():
    """A one-shot ticket keeps the top k by the shared order; its inversion the bottom k: disjoint
    when 2k <= N, and at exactly half density the complement."""
    for case in range(CASES):
        t = random_ticket(case)
        for k in {t.total // 2, t.total // 3, t.total // 2 + t.total % 2}:
            # the top k in the order invert draws for its default seed 0: the same total order
            top = {n: ~m for n, m in select_bottom(t.scores, t.total - k, rng=np.random.default_rng(0)).items()}
            inv = invert(Ticket(masks=top, scores=t.scores, provenance={"scope": "global"})).masks
            assert sum(int(m.sum()) for m in inv.values()) == k
            if 2 * k <= t.total:
                assert not any((inv[n] & top[n]).any() for n in top), case
            if 2 * k == t.total:
                assert all(np.array_equal(inv[n], ~top[n]) for n in top), case


def test_invert_refuses_without_scores_or_scope():
    t = Ticket(masks={"w": np.array([True, False])}, provenance={"scope": "global"})
    with pytest.raises(ConfigError, match="invert needs the ticket's scores") as info:
        invert(t)
    assert "\n" not in str(info.value)
    t = Ticket(masks={"a": np.array([True]), "b": np.array([False])}, scores={"a": np.array([1.0])},
               provenance={"scope": "global"})
    with pytest.raises(ConfigError, match="none for 'b'"):
        invert(t)
    t = Ticket(masks={"w": np.array([True, False])}, scores={"w": np.array([1.0, 2.0])})
    with pytest.raises(ConfigError, match="selection scope"):
        invert(t)
    assert invert(t, scope="layer").masks["w"].tolist() == [True, False]


# ------------------------------------------------------------------ reinit
def test_reinit_keeps_the_mask_drops_init_and_records_the_draw():
    from ticketlab.weights import reinit_draw_seed

    t = random_ticket(1)
    r = reinit(t, seed=4)
    assert same_masks(r, t) and r.weights == {} and "init" in t.weights
    assert r.provenance["transforms"][-1]["name"] == "reinit" and r.provenance["transforms"][-1]["seed"] == 4
    assert reinit_model_seed(r) == reinit_draw_seed(4) != reinit_model_seed(reinit(t, seed=5))
    assert reinit_model_seed(t) is None
    assert reinit_model_seed(reinit(r, seed=9)) == reinit_draw_seed(9)  # the last reinit counts


def test_reinit_materializes_with_the_shared_kept_weights_helper():
    import torch

    from ticketlab.data.base import DataSpec
    from ticketlab.models import create_model, prunable_parameters
    from ticketlab.weights import kept_weights

    torch.set_num_threads(1)
    spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
    params = prunable_parameters(create_model("lenet_300_100", spec, seed=0))
    t = Ticket(masks={n: np.random.default_rng(0).random(tuple(p.shape)) < 0.3 for n, p in params.items()},
               weights={"init": {n: p.detach().numpy() for n, p in params.items()}}, provenance={"seed": 0})
    r = reinit(t, seed=0)
    fresh = prunable_parameters(create_model("lenet_300_100", spec, seed=reinit_model_seed(r)))
    for n, p in params.items():
        mask = torch.as_tensor(r.masks[n])
        w = kept_weights("reinit", p, mask, generator=torch.Generator(), fresh=fresh[n])
        assert torch.all(w[~mask] == 0) and not torch.equal(w[mask], p.detach()[mask])


# ------------------------------------------------------------------ registry and imports
def test_registry():
    assert list_transforms() == ["shuffle_layerwise", "shuffle_global", "invert", "reinit"]
    assert get_transform("reinit") is reinit
    with pytest.raises(UnknownNameError, match="unknown transform 'nope'"):
        get_transform("nope")
    with pytest.raises(ConfigError, match="already registered"):
        register_transform("invert")(lambda ticket, *, seed: ticket)

    @register_transform("identity_example")
    def identity(ticket, *, seed):
        return ticket
    try:
        assert get_transform("identity_example") is identity
    finally:
        TRANSFORMS.remove("identity_example")


def test_transforms_import_no_torch():
    code = "import sys, ticketlab.transforms, ticketlab.distributions; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
