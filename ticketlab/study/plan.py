"""What a study run would do, without doing it: the jobs it runs, the tickets it reuses, the
jobs it takes from another job's run (IMP's shared rounds), and how long that should take.

:func:`plan_study` is what ``ticketlab study run --dry-run`` prints, and what
:func:`~ticketlab.study.run.run_study` itself follows (one decision of what is reused, not two).
It writes nothing, imports no torch, and reads only the study folder (its ``study.json`` and
ticket files) and the ``study.json`` of the studies beside it.

**The estimate** comes from previous runs (there is no cost model of the methods): a job's own
wall time from this folder's last run when it has one; else the median wall time of the runs
with the same method, model, data set, options and training, here or in a study beside this one
(``runs/*/study.json``); else the median of the runs of the same method, model and data set
("rough"); else none, and the plan says how many jobs it could not estimate. It is the work in
one process; ``--jobs N`` divides the wall time by about N.

Example:
    >>> import tempfile
    >>> from ticketlab.study.spec import StudySpec
    >>> spec = StudySpec.from_dict({"name": "tiny", "model": "lenet_300_100", "dataset": "digits",
    ...                             "seeds": [0, 1], "densities": [0.1], "methods": ["random"]})
    >>> plan = plan_study(spec, tempfile.mkdtemp())
    >>> [p.action for p in plan.jobs], plan.seconds is None
    (['run', 'run'], True)
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketlab.study.jobs import Job, resolve_jobs
from ticketlab.study.spec import StudySpec
from ticketlab.text import visible

#: Studies beside this one whose manifests are read for estimates, at most.
MAX_NEIGHBOURS = 50
ACTIONS = ("run", "reuse", "shared")


@dataclass(frozen=True)
class PlannedJob:
    """One job and what a run does with it.

    Attributes:
        job: the job.
        action: ``"run"`` (mined), ``"reuse"`` (its verified ticket is there: skipped) or
            ``"shared"`` (taken from the rounds of job ``lead``'s run, at no cost of its own).
        lead: the job whose run gives this one (``"shared"`` only).
        seconds: estimated wall time of what the job runs (``None``: no previous run to go by; 0
            for reused and shared jobs).
        basis: where ``seconds`` comes from (``"this job's last run"``, ``"median of 3 runs"``, ...).
    """

    job: Job
    action: str
    lead: str | None = None
    seconds: float | None = None
    basis: str = ""


@dataclass
class StudyPlan:
    """The jobs of a study and what a run would do with each (:func:`plan_study`)."""

    name: str
    directory: Path
    jobs: list[PlannedJob] = field(default_factory=list)

    def count(self, action: str) -> int:
        """Jobs with ``action`` (``"run"``, ``"reuse"`` or ``"shared"``)."""
        return sum(p.action == action for p in self.jobs)

    @property
    def unknown(self) -> int:
        """Jobs to run whose time no previous run tells."""
        return sum(p.action == "run" and p.seconds is None for p in self.jobs)

    @property
    def seconds(self) -> float | None:
        """Estimated work in seconds of the jobs that are estimated (``None`` when none are)."""
        known = [p.seconds for p in self.jobs if p.action == "run" and p.seconds is not None]
        return sum(known) if known else None

    def summary(self, workers: int = 1) -> str:
        """One line: jobs, what is reused, and the estimate (for ``workers`` processes).

        Example:
            >>> StudyPlan("s", Path("runs/s")).summary()
            'study s: 0 jobs: 0 to run, 0 reused (their tickets are there); nothing to run'
        """
        head = (f"study {visible(self.name)}: {jobs(len(self.jobs))}: {self.count('run')} to run, "
                f"{self.count('reuse')} reused (their tickets are there)")
        if self.count("shared"):
            head += f", {self.count('shared')} taken from the rounds of another job's run (IMP's shared schedule)"
        if not self.count("run"):
            return head + "; nothing to run"
        return f"{head}; {self.estimate_text(workers)}"

    def estimate_text(self, workers: int = 1) -> str:
        """The estimated time, as words."""
        total, unknown = self.seconds, self.unknown
        if total is None:
            return (f"no time estimate: no previous run of the {jobs(unknown)} to run (in this folder or a "
                    "study beside it) to go by")
        per = f"about {duration(total)} of work"
        if workers > 1:
            per += f", about {duration(total / workers)} with {workers} workers"
        if unknown:
            per += f", plus {jobs(unknown)} with no previous run to go by"
        return f"{per} (estimated from previous runs)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: one record per job, the counts and the estimate."""
        return {"name": self.name, "directory": str(self.directory), "seconds": self.seconds,
                "counts": {a: self.count(a) for a in ACTIONS}, "unknown": self.unknown,
                "jobs": [{"id": p.job.id, "method": p.job.method, "model": p.job.model, "dataset": p.job.dataset,
                          "seed": p.job.seed, "density": p.job.density, "action": p.action, "lead": p.lead,
                          "seconds": p.seconds, "basis": p.basis} for p in self.jobs]}

    def __repr__(self) -> str:
        return f"<StudyPlan {self.summary()}>"


def jobs(n: int) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{n} job{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """A duration for people: ``42 s``, ``3.5 min``, ``1.2 h``.

    Example:
        >>> duration(4.2), duration(210), duration(4321)
        ('4.2 s', '3.5 min', '1.2 h')
    """
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.2g} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2g} h"


