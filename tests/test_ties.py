"""Ties at a round's selection threshold inside a real run (issue 21, item 1): drawn from the run's
selection stream, recorded in the history, warned about, reproducible from the seed and across a
resume. A test-only miner scores every weight the same, so every round is decided by the draw."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ticketlab.checkpoint import read_checkpoint
from ticketlab.miners import MINERS, Miner, MinerConfig, register_miner
from ticketlab.mining import mine
from ticketlab.selection import keep_count

NAME = "_test_constant_scores"


@pytest.fixture
def constant_miner():
    @register_miner(NAME)
    class ConstantScores(Miner):
        """Every alive weight scores 1.0 (test only)."""

        @dataclass(frozen=True)
        class Config(MinerConfig):
            pass

        def score(self, ctx, masks):
            return {n: torch.ones_like(p, dtype=torch.float32) for n, p in ctx.params.items()}

    yield ConstantScores
    MINERS.remove(NAME)


def _mine(**kw):
    base = dict(model="lenet_300_100", dataset="digits", density=0.5, device="cpu", omit_weights=True)
    return mine(NAME, **{**base, **kw})


def test_a_tied_round_is_drawn_recorded_and_warned(constant_miner):
    with pytest.warns(UserWarning, match=r"_test_constant_scores: round 1: \d+ of \d+ kept weights \(100.0%\) were "
                                         r"drawn at random among \d+ scores tied"):
        t = _mine(seed=0)
    (row,) = [r for r in t.history if r.get("stage") == "round"]
    assert row["tied"] == t.total and row["tied_kept"] == t.kept == keep_count(0.5, t.total)
    # no layer favoured: with positional ties fc1 (the first 64*300 of 64*300 + 300*100 + 100*10
    # weights) would keep everything it has and fc3 nothing; the draw keeps about half of each
    for name, m in t.masks.items():
        assert 0.45 < m.mean() < 0.55, (name, m.mean())
    # and no row: fc3's ten rows (classes) keep about half of their 100 weights each
    rows = t.masks["fc3.weight"].sum(axis=1)
    assert rows.min() >= 30 and rows.max() <= 70, rows


def test_the_draw_follows_the_seed_and_nothing_else(constant_miner):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b, c = _mine(seed=0), _mine(seed=0), _mine(seed=1)
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert not all(np.array_equal(a.masks[n], c.masks[n]) for n in a.masks)


def test_resume_continues_the_selection_stream(constant_miner, tmp_path, monkeypatch):
    kw = dict(seed=3, density=0.3, rounds=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = _mine(**kw)
        real = constant_miner.after_round

        def crash_in_round_2(self, ctx, masks, k):
            if k == 2:
                raise KeyboardInterrupt
            return real(self, ctx, masks, k)

        monkeypatch.setattr(constant_miner, "after_round", crash_in_round_2)
        ckpt = tmp_path / "run.ckpt"
        with pytest.raises(KeyboardInterrupt):
            _mine(checkpoint=ckpt, **kw)
        assert read_checkpoint(ckpt)["round"] == 1 and "tie_generator" in read_checkpoint(ckpt)
        monkeypatch.setattr(constant_miner, "after_round", real)
        resumed = _mine(checkpoint=ckpt, resume=True, **kw)
    assert resumed.provenance["resumed_after_round"] == 1
    assert all(np.array_equal(resumed.masks[n], reference.masks[n]) for n in reference.masks)
    rounds = [r for r in resumed.history if r.get("stage") == "round"]
    assert [r["tied_kept"] for r in rounds] == [r["kept"] for r in rounds]  # every round drawn


def test_untied_rounds_record_zero_and_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tie warning would fail here
        t = mine("synflow", model="lenet_300_100", dataset="digits", density=0.1, rounds=5, seed=0,
                 device="cpu", omit_weights=True)
    rounds = [r for r in t.history if r.get("stage") == "round"]
    assert len(rounds) == 5 and all(r["tied"] == 0 and r["tied_kept"] == 0 for r in rounds)
