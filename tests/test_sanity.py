"""``ticketlab sanity`` / ``ticketlab.sanity_check`` (issue 13): the verdict rule on hand-computed
numbers, every run equal to the matching ``ticketlab.train`` run, strict JSON, the CLI."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError, UnknownNameError
from ticketlab.fileformat import save
from ticketlab.sanity import MIN_EFFECT, NO_VERDICT, VERDICTS, SanityResult, _one, compare_runs, sanity_check
from ticketlab.transforms import get_transform

torch.set_num_threads(1)
EPOCHS = 1


@pytest.fixture(scope="module")
def snip():
    return ticketlab.mine("snip", density=0.1, seed=0, device="cpu")


# ------------------------------------------------------------------ the rule, by hand
def test_rule_hurts_with_two_standard_errors():
    # means 0.81 vs 0.89; sample stds 0.01414 each; SE = sqrt(2e-4/2 + 2e-4/2) = 0.01414; threshold 0.02828
    r = compare_runs("shuffle_layerwise", [0.80, 0.82], [0.90, 0.88])
    assert math.isclose(r.difference, -0.08) and math.isclose(r.threshold, 2 * math.sqrt(2e-4))
    assert math.isclose(r.std, math.sqrt(2e-4)) and r.effect == "hurts"
    assert r.verdict == "the method's structure matters"


def test_rule_spread_can_hide_a_difference():
    # difference -0.05; sample stds sqrt(0.02) each: SE = sqrt(0.02/2 + 0.02/2) = 0.1414, threshold 0.2828
    r = compare_runs("shuffle_layerwise", [0.70, 0.90], [0.75, 0.95])
    assert math.isclose(r.threshold, 2 * math.sqrt(0.02)) and math.isclose(r.difference, -0.05)
    assert r.effect == "none"
    assert r.verdict == "only the layer-wise densities matter"


def test_rule_minimum_effect_and_helps():
    assert compare_runs("invert", [0.896, 0.896], [0.90, 0.90]).effect == "none"  # 0.4 pp < 0.5 pp
    low = compare_runs("invert", [0.894, 0.894], [0.90, 0.90])
    assert low.effect == "hurts" and low.threshold == MIN_EFFECT and low.std == 0
    up = compare_runs("invert", [0.95, 0.95], [0.90, 0.90])
    assert up.effect == "helps" and up.verdict == VERDICTS["invert"][1]
    assert compare_runs("reinit", [0.5, 0.5], [0.9, 0.9]).verdict == "the ticket's init weights matter"


def test_one_seed_gives_no_verdict():
    # a 1.4-point difference from one seed: the effect is what the numbers show, the verdict is withheld
    for accs, orig in (([0.886], [0.90]), ([0.886, 0.88], [0.90]), ([0.95], [0.90])):
        r = compare_runs("shuffle_layerwise", accs, orig)
        assert r.verdict == NO_VERDICT and r.verdict not in VERDICTS["shuffle_layerwise"]
    assert compare_runs("shuffle_layerwise", [0.886], [0.90]).effect == "hurts"
    low = compare_runs("invert", [0.894], [0.90])
    assert low.threshold == MIN_EFFECT and low.std is None
    with pytest.raises(ConfigError):
        compare_runs("invert", [], [0.9])


def test_result_is_strict_json():
    r = SanityResult({"method": "snip", "density": 0.1}, (0,), "init", (0.9,),
                     [compare_runs("invert", [float("nan")], [0.9])])
    text = json.dumps(r.to_dict(), allow_nan=False)  # NaN and a single run's spread become null
    row = json.loads(text)["rows"][0]
    assert row["accuracies"] == [None] and row["std"] is None and row["mean"] is None


# ------------------------------------------------------------------ the runs
def test_every_run_is_the_matching_train_run(snip):
    r = sanity_check(snip, ["shuffle_layerwise", "invert"], seeds=[0, 1], train_epochs=EPOCHS, device="cpu")
    assert r.seeds == (0, 1) and [row.check for row in r.rows] == ["shuffle_layerwise", "invert"]
    for i, s in enumerate((0, 1)):
        orig = ticketlab.train(snip, seed=s, train_epochs=EPOCHS, device="cpu")
        assert r.original[i] == orig.provenance["test_accuracy"]
        shuffled = get_transform("shuffle_layerwise")(snip, seed=s)
        run = ticketlab.train(shuffled, seed=s, train_epochs=EPOCHS, device="cpu")
        assert r.rows[0].accuracies[i] == run.provenance["test_accuracy"]
    assert r.rows[0].original_mean == sum(r.original) / 2
    assert r.ticket["method"] == "snip" and r.train_config["epochs"] == EPOCHS
    assert len(set(r.original)) == 2  # the seeds really differ


def test_bad_checks_fail_before_training(snip):
    with pytest.raises(UnknownNameError, match="shuffle"):
        sanity_check(snip, ["shuffle"], seeds=1)
    with pytest.raises(ConfigError, match="twice"):
        sanity_check(snip, ["invert", "invert"], seeds=1)
    with pytest.raises(ConfigError, match="at least 1 seed"):
        sanity_check(snip, ["invert"], seeds=0)
    with pytest.raises(ConfigError, match="unknown weights action"):
        sanity_check(snip, ["invert"], seeds=1, weights="nope")


def test_worker_sets_its_threads(tmp_path, snip):
    save(snip, tmp_path / "a.h5")
    before = torch.get_num_threads()
    try:
        r = _one(str(tmp_path / "a.h5"), 1, {"checks": ["reinit"], "seeds": 1, "train_epochs": EPOCHS,
                                            "device": "cpu"})
        assert torch.get_num_threads() == 1 and r.ticket["file"] == "a.h5"
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ the CLI
def test_cli_table_and_json(tmp_path, snip):
    save(snip, tmp_path / "a.h5")
    runner = CliRunner()
    res = runner.invoke(cli, ["sanity", str(tmp_path / "a.h5"), "--checks", "shuffle_layerwise,reinit",
                              "--seeds", "1", "--train-epochs", str(EPOCHS), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "shuffle_layerwise" in res.output and "reinit" in res.output and " pp " in res.output
    assert "no verdict" in res.output and "one seed: no verdict is possible" in res.output  # --seeds 1
    res = runner.invoke(cli, ["sanity", str(tmp_path / "a.h5"), "--checks", "invert", "--seeds", "2",
                              "--train-epochs", str(EPOCHS), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["seeds"] == [0, 1] and data["rows"][0]["check"] == "invert" and len(data["original"]) == 2
    assert data["rows"][0]["effect"] in ("hurts", "none", "helps")


def test_cli_two_files_in_parallel(tmp_path, snip):
    save(snip, tmp_path / "a.h5")
    save(ticketlab.mine("random", density=0.1, seed=1, device="cpu"), tmp_path / "b.h5")
    res = CliRunner().invoke(cli, ["sanity", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--checks", "reinit",
                                   "--seeds", "1", "--train-epochs", str(EPOCHS), "--jobs", "2", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [d["ticket"]["file"] for d in data] == ["a.h5", "b.h5"]
    assert [d["ticket"]["method"] for d in data] == ["snip", "random"]


def test_cli_one_line_errors(tmp_path):
    t = ticketlab.mine("random", density=0.1, seed=0, device="cpu", omit_scores=True)
    save(t, tmp_path / "noscores.h5")
    res = CliRunner().invoke(cli, ["sanity", str(tmp_path / "noscores.h5"), "--checks", "invert", "--seeds", "1",
                                   "--train-epochs", "1"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "invert needs the ticket's scores" in res.output
    res = CliRunner().invoke(cli, ["sanity", str(tmp_path / "noscores.h5"), "--checks", "bogus"])
    assert res.exit_code == 2 and "bogus" in res.output
