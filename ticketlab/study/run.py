"""Running a study: every job is one ``mine`` call; finished jobs are skipped; failures recorded.

* **Idempotent and resumable.** A job whose ticket file exists and loads as a valid ticket of
  that job (same method, model, data set, seed) is skipped. Tickets are written atomically, so a
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
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from ticketlab.atomic import atomic_write_text
from ticketlab.errors import ConfigError, TicketlabError
from ticketlab.progress import NullProgress
from ticketlab.study.jobs import Job, resolve_jobs
from ticketlab.study.spec import StudySpec

EXECUTORS = ("local", "ray")
MANIFEST = "study.json"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(exc, TicketlabError) else f"{type(exc).__name__}: {msg}"


def valid_ticket(path: Path, job: Job) -> bool:
    """Whether ``path`` holds a readable ticket of ``job`` (so the job can be skipped)."""
    if not path.is_file():
        return False
    try:
        from ticketlab.fileformat import read_info

        prov = read_info(path)["provenance"]
    except TicketlabError:
        return False
    return (prov.get("method"), prov.get("model"), prov.get("dataset"), prov.get("seed")) == (
        job.method, job.model, job.dataset, job.seed)


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
    tickets = Path(study_dir) / "tickets"
    out = Path(study_dir) / lead.output
    ckpt = out.with_name(out.name + ".ckpt")
    rounds_dir = tickets / f".rounds-{lead.share}" if len(jobs) > 1 else None
    results = []
    try:
        import torch

        from ticketlab.fileformat import load, save
        from ticketlab.miners import get_miner
        from ticketlab.mining import mine

        if threads:
            torch.set_num_threads(threads)
        kwargs = lead.mine_kwargs(data_root)
        checkpoint = ckpt if get_miner(lead.method).trains else None
        if rounds_dir is not None:
            rounds_dir.mkdir(exist_ok=True)
        ticket = mine(lead.method, checkpoint=checkpoint, resume=checkpoint is not None, save_rounds=rounds_dir,
                      **kwargs)
        for job in jobs:
            if job is not lead:
                ticket_j = load(rounds_dir / f"round_{job.rounds:02d}.h5")
                ticket_j.provenance.pop("round", None)
                ticket_j.provenance["shared_run"] = lead.id
            else:
                ticket_j = ticket
            ticket_j.provenance["study_job"] = job.id
            save(ticket_j, Path(study_dir) / job.output)
        ckpt.unlink(missing_ok=True)
        if rounds_dir is not None:
            shutil.rmtree(rounds_dir, ignore_errors=True)
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


def _write_manifest(study_dir: Path, spec: StudySpec, entries: dict[str, dict[str, Any]]) -> None:
    from ticketlab._version import __version__

    manifest = {"name": spec.name, "study_file": spec.source, "ticketlab_version": __version__,
                "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "jobs": list(entries.values())}
    atomic_write_text(study_dir / MANIFEST, json.dumps(manifest, indent=1, allow_nan=True) + "\n")


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
    return data


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
    (study_dir / "tickets").mkdir(parents=True, exist_ok=True)
    all_jobs = resolve_jobs(spec)
    previous = {}
    if (study_dir / MANIFEST).exists():
        previous = {e.get("id"): e for e in read_manifest(study_dir)["jobs"] if isinstance(e, dict)}
    entries: dict[str, dict[str, Any]] = {}
    todo: list[Job] = []
    wanted = set(only) if only is not None else None
    for job in all_jobs:
        entry = {**_job_fields(job), "output": job.output, "status": "pending", "error": None, "wall_seconds": None}
        if valid_ticket(study_dir / job.output, job):  # there before this run: skipped
            entry.update(status="skipped", wall_seconds=previous.get(job.id, {}).get("wall_seconds"))
        elif wanted is None or job.id in wanted:
            todo.append(job)
        entries[job.id] = entry
    _write_manifest(study_dir, spec, entries)
    with progress.task(f"study {spec.name}: jobs", total=len(all_jobs)) as bar:
        bar.advance(len(all_jobs) - len(todo))

        def done(results: list[dict[str, Any]]) -> None:
            for result in results:
                entries[result["id"]].update(result)
            _write_manifest(study_dir, spec, entries)
            bar.advance(len(results))

        groups = _groups(todo)
        if executor == "local":
            _local(groups, study_dir, spec.data_root, jobs, done)
        else:
            _ray(groups, study_dir, spec.data_root, jobs, address, spec.gpus_per_job, done)
    return read_manifest(study_dir)
