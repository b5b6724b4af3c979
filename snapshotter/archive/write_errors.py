"""Why writing a snapshot into the archive failed, in one line a person can act on.

A full disk and a read-only archive are ordinary accidents, not bugs: they get one line naming
the file or directory and what to do, never a traceback. A full disk shows three ways: ENOSPC
(SQLite says "database or disk is full"), a quota (EDQUOT), and a file size limit (EFBIG, which
SQLite reports only as "disk I/O error"); all three are treated alike.
"""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .layout import ArchiveError

_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_OUT_OF_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_PERMITTED = {errno.EACCES, errno.EPERM, errno.EROFS}
_LARGEST_SQLITE_PAGE = 65536
_NEARLY_FULL_BYTES = 1 << 20


class ArchiveFullError(ArchiveError):
    """The disk (or a quota, or a file size limit) ran out while writing a snapshot."""


class ArchiveNotWritableError(ArchiveError):
    """The archive directory cannot be written by this user (or is on a read-only disk)."""


def _hit_a_limit(growing: Path) -> bool:
    """Whether a disk I/O error while `growing` grew was really a full disk or a size limit."""
    try:
        size = growing.stat().st_size
        space = os.statvfs(growing.parent)
    except OSError:
        return False
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + _LARGEST_SQLITE_PAGE >= limit:
        return True
    return space.f_bavail * space.f_frsize < _NEARLY_FULL_BYTES


def write_failure(
    exc: BaseException, snapshot: Path, growing: Path, redo: str
) -> ArchiveError | None:
    """The error to show for `exc`, raised while writing `snapshot` (on disk as `growing`), or
    None when it is not about the disk. `redo` is the command to run again: "fetch", "import"."""
    if isinstance(exc, OSError) and exc.errno in _NOT_PERMITTED:
        where = Path(exc.filename).parent if exc.filename else growing.parent
        why = (
            "is on a read-only disk" if exc.errno == errno.EROFS else "is not writable by this user"
        )
        return ArchiveNotWritableError(
            f"the archive directory {where} {why}: give this user write access to it, or "
            f"choose another archive with --archive, and {redo} again"
        )
    full = isinstance(exc, OSError) and exc.errno in _OUT_OF_SPACE
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == _SQLITE_IOERR and not _hit_a_limit(growing):
            return ArchiveError(
                f"cannot write {snapshot}: {exc} (the disk may be failing): check it and "
                f"{redo} again"
            )
        full = code in (_SQLITE_FULL, _SQLITE_IOERR)
    if full:
        return ArchiveFullError(f"disk full while writing {snapshot}: free space and {redo} again")
    return None


@contextmanager
def explained_write_failures(snapshot: Path, growing: Path, redo: str) -> Iterator[None]:
    """Raise a full disk or an unwritable archive met inside as one clear `ArchiveError`."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        failure = write_failure(exc, snapshot, growing, redo)
        if failure is None:
            raise
        raise failure from exc
