"""Progress bars for long work: rich on stderr, silent when stderr is not a terminal.

Library code takes an optional ``progress`` argument (a :class:`Progress`); the CLI makes one
with :func:`make_progress` and passes it down. ``NullProgress`` does nothing, so code can always
call ``progress.task(...)`` without checks.

Example:
    >>> with make_progress(enabled=False) as p:
    ...     with p.task("rounds", total=3) as t:
    ...         for _ in range(3):
    ...             t.advance()
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


class _NullTask:
    def advance(self, n: float = 1) -> None:
        """Move the bar by ``n`` steps."""

    def update(self, **fields: object) -> None:
        """Update the description or extra fields."""


class NullProgress:
    """A progress sink that shows nothing."""

    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[_NullTask]:
        yield _NullTask()


class RichProgress(NullProgress):
    """A rich progress display on stderr; nested tasks show as separate bars."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )

    def __enter__(self) -> "RichProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator["_RichTask"]:
        tid = self._progress.add_task(description, total=total)
        try:
            yield _RichTask(self._progress, tid)
        finally:
            self._progress.remove_task(tid)


class _RichTask(_NullTask):
    def __init__(self, progress: object, tid: int) -> None:
        self._p, self._id = progress, tid

    def advance(self, n: float = 1) -> None:
        self._p.advance(self._id, n)  # type: ignore[attr-defined]

    def update(self, **fields: object) -> None:
        self._p.update(self._id, **fields)  # type: ignore[attr-defined]


Progress = NullProgress  # the type library functions accept


def make_progress(enabled: bool | None = None) -> NullProgress:
    """A rich progress display when ``enabled`` (default: stderr is a terminal), else a null one."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return RichProgress() if enabled else NullProgress()
