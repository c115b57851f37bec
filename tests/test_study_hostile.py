"""Hostile study folders (issue 22, sections 1 and 2), run as real ``ticketlab`` processes (started
warm, with torch imported beforehand: :mod:`warm`).

A study folder is untrusted input: links out of it, a study named ``..``, and tickets that are not
their job's (another density, another method, a link to a file elsewhere). Every refusal is one
line on stderr and exit 2, with no traceback; a resumed run re-runs a job whose ticket disagrees
(one warning line naming the file); nothing outside the folders given is written, deleted or read
through a link: a victim file outside keeps its bytes and its mtime.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ticketlab.fileformat import load, read_info, save
from warm import run as warm_run

pytestmark = pytest.mark.xdist_group("subprocess")

ROOT = Path(__file__).resolve().parents[1]
STUDY = '''name = "{name}"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.5, 0.1]
methods = ["random", "imp"]
device = "cpu"
[method.imp]
rounds = 1
[train]
epochs = 1
'''


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return warm_run(args, env=env, cwd=cwd, timeout=300, preload=("torch",))


def _refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one stderr line of a refusal (exit 2, no traceback), which holds every one of ``words``."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr)
    assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry under ``folder``: its bytes (a link: its target) and its mtime, without following links."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = os.lstat(p)
        data = os.readlink(p).encode() if p.is_symlink() else (b"<dir>" if p.is_dir() else p.read_bytes())
        out[str(p.relative_to(folder))] = (data, st.st_mtime_ns)
    return out


def _outside(tmp_path: Path) -> Path:
    """A folder outside the study with a victim PNG and a victim ticket-like file."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "victim.png").write_bytes(b"\x89PNG not ticketlab's")
    (out / "keep.txt").write_text("a file ticketlab must not touch\n")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The smallest study with an IMP job: random and IMP (one round, one epoch) at 0.5 and 0.1."""
    base = tmp_path_factory.mktemp("built")
    toml = base / "h.toml"
    toml.write_text(STUDY.format(name="h"))
    proc = _cli("study", "run", str(toml), "-o", str(base / "study"), "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr
    return toml, base / "study"


def _copy(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, dict[str, Path]]:
    toml, study = built
    folder = tmp_path / "study"
    shutil.copytree(study, folder, symlinks=True)
    tickets = {f"{p.name.split('-')[0]}-{re.search(r'-d([0-9.]+)-', p.name).group(1)}": p
               for p in (folder / "tickets").glob("*.h5")}
    assert sorted(tickets) == ["imp-0.1", "imp-0.5", "random-0.1", "random-0.5"]
    return toml, folder, tickets


def _statuses(folder: Path) -> dict[str, str]:
    jobs = json.loads((folder / "study.json").read_text())["jobs"]
    return {f"{j['method']}-{j['density']:g}": j["status"] for j in jobs}


# ------------------------------------------------------------------------ writes and deletes outside
def test_report_figures_linked_outside_is_refused_and_nothing_there_changes(built, tmp_path):
    _, folder, _ = _copy(built, tmp_path)
    outside = _outside(tmp_path)
    (folder / "report_figures").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    _refused(_cli("study", "report", str(folder)), "report_figures", "symbolic link")
    assert _snapshot(outside) == before  # the victim PNG is still there, no PNG was written there
    assert not (folder / "report.md").exists()


def test_tickets_linked_outside_is_refused_on_resume(built, tmp_path):
    toml, folder, tickets = _copy(built, tmp_path)
    outside = _outside(tmp_path)
    tickets["random-0.5"].unlink()  # a job left to run on resume
    for p in (folder / "tickets").iterdir():
        shutil.move(p, outside / p.name)
    (folder / "tickets").rmdir()
    (folder / "tickets").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    _refused(_cli("study", "run", str(toml), "-o", str(folder), "--no-report"), "tickets", "symbolic link")
    assert _snapshot(outside) == before  # no ticket written there, nothing replaced


@pytest.mark.parametrize("name, why", [("..", "'..' is not a name"), (".", "'.' is not a name"),
                                       ("a/..", "path separator"), ("x\\u001b[2Jy", "control character")])
def test_a_study_name_that_is_not_a_plain_name_is_refused(tmp_path, name, why):
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    toml = work / "s.toml"
    toml.write_text(STUDY.format(name=name))
    line = _refused(_cli("study", "run", str(toml)), "name must be a plain folder name", why)
    assert "\x1b" not in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["here", "s.toml", "work"]  # no study.json, tickets, runs


def test_report_deletes_only_the_stale_figures_it_listed(built, tmp_path):
    _, folder, _ = _copy(built, tmp_path)
    figures = folder / "report_figures"
    figures.mkdir()
    (figures / "99-old.png").write_bytes(b"written by an earlier report")
    (figures / "mine.png").write_bytes(b"the user's own figure")
    (figures / "written.json").write_text(json.dumps({"written": ["99-old.png", "../outside.png", "/etc/passwd"]}))
    (tmp_path / "outside.png").write_bytes(b"victim")
    proc = _cli("study", "report", str(folder))
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert not (figures / "99-old.png").exists()  # listed and not written again: stale
    assert (figures / "mine.png").read_bytes() == b"the user's own figure"  # never listed: kept
    assert (tmp_path / "outside.png").read_bytes() == b"victim"
    written = json.loads((figures / "written.json").read_text())["written"]
    assert written and sorted(written) == sorted(p.name for p in figures.glob("*.png") if p.name != "mine.png")


# ------------------------------------------------------------------------ tampered tickets
def _put(folder: Path, source: Path, slot: Path, relabel: bool) -> None:
    """``source`` copied into ``slot``; with ``relabel``, its provenance rewritten to claim the slot's
    job (id, hash, configuration): a lie that only the miner's own records and the count can catch."""
    if not relabel:
        shutil.copyfile(source, slot)
        return
    entry = next(j for j in json.loads((folder / "study.json").read_text())["jobs"] if slot.name == f"{j['id']}.h5")
    t = load(source)
    t.provenance.update(study_job=entry["id"], study_hash=entry["hash"], study_config=entry["config"])
    save(t, slot)


