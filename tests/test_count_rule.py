"""``count_rule``: ticketlab's exact count against Synaptic-Flow's threshold rule (issue 15).

The hand-computed case (the same ten scores every round, with ties):

    a = [5, 3, 3, 1, 0]      b = [3, 2, 2, 4, 3]      N = 10

exact (keep floor(d*N + 1/2), ties by a seeded draw; select_top's default stream is seeded 0):
    d=0.75: keep 8 = all but a3, a4 (the 1 and 0; no tie at the threshold 2: both 2s fit)
    d=0.5:  keep 5 = a0, b3, then 3 of the four 3s (a1, a2, b0, b4), drawn
    d=0.25: keep 3 = a0, b3, then 1 of the three 3s still alive, drawn
threshold (prune int((1-d)*N); t = that-th smallest, pruned ranked lowest; prune every score <= t):
    d=0.75: prune 2, t = 1 (0,1,2,...): a3, a4 go, 8 kept (as exact)
    d=0.5:  prune 5; a3, a4 are the 2 lowest, then the 3rd smallest alive (2,2,3,3,...) is t = 3:
            every 3 goes with the 2s: a0 and b3 are kept (2, where exact keeps 5)
    d=0.25: prune int(7.5) = 7 <= the 8 already pruned: nothing alive is <= t, all alive kept
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ticketlab.errors import ConfigError
from ticketlab.selection import select_top

A, B = [5.0, 3.0, 3.0, 1.0, 0.0], [3.0, 2.0, 2.0, 4.0, 3.0]


def _rounds(rule: str, densities: list[float], scope: str = "global") -> list[tuple[list[bool], list[bool]]]:
    scores = {"a": torch.tensor(A), "b": torch.tensor(B)}
    masks, out = None, []
    for d in densities:
        masks = select_top(scores, d, masks=masks, count_rule=rule, scope=scope)
        out.append((masks["a"].tolist(), masks["b"].tolist()))
    return out


T, F = True, False


def _drawn(tied: list[tuple[str, int]], missing: int) -> set[tuple[str, int]]:
    """The tied positions (in flat order) that the default stream (a generator seeded 0) keeps."""
    return {tied[i] for i in torch.randperm(len(tied), generator=torch.Generator().manual_seed(0))[:missing].tolist()}


def _kept(masks: tuple[list[bool], list[bool]]) -> set[tuple[str, int]]:
    return {(n, i) for n, m in zip("ab", masks) for i, v in enumerate(m) if v}


def test_hand_computed_rounds_exact_and_threshold():
    r75, r50, r25 = _rounds("exact", [0.75, 0.5, 0.25])
    assert r75 == ([T, T, T, F, F], [T, T, T, T, T])
    threes = [("a", 1), ("a", 2), ("b", 0), ("b", 4)]
    assert _kept(r50) == {("a", 0), ("b", 3)} | _drawn(threes, 3)
    alive_threes = sorted(_drawn(threes, 3), key=threes.index)
    assert _kept(r25) == {("a", 0), ("b", 3)} | _drawn(alive_threes, 1)
    assert _rounds("threshold", [0.75, 0.5, 0.25]) == [
        ([T, T, T, F, F], [T, T, T, T, T]),
        ([T, F, F, F, F], [F, F, F, T, F]),  # every score tied at the threshold 3 is pruned
        ([T, F, F, F, F], [F, F, F, T, F]),  # fewer to prune than already pruned: all alive kept
    ]


def test_threshold_keeps_one_more_without_ties():
    scores = {"w": torch.arange(10.0)}  # distinct scores 0..9
    # d = 0.33: exact keeps floor(3.3 + 0.5) = 3; threshold prunes int(6.7) = 6 and keeps 4
    assert select_top(scores, 0.33)["w"].tolist() == [F] * 7 + [T] * 3
    assert select_top(scores, 0.33, count_rule="threshold")["w"].tolist() == [F] * 6 + [T] * 4
    # d = 0.35: both keep 4 (exact rounds 3.5 up; threshold prunes int(6.5) = 6)
    assert int(select_top(scores, 0.35)["w"].sum()) == int(select_top(scores, 0.35, count_rule="threshold")["w"].sum()) == 4


def test_threshold_truncates_the_float_product_as_the_reference():
    # (1 - 0.8) * 5 = 0.9999999999999998 in floats: int() gives 0, nothing is pruned (k < 1 keeps all)
    assert (1 - 0.8) * 5 < 1
    m = _rounds("threshold", [0.8], scope="layer")[0]
    assert m == ([T] * 5, [T] * 5)
    # layer scope at d = 0.6: prune int(2.0) = 2 per layer; a: t = 1, b: t = 2 (both 2s go)
    assert _rounds("threshold", [0.6], scope="layer")[0] == ([T, T, T, F, F], [T, F, F, T, T])


def test_threshold_pruned_rank_lowest_and_nonfinite_alive_scores():
    scores = {"w": torch.tensor([math.nan, -math.inf, 1.0, 2.0, 3.0, 0.5])}
    masks = {"w": torch.tensor([T, T, T, T, T, F])}
    # prune int(0.5 * 6) = 3: the pruned 0.5 ranks lowest, then NaN and -inf (as -inf): t = -inf
    m = select_top(scores, 0.5, masks=masks, count_rule="threshold")
    assert m["w"].tolist() == [F, F, T, T, T, F]
    # prune int(0.8 * 6) = 4: t = 1.0, which goes too
    m = select_top(scores, 0.2, masks=masks, count_rule="threshold")
    assert m["w"].tolist() == [F, F, F, T, T, F]


def _reference_threshold(flat: np.ndarray, alive: np.ndarray, d: float) -> np.ndarray:
    """The rule the obvious way: pruned scores replaced by a value below all, sorted, compared."""
    x = np.where(np.isnan(flat), -np.inf, flat)
    prune = int((1.0 - d) * x.size)
    if prune < 1:
        return alive.copy()
    pruned = int((~alive).sum())
    if prune <= pruned:
        return alive.copy()
    t = np.sort(x[alive])[prune - pruned - 1]
    return alive & (x > t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_threshold_selection_equals_the_reference(dtype):
    # above the histogram select's size threshold, with ties, zeros of both signs and non-finite scores
    g = torch.Generator().manual_seed(5)
    n = 150_000
    x = torch.randint(0, 50, (n,), generator=g).to(dtype) * torch.rand(n, generator=g, dtype=dtype)
    x[torch.rand(n, generator=g) < 0.1] = 0.0
    x[torch.rand(n, generator=g) < 0.05] = -0.0
    x[torch.rand(n, generator=g) < 0.01] = math.nan
    x[torch.rand(n, generator=g) < 0.01] = -math.inf
    scores = {"a": x[:100_000].view(250, 400), "b": x[100_000:]}
    flat = x.double().numpy()
    for alive_frac in (0.7, 0.1):  # 0.1: the compact path of late rounds
        masks = {k: torch.rand(v.shape, generator=g) < alive_frac for k, v in scores.items()}
        alive = np.concatenate([m.flatten().numpy() for m in masks.values()])
        for d in (0.69, 0.5, 0.1, 0.05, 0.003):
            got = select_top(scores, d, masks=masks, count_rule="threshold")
            assert np.array_equal(np.concatenate([got[k].flatten().numpy() for k in scores]),
                                  _reference_threshold(flat, alive, d)), (alive_frac, d)
            layer = select_top(scores, d, masks=masks, count_rule="threshold", scope="layer")
            for k, sl in (("a", slice(0, 100_000)), ("b", slice(100_000, None))):
                assert np.array_equal(layer[k].flatten().numpy(), _reference_threshold(flat[sl], alive[sl], d)), (k, d)


def test_bad_count_rule():
    with pytest.raises(ConfigError, match="count rule"):
        select_top({"a": torch.ones(3)}, 0.5, count_rule="round")


def test_mine_records_count_rule_and_checkpoints_name_it(tmp_path):
    from ticketlab.checkpoint import read_checkpoint
    from ticketlab.mining import mine

    common = dict(model="lenet_300_100", dataset="digits", density=0.02, rounds=4, device="cpu", omit_weights=True)
    exact = mine("magnitude_init", checkpoint=tmp_path / "e.ckpt", **common)
    thresh = mine("magnitude_init", count_rule="threshold", checkpoint=tmp_path / "t.ckpt", **common)
    assert exact.provenance["count_rule"] == "exact" and thresh.provenance["count_rule"] == "threshold"
    assert exact.kept == round(0.02 * exact.total)
    rows = [r for r in thresh.history if r.get("stage") == "round"]
    for r in rows:  # each round keeps N - int((1 - d) N) of the N weights (distinct |w|, no ties)
        assert r["kept"] == exact.total - int((1 - r["target_density"]) * exact.total)
    # the rule is a field of the spec, so of every checkpoint's fingerprint: the other rule is refused, named
    assert read_checkpoint(tmp_path / "e.ckpt")["fingerprint"]["prune.count_rule"] == "exact"
    assert read_checkpoint(tmp_path / "t.ckpt")["fingerprint"]["plan.count_rule"] == "threshold"
    with pytest.raises(ConfigError, match='prune.count_rule is "exact" there, "threshold" now'):
        mine("magnitude_init", count_rule="threshold", checkpoint=tmp_path / "e.ckpt", resume=True, **common)
    with pytest.raises(ConfigError, match="count rule"):
        mine("magnitude_init", count_rule="ceil", **common)


def test_cli_count_rule(tmp_path):
    from click.testing import CliRunner

    from ticketlab.cli.main import cli
    from ticketlab.fileformat import load

    out = tmp_path / "t.h5"
    result = CliRunner().invoke(cli, ["mine", "--method", "magnitude_init", "--density", "0.33", "--count-rule",
                                      "threshold", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    ticket = load(out)
    assert ticket.provenance["count_rule"] == "threshold"
    assert ticket.kept == ticket.total - int((1 - 0.33) * ticket.total)
    bad = CliRunner().invoke(cli, ["mine", "--method", "random", "--count-rule", "ceil", "-o", str(tmp_path / "b.h5")])
    assert bad.exit_code != 0 and "ceil" in bad.output


def test_study_spec_passes_count_rule():
    from ticketlab.study.jobs import resolve_jobs
    from ticketlab.study.spec import StudySpec

    base = {"name": "s", "model": "lenet_300_100", "dataset": "digits", "seeds": [0], "densities": [0.1],
            "methods": ["synflow"]}
    spec = StudySpec.from_dict({**base, "method": {"synflow": {"count_rule": "threshold", "rounds": 2}}})
    (job,) = resolve_jobs(spec)
    assert job.mine_kwargs(None)["count_rule"] == "threshold"
    with pytest.raises(ConfigError, match="count_rule"):
        StudySpec.from_dict({**base, "method": {"synflow": {"count_rule": "ceil"}}})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["ties", "signed_zeros"])
def test_threshold_rule_counts_its_ties_exactly_above_the_bucket_size(dtype, kind):
    # the tied count comes from the k-th value's histogram bucket; -0.0 and +0.0 are equal but sit
    # in two buckets, so a zero threshold is counted over all scores: both must equal a plain count
    from ticketlab.selection import TieRecord

    g = torch.Generator().manual_seed(1)
    x = torch.randint(-3, 4, (200_000,), generator=g).to(dtype)
    if kind == "signed_zeros":
        x[x > 0] = 0.0
        x[torch.rand(200_000, generator=g) < 0.5] = -0.0
    alive = torch.rand(200_000, generator=g) < 0.7
    for d in (0.9, 0.5, 0.3, 0.05):
        ties: list = []
        select_top({"a": x}, d, masks={"a": alive}, count_rule="threshold", ties=ties)
        r = x.numel() - int((1 - d) * x.numel()) + 1  # the threshold is the r-th largest, pruned ones lowest
        if r > int(alive.sum()):  # it falls among the pruned: every alive weight is kept, no tie
            assert ties == [], (d, ties)
            continue
        t = torch.sort(x[alive], descending=True).values[r - 1]
        assert ties == [TieRecord(None, int((x[alive] == t).sum()), 0)], (d, ties)
