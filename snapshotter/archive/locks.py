"""Advisory locks on an archive, so that jobs that must not overlap do not.

`.run.lock`: one `snapshotter run` at a time (cron firing twice, a run still going at the next
tick), and no `prune` while a run works. A fetch or import in progress is seen by its temporary
file, whose name holds its process id (`layout.live_partials`): `prune` refuses to start then.
The kernel drops a lock when its process dies, so a killed job never leaves the archive locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_LOCK = ".run.lock"


class LockBusy(Exception):
    """Another process holds the lock; the message says which job and since when, if known."""


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def hold(archive: Path, name: str, *, shared: bool = False, wait: bool = False) -> Iterator[None]:
    """Hold lock `name` of `archive` for the block. Without `wait`, raise `LockBusy` at once
    when another process holds it (exclusively, or at all for an exclusive request)."""
    fd = _open(archive / name)
    try:
        flags = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, flags if wait else flags | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise LockBusy(holder) from None
        if not shared:
            # Say who holds it, for the next one that finds it busy (pid, not a secret).
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"
