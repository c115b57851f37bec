"""Layer-wise distributions (issue 13): ERK, Smart-Ratio and uniform against hand computations,
exact totals of the count allocation, and the ``random`` miner's ``--distribution``."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.distributions import (
    allocate_counts, erk_densities, scaled_densities, selection_density, smart_ratio_densities,
    uniform_densities,
)
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.mining import mine
from ticketlab.selection import keep_count
from ticketlab.streams import MINER
from ticketlab.ticket import Ticket

torch.set_num_threads(1)

# A conv layer and two linear ones: sizes 72, 160, 20 (N = 252); ERK raw densities
# (4+2+3+3)/72 = 1/6, (10+16)/160 = 0.1625, (2+10)/20 = 0.6, so eps * raw * n = eps * sum(shape).
SHAPES = {"conv.weight": (4, 2, 3, 3), "fc1.weight": (10, 16), "fc2.weight": (2, 10)}
SIZES = {n: math.prod(s) for n, s in SHAPES.items()}


def counts(densities, kept, sizes=SIZES):
    return allocate_counts(densities, sizes, kept)


# ------------------------------------------------------------------ ERK by hand
def test_erk_hand_computed_without_capping():
    kept = keep_count(0.25, 252)  # 63
    d = erk_densities(SHAPES, kept)  # eps = 63 / (12 + 26 + 12) = 1.26
    assert kept == 63
    assert d == pytest.approx({"conv.weight": 1.26 / 6, "fc1.weight": 1.26 * 0.1625, "fc2.weight": 0.756})
    # ideal counts 15.12, 32.76, 15.12: floors 62, the one left goes to the largest remainder (.76)
    assert counts(d, kept) == {"conv.weight": 15, "fc1.weight": 33, "fc2.weight": 15}


def test_erk_hand_computed_capping():
    kept = keep_count(0.5, 252)  # 126; eps = 2.52 puts fc2 at 1.512 > 1: dense
    d = erk_densities(SHAPES, kept)
    eps = (126 - 20) / (12 + 26)  # the other two share the 106 left
    assert d == pytest.approx({"conv.weight": eps / 6, "fc1.weight": eps * 0.1625, "fc2.weight": 1.0})
    # ideal 33.47 and 72.53 (+20): the one left goes to fc1 (.53 > .47)
    assert counts(d, kept) == {"conv.weight": 33, "fc1.weight": 73, "fc2.weight": 20}


def test_erk_capping_iterates():
    """raw 1, 2/3, 1/10 on sizes 4, 9, 400; K = 74. eps = 74/50 = 1.48 caps only a; then
    eps = 70/46 = 1.52 puts b at 1.01 > 1: b is capped too, and c takes 61 / 400."""
    shapes = {"a": (2, 2), "b": (3, 3), "c": (20, 20)}
    kept = keep_count(0.179, 413)
    d = erk_densities(shapes, kept)
    assert kept == 74 and d == pytest.approx({"a": 1.0, "b": 1.0, "c": 61 / 400})
    assert counts(d, kept, {"a": 4, "b": 9, "c": 400}) == {"a": 4, "b": 9, "c": 61}


# ------------------------------------------------------------------ Smart-Ratio by hand
SR = {"a": (10, 10), "b": (10, 10), "c": (5, 10)}  # L = 3: raw 3^2+3 = 12, 2^2+2 = 6; c fixed at 0.3
SR_SIZES = {"a": 100, "b": 100, "c": 50}


def test_smart_ratio_hand_computed():
    d = smart_ratio_densities(SR, keep_count(0.3, 250))  # 75 - 15 = 60 = eps * (1200 + 600)
    assert d == pytest.approx({"a": 0.4, "b": 0.2, "c": 0.3})
    assert counts(d, 75, SR_SIZES) == {"a": 40, "b": 20, "c": 15}
    kept = keep_count(0.33, 250)  # 83: eps = 68/1800, ideal 45.33 and 22.67: b gets the one left
    assert counts(smart_ratio_densities(SR, kept), kept, SR_SIZES) == {"a": 45, "b": 23, "c": 15}


def test_smart_ratio_overflow_is_redistributed():
    d = smart_ratio_densities(SR, keep_count(0.7, 250))  # 160 = 1800 eps: a at 1.07 -> dense, b 60/100
    assert d == pytest.approx({"a": 1.0, "b": 0.6, "c": 0.3})


def test_smart_ratio_positions_in_the_whole_network():
    # layers 2 and 3 of 4 (the first and the last left dense): raw (4-2+1)^2+3 = 12, 2^2+2 = 6, none fixed
    d = smart_ratio_densities({"b": (10, 10), "c": (10, 10)}, 90, positions={"b": 2, "c": 3}, layers=4)
    assert d == pytest.approx({"b": 0.6, "c": 0.3})
    with pytest.raises(ConfigError, match="position"):
        smart_ratio_densities({"b": (10, 10)}, 9, positions={"b": 5}, layers=4)


def test_smart_ratio_refuses_when_the_last_layer_takes_the_budget():
    with pytest.raises(ConfigError, match="keeps the last layer at density 0.3") as info:
        smart_ratio_densities({"a": (2, 2), "b": (10, 10)}, 10)  # 30 of a budget of 10
    assert "\n" not in str(info.value) and "higher density" in str(info.value)


# ------------------------------------------------------------------ uniform and the allocation
def test_uniform_has_an_exact_total_unlike_layer_scope():
    sizes = {"a": 3, "b": 3, "c": 3}
    kept = keep_count(0.5, 9)  # 5; per-layer rounding would keep 2 + 2 + 2 = 6
    d = uniform_densities({n: (s,) for n, s in sizes.items()}, kept)
    assert d == pytest.approx({"a": 5 / 9, "b": 5 / 9, "c": 5 / 9})
    assert counts(d, kept, sizes) == {"a": 2, "b": 2, "c": 1}  # equal remainders: earlier layers first
    assert sum(keep_count(0.5, s) for s in sizes.values()) == 6


def test_allocation_is_exact_and_within_one_of_ideal():
    rng = np.random.default_rng(0)
    for case in range(500):
        n = int(rng.integers(1, 6))
        sizes = {f"l{i}": int(rng.integers(1, 50)) for i in range(n)}
        total = sum(sizes.values())
        kept = int(rng.integers(0, total + 1))
        raw = {k: float(rng.random()) + 1e-3 for k in sizes}
        d = scaled_densities(raw, sizes, kept)
        assert sum(d[k] * sizes[k] for k in sizes) == pytest.approx(kept)
        assert all(0 <= v <= 1 for v in d.values())
        c = allocate_counts(d, sizes, kept)
        assert sum(c.values()) == kept, case
        assert all(abs(c[k] - d[k] * sizes[k]) < 1 + 1e-9 for k in sizes), case
        caps = {k: int(rng.integers(0, s + 1)) for k, s in sizes.items()}
        small = min(kept, sum(caps.values()))
        c = allocate_counts(d, sizes, small, caps)
        assert sum(c.values()) == small and all(c[k] <= caps[k] for k in sizes), case


def test_selection_density_round_trips_through_keep_count():
    for size in range(1, 60):
        assert [keep_count(selection_density(k, size), size) for k in range(size + 1)] == list(range(size + 1))


def test_allocation_errors():
    with pytest.raises(ConfigError, match="at most 3"):
        allocate_counts({"a": 1.0}, {"a": 3}, 4)
    with pytest.raises(ConfigError, match="different layers"):
        allocate_counts({"a": 1.0}, {"b": 3}, 1)


# ------------------------------------------------------------------ the random miner
FAST = {"model": "lenet_300_100", "dataset": "digits", "density": 0.137, "seed": 0, "device": "cpu"}
DISTS = ["uniform", "erk", "smart_ratio"]


def _mine(distribution, **kw):
    return mine("random", **{**FAST, **kw}, miner_config={"distribution": distribution})


@pytest.mark.parametrize("dist", DISTS)
def test_random_distribution_exact_counts_every_round(dist, tmp_path):
    t = _mine(dist, rounds=3, save_rounds=tmp_path)
    assert t.kept == keep_count(0.137, t.total) == t.provenance["target_kept"]
    assert t.provenance["distribution"] == dist and t.provenance["scope"] == "layer"
    assert t.provenance["layer_target_kept"] == t.layer_kept()
    shapes = {n: m.shape for n, m in t.masks.items()}
    fn = {"uniform": uniform_densities, "erk": erk_densities, "smart_ratio": smart_ratio_densities}[dist]
    assert t.provenance["layer_target_density"] == pytest.approx(fn(shapes, t.kept))
    rounds = [ticketlab.load(tmp_path / f"round_{k:02d}.h5").masks for k in (1, 2, 3)]
    for k, (d, ms) in enumerate(zip([0.137 ** (j / 3) for j in (1, 2, 3)], rounds)):
        assert sum(int(m.sum()) for m in ms.values()) == keep_count(d, t.total), k
        if k:
            assert not any((ms[n] & ~rounds[k - 1][n]).any() for n in ms), k  # masks only shrink
    again, other = _mine(dist, rounds=3), _mine(dist, rounds=3, seed=1)
    assert all(np.array_equal(again.masks[n], t.masks[n]) for n in t.masks)
    assert any(not np.array_equal(other.masks[n], t.masks[n]) for n in t.masks)
    assert other.layer_kept() == t.layer_kept()  # the counts depend on the shapes only
    back = ticketlab.load(ticketlab.save(t, tmp_path / "t.h5"))
    assert back.provenance == t.provenance


def test_random_rounds_never_regrow_a_layer():
    """Largest-remainder rounding alone has the Alabama paradox: sizes 1, 3, 3 keep 0, 2, 2 of 4
    but 1, 1, 1 of 3, regrowing the first layer. Each round is capped by the one before: 0, 2, 1."""
    from ticketlab.miners import get_miner
    from ticketlab.miners.base import MiningContext

    assert allocate_counts({"a": 3 / 7, "b": 3 / 7, "c": 3 / 7}, {"a": 1, "b": 3, "c": 3}, 3) == {"a": 1, "b": 1, "c": 1}
    params = {"a": torch.nn.Parameter(torch.zeros(1, 1)), "b": torch.nn.Parameter(torch.zeros(3, 1)),
              "c": torch.nn.Parameter(torch.zeros(3, 1))}
    ctx = MiningContext(model=torch.nn.Module(), params=params, spec=None, data=None, device=torch.device("cpu"),
                        seed=0, generator=torch.Generator())
    miner = get_miner("random")(distribution="uniform")
    rounds = miner.schedule(ctx, None, None, explicit=[4 / 7, 3 / 7])
    assert [{n: keep_count(d[n], params[n].numel()) for n in params} for d in rounds] == [
        {"a": 0, "b": 2, "c": 2}, {"a": 0, "b": 2, "c": 1}]
    assert ctx.provenance["layer_target_kept"] == {"a": 0, "b": 2, "c": 1}


def test_random_erk_on_lenet_by_hand():
    """lenet_300_100 on digits: 64-300-100-10. ERK counts are eps * (n_in + n_out):
    K = 6877, eps = 6877 / (364 + 400 + 110); ideal 2864.1, 3147.4, 865.5 -> floors 6876, one to fc3."""
    t = _mine("erk")
    assert t.layer_kept() == {"fc1.weight": 2864, "fc2.weight": 3147, "fc3.weight": 866}


def test_random_smart_ratio_respects_the_layer_flags():
    # fc3 left dense: fc1 and fc2 are layers 1 and 2 of 3 (raw 12, 6), none is the last (no 0.3);
    # K = 4920, ideal 2762.1 and 2157.9: the one left goes to fc2
    t = mine("random", **{**FAST, "density": 0.1}, skip_last_layer=True, miner_config={"distribution": "smart_ratio"})
    assert t.layer_kept() == {"fc1.weight": 2762, "fc2.weight": 2158}
    # fc1 left dense: fc2 and fc3 are layers 2 and 3 of 3, fc3 is the last: 300 of 1000, fc2 the rest
    t = mine("random", **{**FAST, "density": 0.1}, skip_first_layer=True, miner_config={"distribution": "smart_ratio"})
    assert t.layer_kept() == {"fc2.weight": keep_count(0.1, 31000) - 300, "fc3.weight": 300}
    t = _mine("smart_ratio")  # all three pruned: fc3 (the last) at 0.3 of its 1000
    assert t.layer_kept()["fc3.weight"] == 300 and t.kept == keep_count(0.137, t.total)


def test_random_default_is_global_and_unchanged():
    t = mine("random", **FAST)
    assert t.provenance["method_config"] == {"distribution": "global"} and "distribution" not in t.provenance
    assert t.provenance["scope"] == "global" and t.kept == keep_count(0.137, t.total)
    gen = torch.Generator().manual_seed(0 + MINER)  # the miner's draws: one ranking over all layers
    scores = torch.cat([torch.rand(m.shape, generator=gen, dtype=torch.float64).flatten() for m in t.masks.values()])
    top = torch.zeros_like(scores, dtype=torch.bool)
    top[torch.argsort(scores, descending=True, stable=True)[: t.kept]] = True
    assert np.array_equal(np.concatenate([m.ravel() for m in t.masks.values()]), top.numpy())


def test_like_copies_another_tickets_layer_counts(tmp_path):
    src = _mine("erk", seed=4)
    path = ticketlab.save(src, tmp_path / "src.h5")
    t = mine("random", **{**FAST, "density": None, "seed": 9}, miner_config={"distribution": f"like:{path}"})
    assert t.layer_kept() == src.layer_kept() and t.kept == src.kept
    assert any(not np.array_equal(t.masks[n], src.masks[n]) for n in t.masks)
    assert t.provenance["distribution_source"] == {"path": str(path), "method": "random", "kept": src.kept}
    same = mine("random", **{**FAST, "density": src.density, "seed": 9}, miner_config={"distribution": f"like:{path}"})
    assert all(np.array_equal(same.masks[n], t.masks[n]) for n in t.masks)


def test_like_keeps_a_collapsed_layer_collapsed(tmp_path):
    ref = mine("random", **FAST)
    masks = {n: np.zeros(m.shape, dtype=bool) for n, m in ref.masks.items()}
    masks["fc1.weight"][:3] = True
    path = ticketlab.save(Ticket(masks=masks, provenance={"method": "handmade"}), tmp_path / "c.h5")
    t = mine("random", **{**FAST, "density": None}, miner_config={"distribution": f"like:{path}"})
    assert t.layer_kept() == {"fc1.weight": 3 * 64, "fc2.weight": 0, "fc3.weight": 0} and t.provenance["collapsed"]


def test_like_errors(tmp_path):
    src = _mine("uniform")
    path = ticketlab.save(src, tmp_path / "src.h5")
    with pytest.raises(ConfigError, match="not density 0.5"):
        mine("random", **{**FAST, "density": 0.5}, miner_config={"distribution": f"like:{path}"})
    with pytest.raises(ConfigError, match="one-shot"):
        mine("random", **{**FAST, "density": None, "rounds": 2}, miner_config={"distribution": f"like:{path}"})
    with pytest.raises(IncompatibleError, match="layer 'fc3.weight' is missing from this run"):
        mine("random", **{**FAST, "density": None}, skip_last_layer=True,
             miner_config={"distribution": f"like:{path}"})
    wrong = Ticket(masks={"fc1.weight": np.ones((300, 65), bool), "fc2.weight": np.ones((100, 300), bool),
                          "fc3.weight": np.ones((10, 100), bool)})
    other = ticketlab.save(wrong, tmp_path / "wrong.h5")
    with pytest.raises(IncompatibleError, match=r"'fc1.weight' has shape \(300, 65\) there"):
        mine("random", **{**FAST, "density": None}, miner_config={"distribution": f"like:{other}"})


def test_distribution_errors():
    with pytest.raises(ConfigError, match="unknown distribution 'erk2'"):
        _mine("erk2")
    with pytest.raises(ConfigError, match="unknown distribution 'like:'"):
        _mine("like:")
    with pytest.raises(ConfigError, match="leave out scope layer"):
        _mine("erk", scope="layer")


def test_cli_distribution_option(tmp_path):
    from ticketlab.cli.main import cli

    out = tmp_path / "e.h5"
    res = CliRunner().invoke(cli, ["mine", "--method", "random", "--distribution", "erk", "--density", "0.05",
                                   "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    t = ticketlab.load(out)
    assert t.provenance["distribution"] == "erk" and t.kept == keep_count(0.05, t.total)
    res = CliRunner().invoke(cli, ["mine", "--method", "random", "--distribution", f"like:{out}",
                                   "-o", str(tmp_path / "l.h5"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert ticketlab.load(tmp_path / "l.h5").layer_kept() == t.layer_kept()
    res = CliRunner().invoke(cli, ["mine", "--method", "random", "--distribution", "nope", "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2 and "unknown distribution 'nope'" in res.output
