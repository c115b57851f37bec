"""Running a study: every job is one ``mine`` call; finished jobs are skipped; failures recorded.

* **Idempotent and resumable.** A job whose ticket file exists and is verified as that job's
  ticket (:func:`ticketlab.study.verify.check_ticket`: the whole configuration, its hash, the
  density by count) is skipped; a ticket that disagrees gets one warning line naming the file,
  and its job is re-run (the new ticket replaces the file, or a link there, never a link's
  target). Every path in the study folder is checked (:mod:`ticketlab.study.safepath`): a
  ``tickets/`` folder that is a link, or any other link ticketlab would use, stops the run. Tickets are written atomically, so a
  killed study leaves no partial ticket; jobs of methods that train write a checkpoint
  ``<ticket>.ckpt`` after every round and continue from it (``mine(..., resume=True)``).
* **Shared work.** IMP jobs of one (model, data set, seed, options) that follow the study's
  shared schedule (:func:`ticketlab.study.jobs.shared_schedule`) are rounds of one run: it runs
  once, with ``save_rounds``, and every density's ticket is the round file at the end of its own
  schedule, the ticket that job's own run gives (a test compares them). The manifest marks those
  jobs ``shared_run``. Other methods share nothing: SynFlow's schedule, for instance, differs per
  density (``d^(k/100)``), so one SynFlow run per density is the least work.
* **Failures do not stop the study.** A job that raises is recorded with its one-line error in
  the manifest ``study.json`` (every job, its config, hash, status, wall time and output,
  rewritten atomically after every job); the caller's exit code says whether any failed.
* **Executors.** ``local``: the jobs run in this process (``jobs=1``) or in a pool of ``jobs``
  worker processes (spawned, each with ``max(1, cores // jobs)`` torch threads so that workers
  do not oversubscribe the cores). ``ray``: each job is a ``ray.remote`` task (``num_gpus`` =
  the study's ``gpus_per_job``), on ``ray.init()`` locally or on a cluster at ``address``.
  Every job is seeded, so both give bit-identical tickets on CPU.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ticketlab.atomic import atomic_write_text
from ticketlab.checks import MAX_SEED, is_seed
from ticketlab.errors import ConfigError, TicketlabError, TicketlabWarning
from ticketlab.progress import NullProgress
from ticketlab.study.jobs import Job, resolve_jobs
from ticketlab.study.safepath import StudyFolder, StudyFolderError
from ticketlab.study.spec import StudySpec
from ticketlab.study.verify import check_ticket, job_record

EXECUTORS = ("local", "ray")
MANIFEST = "study.json"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(exc, TicketlabError) else f"{type(exc).__name__}: {msg}"


def valid_ticket(path: Path, job: Job) -> bool:
    """Whether ``path`` (``<study>/tickets/<id>.h5``) holds the verified ticket of ``job`` (so the
    job can be skipped). A file that is there but disagrees gives one warning naming it."""
    folder = StudyFolder(path.parent.parent)
    try:
        if folder.file(job.output, missing_ok=True) is None:
            return False
        check_ticket(folder, {**_job_fields(job), "output": job.output})
    except StudyFolderError as exc:
        warnings.warn(f"{exc}; re-running its job", TicketlabWarning, stacklevel=2)
        return False
    return True


def run_job(job_config: dict[str, Any], study_dir: str, data_root: str | None, threads: int | None) -> dict[str, Any]:
    """Run one job (in whatever process calls it) and return its manifest fields."""
    return run_group([job_config], study_dir, data_root, threads)[0]


def run_group(job_configs: list[dict[str, Any]], study_dir: str, data_root: str | None,
              threads: int | None) -> list[dict[str, Any]]:
    """Run jobs that are rounds of one run (or one job alone); return their manifest fields.

    The job with the longest schedule runs with ``save_rounds``; every other job's ticket is the
    round file at the end of its own schedule (:func:`ticketlab.study.jobs.shared_schedule`),
    which is the ticket its own run would give. The round files are kept, next to the run's
    checkpoint, until every job of the group is saved.
    """
    from ticketlab.study.jobs import Job

    jobs = [Job(**c) for c in job_configs]
    lead = max(jobs, key=lambda j: j.rounds or 0)
    started = time.perf_counter()
    folder = StudyFolder(study_dir)
    results = []
    try:
        folder.folder("tickets")
        import torch

        from ticketlab.checkpoint import checkpoint_for, checkpoint_path
        from ticketlab.fileformat import load, save
        from ticketlab.mining import mine

        ckpt_rel = str(checkpoint_path(lead.output))
        ckpt = folder.writable(ckpt_rel)  # a link there is refused: the job fails, nothing is read
        rounds_rel = f"tickets/.rounds-{lead.share}" if len(jobs) > 1 else None
        if threads:
            torch.set_num_threads(threads)
        kwargs = lead.mine_kwargs(data_root)
        # ticketlab mine's rule (a study always continues the checkpoint it finds)
        checkpoint = ckpt if checkpoint_for(lead.miner, lead.output) else None
        rounds_dir = folder.folder(rounds_rel, create=True) if rounds_rel is not None else None
        ticket = mine(lead.miner, checkpoint=checkpoint, resume=checkpoint is not None, save_rounds=rounds_dir,
                      **kwargs)
        for job in jobs:
            if job is not lead:
                ticket_j = load(folder.file(f"{rounds_rel}/round_{job.rounds:02d}.h5"))
                ticket_j.provenance.pop("round", None)
                ticket_j.provenance["shared_run"] = lead.id
            else:
                ticket_j = ticket
            ticket_j.provenance.update(job_record(job))
            save(ticket_j, folder.writable(job.output, replace=True))
        folder.remove(ckpt_rel)
        if rounds_rel is not None:
            _remove_rounds(folder, rounds_rel)
        wall = round(time.perf_counter() - started, 3)
        for job in jobs:
            shared = {} if job is lead else {"shared_run": lead.id}
            results.append({"id": job.id, "status": "done", "error": None,
                            "wall_seconds": wall if job is lead else 0.0, **shared})
    except Exception as exc:  # noqa: BLE001  (a failed job is recorded, the study goes on)
        error = _one_line(exc)
        if os.environ.get("TICKETLAB_DEBUG"):
            traceback.print_exc()
        wall = round(time.perf_counter() - started, 3)
        results = [{"id": job.id, "status": "failed", "error": error, "wall_seconds": wall} for job in jobs]
    return results


def _remove_rounds(folder: StudyFolder, rel: str) -> None:
    """Delete the round files a shared run wrote in ``rel``, then the folder if that empties it."""
    names = [p.name for p in folder.folder(rel).iterdir()]
    for name in names:
        if name.startswith("round_") and name.endswith(".h5") and name[6:-3].isdigit():
            folder.remove(f"{rel}/{name}")
    try:
        folder.path(rel).rmdir()
    except OSError:
        pass  # something ticketlab did not write is there: left as it is


def _groups(jobs: list[Job]) -> list[list[Job]]:
    """Jobs that share a run (same ``share`` key) together; every other job alone."""
    groups: dict[str, list[Job]] = {}
    out: list[list[Job]] = []
    for job in jobs:
        if job.share is None:
            out.append([job])
        elif job.share in groups:
            groups[job.share].append(job)
        else:
            groups[job.share] = [job]
            out.append(groups[job.share])
    return out


def _job_fields(job: Job) -> dict[str, Any]:
    return {"id": job.id, "hash": job.hash, "method": job.method, "model": job.model, "dataset": job.dataset,
            "seed": job.seed, "density": job.density, "config": job.config}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_manifest(study_dir: Path, spec: StudySpec, entries: dict[str, dict[str, Any]],
                    runs: list[dict[str, Any]] | None = None) -> None:
    from ticketlab._version import __version__

    manifest = {"name": spec.name, "study_file": spec.source, "ticketlab_version": __version__,
                "updated": _now(), "jobs": list(entries.values()), "runs": runs or []}
    atomic_write_text(StudyFolder(study_dir).writable(MANIFEST), json.dumps(manifest, indent=1, allow_nan=True) + "\n")


def read_manifest(study_dir: str | Path) -> dict[str, Any]:
    """The parsed ``study.json`` of ``study_dir``; a :class:`ConfigError` when missing or malformed.

    Example:
        >>> import tempfile
        >>> read_manifest(Path(tempfile.mkdtemp()))
        Traceback (most recent call last):
        ...
        ticketlab.errors.ConfigError: no study manifest at '...study.json'; run the study first
    """
    from ticketlab.bounded import Refused, read_json

    path = Path(study_dir) / MANIFEST
    if StudyFolder(study_dir).file(MANIFEST, missing_ok=True) is None:  # a link or a FIFO there is refused
        raise ConfigError(f"no study manifest at '{path}'; run the study first")
    try:  # bounded: a regular file of limited size and depth (a FIFO or /dev/zero is refused)
        data = read_json(path)
    except FileNotFoundError:
        raise ConfigError(f"no study manifest at '{path}'; run the study first") from None
    except Refused as exc:
        raise ConfigError(f"cannot read the study manifest '{path}': {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the study manifest '{path}': {exc.strerror or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ConfigError(f"the study manifest '{path}' is not a JSON object with a 'jobs' list")
    for i, entry in enumerate(data["jobs"]):
        problem = _entry_problem(entry)
        if problem:
            raise ConfigError(f"the study manifest '{path}' is damaged: job {i} {problem}; "
                              "restore it, or delete it to run the study afresh")
    return data


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one job entry of a manifest (types and ranges), or ``None``. Fields a
    job may lack are not required here; those present must be of their kind."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    if not isinstance(entry.get("id"), str):
        return "has no text id"
    for key in ("hash", "method", "model", "dataset", "output", "status"):
        if key in entry and not isinstance(entry[key], str):
            return f"has a {key} that is not text"
    if "seed" in entry and not is_seed(entry["seed"]):
        return f"has seed {entry['seed']!r}, not an integer from 0 to {MAX_SEED}"
    density = entry.get("density", 0.5)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        return f"has density {density!r}, not a number in (0, 1]"
    return None


def _local(groups: list[list[Job]], study_dir: Path, data_root: str | None, workers: int,
           done: Callable[[list[dict[str, Any]]], None]) -> None:
    if workers <= 1 or len(groups) <= 1:
        for group in groups:
            done(run_group([j.__dict__ for j in group], str(study_dir), data_root, None))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_group, [j.__dict__ for j in group], str(study_dir), data_root, threads)
                   for group in groups]
        for fut in as_completed(futures):
            done(fut.result())


def _ray(groups: list[list[Job]], study_dir: Path, data_root: str | None, workers: int, address: str | None,
         gpus_per_job: float, done: Callable[[list[dict[str, Any]]], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'ticketlab[ray]' (or pip install ray)") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=1, num_gpus=gpus_per_job)(run_group)
        pending = [remote.remote([j.__dict__ for j in group], str(study_dir), data_root, 1) for group in groups]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                done(ray.get(ref))
    finally:
        if started_here and not address:
            ray.shutdown()


def run_study(spec: StudySpec, study_dir: str | Path, *, jobs: int = 1, executor: str = "local",
              address: str | None = None, progress: NullProgress | None = None,
              only: Iterable[str] | None = None) -> dict[str, Any]:
    """Run every missing job of ``spec`` into ``study_dir``; return the manifest (also written).

    Args:
        jobs: worker processes (local) or concurrent tasks (ray; its CPUs when started here).
        executor: ``"local"`` or ``"ray"``.
        address: a Ray cluster's address (``ray`` only); default a local ``ray.init()``.
        only: run just these job ids (the others keep their manifest state).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}' (choose from: {', '.join(EXECUTORS)})")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, not {jobs!r}")
    if address is not None and executor != "ray":
        raise ConfigError("--address is for the ray executor (add --executor ray)")
    progress = progress or NullProgress()
    study_dir = Path(study_dir)
    folder = StudyFolder(study_dir)
    folder.path(MANIFEST)  # refused before anything is made when it is a link
    folder.folder("tickets", create=True)
    from ticketlab.study.plan import plan_study

    all_jobs = resolve_jobs(spec)
    previous, runs = {}, []
    if folder.file(MANIFEST, missing_ok=True) is not None:
        old = read_manifest(study_dir)
        previous = {e.get("id"): e for e in old["jobs"] if isinstance(e, dict)}
        runs = previous_runs(old)
    plan = {p.job.id: p.action for p in plan_study(spec, study_dir, only=only, estimate=False).jobs}
    entries: dict[str, dict[str, Any]] = {}
    todo: list[Job] = []
    for job in all_jobs:
        entry = {**_job_fields(job), "output": job.output, "status": "pending", "error": None, "wall_seconds": None}
        if plan.get(job.id) == "reuse":  # its verified ticket was there before this run: skipped
            entry.update(status="skipped", wall_seconds=previous.get(job.id, {}).get("wall_seconds"))
        elif job.id in plan:
            todo.append(job)
        entries[job.id] = entry
    # this invocation, beside the earlier ones: a resumed study says how long it took in all
    run = {"started": _now(), "finished": None, "wall_seconds": None, "executor": executor, "workers": jobs,
           "jobs_to_run": len(todo)}
    runs.append(run)
    started = time.perf_counter()
    _write_manifest(study_dir, spec, entries, runs)
    with progress.task(f"study {spec.name}: jobs", total=len(all_jobs)) as bar:
        bar.advance(len(all_jobs) - len(todo))

        def done(results: list[dict[str, Any]]) -> None:
            for result in results:
                entries[result["id"]].update(result)
            run["wall_seconds"] = round(time.perf_counter() - started, 1)  # so far, if the run is killed
            _write_manifest(study_dir, spec, entries, runs)
            bar.advance(len(results))

        groups = _groups(todo)
        if executor == "local":
            _local(groups, study_dir, spec.data_root, jobs, done)
        else:
            _ray(groups, study_dir, spec.data_root, jobs, address, spec.gpus_per_job, done)
    run.update(finished=_now(), wall_seconds=round(time.perf_counter() - started, 1))
    _write_manifest(study_dir, spec, entries, runs)
    return read_manifest(study_dir)