@pytest.mark.parametrize("relabel, why", [(False, "records the job"),  # relabelled: its spec says 0.1
                                          (True, "was mined with prune.density '0.1', the job asks for '0.5'")])
def test_a_ticket_of_density_0_1_in_the_0_5_slot(built, tmp_path, relabel, why):
    toml, folder, tickets = _copy(built, tmp_path)
    _put(folder, tickets["random-0.1"], tickets["random-0.5"], relabel)
    _refused(_cli("study", "report", str(folder)), str(tickets["random-0.5"]), why, "not this job's ticket")
    assert not (folder / "report.md").exists()
    proc = _cli("study", "run", str(toml), "-o", str(folder), "--no-report")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("warning: ") and str(tickets["random-0.5"]) in lines[0] and "re-running" in lines[0]
    assert _statuses(folder) == {"random-0.5": "done", "random-0.1": "skipped", "imp-0.5": "skipped",
                                 "imp-0.1": "skipped"}
    assert read_info(tickets["random-0.5"])["kept"] == 25100  # half of LeNet-300-100's 50,200 prunable weights
    assert _cli("study", "report", str(folder)).returncode == 0


def test_a_ticket_linked_from_elsewhere(built, tmp_path):
    toml, folder, tickets = _copy(built, tmp_path)
    outside = _outside(tmp_path)
    victim = outside / "victim.h5"
    shutil.copyfile(tickets["random-0.5"], victim)  # even this job's own ticket: a link is not followed
    tickets["random-0.5"].unlink()
    tickets["random-0.5"].symlink_to(victim)
    before = _snapshot(outside)
    _refused(_cli("study", "report", str(folder)), str(tickets["random-0.5"]), "symbolic link")
    proc = _cli("study", "run", str(toml), "-o", str(folder), "--no-report")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 0 and len(lines) == 1 and "symbolic link" in lines[0] and "re-running" in lines[0], \
        proc.stderr
    assert _statuses(folder)["random-0.5"] == "done"
    assert not tickets["random-0.5"].is_symlink() and tickets["random-0.5"].is_file()  # the link was replaced
    assert _snapshot(outside) == before  # its target was neither written nor replaced


@pytest.mark.parametrize("relabel, why", [(False, "records the job"), (True, "was mined with method 'random'")])
def test_a_random_ticket_renamed_into_an_imp_slot(built, tmp_path, relabel, why):
    toml, folder, tickets = _copy(built, tmp_path)
    _put(folder, tickets["random-0.5"], tickets["imp-0.5"], relabel)
    _refused(_cli("study", "report", str(folder)), str(tickets["imp-0.5"]), why, "not this job's ticket")
    assert not (folder / "report.md").exists()
    proc = _cli("study", "run", str(toml), "-o", str(folder), "--no-report")
    assert proc.returncode == 0 and str(tickets["imp-0.5"]) in proc.stderr, proc.stderr
    assert _statuses(folder)["imp-0.5"] == "done"
    assert read_info(tickets["imp-0.5"])["provenance"]["method"] == "imp"


def test_a_manifest_entry_pointing_outside_is_refused(built, tmp_path):
    _, folder, _ = _copy(built, tmp_path)
    manifest = json.loads((folder / "study.json").read_text())
    manifest["jobs"][0]["output"] = "../outside.h5"
    (folder / "study.json").write_text(json.dumps(manifest))
    _refused(_cli("study", "report", str(folder)), "names the ticket", "../outside.h5")
