"""One vocabulary (issue 24, docs/glossary.md): the new names work, and each deprecated alias
still works and warns once."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import ticketlab
from ticketlab import deprecation
from ticketlab.errors import ConfigError


@pytest.fixture(autouse=True)
def _fresh_warnings():
    deprecation.reset_warnings()  # each test sees its alias's first use
    yield
    deprecation.reset_warnings()


def _warns_once(call, match):
    """``call()`` twice: the first warns (a DeprecationWarning matching ``match``), the second is
    silent; returns both results."""
    with pytest.warns(DeprecationWarning, match=match) as seen:
        first = call()
    assert len([w for w in seen if issubclass(w.category, DeprecationWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        second = call()
    return first, second


@pytest.fixture(scope="module")
def random_ticket():
    return ticketlab.mine("random", density=0.5, seed=0, device="cpu")


# ----------------------------------------------------------------------------- init_weights / init_state
def test_rebuilt_init_weights_and_its_old_name_theta0(random_ticket):
    from ticketlab.retraining import rebuild

    rb = rebuild(random_ticket, device="cpu")
    assert set(rb.init_weights) == set(random_ticket.masks)
    first, second = _warns_once(lambda: rb.theta0, r"Rebuilt.theta0 is deprecated: use Rebuilt.init_weights")
    assert first is rb.init_weights and second is rb.init_weights


def test_imp_keeps_its_whole_initial_state_as_init_state_and_resumes_an_old_checkpoint_state():
    from ticketlab.miners import get_miner

    imp = get_miner("imp")()
    state = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}  # the whole state, biases too
    imp.resume(None, {"theta0": state, "rewind": None})  # a checkpoint written before the rename
    assert imp.init_state is state and imp.state_dict() == {"init_state": state, "rewind": None}
    assert imp.reset_state(None, 1) is state  # reset init: back to the whole initial state


# ----------------------------------------------------------------------------- fit / evaluate_model
def test_the_model_loops_are_fit_and_evaluate_model_and_the_old_names_still_work():
    import ticketlab.training as training

    first, second = _warns_once(lambda: training.train, r"ticketlab.training.train is deprecated: use "
                                                        r"ticketlab.training.fit")
    assert first is training.fit and second is training.fit
    first, _ = _warns_once(lambda: training.evaluate, r"ticketlab.training.evaluate is deprecated: use "
                                                      r"ticketlab.training.evaluate_model")
    assert first is training.evaluate_model
    with pytest.warns(DeprecationWarning):
        deprecation.reset_warnings()
        from ticketlab.training import train as old_train  # the form a script uses
    assert old_train is training.fit
    # the ticket-level API keeps its names: a ticket in, a ticket (or a result) out
    assert ticketlab.train.__module__ == "ticketlab.retraining"
    assert ticketlab.evaluate.__module__ == "ticketlab.evaluation"
    with pytest.raises(AttributeError):
        training.no_such_loop  # noqa: B018


# ----------------------------------------------------------------------------- weights (the action), kept (the count)
def test_train_takes_weights_and_its_old_name_kept_warns_once(random_ticket):
    new = ticketlab.train(random_ticket, weights="signed_constant", train_epochs=1, device="cpu")
    record = new.provenance["trained_from"]
    assert record["weights"] == "signed_constant" and "kept" not in record
    with pytest.warns(DeprecationWarning, match=r"ticketlab.train\(kept=...\) is deprecated: use "
                                                r"ticketlab.train\(weights=...\)"):
        old = ticketlab.train(random_ticket, kept="signed_constant", train_epochs=1, device="cpu")
    for n in new.masks:
        assert np.array_equal(old.weights["final"][n], new.weights["final"][n])
    with pytest.raises(ConfigError, match="takes weights, or its old name kept, not both"):
        ticketlab.train(random_ticket, weights="reinit", kept="signed_constant", device="cpu")


def test_evaluate_takes_weights_and_its_old_name_kept(random_ticket):
    new = ticketlab.evaluate(random_ticket, weights="signed_std", device="cpu")
    assert new["weights"] == "signed_std" and "kept" not in new
    first, second = _warns_once(lambda: ticketlab.evaluate(random_ticket, kept="signed_std", device="cpu"),
                                r"ticketlab.evaluate\(kept=...\) is deprecated")
    assert first["accuracy"] == second["accuracy"] == new["accuracy"]
    assert ticketlab.evaluate(random_ticket, device="cpu")["weights"] == "stored"


def test_sanity_check_takes_weights_and_its_result_says_weights(random_ticket):
    from ticketlab.sanity import sanity_check

    with pytest.warns(DeprecationWarning, match=r"sanity_check\(kept=...\)"):
        r = sanity_check(random_ticket, ["shuffle_layerwise"], seeds=1, kept="signed_constant", train_epochs=1,
                         device="cpu")
    assert r.weights == "signed_constant" and r.to_dict()["weights"] == "signed_constant"
    assert "kept" not in r.to_dict()
    first, _ = _warns_once(lambda: r.kept, r"SanityResult.kept is deprecated: use SanityResult.weights")
    assert first == "signed_constant"


def test_the_supermask_option_is_weights_as_the_learned_miners_and_kept_still_works():
    from ticketlab.miners import get_miner

    cls = get_miner("supermask")
    assert cls(weights="signed_std").config.weights == "signed_std"
    first, second = _warns_once(lambda: cls(kept="signed_std"), r"supermask option 'kept' is deprecated: use 'weights'")
    assert first.config == second.config == cls(weights="signed_std").config
    with pytest.raises(ConfigError, match="kept and weights are the same option"):
        cls(kept="signed_std", weights="init")
    # one name for the action across methods: every option that sets the start weights is `weights`
    for method in ("supermask", "gem_miner", "edge_popup", "supermask_learned"):
        names = {f.name for f in dataclasses.fields(get_miner(method).Config)}
        assert "weights" in names and "kept" not in names, method
    with pytest.raises(ConfigError, match="unknown weights action 'bogus'"):
        cls(weights="bogus")


# ----------------------------------------------------------------------------- old tickets and study files
OLD = Path(__file__).parent / "data" / "supermask_kept_before_issue24.h5"
#: What the code before issue 24 (commit ae8ac61) wrote and named (tests/data/, made by
#: ``mine("supermask", density=0.2, seed=3, train_epochs=1, keep_weights=False, keep_scores=False,
#: miner_config={"kept": "signed_std"})``, and the study tables below).
OLD_SPEC_HASH = "ae095319b54942fb"
OLD_JOBS = ["supermask-lenet_300_100-digits-s0-d0.1-93a9f4f952", "random-lenet_300_100-digits-s0-d0.1-e93bfa4003"]
OLD_JOBS_DEFAULT = ["supermask-lenet_300_100-digits-s0-d0.1-2edff1e669"]
OLD_HASHES = {"signed_std": "47ab0f5ed3fc42e4", "init": "2c00df971e41e510"}


def test_a_ticket_written_with_kept_loads_and_rebuilds_as_the_same_run_with_weights():
    from ticketlab.retraining import rebuild
    from ticketlab.spec import MineSpec

    old = ticketlab.load(OLD)
    assert old.provenance["method_config"]["kept"] == old.provenance["supermask"]["kept"] == "signed_std"
    assert "init" not in old.weights  # rebuild re-creates the start from the provenance: its "kept" action
    spec = MineSpec.from_provenance(old.provenance)
    assert spec.miner["kept"] == "signed_std" and spec.hashname() == OLD_SPEC_HASH == old.provenance["spec_hash"]
    spec.validate()
    rb = rebuild(old, device="cpu")
    new = ticketlab.mine("supermask", density=0.2, seed=3, device="cpu", train_epochs=1,
                         miner_config={"weights": "signed_std"})
    assert new.provenance["method_config"]["weights"] == "signed_std" and "kept" not in new.provenance["method_config"]
    assert new.provenance["supermask"]["weights"] == "signed_std"
    for n, m in old.masks.items():
        assert np.array_equal(m, new.masks[n]), n
        assert np.array_equal(rb.init_weights[n].numpy(), new.weights["init"][n]), n  # signed_std, masked
    trained = ticketlab.train(old, train_epochs=1, device="cpu")  # the old ticket trains as before
    assert trained.provenance["trained_from"]["init"] == "recreated"


def test_old_study_files_keep_their_job_names_and_spec_hashes():
    from ticketlab.spec import MineSpec
    from ticketlab.study.jobs import resolve_jobs
    from ticketlab.study.spec import StudySpec

    base = {"name": "s", "model": "lenet_300_100", "dataset": "digits", "seeds": [0], "densities": [0.1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        jobs = resolve_jobs(StudySpec.from_dict({**base, "methods": ["supermask", "random"], "method": {
            "supermask": {"kept": "signed_std", "criterion": "large_final"}}}))
        default = resolve_jobs(StudySpec.from_dict({**base, "methods": ["supermask"],
                                                    "method": {"supermask": {"kept": "init"}}}))
        assert [j.id for j in jobs] == OLD_JOBS and [j.id for j in default] == OLD_JOBS_DEFAULT
        for value, h in OLD_HASHES.items():
            assert MineSpec.from_flat("supermask", miner_config={"kept": value}).hashname() == h
    assert MineSpec.from_flat("supermask", miner_config={"weights": "init"}).hashname() == OLD_HASHES["init"]
    # the new name is a new hash: the same run, written the new way, is a new job (docs/studies.md)
    renamed = MineSpec.from_flat("supermask", miner_config={"weights": "signed_std"})
    assert renamed.hashname() != OLD_HASHES["signed_std"]


def test_a_study_with_the_old_option_name_runs_verifies_and_reuses_its_ticket(tmp_path):
    from ticketlab.study import Study, StudySpec

    spec = StudySpec.from_dict({"name": "old", "model": "lenet_300_100", "dataset": "digits", "seeds": [0],
                                "densities": [0.3], "methods": ["supermask"], "device": "cpu",
                                "method": {"supermask": {"kept": "signed_std", "train_epochs": 1}}})
    manifest = Study(spec, tmp_path / "s").run()
    assert [j["status"] for j in manifest["jobs"]] == ["done"], manifest["jobs"]
    t = ticketlab.load(tmp_path / "s" / manifest["jobs"][0]["output"])
    assert t.provenance["method_config"]["weights"] == "signed_std"
    again = Study(spec, tmp_path / "s").run()  # verified against the job that says kept, then reused
    assert [j["status"] for j in again["jobs"]] == ["skipped"]


# ----------------------------------------------------------------------------- the command line
def test_cli_weights_options_and_their_hidden_old_name(tmp_path, random_ticket):
    from click.testing import CliRunner

    from ticketlab.cli.main import cli

    src = tmp_path / "a.h5"
    ticketlab.save(random_ticket, src)
    runner = CliRunner()
    res = runner.invoke(cli, ["evaluate", str(src), "--kept", "signed_std", "--json"])
    assert res.exit_code == 0, res.output
    assert "warning: --kept is deprecated: use --weights" in res.stderr
    assert json.loads(res.stdout)["weights"] == "signed_std"
    res = runner.invoke(cli, ["evaluate", str(src), "--kept", "init", "--weights", "signed_std"])
    assert res.exit_code == 2 and "--kept is the old name of --weights" in res.output
    res = runner.invoke(cli, ["train", str(src), "-o", str(tmp_path / "b.h5"), "--kept", "signed_std",
                              "--train-epochs", "1", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["weights"] == "signed_std" and "deprecated" in res.stderr
    for command in ("train", "evaluate", "sanity"):
        shown = runner.invoke(cli, [command, "--help"]).output
        assert "--weights" in shown and "--kept" not in shown, command
    res = runner.invoke(cli, ["mine", "--method", "supermask", "--kept", "signed_std", "--density", "0.3",
                              "--train-epochs", "1", "--device", "cpu", "-o", str(tmp_path / "m.h5")])
    assert res.exit_code == 0, res.output
    assert "warning: --kept is deprecated: use --weights" in res.stderr
    assert ticketlab.load(tmp_path / "m.h5").provenance["method_config"]["weights"] == "signed_std"
    res = runner.invoke(cli, ["mine", "--method", "gem_miner", "--kept", "signed_std", "-o", str(tmp_path / "g.h5")])
    assert res.exit_code == 2 and "belongs to supermask" in res.output