#: Invocations kept in a manifest's ``runs`` (the oldest are dropped beyond it).
MAX_RUNS = 1000


def previous_runs(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The well-formed ``runs`` records of a manifest (each invocation of ``study run``: started,
    finished (``None`` when it was killed), wall seconds so far, executor, workers, jobs to run);
    anything else in the list is dropped.

    Example:
        >>> previous_runs({"runs": [{"started": "2026-01-01T00:00:00+00:00", "wall_seconds": 5.0}, "junk"]})
        [{'started': '2026-01-01T00:00:00+00:00', 'wall_seconds': 5.0}]
    """
    out = []
    runs = manifest.get("runs")
    for r in runs if isinstance(runs, list) else []:
        if not isinstance(r, dict) or not isinstance(r.get("started"), str):
            continue
        wall = r.get("wall_seconds")
        if wall is not None and (isinstance(wall, bool) or not isinstance(wall, (int, float)) or not 0 <= wall < 1e9):
            continue
        rec = {"started": r["started"][:40], "wall_seconds": wall}
        for key in ("finished", "executor"):
            if isinstance(r.get(key), str):
                rec[key] = r[key][:40]
        for key in ("workers", "jobs_to_run"):
            if is_seed(r.get(key)):  # a non-negative integer of bounded size
                rec[key] = r[key]
        out.append({k: rec[k] for k in RUN_KEYS if k in rec})
    return out[-MAX_RUNS:]


#: The fields of one ``runs`` record.
RUN_KEYS = ("started", "finished", "wall_seconds", "executor", "workers", "jobs_to_run")
