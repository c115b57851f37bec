"""A checkpoint's identity is the run's spec (issue 24): it resumes only the same spec, naming the
first field that differs, whatever the run-time options; ``ticketlab mine`` and ``study run``
share one checkpoint rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab import checkpoint as checkpoint_module
from ticketlab.checkpoint import FORMAT, checkpoint_for, read_checkpoint
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError
from ticketlab.miners.imp import IMPMiner
from ticketlab.mining import mine
from ticketlab.progress import NullProgress
from ticketlab.spec import MineSpec, field_difference

BASE = dict(model="lenet_300_100", dataset="digits", density=0.5, rounds=2, train_epochs=1, seed=0, device="cpu",
            miner_config={"reset": "rewind:5"})


def _same_masks(a, b):
    assert list(a.masks) == list(b.masks)
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-round IMP run and the checkpoint of its last round (left in place)."""
    ckpt = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    return mine("imp", checkpoint=ckpt, **BASE), ckpt


# ------------------------------------------------------------------------- the fingerprint is the spec's
def test_the_fingerprint_is_the_specs_fields_then_the_plan(finished):
    ticket, ckpt = finished
    fp = read_checkpoint(ckpt)["fingerprint"]
    spec = MineSpec.from_provenance(ticket.provenance)
    names = list(fp)
    spec_part = [k for k in names if not k.startswith("plan.") and k != "ticketlab_version"]
    assert names[:len(spec_part)] == spec_part  # the spec's fields first, so a difference names a field
    # the method's options as its config resolved them: every option, the one given among them
    assert {k: fp[k] for k in spec_part if not k.startswith("miner.")} == {
        k: v for k, v in spec.by_field().items() if not k.startswith("miner.")}
    assert fp["miner.reset"] == "rewind:5" and {"miner.rate", "miner.rate_conv"} <= set(fp)
    assert [round(d, 12) for d in fp["plan.schedule"]] == [round(0.5 ** 0.5, 12), 0.5]
    assert fp["plan.scope"] == "global" and fp["plan.count_rule"] == "exact"
    assert not {"device", "data_root", "keep_weights", "checkpoint", "save_rounds", "progress"} & {
        k.split(".")[-1] for k in fp}


@pytest.mark.parametrize("change, named", [
    (dict(seed=1), "seed is 0 there, 1 now"),
    (dict(density=0.4), "prune.density is 0.5 there, 0.4 now"),
    (dict(rounds=3), "prune.rounds is 2 there, 3 now"),
    (dict(scope="layer"), 'prune.scope is null there, "layer" now'),
    (dict(count_rule="truncated"), 'prune.count_rule is "exact" there, "truncated" now'),
    (dict(rate_multipliers={"output": 0.5}), 'prune.rate_multipliers is null there, {"output": 0.5} now'),
    (dict(prune_last_layer=False), "prune.skip_last_layer is false there, true now"),
    (dict(miner_config={"reset": "init"}), 'miner.reset is "rewind:5" there, "init" now'),
    (dict(miner_config={}), 'miner.reset is "rewind:5" there, "init" now'),  # left out: its default, resolved
    (dict(train_epochs=2), "train.epochs is 1 there, 2 now"),
    (dict(train_options={"lr": 0.05}), 'train.options is {} there, {"lr": 0.05} now'),
    (dict(train_ticket=True), "train.train_ticket is false there, true now"),
    (dict(model_kwargs={"zero_bias": True}), 'net.model_options is {} there, {"zero_bias": true} now'),
    (dict(data_corruption="random_labels"), 'net.data_corruption is null there, "random_labels" now'),
])
def test_a_resume_with_one_field_changed_is_refused_naming_it(finished, change, named):
    _, ckpt = finished
    before = ckpt.read_bytes()
    with pytest.raises(ConfigError) as info:  # (the plan differs too where a field changes it: the field comes first)
        mine("imp", checkpoint=ckpt, resume=True, **{**BASE, **change})
    message = str(info.value)
    assert f"different configuration ({named})" in message and "\n" not in message, message
    assert ckpt.read_bytes() == before  # refused before anything is written


def test_the_method_is_a_field_too(finished):
    _, ckpt = finished
    with pytest.raises(ConfigError, match=r'\(method is "imp" there, "magnitude" now\)'):
        mine("magnitude", checkpoint=ckpt, resume=True, **{k: v for k, v in BASE.items() if k != "miner_config"})


def test_an_option_given_at_its_default_is_the_same_spec(tmp_path):
    """As for hashname: imp's reset "init" given or left out is one run, so either resumes the other."""
    ckpt = tmp_path / "d.ckpt"
    plain = {k: v for k, v in BASE.items() if k != "miner_config"}
    first = mine("imp", checkpoint=ckpt, **plain)
    again = mine("imp", checkpoint=ckpt, resume=True, miner_config={"reset": "init"}, **plain)
    assert again.provenance["resumed_after_round"] == 2
    _same_masks(first, again)


