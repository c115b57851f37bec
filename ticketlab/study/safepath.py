"""Paths inside a study folder, checked before anything is read, written or deleted there.

A study folder is something people copy, zip and share, so its contents are untrusted input
(issue 22). Every path ticketlab uses under a study folder goes through :class:`StudyFolder`:

* the path is relative, made of plain names (no ``..``, no ``.``, no empty part), and resolves
  inside the folder;
* **no symbolic link** is followed: a link at the path or at any folder between the study folder
  and the path is refused, whether it points outside or inside. ticketlab never makes links, a
  copied or unzipped study needs none, and a link that points inside today can be re-pointed
  tomorrow; refusing them all is one rule that needs no resolving and no exceptions. (The study
  folder itself may be a link: it is the folder the user gave.)
* what should be a file is a regular file (not a FIFO or a device), what should be a folder is
  a folder.

A refusal is a :class:`StudyFolderError` (a ``ConfigError``: one line, exit 2) naming the path.
The callers decide what a refusal means: ``study run`` re-runs a job whose ticket is refused
(the new ticket replaces the link, never its target), every other refusal stops the command.

Example:
    >>> import tempfile
    >>> folder = StudyFolder(tempfile.mkdtemp())
    >>> folder.path("tickets/a.h5").name
    'a.h5'
    >>> folder.path("../a.h5")
    Traceback (most recent call last):
    ...
    ticketlab.study.safepath.StudyFolderError: '../a.h5' is not a plain path inside the study folder '...'
    >>> name_problem(".."), name_problem("lenet-digits")
    ("'..' is not a name", None)
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path, PurePosixPath

from ticketlab.errors import ConfigError

#: Longest study name, in UTF-8 bytes (a folder name on common file systems).
MAX_NAME_BYTES = 255


class StudyFolderError(ConfigError):
    """A path in a study folder that ticketlab will not use (a link, a path outside, a FIFO), or a
    file there that disagrees with the study (a ticket of another job)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a plain name (one folder name: no separator, not ``.`` or ``..``, no
    control character, not empty), or ``None`` when it is.

    Example:
        >>> [name_problem(n) for n in ("a/b", "", "ok name", "x\\x1b[2J")]
        ["it holds a path separator ('/')", 'it is empty', None, 'it holds a control character (U+001B)']
    """
    if not isinstance(name, str):
        return "it is not a string"
    if not name.strip():
        return "it is empty"
    if name in (".", ".."):
        return f"'{name}' is not a name"
    for sep in {"/", "\\", os.sep, os.altsep} - {None}:
        if sep in name:
            return f"it holds a path separator ('{sep}')"
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return f"it holds a control character (U+{ord(c):04X})"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None


class StudyFolder:
    """A study folder and the checked paths under it (see the module docstring).

    Example:
        >>> import tempfile
        >>> folder = StudyFolder(tempfile.mkdtemp())
        >>> folder.folder("tickets", create=True).is_dir()
        True
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"StudyFolder({str(self.root)!r})"

    def _fail(self, rel: str, why: str) -> StudyFolderError:
        return StudyFolderError(f"'{self.root / rel}' {why}")

    def path(self, rel: str | os.PathLike[str]) -> Path:
        """``root / rel`` after the checks: plain relative parts, no link at the path or on the way
        (missing parts are fine: they are what will be created). Raises :class:`StudyFolderError`."""
        text = os.fspath(rel)
        parts = PurePosixPath(text.replace("\\", "/")).parts if isinstance(text, str) else ()
        if (not parts or PurePosixPath(text).is_absolute() or Path(text).is_absolute()
                or any(p in ("", ".", "..") or name_problem(p) for p in parts)
                or list(parts) != text.split("/")):
            raise StudyFolderError(f"'{text}' is not a plain path inside the study folder '{self.root}'")
        here = self.root
        for i, part in enumerate(parts):
            here = here / part
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                break  # nothing further exists: nothing to follow
            except OSError as exc:
                raise self._fail(text, f"cannot be checked ({exc.strerror or exc})") from None
            if stat.S_ISLNK(st.st_mode):
                where = "" if i == len(parts) - 1 else f" ('{part}' is)"
                raise self._fail(text, f"is a symbolic link{where}: a study folder holds no links, "
                                       "ticketlab does not follow them")
            if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                raise self._fail(text, f"cannot be used: '{part}' is not a folder")
        try:
            (self.root / text).resolve().relative_to(self.root.resolve())
        except (ValueError, OSError, RuntimeError):
            raise StudyFolderError(f"'{text}' is not a plain path inside the study folder '{self.root}'") from None
        return self.root / text

    def file(self, rel: str | os.PathLike[str], *, missing_ok: bool = False) -> Path | None:
        """:meth:`path` of a file to read: it must be a regular file (not a FIFO, a device or a
        folder). A missing file raises, or gives ``None`` with ``missing_ok``."""
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise self._fail(os.fspath(rel), "does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            raise self._fail(os.fspath(rel), "is not a regular file")
        return path

    def folder(self, rel: str | os.PathLike[str], *, create: bool = False) -> Path:
        """:meth:`path` of a folder; with ``create``, made (with the folders on the way) when missing."""
        path = self.path(rel)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            here = self.root
            for part in PurePosixPath(os.fspath(rel)).parts:
                here = here / part
                try:
                    here.mkdir()
                except FileExistsError:
                    pass
            path = self.path(rel)  # made by us, or there already: checked again, now that it exists
        if not path.is_dir():
            raise self._fail(os.fspath(rel), "is not a folder")
        return path

    def writable(self, rel: str | os.PathLike[str], *, replace: bool = False) -> Path:
        """:meth:`path` of a file that will be written atomically (a new file renamed onto it) in
        an existing folder. An existing entry there must be a regular file; with ``replace``, a
        link or any other non-folder entry is accepted too, since the rename replaces the entry
        itself and never writes through it (``study run`` replacing a ticket that was refused)."""
        text = os.fspath(rel)
        parent, _, _ = text.rpartition("/")
        if parent:
            self.folder(parent)
        try:
            st = os.lstat(self.root / text)
        except FileNotFoundError:
            return self.path(text)
        except OSError as exc:
            raise self._fail(text, f"cannot be checked ({exc.strerror or exc})") from None
        if replace and not stat.S_ISDIR(st.st_mode):
            if parent:
                self.path(parent)
            return self.root / text
        return self.file(text)  # type: ignore[return-value]

    def remove(self, rel: str | os.PathLike[str]) -> bool:
        """Delete the regular file ``rel`` (checked as :meth:`file`); ``False`` when it was missing."""
        path = self.file(rel, missing_ok=True)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True


__all__ = ["StudyFolder", "StudyFolderError", "name_problem", "MAX_NAME_BYTES"]
