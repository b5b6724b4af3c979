"""A diff from start to finish: compare, keep the run (or not), render the report."""

from __future__ import annotations

import errno
import sqlite3
import sys
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..archive.changes import memory_changes_db, open_changes_db, write_transaction
from ..archive.layout import ArchiveError, SnapshotInfo
from ..atomic import write_atomically
from ..report import load_report, render
from ..safe_text import printable
from .run import diff_into
from .volume import MassChange

# Reading a saved run back waits this long (about 24 days: as long as needed) for a lock.
READ_WAIT_MS = 2**31 - 1


@dataclass(frozen=True)
class DiffOptions:
    include_touched: bool = False
    mass_change_pct: float | None = None  # None: flag at DEFAULT_MASS_CHANGE_PCT, never fail
    allow_partial: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class DiffOutcome:
    run_id: int
    saved_to: Path | None  # the changes database, or None with --no-save
    mass_changes: list[MassChange]
    rollover: bool


class SaveError(ArchiveError):
    """The report was made (and shown) but could not be kept in the changes database."""

    def __init__(self, changes_db: Path, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        code = getattr(exc, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) or (
            isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        ):
            advice = "free some disk space (or check the disk), then run the diff again"
        elif primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) or (
            isinstance(exc, PermissionError)
        ):
            advice = f"make {changes_db} and its directory writable, then run the diff again"
        else:
            advice = (
                f"check {changes_db} (sqlite3 {changes_db} 'PRAGMA integrity_check') or move it "
                "aside, then run the diff again"
            )
        super().__init__(
            f"the report was not saved in {changes_db}: {reason}; {advice} (or use --no-save)"
        )
        self.changes_db = changes_db


def run_and_render(
    old: SnapshotInfo,
    new: SnapshotInfo,
    changes_db: Path | None,
    output_format: str,
    output: Path | None = None,
    options: DiffOptions | None = None,
    out: TextIO | None = None,
    examples: int | None = None,
) -> DiffOutcome:
    """Diff `old` to `new`, save into `changes_db` (None: nowhere), write the report to
    `output` (a file, written whole or not at all) or `out` (default standard output).
    `examples`: list at most that many records of each kind in the text form.

    When saving fails (a full disk, a read-only or damaged changes.db), the report is still
    written, then `SaveError` says why it was not kept."""
    options = options or DiffOptions()
    diff_options = {
        "include_touched": options.include_touched,
        "mass_change_pct": options.mass_change_pct,
        "options": {"allow_partial": options.allow_partial, "reverse": options.reverse},
    }

    save_error: SaveError | None = None
    with ExitStack() as stack:
        saved = None
        if changes_db is not None:
            try:
                conn = stack.enter_context(closing(open_changes_db(changes_db)))
                with write_transaction(conn):
                    result = diff_into(conn, old, new, **diff_options)
                saved = changes_db
            except (sqlite3.Error, OSError, ArchiveError) as exc:
                save_error = SaveError(changes_db, exc)
        if saved is None:
            # Not saved (--no-save, or saving failed): the same report from a database in
            # memory. A problem with the snapshots themselves fails here again, as itself.
            conn = stack.enter_context(closing(memory_changes_db()))
            with write_transaction(conn):
                result = diff_into(conn, old, new, **diff_options)
        else:
            # The run is committed: reading it back waits out another diff's save however long.
            conn.execute(f"PRAGMA busy_timeout = {READ_WAIT_MS}")
        report = load_report(conn, result.run_id)
        report.cache["quality"] = _quality(old, new, saved)
        if output is None:
            render(report, output_format, out or sys.stdout, examples=examples)
        else:
            write_atomically(
                output, lambda handle: render(report, output_format, handle, examples=examples)
            )
    if save_error is not None:
        raise save_error
    return DiffOutcome(result.run_id, saved, result.mass_changes, result.rollover)


def _quality(old: SnapshotInfo, new: SnapshotInfo, saved: Path | None) -> object:
    """The report's data-quality part: each snapshot's findings (kept in changes.db when the
    run was saved) compared. The checks failing costs the report that part, never the report."""
    from ..quality.compare import quality_changes

    try:
        return quality_changes(old, new, saved)
    except Exception as exc:  # noqa: BLE001 - a report without its quality part, and why
        print(
            printable(f"Warning: the report has no data-quality part: {exc}"),
            file=sys.stderr,
            flush=True,
        )
        return None
