"""``ticketlab study``: the study file's validation, job naming, fairness, idempotence, failures,
executors and a real SIGKILL-and-resume subprocess run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError
from ticketlab.study import Study, StudySpec
from ticketlab.study.jobs import resolve_jobs, shared_schedule
from warm import run as warm_run

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "t", "model": "lenet_300_100", "dataset": "digits", "seeds": [0, 1], "densities": [0.2, 0.05],
        "methods": ["random", "synflow"]}


def _toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = '''name = "t"
model = "lenet_300_100"
dataset = "digits"
seeds = [0, 1]
densities = [0.2, 0.05]
methods = ["random", "synflow", "imp"]
[method.imp]
rounds = 2
reset = "rewind:5"
[method.synflow]
rounds = 3
[train]
epochs = 1
'''


@pytest.mark.parametrize("edit, message", [
    (lambda s: 'colour = "red"\n' + s, "unknown key 'colour'"),
    (lambda s: s.replace('name = "t"\n', ""), "missing key 'name'"),
    (lambda s: s.replace('"random"', '"randum"'), "methods: unknown miner 'randum'"),
    (lambda s: s.replace('"lenet_300_100"', '"lenet_9000"'), "model: unknown model 'lenet_9000'"),
    (lambda s: s.replace('"digits"', '"imagenet"'), "dataset: unknown data set 'imagenet'"),
    (lambda s: s.replace("reset =", "reste ="), "[method.imp] has no option 'reste'"),
    (lambda s: s.replace('"rewind:5"', '"sometimes"'), "[method.imp]: imp option reset must be one of"),
    (lambda s: s + "[method.snip]\nbatches = 2\n", "[method.snip] gives options for a method the study does not run"),
    (lambda s: s.replace("epochs = 1", "epoch = 1"), "[train]: unknown training option 'epoch'"),
    (lambda s: s.replace("epochs = 1", "lr = -1.0"), "[train]: training option lr must be > 0"),
    (lambda s: s.replace("[0.2, 0.05]", "[0.2, 1.5]"), "densities must be a non-empty list of numbers in (0, 1]"),
    (lambda s: s.replace("[0, 1]", "[0, -1]"), "seeds must be a non-empty list of integers from 0 to"),
    (lambda s: s.replace("[0, 1]", "[0, 0]"), "seeds lists a value twice"),
    (lambda s: s.replace("rounds = 2", "rounds = 0"), "[method.imp] option rounds must be a positive integer"),
    (lambda s: s.replace('name = "t"', 'name = "t'), "not valid TOML"),
])
def test_bad_study_files_give_one_line_errors_and_run_nothing(tmp_path, edit, message):
    path = _toml(tmp_path / "study.toml", edit(GOOD))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["study", "run", str(path), "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], res.output
    assert not out.exists()  # nothing ran


def test_missing_file_and_non_study_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        StudySpec.from_toml(tmp_path / "nope.toml")
    res = CliRunner().invoke(cli, ["study", "report", str(tmp_path)])
    assert res.exit_code == 2 and "no study manifest at" in res.output


def test_job_names_hash_only_what_the_file_states():
    jobs = resolve_jobs(StudySpec.from_dict(BASE))
    assert len(jobs) == 8 and len({j.id for j in jobs}) == 8
    assert jobs[0].id.startswith("random-lenet_300_100-digits-s0-d0.2-")
    # another method in the study does not rename the jobs already there
    more = resolve_jobs(StudySpec.from_dict({**BASE, "methods": ["random", "synflow", "snip"]}))
    assert {j.id for j in jobs} <= {j.id for j in more}
    # an option of synflow renames synflow's jobs only
    opt = resolve_jobs(StudySpec.from_dict({**BASE, "method": {"synflow": {"rounds": 7}}}))
    changed = {a.id for a, b in zip(jobs, opt) if a.id != b.id}
    assert changed == {j.id for j in jobs if j.method == "synflow"}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    spec = StudySpec.from_toml(_toml(out / "study.toml", GOOD))
    Study(spec, out / "run").run()
    return out / "run"


def test_fairness_every_method_starts_from_identical_weights(study_dir):
    by_seed: dict[int, list] = {}
    for rec in Study.from_toml(study_dir.parent / "study.toml", study_dir).tickets():
        by_seed.setdefault(rec["seed"], []).append(ticketlab.load(rec["path"]))
    for seed, tickets in by_seed.items():
        assert {t.provenance["method"] for t in tickets} == {"random", "synflow", "imp"}
        ref = tickets[0].weights["init"]
        for t in tickets[1:]:
            for n in ref:
                assert np.array_equal(t.weights["init"][n], ref[n]), (seed, t.provenance["method"], n)
    a, b = by_seed[0][0].weights["init"], by_seed[1][0].weights["init"]
    assert any(not np.array_equal(a[n], b[n]) for n in a)  # another seed, other weights


def test_rerun_skips_everything_and_changes_nothing(study_dir):
    files = sorted((study_dir / "tickets").glob("*.h5"))
    before = {p.name: p.read_bytes() for p in files}
    manifest = Study.from_toml(study_dir.parent / "study.toml", study_dir).run()
    assert [j["status"] for j in manifest["jobs"]] == ["skipped"] * 12
    assert {p.name: p.read_bytes() for p in sorted((study_dir / "tickets").glob("*.h5"))} == before
    assert not list((study_dir / "tickets").glob("*.ckpt")) and not list((study_dir / "tickets").glob(".*tmp"))
    # every invocation is recorded with its wall-clock time: the first ran 12 jobs, this one none
    runs = manifest["runs"]
    assert [r["jobs_to_run"] for r in runs[-2:]] == [12, 0] and all(r["finished"] for r in runs)
    assert runs[0]["wall_seconds"] > runs[-1]["wall_seconds"] >= 0 and runs[0]["workers"] == 1


def test_manifest_runs_are_read_defensively():
    from ticketlab.study.report.front import runs_sentence
    from ticketlab.study.run import previous_runs

    hostile = {"runs": [{"started": "2026-12-05T10:00:00", "wall_seconds": 60.0, "workers": 2, "executor": "x" * 500,
                         "jobs_to_run": -1, "finished": None, "evil": "<script>"},
                        {"started": 5}, {"started": "s", "wall_seconds": float("inf")}, "junk", None]}
    runs = previous_runs(hostile)
    assert runs == [{"started": "2026-12-05T10:00:00", "wall_seconds": 60.0, "executor": "x" * 40, "workers": 2}]
    assert previous_runs({"runs": "no"}) == [] == previous_runs({})
    assert "interrupted" in runs_sentence(hostile) and "1 min 00 s" in runs_sentence(hostile)
    assert "records no study run" in runs_sentence({})


def test_a_failing_job_is_recorded_and_the_study_goes_on(tmp_path):
    path = _toml(tmp_path / "s.toml", GOOD.replace('"rewind:5"', '"rewind:100000"'))
    res = CliRunner().invoke(cli, ["study", "run", str(path), "-o", str(tmp_path / "run"), "--no-report", "-q"])
    assert res.exit_code == 1
    manifest = json.loads((tmp_path / "run" / "study.json").read_text())
    failed = [j for j in manifest["jobs"] if j["status"] == "failed"]
    assert {j["method"] for j in failed} == {"imp"} and len(failed) == 4
    assert all("past the end of training" in j["error"] and "\n" not in j["error"] for j in failed)
    assert sum(j["status"] == "done" for j in manifest["jobs"]) == 8
    assert "4 failed" in res.output


def test_two_workers_give_the_same_tickets_as_one(tmp_path, study_dir):
    spec = StudySpec.from_toml(study_dir.parent / "study.toml")
    Study(spec, tmp_path / "two").run(jobs=2)
    for p in sorted((study_dir / "tickets").glob("*.h5")):
        _same_ticket(ticketlab.load(p), ticketlab.load(tmp_path / "two" / "tickets" / p.name))


def _same_ticket(a, b):
    assert list(a.masks) == list(b.masks)
    for n in a.masks:
        assert np.array_equal(a.masks[n], b.masks[n])
    for kind in a.weights:
        for n in a.weights[kind]:
            assert np.array_equal(a.weights[kind][n], b.weights[kind][n]), (kind, n)
    for n in a.scores:
        assert np.array_equal(a.scores[n], b.scores[n])
    untimed = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]  # noqa: E731
    assert untimed(a.history) == untimed(b.history)


KILL = '''name = "k"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.1]
methods = ["imp", "random"]
[method.imp]
rounds = 20                          # long enough that the kill lands mid-run on an idle machine
[train]
epochs = 3
'''


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_tickets(tmp_path):
    path = _toml(tmp_path / "k.toml", KILL)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ticketlab", "study", "run", str(path), "--no-report", "-q"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["-o", str(killed)], env=env, cwd=ROOT)
    deadline = time.time() + 120
    ckpt = None
    while time.time() < deadline and ckpt is None:  # kill once IMP has checkpointed a round
        found = list((killed / "tickets").glob("*.ckpt")) if (killed / "tickets").exists() else []
        if found:
            ckpt = found[0]
            time.sleep(0.3)
        time.sleep(0.05)
    assert ckpt is not None, "IMP never wrote a checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((killed / "tickets").glob("imp*.h5"))  # IMP's ticket was not finished
    # the rerun and the uninterrupted run: processes too, started warm (tests/warm.py)
    whole = tmp_path / "whole"
    for folder in (killed, whole):
        proc = warm_run([*cmd[3:], "-o", folder], env=env, cwd=ROOT, timeout=300, preload=("torch", "torch._dynamo"))
        assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (whole / "tickets").glob("*.h5"))
    assert names == sorted(p.name for p in (killed / "tickets").glob("*.h5")) and len(names) == 2
    for name in names:
        _same_ticket(ticketlab.load(whole / "tickets" / name), ticketlab.load(killed / "tickets" / name))
    # the rerun resumed IMP from its checkpoint (round 0, after the preparation, up to round 20)
    # rather than mining it again from the start; the uninterrupted run never resumed
    imp = ticketlab.load(next((killed / "tickets").glob("imp*.h5")))
    assert 0 <= imp.provenance["resumed_after_round"] <= 20
    assert "resumed_after_round" not in ticketlab.load(next((whole / "tickets").glob("imp*.h5"))).provenance
    assert not list((killed / "tickets").glob("*.ckpt"))


def test_ray_executor_missing_gives_one_sentence(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    spec = StudySpec.from_dict({**BASE, "methods": ["random"], "seeds": [0], "densities": [0.1]})
    with pytest.raises(ConfigError, match=r"the ray executor needs Ray: pip install 'ticketlab\[ray\]'"):
        Study(spec, tmp_path / "r").run(executor="ray")


def test_python_api_records(study_dir):
    recs = Study.from_toml(study_dir.parent / "study.toml", study_dir).tickets()
    assert len(recs) == 12 and {r["status"] for r in recs} <= {"done", "skipped"}  # skipped once re-run
    assert all(r["kept"] > 0 and r["total"] == 50200 for r in recs)


def test_imp_jobs_share_one_run_and_each_equals_its_own_run(tmp_path):
    from ticketlab.mining import mine

    spec = StudySpec.from_dict({"name": "share", "model": "lenet_300_100", "dataset": "digits", "seeds": [0],
                                "densities": [0.5, 0.2], "methods": ["imp"], "train": {"epochs": 1},
                                "train_tickets": True, "device": "cpu"})
    jobs = resolve_jobs(spec)
    assert len({j.share for j in jobs}) == 1 and [j.rounds for j in jobs] == [3, 7]
    manifest = Study(spec, tmp_path / "s").run()
    by_density = {j["density"]: j for j in manifest["jobs"]}
    assert by_density[0.5].get("shared_run") == by_density[0.2]["id"] and by_density[0.5]["wall_seconds"] == 0.0
    assert not list((tmp_path / "s" / "tickets").glob(".rounds-*"))  # round files removed once saved
    shared = ticketlab.load(tmp_path / "s" / by_density[0.5]["output"])
    own = mine("imp", **jobs[0].mine_kwargs(None))  # the 0.5 job run on its own
    _same_ticket(shared, own)
    volatile = {"created", "wall_seconds", "study_job", "study_hash", "study_config", "shared_run"}
    assert {k: v for k, v in shared.provenance.items() if k not in volatile} == {
        k: v for k, v in own.provenance.items() if k not in volatile}
    assert shared.provenance["rounds"] == 3 and shared.kept == own.kept
    assert shared.provenance["test_accuracy"] == own.provenance["test_accuracy"]


def test_a_study_sets_any_spec_field(tmp_path):
    """Every MineSpec field that the grid does not fix can be set per method (issue 24): data
    corruption, mask tracking, the model's init options, a weight treatment, an explicit schedule,
    rate multipliers; each job's ticket equals mine() with the same settings."""
    from ticketlab.mining import mine
    from ticketlab.spec import MineSpec

    text = """
name = "fields"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.25]
methods = ["magnitude", "synflow", "edge_popup"]
device = "cpu"
[method.magnitude]
data_corruption = "random_labels"
track_masks = 20
zero_bias = true
train_epochs = 1
[method.synflow]
schedule = [0.5, 0.25]
rate_multipliers = { output = 0.5 }
[method.edge_popup]
weights = "scaled_signed_constant"
init = "kaiming_normal"
train_epochs = 1
"""
    spec = StudySpec.from_toml(_toml(tmp_path / "f.toml", text))
    manifest = Study(spec, tmp_path / "run").run()
    jobs = {j.method: j for j in resolve_jobs(spec)}
    assert {j["status"] for j in manifest["jobs"]} == {"done"}
    for rec in manifest["jobs"]:
        t = ticketlab.load(tmp_path / "run" / rec["output"])
        own = mine(rec["method"], **jobs[rec["method"]].mine_kwargs(None))
        _same_ticket(t, own)
        assert MineSpec.from_provenance(t.provenance) == MineSpec.from_provenance(own.provenance)
    mag = ticketlab.load(tmp_path / "run" / next(r["output"] for r in manifest["jobs"] if r["method"] == "magnitude"))
    assert mag.provenance["data_corruption"]["kind"] == "random_labels" and mag.provenance["track_masks"] == 20
    assert mag.provenance["model_config"] == {"zero_bias": True}
    syn = ticketlab.load(tmp_path / "run" / next(r["output"] for r in manifest["jobs"] if r["method"] == "synflow"))
    assert syn.provenance["rate_multipliers"]["fc3.weight"] == 0.5 and syn.provenance["rounds"] == 2
    ep = ticketlab.load(tmp_path / "run" / next(r["output"] for r in manifest["jobs"] if r["method"] == "edge_popup"))
    assert ep.provenance["weights"] == "scaled_signed_constant"
    assert ep.provenance["model_config"] == {"init": "kaiming_normal"}
    again = Study(spec, tmp_path / "run").run()  # every ticket verified against its job, then reused
    assert [j["status"] for j in again["jobs"]] == ["skipped"] * 3


