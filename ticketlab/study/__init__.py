"""Studies: a resumable grid of ``mine`` jobs (methods x seeds x densities x models x data sets)
and a report of what the tickets share (``ticketlab study run`` / ``ticketlab study report``).

The orchestration is a thin layer (STYLE 14): a study is a list of ``mine`` calls with resolved
configs (:mod:`ticketlab.study.jobs`), named by a hash of the config, skipped when their valid
output exists, run by a pluggable executor (:mod:`ticketlab.study.run`). It adds no mining logic.

Example:
    >>> import tempfile
    >>> study = Study.from_dict({"name": "tiny", "model": "lenet_300_100", "dataset": "digits",
    ...                          "seeds": [0], "densities": [0.1], "methods": ["random"]})
    >>> study.plan(tempfile.mkdtemp()).summary().split(";")[0]
    'study tiny: 1 job: 1 to run, 0 reused (their tickets are there)'
    >>> run = study.run()
    >>> run.counts, [(r["method"], r["status"]) for r in study.tickets()]
    ({'done': 1, 'skipped': 0, 'failed': 0}, [('random', 'done')])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ticketlab.errors import ConfigError
from ticketlab.progress import NullProgress
from ticketlab.study.jobs import Job, resolve_jobs
from ticketlab.study.plan import StudyPlan
from ticketlab.study.spec import StudySpec
from ticketlab.study.summary import StudyRun

__all__ = ["Job", "Study", "StudyPlan", "StudyRun", "StudySpec", "resolve_jobs"]


class Study:
    """A study (a validated :class:`StudySpec`) and the folder its tickets go to."""

    def __init__(self, spec: StudySpec, directory: str | Path | None = None) -> None:
        self.spec = spec
        self.directory = Path(directory) if directory is not None else None

    @classmethod
    def from_toml(cls, path: str | Path, directory: str | Path | None = None) -> "Study":
        """Read and validate a study file."""
        return cls(StudySpec.from_toml(path), directory)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], directory: str | Path | None = None) -> "Study":
        """A study from a mapping with the study file's keys."""
        return cls(StudySpec.from_dict(values), directory)

    def jobs(self) -> list[Job]:
        """Every job of the grid, in order."""
        return resolve_jobs(self.spec)

    def _dir(self, directory: str | Path | None) -> Path:
        if directory is not None:
            self.directory = Path(directory)
        if self.directory is None:
            self.directory = Path("runs") / self.spec.name
        return self.directory

    def run(self, directory: str | Path | None = None, *, executor: str = "local", jobs: int = 1,
            address: str | None = None, progress: NullProgress | None = None) -> StudyRun:
        """Run every missing job; return the manifest (``study.json``) as a :class:`StudyRun`, a dict
        shown as one line (``<StudyRun 'tiny': 1 jobs (1 done, 0 skipped, 0 failed) ...>``). Default
        folder: ``runs/<name>``."""
        import time

        from ticketlab.study.run import run_study

        started = time.perf_counter()
        manifest = run_study(self.spec, self._dir(directory), jobs=jobs, executor=executor, address=address,
                             progress=progress)
        return StudyRun(manifest, self._dir(None), time.perf_counter() - started)

    def plan(self, directory: str | Path | None = None) -> StudyPlan:
        """What :meth:`run` would do, without doing it: the jobs to run, the tickets reused, and an
        estimated time from previous runs (:func:`ticketlab.study.plan.plan_study`)."""
        from ticketlab.study.plan import plan_study

        return plan_study(self.spec, self._dir(directory))

    def tickets(self, directory: str | Path | None = None) -> list[dict[str, Any]]:
        """One record per job (DataFrame-ready): grid coordinates, status, path, kept, accuracy."""
        from ticketlab.study.run import read_manifest
        from ticketlab.study.safepath import StudyFolder
        from ticketlab.study.verify import check_ticket

        folder = self._dir(directory)
        safe = StudyFolder(folder)
        records = []
        for e in read_manifest(folder)["jobs"]:
            if not isinstance(e, dict):
                continue
            rec = {k: e.get(k) for k in ("id", "method", "model", "dataset", "seed", "density", "status", "error",
                                         "wall_seconds")}
            rec["path"] = str(folder / f"tickets/{e.get('id')}.h5")
            if e.get("status") in ("done", "skipped"):
                facts = check_ticket(safe, e, missing_ok=True)  # every fact of a ticket is the ticket's, verified
                if facts is not None:
                    rec.update({k: facts[k] for k in ("method", "model", "dataset", "seed", "density", "kept", "total",
                                                      "test_accuracy")})
            records.append(rec)
        return records

    def report(self, directory: str | Path | None = None, progress: NullProgress | None = None) -> dict[str, Path]:
        """Write ``report.md`` (with PNGs), ``report.html`` and ``results.csv`` into the study folder."""
        from ticketlab.study.report import write_report

        folder = self._dir(directory)
        if not (folder / "study.json").exists():
            raise ConfigError(f"'{folder}' holds no study yet: run it first")
        return write_report(folder, progress=progress)
