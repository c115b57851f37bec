"""A study ticket is its job's when the spec it records is the job's spec (issue 24):
``valid_ticket`` / ``check_provenance`` compare ``MineSpec``s and name the first differing field;
tickets that record no spec are checked by their recorded keys, as before; the count of the masks
stays the last word."""

from __future__ import annotations

import copy

import pytest

from ticketlab.errors import TicketlabWarning
from ticketlab.fileformat import load, save
from ticketlab.mining import mine
from ticketlab.spec import MineSpec
from ticketlab.study.jobs import Job, config_hash
from ticketlab.study.run import valid_ticket
from ticketlab.study.safepath import StudyFolderError
from ticketlab.study.verify import check_provenance, job_record, job_spec


def _entry(config):
    h = config_hash(config)
    return {"id": f"{config['method']}-x-{h}", "hash": h, "config": config}


def _config(method="random", **options):
    return {"method": method, "model": "lenet_300_100", "dataset": "digits", "seed": 0, "density": 0.5,
            "options": options, "train": {}, "train_ticket": False, "device": "cpu"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A job's ticket, as ``study run`` makes it (``mine(**job.mine_kwargs())`` plus the job record),
    saved in a study folder and read back: the job's entry, the ticket's path, provenance and layers."""
    entry = _entry(_config(distribution="erk", rounds=2))
    job = Job(entry["id"], entry["hash"], "random", "lenet_300_100", "digits", 0, 0.5, entry["config"])
    t = mine(job.method, **job.mine_kwargs(None))
    t.provenance.update(job_record(entry))
    path = tmp_path_factory.mktemp("study") / "tickets" / f"{job.id}.h5"
    path.parent.mkdir()
    save(t, path)
    back = load(path)
    layers = {n: (int(m.sum()), int(m.size)) for n, m in back.masks.items()}
    return entry, job, path, back.provenance, layers


def test_the_jobs_own_ticket_is_accepted(made):
    entry, job, path, prov, layers = made
    assert job_spec(entry["config"]).to_dict() == MineSpec.from_provenance(prov).to_dict()
    assert check_provenance(prov, layers, entry, "t.h5")["density"] == 0.5
    assert valid_ticket(path, job)


def test_valid_ticket_refuses_a_tampered_spec_with_one_warning_naming_the_field(made, tmp_path):
    _, job, path, _, _ = made
    t = load(path)
    t.provenance["spec"]["seed"] = 7
    forged = tmp_path / "study" / "tickets" / path.name
    forged.parent.mkdir(parents=True)
    save(t, forged)
    with pytest.warns(TicketlabWarning) as caught:
        assert not valid_ticket(forged, job)
    assert len(caught) == 1
    assert str(caught[0].message) == (f"'{forged}' was mined with seed '7', the job asks for '0': not this job's "
                                      "ticket; re-running its job")


@pytest.mark.parametrize("tamper, named", [
    (lambda s: s["prune"].update(density=0.4), "was mined with prune.density '0.4', the job asks for '0.5'"),
    (lambda s: s.update(seed=3), "was mined with seed '3', the job asks for '0'"),
    (lambda s: s["miner"].update(distribution="uniform"),
     "was mined with miner.distribution 'uniform', the job asks for 'erk'"),
    (lambda s: s["prune"].update(rounds=None), "was mined with prune.rounds the default, the job asks for '2'"),
    (lambda s: s["train"].update(options={"lr": 0.5}),
     "was mined with train.options \"{'lr': 0.5}\", the job asks for '{}'"),
    (lambda s: s.update(method="magnitude_init"), "was mined with method 'magnitude_init', the job asks for 'random'"),
])
def test_a_ticket_whose_spec_differs_in_one_field_is_refused_naming_it(made, tamper, named):
    entry, _, _, prov, layers = made
    forged = copy.deepcopy(prov)
    tamper(forged["spec"])
    with pytest.raises(StudyFolderError) as info:
        check_provenance(forged, layers, entry, "t.h5")
    assert str(info.value) == f"'t.h5' {named}: not this job's ticket"


def test_a_spec_forged_to_agree_is_still_counted(made):
    """The masks' count stays the last word: a spec rewritten to the job's density does not pass."""
    entry, _, _, prov, layers = made
    config = {**entry["config"], "density": 0.25}
    other = _entry(config)
    forged = copy.deepcopy(prov)
    forged.update(job_record(other))
    forged["spec"]["prune"]["density"] = 0.25
    with pytest.raises(StudyFolderError, match="keeps 25100 weights where density 0.25 asks for 12550"):
        check_provenance(forged, layers, other, "t.h5")


def test_a_method_variant_names_its_miner(made):
    """A study's method variant (``[method.random_erk] miner = "random"``): the job's method is the
    registered miner its ``miner`` option names, and ``miner`` is no option of it."""
    entry, _, _, prov, layers = made
    variant = _entry({**entry["config"], "method": "random_erk",
                      "options": {"miner": "random", **entry["config"]["options"]}})
    assert job_spec(variant["config"]) == job_spec(entry["config"])
    ticket = {**prov, **job_record(variant)}
    assert check_provenance(ticket, layers, variant, "t.h5")["method"] == "random_erk"
    other = _entry({**variant["config"], "options": {**variant["config"]["options"], "miner": "magnitude_init"}})
    with pytest.raises(StudyFolderError, match="was mined with method 'random', the job asks for 'magnitude_init'"):
        check_provenance({**prov, **job_record(other)}, layers, other, "t.h5")


def test_a_ticket_without_a_spec_is_checked_by_its_recorded_keys(made):
    """Tickets of a ticketlab that recorded no spec: method, model, data set, seed and the options
    the study gives, against the keys the miner recorded (as before specs)."""
    entry, _, _, prov, layers = made
    old = {k: v for k, v in prov.items() if k not in ("spec", "spec_hash")}
    assert check_provenance(old, layers, entry, "t.h5")["seed"] == 0
    with pytest.raises(StudyFolderError, match="was mined with seed '1', the job asks for '0'"):
        check_provenance({**old, "seed": 1}, layers, entry, "t.h5")
    with pytest.raises(StudyFolderError, match="was mined with option distribution 'global', the job asks for 'erk'"):
        check_provenance({**old, "method_config": {"distribution": "global"}}, layers, entry, "t.h5")


def test_an_unreadable_spec_or_job_is_one_line(made):
    entry, _, _, prov, layers = made
    with pytest.raises(StudyFolderError, match=r"'t.h5' records no readable mining spec \(.*\): not this job's"):
        check_provenance({**prov, "spec": {"method": "random", "prune": {"denisty": 0.5}}}, layers, entry, "t.h5")
    broken = _entry({**entry["config"], "density": "half"})
    with pytest.raises(StudyFolderError, match=r"the study manifest's job .* is no mining run"):
        check_provenance({**prov, **job_record(broken)}, layers, broken, "t.h5")