@pytest.mark.parametrize("option, message", [
    ("data_corruption = \"random_words\"", "random_words"),
    ("schedule = [0.5, 0.1]", "schedule ends at density 0.1: the study's densities must then be \\[0.1\\]"),
    ("schedule = [{\"*\" = 0.5}]", "rate_multipliers, not per-layer schedule rounds"),
    ("rate_multipliers = { output = -1 }", "rate multiplier 'output' must be a number > 0"),
    ("early_bird = 0.1", "early_bird needs track_masks|needs --track-masks|track"),
])
def test_study_spec_fields_are_validated_before_anything_runs(tmp_path, option, message):
    text = f"""
name = "bad"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.25]
methods = ["magnitude"]
[method.magnitude]
{option}
"""
    with pytest.raises(ConfigError, match=message):
        StudySpec.from_toml(_toml(tmp_path / "b.toml", text))


def test_method_variants_run_two_settings_of_one_miner(tmp_path):
    """A study holds two settings of one method (random uniform and random ERK) under names of its
    own: each variant's jobs run its ``miner`` with its options, the tickets are verified as the
    variant's, the report keeps them apart, and the plain method's job names do not change."""
    from ticketlab.mining import mine

    text = """
name = "variants"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.1]
methods = ["random", "random_erk", "imp_fast"]
device = "cpu"
[method.random_erk]
miner = "random"
distribution = "erk"
[method.imp_fast]
miner = "imp"
train_epochs = 1
"""
    spec = StudySpec.from_toml(_toml(tmp_path / "v.toml", text))
    assert [spec.miner_of(m) for m in spec.methods] == ["random", "random", "imp"]
    jobs = {j.method: j for j in resolve_jobs(spec)}
    plain = resolve_jobs(StudySpec.from_dict({**BASE, "seeds": [0], "densities": [0.1], "methods": ["random"], "device": "cpu"}))
    assert jobs["random"].id == plain[0].id  # variants beside it rename nothing
    assert jobs["imp_fast"].rounds == len(shared_schedule([0.1]))  # a variant of IMP shares IMP's schedule through the densities
    manifest = Study(spec, tmp_path / "run").run()
    assert {j["status"] for j in manifest["jobs"]} == {"done"}
    erk = ticketlab.load(tmp_path / "run" / jobs["random_erk"].output)
    uni = ticketlab.load(tmp_path / "run" / jobs["random"].output)
    assert erk.provenance["method"] == "random" and erk.provenance["method_config"]["distribution"] == "erk"
    _same_ticket(erk, mine("random", **jobs["random_erk"].mine_kwargs(None)))
    assert erk.layer_kept != uni.layer_kept  # ERK spreads the weights unlike global random
    rec = {r["method"] for r in Study(spec, tmp_path / "run").tickets()}
    assert rec == {"random", "random_erk", "imp_fast"}
    again = Study(spec, tmp_path / "run").run()
    assert [j["status"] for j in again["jobs"]] == ["skipped"] * 3


