"""Atomic file writes: write a temporary file in the target's folder, fsync it, then rename.

A crash mid-write never leaves a half-written file at the target, and an existing target stays
intact until the rename; the temporary file a killed write leaves behind is removed by the next
write to the same target (its writer's process is gone, or it is older than a day). Every file ticketlab writes (tickets, checkpoints, CSV, PNG) goes
through :func:`atomic_path`.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
"""

from __future__ import annotations

import glob
import os
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: A temporary file older than this (seconds) is stale whatever its writer's state.
STALE_AFTER = 24 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the leftovers of writes to ``target`` that died: ``.NAME.<pid>-<hex>.tmp`` files whose
    writer process no longer exists, and any ``.NAME.*.tmp`` older than :data:`STALE_AFTER`.

    A write killed mid-way (SIGKILL, power loss) cannot remove its own temporary file; the next
    write to the same target does. Temporaries of live writers are left alone. Returns what it
    removed.
    """
    target = Path(target)
    removed = []
    now = time.time()
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        middle = tmp.name[len(target.name) + 2 : -len(".tmp")]
        pid_text = middle.split("-", 1)[0] if "-" in middle else ""
        try:
            stale = now - tmp.stat().st_mtime > STALE_AFTER or (pid_text.isdigit() and not _alive(int(pid_text)))
        except OSError:
            continue
        if stale:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is fsynced and renamed onto it.

    On any error (including KeyboardInterrupt) the temporary file is removed and ``target`` is
    left as it was. The temporary is ``.NAME.<pid>-<hex>.tmp``; stale ones of earlier, killed
    writes to the same target are removed first (:func:`remove_stale_temporaries`).
    """
    target = Path(target)
    remove_stale_temporaries(target)
    tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the data must be on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
