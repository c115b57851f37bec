"""Progress for long work: rich bars on a terminal's stderr; on any other stderr (a log file, a
pipe, CI) one plain line every 30 seconds (:class:`LineProgress`), so that a run of minutes is
never silent and a short one prints nothing.

Library code takes an optional ``progress`` argument (a :class:`Progress`); the CLI makes one
with :func:`make_progress` and passes it down. ``NullProgress`` does nothing, so code can always
call ``progress.task(...)`` without checks. ``TICKETLAB_PROGRESS_SECONDS`` sets the interval of
the plain lines (0: none).

Example:
    >>> with make_progress(enabled=False) as p:
    ...     with p.task("rounds", total=3) as t:
    ...         for _ in range(3):
    ...             t.advance()
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import IO, Iterator

#: Seconds between two lines of :class:`LineProgress` (default of ``TICKETLAB_PROGRESS_SECONDS``).
LINE_SECONDS = 30.0


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


class _LineTask(_NullTask):
    def __init__(self, description: str, total: float | None) -> None:
        self.description, self.total, self.completed = description, total, 0.0

    def advance(self, n: float = 1) -> None:
        self.completed += n

    def update(self, **fields: object) -> None:
        if isinstance(fields.get("description"), str):
            self.description = str(fields["description"])
        if isinstance(fields.get("total"), (int, float)):
            self.total = float(fields["total"])  # type: ignore[arg-type]
        if isinstance(fields.get("completed"), (int, float)):
            self.completed = float(fields["completed"])  # type: ignore[arg-type]


class LineProgress(NullProgress):
    """Progress as plain lines, for a stderr that is not a terminal: every ``every`` seconds, while
    work runs, one line with the time so far and each running task's count, e.g.
    ``progress 1:30: study lenet-digits: jobs 12/63; synflow: rounds 40/100``. Work shorter than
    ``every`` prints nothing. A background thread writes the lines, so a long step that reports
    nothing (one training epoch) is not silent either.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with LineProgress(every=0.05, stream=out) as p, p.task("rounds", total=3) as t:
        ...     t.advance(2)
        ...     time.sleep(0.2)
        >>> out.getvalue().splitlines()[0].split(": ", 1)[1]
        'rounds 2/3'
    """

    def __init__(self, every: float = LINE_SECONDS, stream: IO[str] | None = None) -> None:
        self.every = float(every)
        self._stream = stream
        self._tasks: list[_LineTask] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def __enter__(self) -> "LineProgress":
        self._started = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ticketlab-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[_LineTask]:
        t = _LineTask(description, total)
        with self._lock:
            self._tasks.append(t)
        try:
            yield t
        finally:
            with self._lock:
                self._tasks.remove(t)

    def line(self) -> str | None:
        """The line for now, or ``None`` when no task runs."""
        with self._lock:
            tasks = list(self._tasks)
        if not tasks:
            return None
        seconds = int(time.monotonic() - self._started)
        clock = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
            f"{seconds // 60}:{seconds % 60:02d}"
        parts = [f"{t.description} {t.completed:g}" + (f"/{t.total:g}" if t.total else "") for t in tasks]
        return f"progress {clock}: " + "; ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            text = self.line()
            if text is not None:
                stream = self._stream or sys.stderr
                try:
                    stream.write(text + "\n")
                    stream.flush()
                except (OSError, ValueError):  # stderr closed: nothing to tell
                    return


Progress = NullProgress  # the type library functions accept


def line_seconds() -> float:
    """The interval of :class:`LineProgress`: ``TICKETLAB_PROGRESS_SECONDS`` (0 = no lines), else
    :data:`LINE_SECONDS`."""
    text = os.environ.get("TICKETLAB_PROGRESS_SECONDS", "")
    try:
        value = float(text) if text.strip() else LINE_SECONDS
    except ValueError:
        return LINE_SECONDS
    return value if value >= 0 and value == value else LINE_SECONDS


def make_progress(enabled: bool | None = None) -> NullProgress:
    """Rich bars when ``enabled``; nothing when ``enabled`` is False; by default (``None``) rich
    bars on a terminal's stderr, else a :class:`LineProgress` line every :func:`line_seconds`."""
    if enabled is None:
        if sys.stderr.isatty():
            return RichProgress()
        every = line_seconds()
        return LineProgress(every) if every > 0 else NullProgress()
    return RichProgress() if enabled else NullProgress()