@pytest.mark.parametrize("table, message", [
    ('[method.random_erk]\nminer = "randum"\n', "\\[method.random_erk\\] miner: unknown miner 'randum'"),
    ('[method.random_erk]\nminer = 3\n', "miner must name a registered method"),
    ('[method.random_erk]\ndistribution = "erk"\n', "methods: unknown miner 'random_erk'"),
    ('[method.random_erk]\nminer = "random"\nrate = 0.5\n', "\\[method.random_erk\\] has no option 'rate'"),
])
def test_bad_method_variants_are_one_line_errors(tmp_path, table, message):
    text = ('name = "v"\nmodel = "lenet_300_100"\ndataset = "digits"\nseeds = [0]\ndensities = [0.1]\n'
            'methods = ["random", "random_erk"]\n' + table)
    with pytest.raises(ConfigError, match=message):
        StudySpec.from_toml(_toml(tmp_path / "v.toml", text))


def test_a_variant_may_not_take_another_registered_methods_name(tmp_path):
    text = ('name = "v"\nmodel = "lenet_300_100"\ndataset = "digits"\nseeds = [0]\ndensities = [0.1]\n'
            'methods = ["snip"]\n[method.snip]\nminer = "grasp"\n')
    with pytest.raises(ConfigError, match="registered method's name"):
        StudySpec.from_toml(_toml(tmp_path / "v.toml", text))
