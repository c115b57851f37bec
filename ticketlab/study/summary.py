"""What :meth:`ticketlab.Study.run` returns: the manifest, shown as one line.

A :class:`StudyRun` is the ``study.json`` dict itself (``run["jobs"]`` and every other key work as
before), with a ``repr`` that a REPL can show: the counts, the time and the folder, instead of
every job's configuration.

Example:
    >>> run = StudyRun({"name": "tiny", "jobs": [{"id": "a", "status": "done", "wall_seconds": 1.5},
    ...                                          {"id": "b", "status": "skipped", "wall_seconds": 1.0}]},
    ...                "runs/tiny", seconds=1.6)
    >>> run
    <StudyRun 'tiny': 2 jobs (1 done, 1 skipped, 0 failed) in 1.6 s -> runs/tiny>
    >>> run["jobs"][0]["id"], run.counts["done"], run.failed
    ('a', 1, [])
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from ticketlab.text import visible

STATUSES = ("done", "skipped", "failed")


class StudyRun(dict):
    """The manifest of a study run (a dict) with a one-line ``repr`` and a few shortcuts.

    Attributes:
        directory: the study folder.
        seconds: wall time of the run that returned it.
    """

    def __init__(self, manifest: Mapping[str, Any], directory: str | Path, seconds: float | None = None) -> None:
        super().__init__(manifest)
        self.directory = Path(directory)
        self.seconds = seconds

    @property
    def counts(self) -> dict[str, int]:
        """Jobs by status: ``done``, ``skipped`` (their tickets were there), ``failed`` (and any other)."""
        found = Counter(j.get("status") for j in self.get("jobs", []) if isinstance(j, dict))
        return {**{s: found.get(s, 0) for s in STATUSES}, **{str(s): n for s, n in found.items() if s not in STATUSES}}

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The failed jobs' entries (``id``, ``error``, ...)."""
        return [j for j in self.get("jobs", []) if isinstance(j, dict) and j.get("status") == "failed"]

    def __repr__(self) -> str:
        counts = self.counts
        text = ", ".join(f"{n} {s}" for s, n in counts.items())
        took = f" in {self.seconds:.2g} s" if self.seconds is not None and self.seconds < 10 else (
            f" in {self.seconds:.0f} s" if self.seconds is not None else "")
        n = sum(counts.values())
        return (f"<StudyRun {visible(repr(self.get('name')))}: {n} job{'' if n == 1 else 's'} ({text}){took} -> "
                f"{visible(self.directory)}>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the line too, not the dict
        printer.text(repr(self))