def test_run_time_options_do_not_block_a_resume(tmp_path, monkeypatch):
    """Killed in round 2, resumed with other run-time options (weights and scores not kept, round
    files, another data root, a progress sink, device spelled otherwise): the same masks and
    weights, bit for bit, as the run never interrupted."""
    reference = mine("imp", **BASE)
    ckpt = tmp_path / "run.ckpt"
    real = IMPMiner.after_round

    def crash_in_round_2(self, ctx, masks, k):
        if k == 2:
            raise KeyboardInterrupt
        return real(self, ctx, masks, k)

    monkeypatch.setattr(IMPMiner, "after_round", crash_in_round_2)
    with pytest.raises(KeyboardInterrupt):
        mine("imp", checkpoint=ckpt, **BASE)
    monkeypatch.setattr(IMPMiner, "after_round", real)
    assert read_checkpoint(ckpt)["round"] == 1
    (tmp_path / "rounds").mkdir()
    resumed = mine("imp", checkpoint=ckpt, resume=True, omit_weights=True, omit_scores=True,
                   save_rounds=tmp_path / "rounds", data_root=tmp_path / "elsewhere", progress=NullProgress(),
                   **{**BASE, "device": torch.device("cpu")})
    assert resumed.provenance["resumed_after_round"] == 1 and not resumed.weights and not resumed.scores
    _same_masks(resumed, reference)
    assert resumed.provenance["spec_hash"] == reference.provenance["spec_hash"]
    assert sorted(p.name for p in (tmp_path / "rounds").iterdir()) == ["round_02.h5"]  # the rounds it ran
    # and back: the same spec, the run-time options as at first, from round 2's checkpoint
    full = mine("imp", checkpoint=ckpt, resume=True, **BASE)
    _same_masks(full, reference)
    for n in reference.weights["final"]:
        assert np.array_equal(full.weights["final"][n], reference.weights["final"][n]), n


# ------------------------------------------------------------------------- checkpoints of the first format
def _first_format(path):
    """A checkpoint as ticketlab wrote it before the fingerprint was the spec's (version 1)."""
    torch.save({"format": FORMAT, "version": 1, "round": 1, "history": [], "fingerprint": {
        "method": "imp", "method_config": {"reset": "rewind:5"}, "model": "lenet_300_100", "model_config": {},
        "dataset": "digits", "seed": 0, "scope": "global", "schedule": [0.7071, 0.5], "weights": "init",
        "prune_first_layer": True, "prune_last_layer": True, "ticketlab_version": ticketlab.__version__,
        "ties": "seeded"}}, path)
    return path


def test_a_checkpoint_of_the_first_format_is_refused_in_one_line(tmp_path):
    ckpt = _first_format(tmp_path / "old.ckpt")
    with pytest.raises(ConfigError) as info:
        mine("imp", checkpoint=ckpt, resume=True, **BASE)
    message = str(info.value)
    assert "predates" in message and "delete it to start over" in message and "\n" not in message
    assert ckpt.exists()  # never deleted for the user
    out = tmp_path / "t.h5"
    _first_format(tmp_path / "t.h5.ckpt")
    res = CliRunner().invoke(cli, ["mine", "--method", "imp", "--rounds", "2", "--train-epochs", "1",
                                   "-o", str(out), "--resume"])
    assert res.exit_code == 2 and "predates" in res.output and res.output.count("\n") == 1, res.output
    assert not out.exists()


def test_a_damaged_fingerprint_is_a_difference_not_a_crash(tmp_path):
    path = checkpoint_module.write_checkpoint(tmp_path / "c.ckpt", {"fingerprint": ["not", "a", "table"]})
    with pytest.raises(ConfigError, match=r"different configuration \(seed is null there, 0 now\)"):
        read_checkpoint(path, {"seed": 0})
    assert field_difference({"a": {1: 2, "b": 3}}, {"a": {1: 2, "b": 3}}) == ("a", {1: 2, "b": 3}, {1: 2, "b": 3})


# ------------------------------------------------------------------------- one checkpoint rule
def test_the_checkpoint_rule(tmp_path):
    out = tmp_path / "a.h5"
    assert checkpoint_for("random", out) is None  # nothing to keep: a data-free method's one round
    assert checkpoint_for("random", out, resume=True) == tmp_path / "a.h5.ckpt"
    assert checkpoint_for("imp", out) == checkpoint_for("magnitude", str(out)) == tmp_path / "a.h5.ckpt"


def test_mine_and_study_run_follow_the_one_rule(tmp_path, monkeypatch):
    calls = []
    real = checkpoint_module.checkpoint_for

    def spy(method, output, resume=False):
        calls.append((method, str(output), resume))
        return real(method, output, resume)

    monkeypatch.setattr(checkpoint_module, "checkpoint_for", spy)
    res = CliRunner().invoke(cli, ["mine", "--method", "random", "--density", "0.5", "-o", str(tmp_path / "r.h5")])
    assert res.exit_code == 0, res.output
    assert calls == [("random", str(tmp_path / "r.h5"), False)]
    from ticketlab.study import Study
    from ticketlab.study.spec import StudySpec

    spec = StudySpec.from_dict({"name": "rule", "model": "lenet_300_100", "dataset": "digits", "seeds": [0],
                                "densities": [0.5], "methods": ["random"], "device": "cpu"})
    manifest = Study(spec, tmp_path / "s").run()
    job = manifest["jobs"][0]
    assert job["status"] == "done" and calls[1:] == [("random", job["output"], False)]