def _kind(job_or_entry: Any) -> tuple[str, str]:
    """(the job's config without seed, density and schedule; its method, model and data set), as
    keys of the runs that took about as long."""
    config = job_or_entry.config if isinstance(job_or_entry, Job) else job_or_entry.get("config")
    if not isinstance(config, dict):
        return "", ""
    same = {k: v for k, v in config.items() if k not in ("seed", "density", "schedule")}
    rough = [config.get("method"), config.get("model"), config.get("dataset")]
    return json.dumps(same, sort_keys=True, default=str), json.dumps(rough, default=str)


def _walls(entries: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Wall times of finished runs (not reused, not shared) by :func:`_kind` key."""
    out: dict[str, list[float]] = {}
    for e in entries:
        wall = e.get("wall_seconds")
        if e.get("status") != "done" or e.get("shared_run") or isinstance(wall, bool) \
                or not isinstance(wall, (int, float)) or not 0 < wall < 1e9:
            continue
        for key in _kind(e):
            if key:
                out.setdefault(key, []).append(float(wall))
    return out


def _manifest_jobs(folder: Path) -> list[dict[str, Any]]:
    """The job entries of ``folder``'s study.json; none when it has none or it cannot be read."""
    from ticketlab.errors import ConfigError
    from ticketlab.study.run import MANIFEST, read_manifest

    if not (folder / MANIFEST).is_file():
        return []
    try:
        return [e for e in read_manifest(folder)["jobs"] if isinstance(e, dict)]
    except (ConfigError, OSError):
        return []


def plan_study(spec: StudySpec, study_dir: str | Path, *, only: Any = None, estimate: bool = True) -> StudyPlan:
    """What running ``spec`` into ``study_dir`` would do (module docstring); nothing is written.

    ``only``: job ids to run (the others that have no ticket are left out of the plan, as
    :func:`~ticketlab.study.run.run_study` leaves them pending). ``estimate=False`` skips the
    estimate (every ``seconds`` of a job to run is ``None``).
    """
    from ticketlab.study.run import _groups, valid_ticket

    study_dir = Path(study_dir)
    jobs = resolve_jobs(spec)
    own: dict[str, dict[str, Any]] = {}
    walls: dict[str, list[float]] = {}
    if estimate:
        own = {e.get("id"): e for e in _manifest_jobs(study_dir)}
        beside: list[dict[str, Any]] = list(own.values())
        if study_dir.parent.is_dir():
            for other in sorted(study_dir.parent.iterdir())[:MAX_NEIGHBOURS]:
                if other.name != study_dir.name and other.is_dir():
                    beside += _manifest_jobs(other)
        walls = _walls(beside)
    wanted = set(only) if only is not None else None
    reused = {j.id for j in jobs if valid_ticket(study_dir / j.output, j)}  # verified: skipped by a run
    todo = [j for j in jobs if j.id not in reused and (wanted is None or j.id in wanted)]
    planned: dict[str, PlannedJob] = {j.id: PlannedJob(j, "reuse", seconds=0.0, basis="its ticket is there")
                                      for j in jobs if j.id in reused}
    for group in _groups(todo):
        lead = max(group, key=lambda j: j.rounds or 0)
        seconds, basis = _estimate(lead, own.get(lead.id), walls) if estimate else (None, "not estimated")
        for job in group:
            if job is lead:
                planned[job.id] = PlannedJob(job, "run", seconds=seconds, basis=basis)
            else:
                planned[job.id] = PlannedJob(job, "shared", lead=lead.id, seconds=0.0,
                                             basis=f"a round of {lead.id}'s run")
    return StudyPlan(spec.name, study_dir, [planned[j.id] for j in jobs if j.id in planned])


def _estimate(job: Job, previous: dict[str, Any] | None, walls: dict[str, list[float]]) -> tuple[float | None, str]:
    """(seconds, basis) of one job to run, from previous runs (module docstring)."""
    if previous is not None and not previous.get("shared_run"):
        wall = previous.get("wall_seconds")
        if previous.get("status") == "done" and isinstance(wall, (int, float)) \
                and not isinstance(wall, bool) and 0 < wall < 1e9:
            return float(wall), "this job's last run"
    same, rough = _kind(job)
    if walls.get(same):
        return statistics.median(walls[same]), f"{_median_of(walls[same])} of this configuration"
    if walls.get(rough):
        return statistics.median(walls[rough]), (f"rough: {_median_of(walls[rough])} of {job.method} on {job.model} / "
                                                 f"{job.dataset} with other options")
    return None, "no previous run"


def _median_of(walls: list[float]) -> str:
    return "one previous run" if len(walls) == 1 else f"median of {len(walls)} runs"
