"""A fingerprint of a folder, to prove that the test suite leaves ``../shared`` as it found it.

Tests read the shared data (the Planetoid files) but must never write there: a ``processed/``
folder left by one test changes what later tests read. ``tests/conftest.py`` takes a fingerprint
before the first test and compares it after the last one.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     before = fingerprint(Path(tmp))
    ...     _ = (Path(tmp) / "new.txt").write_text("x")
    ...     changes(before, fingerprint(Path(tmp)))[0]
    'added: new.txt'
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

# What each entry records: (kind, mode, size, mtime_ns, content); content is the sha256 of a
# file, the target of a link, or "" for a folder (a folder's mtime changes when an entry is
# added or removed, even one removed again before the end).
FIELDS = ("kind", "mode", "size", "mtime", "content")


def _entry(path: Path) -> tuple:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return ("link", st.st_mode, 0, 0, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", st.st_mode, 0, st.st_mtime_ns, "")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        content = digest.hexdigest()
    except OSError as err:  # unreadable: still compared by kind, mode, size and mtime
        content = f"unreadable ({err.strerror})"
    kind = "file" if stat.S_ISREG(st.st_mode) else "other"
    return (kind, st.st_mode, st.st_size, st.st_mtime_ns, content)


def fingerprint(root: Path) -> dict[str, tuple] | None:
    """Every path under ``root`` (links are not followed) -> its entry; None if ``root`` is absent."""
    root = Path(root)
    if not root.exists():
        return None
    found = {".": _entry(root)}
    for folder, dirs, files in os.walk(root):  # followlinks=False: a link is one entry
        for name in sorted(dirs + files):
            path = Path(folder) / name
            found[str(path.relative_to(root))] = _entry(path)
    return found


def changes(before: dict[str, tuple] | None, after: dict[str, tuple] | None) -> list[str]:
    """One line per difference between two fingerprints (empty when nothing changed)."""
    if before is None or after is None:
        return [] if before is after else [f"folder {'created' if before is None else 'removed'}"]
    lines = [f"added: {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"removed: {p}" for p in sorted(before.keys() - after.keys())]
    for path in sorted(before.keys() & after.keys()):
        differ = [f for f, a, b in zip(FIELDS, before[path], after[path]) if a != b]
        if differ:
            lines.append(f"changed: {path} ({', '.join(differ)})")
    return lines
