"""The study as the report reads it: every finished job's verified ticket, grouped by (model, data
set) and density, with its health; the jobs' states; the facts of the configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ticketlab.errors import TicketlabError
from ticketlab.study.report.rules import MARK
from ticketlab.study.run import read_manifest
from ticketlab.study.safepath import StudyFolder
from ticketlab.study.verify import check_job_entry, check_provenance
from ticketlab.ticket import Ticket

#: Job states whose ticket the report reads: mined by the last ``study run`` or reused by it.
READY = ("done", "skipped")


@dataclass
class Entry:
    """One loaded ticket of the study."""

    label: str
    job_id: str
    method: str
    seed: int
    density: float
    ticket: Ticket
    health: Any = None  # ticketlab.metrics.health.Health

    @property
    def unhealthy(self) -> bool:
        return self.health is not None and self.health.healthy is False


def mark(name: str, sick: bool) -> str:
    """``name`` with :data:`MARK` when ``sick``."""
    return f"{name}{MARK}" if sick else name


def sick_methods(entries: Iterable[Entry]) -> set[str]:
    """Methods with at least one unhealthy ticket among ``entries``."""
    return {e.method for e in entries if e.unhealthy}


@dataclass
class StudyData:
    name: str
    version: str
    manifest: dict[str, Any]
    jobs: list[dict[str, Any]]
    groups: dict[tuple[str, str], dict[float, list[Entry]]]
    methods: list[str]  # in the order the manifest first names them
    problems: list[tuple[str, str]]  # (job id, one-line reason) of every finished job that gave no ticket

    def entries(self) -> list[Entry]:
        return [e for g in self.groups.values() for es in g.values() for e in es]


def text(x: Any) -> str:
    return "" if x is None else str(x)


def load_study(study_dir: Path, progress: Any) -> StudyData:
    """Every finished job's ticket, verified against its job (:func:`ticketlab.study.verify.check_provenance`);
    every fact (method, model, data set, seed, density) is the ticket's. A ticket that disagrees with its
    job, or a path that is a link, stops the report (:class:`StudyFolderError`, one line naming the file);
    a missing or unreadable ticket is listed among the problems."""
    from ticketlab.fileformat import load
    from ticketlab.metrics.health import health

    folder = StudyFolder(study_dir)
    data = read_manifest(study_dir)
    jobs = [j for j in data["jobs"] if isinstance(j, dict)]
    groups: dict[tuple[str, str], dict[float, list[Entry]]] = {}
    methods: list[str] = []
    problems: list[tuple[str, str]] = []
    with progress.task("report: load tickets", total=len(jobs)) as task:
        for job in jobs:
            task.advance()
            jid = text(job.get("id"))
            if job.get("status") not in READY:
                continue
            check_job_entry(job)
            path = folder.file(f"tickets/{jid}.h5", missing_ok=True)
            if path is None:
                problems.append((jid, f"output file 'tickets/{jid}.h5' does not exist"))
                continue
            try:
                t = load(path, scores=False)
            except TicketlabError as exc:
                problems.append((jid, str(exc)))
                continue
            layers = {n: (int(np.count_nonzero(m)), int(m.size)) for n, m in t.masks.items()}
            facts = check_provenance(t.provenance, layers, job, path)
            method, model, dataset = (str(facts[k]) for k in ("method", "model", "dataset"))
            seed, density = int(facts["seed"]), float(facts["density"])
            if method not in methods:
                methods.append(method)
            groups.setdefault((model, dataset), {}).setdefault(density, []).append(
                Entry(f"{method}/s{seed}", jid, method, seed, density, t, health(t)))
    for by_density in groups.values():
        for d, entries in by_density.items():
            entries.sort(key=lambda e: (methods.index(e.method), e.seed, e.job_id))
            ok = [entries[0]]
            for e in entries[1:]:  # every ticket of a group must have the first one's architecture
                ref = ok[0].ticket.masks
                if list(ref) != list(e.ticket.masks) or any(ref[n].shape != m.shape for n, m in e.ticket.masks.items()):
                    problems.append((e.job_id, f"its masks differ from those of {ok[0].job_id} (same model expected)"))
                else:
                    ok.append(e)
            seen: dict[str, int] = {}
            for e in ok:
                seen[e.label] = seen.get(e.label, 0) + 1
            for e in ok:
                if seen[e.label] > 1:
                    e.label = f"{e.label}#{e.job_id[-6:]}"
            by_density[d] = ok
    return StudyData(text(data.get("name")), text(data.get("ticketlab_version")), data, jobs, groups, methods, problems)


def kept_sizes(tickets: list[Ticket]) -> tuple[np.ndarray, np.ndarray]:
    """Kept counts ``K`` (tickets x layers) and layer sizes ``n`` as float64."""
    k = np.array([[np.count_nonzero(m) for m in t.masks.values()] for t in tickets], dtype=np.float64)
    n = np.array([m.size for m in tickets[0].masks.values()], dtype=np.float64)
    return k.reshape(len(tickets), len(n)), n


def stats(values: Iterable[float | None]) -> tuple[float, float, float, int]:
    """Mean, min, max and count of the finite values (NaN when there are none)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if not v.size:
        return math.nan, math.nan, math.nan, 0
    return float(v.mean()), float(v.min()), float(v.max()), int(v.size)


def number(x: Any) -> float | None:
    """``x`` as a float when it is a finite number (not a bool), else ``None``."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def dense_accuracy(entries: Iterable[Entry]) -> dict[int, tuple[float, str]]:
    """Per seed, the test accuracy of the trained dense network that a ticket's history records
    (IMP's and magnitude pruning's round 0, ``stage = "dense"``) and the method it comes from."""
    out: dict[int, tuple[float, str]] = {}
    for e in entries:
        if e.seed in out:
            continue
        for row in e.ticket.history:
            if isinstance(row, dict) and row.get("stage") == "dense":
                acc = number(row.get("test_accuracy"))
                if acc is not None:
                    out[e.seed] = (acc, e.method)
                    break
    return out
