"""The record index, `<archive>/history.db`: every record's versions across a school's snapshots,
so a history or a people search reads one small file instead of opening every snapshot.

    snapshots    per school, the snapshots indexed, in archive order (`seq` 1, 2, ...)
    unreadable   per school, files named like snapshots that could not be indexed (and why)
    records      one row per (school, entity, sourcedId)
    versions     one row per distinct content (`_hash`) of a record: its `_record` JSON, status,
                 and for enrollments the user and class, so a user's enrollments are one query
    spans        each run of consecutive snapshots a record kept one version: `first_seq`,
                 `last_seq` (NULL while it is still in the latest snapshot) and `gone_seq`, the
                 snapshot it was missing from when it disappeared
    people       one row per user per school: names, email, username, identifiers, role, first
                 seen, whether they left and when, earlier names and emails; full-text indexed
                 (`people_fts`, sqlite-utils' `enable_fts`)

It is derived from the snapshot files only, so it can be deleted at any time: the next `fetch`,
`import`, `serve` or page rebuilds it. Indexing a snapshot reads only its (sourcedId, `_hash`)
pairs, and `_record` for the versions not seen before; a snapshot added out of order or removed
makes that school's index be rebuilt (`history_snapshot` indexes one snapshot). Each snapshot
is indexed in its own `BEGIN IMMEDIATE` transaction, so several fetches may update it at once
and a reader never sees half a snapshot.

Incomplete snapshots are indexed and marked. In a collection that did not finish, a record that
is missing is taken as unchanged (it did not disappear); records it does hold count as seen.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import parse_started_at
from .history_snapshot import OpenSpans, index_snapshot
from .layout import (
    ArchiveError,
    SnapshotFileError,
    SnapshotInfo,
    UnreadableSnapshot,
    damage_problem,
    list_archive,
    read_only_uri,
    read_snapshot_info,
    safe_estab,
    snapshot_paths,
    time_from_name,
    utc_iso,
)

HISTORY_DB = "history.db"
SHAPE_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
# The searchable columns of `people`.
PEOPLE_FTS_COLUMNS = ("name", "email", "username", "identifier", "upn", "earlier")

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY,
  estab TEXT NOT NULL,
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  school_name TEXT,
  taken_at TEXT NOT NULL,
  finished_at TEXT,
  complete INTEGER NOT NULL,
  incomplete_reason TEXT,
  incomplete_collections TEXT,
  content_hash TEXT NOT NULL,
  UNIQUE (estab, seq),
  UNIQUE (estab, name)
);
CREATE TABLE IF NOT EXISTS unreadable (
  estab TEXT NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (estab, name)
);
CREATE TABLE IF NOT EXISTS records (
  id INTEGER PRIMARY KEY,
  estab TEXT NOT NULL,
  entity TEXT NOT NULL,
  sourcedId TEXT NOT NULL,
  UNIQUE (estab, entity, sourcedId)
);
CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY,
  record_id INTEGER NOT NULL REFERENCES records(id),
  hash TEXT NOT NULL,
  status TEXT,
  record TEXT NOT NULL,
  user_sourcedId TEXT,
  class_sourcedId TEXT,
  UNIQUE (record_id, hash)
);
CREATE INDEX IF NOT EXISTS versions_user ON versions(user_sourcedId)
  WHERE user_sourcedId IS NOT NULL;
CREATE INDEX IF NOT EXISTS versions_class ON versions(class_sourcedId)
  WHERE class_sourcedId IS NOT NULL;
CREATE TABLE IF NOT EXISTS spans (
  id INTEGER PRIMARY KEY,
  record_id INTEGER NOT NULL REFERENCES records(id),
  version_id INTEGER NOT NULL REFERENCES versions(id),
  first_seq INTEGER NOT NULL,
  last_seq INTEGER,
  gone_seq INTEGER
);
CREATE INDEX IF NOT EXISTS spans_record ON spans(record_id, first_seq);
CREATE INDEX IF NOT EXISTS spans_version ON spans(version_id);
CREATE INDEX IF NOT EXISTS spans_open ON spans(record_id) WHERE last_seq IS NULL;
CREATE TABLE IF NOT EXISTS people (
  id INTEGER PRIMARY KEY,
  estab TEXT NOT NULL,
  sourcedId TEXT NOT NULL,
  name TEXT,
  givenName TEXT,
  familyName TEXT,
  email TEXT,
  username TEXT,
  identifier TEXT,
  upn TEXT,
  role TEXT,
  grades TEXT,
  status TEXT,
  first_seen TEXT,
  last_seen TEXT,
  in_latest INTEGER NOT NULL,
  marked_tobedeleted_at TEXT,
  gone_at TEXT,
  earlier TEXT,
  UNIQUE (estab, sourcedId)
);
"""


class HistoryIndexError(Exception):
    """The index cannot be read or updated; the message says why and what to do."""


@dataclass
class IndexReport:
    """What one update did: snapshots indexed, schools rebuilt, seconds taken."""

    indexed: int = 0
    rebuilt: list[str] | None = None
    seconds: float = 0.0


def history_path(archive: Path) -> Path:
    return archive / HISTORY_DB


def _shaped_file(path: Path, *, replace: bool = False) -> None:
    """Put an empty, shaped index at `path` unless one is there (or in place of one of another
    shape, with `replace`): built aside in an owner-only file and linked into place, so two
    processes starting at once never shape one file twice, nor replace one the other is
    writing (sqlite-utils' `enable_fts` runs scripts that cannot share a transaction)."""
    import sqlite_utils

    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    fd = os.open(aside, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        with closing(sqlite3.connect(aside, isolation_level=None)) as conn:
            conn.executescript(TABLES_SQL)
            sqlite_utils.Database(conn)["people"].enable_fts(
                PEOPLE_FTS_COLUMNS, create_triggers=True
            )
            conn.execute(f"PRAGMA user_version = {SHAPE_VERSION}")
        if replace:
            os.replace(aside, path)  # an index of another shape: it held nothing of its own
        else:
            with suppress(FileExistsError):  # another process made it first
                os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def open_for_writing(archive: Path) -> sqlite3.Connection:
    """history.db, created owner-only and shaped if new; `HistoryIndexError` when it cannot be
    written (a read-only archive, a damaged file)."""
    path = history_path(archive)
    try:
        if not archive.is_dir():
            raise HistoryIndexError(f"there is no archive at {archive}")
        if not path.exists():
            _shaped_file(path)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SHAPE_VERSION:
            conn.close()
            _shaped_file(path, replace=True)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # A cheap write that fails now, not halfway, when the file or folder is read-only.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except (OSError, sqlite3.Error) as exc:
        raise HistoryIndexError(_why(path, exc)) from None
    return conn


def open_for_reading(archive: Path) -> sqlite3.Connection | None:
    """history.db read-only, or None when there is none (yet)."""
    path = history_path(archive)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SHAPE_VERSION:
            conn.close()
            return None
    except sqlite3.Error as exc:
        raise HistoryIndexError(_why(path, exc)) from None
    conn.row_factory = sqlite3.Row
    return conn


def _why(path: Path, exc: Exception) -> str:
    return (
        f"cannot update the record index {path} ({exc}); it is rebuilt from the snapshots, "
        "so it is safe to delete it, or give this program write access to the archive"
    )


# One update at a time per archive in this process (pages of one server); other processes
# are kept in step by BEGIN IMMEDIATE.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(archive: Path) -> threading.Lock:
    key = str(archive.resolve())
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(key, threading.Lock())


def school_keys(archive: Path) -> list[str]:
    """The schools with a folder of snapshots in the archive (their folder names)."""
    if not archive.is_dir():
        return []
    return sorted(
        p.name for p in archive.iterdir() if p.is_dir() and snapshot_paths(archive, p.name)
    )


def is_current(archive: Path, estab: str | None = None) -> bool:
    """Whether the index holds exactly the snapshot files the archive has now (one school or
    all), judged by their names: no snapshot file is opened."""
    conn = open_for_reading(archive)
    if conn is None:
        return False
    with closing(conn):
        estabs = [safe_estab(estab)] if estab is not None else school_keys(archive)
        indexed_schools = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT estab FROM snapshots UNION SELECT estab FROM unreadable"
            )
        }
        if estab is None and indexed_schools - set(estabs):
            return False  # a school's snapshots were all removed
        for key in estabs:
            on_disk = {p.stem for p in snapshot_paths(archive, key)}
            known = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM snapshots WHERE estab = ? "
                    "UNION SELECT name FROM unreadable WHERE estab = ?",
                    (key, key),
                )
            }
            if on_disk != known:
                return False
    return True


def update_index(
    archive: Path,
    estab: str | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> IndexReport:
    """Bring history.db up to date with the archive (one school, or all): index the snapshots
    it lacks, rebuild a school whose snapshots were reordered or removed. `progress(estab, done,
    total)` is called after each snapshot indexed. `HistoryIndexError` when it cannot be
    written."""
    began = time.monotonic()
    report = IndexReport(rebuilt=[])
    with _lock_for(archive):
        conn = open_for_writing(archive)
        try:
            with closing(conn):
                keys = [safe_estab(estab)] if estab is not None else school_keys(archive)
                if estab is None:
                    _forget_schools_gone(conn, set(keys))
                for key in keys:
                    _update_school(conn, archive, key, report, progress)
        except sqlite3.Error as exc:
            raise HistoryIndexError(_why(history_path(archive), exc)) from None
    report.seconds = time.monotonic() - began
    return report


def _forget_schools_gone(conn: sqlite3.Connection, keys: set[str]) -> None:
    indexed = {
        row[0]
        for row in conn.execute("SELECT estab FROM snapshots UNION SELECT estab FROM unreadable")
    }
    for gone in indexed - keys:
        with _immediate(conn):
            _delete_school(conn, gone)


class _immediate:
    """A write transaction holding the write lock from its start."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _delete_school(conn: sqlite3.Connection, estab: str) -> None:
    ids = "SELECT id FROM records WHERE estab = ?"
    conn.execute(f"DELETE FROM spans WHERE record_id IN ({ids})", (estab,))
    conn.execute(f"DELETE FROM versions WHERE record_id IN ({ids})", (estab,))
    conn.execute("DELETE FROM records WHERE estab = ?", (estab,))
    conn.execute("DELETE FROM people WHERE estab = ?", (estab,))
    conn.execute("DELETE FROM snapshots WHERE estab = ?", (estab,))
    conn.execute("DELETE FROM unreadable WHERE estab = ?", (estab,))


def _indexed(conn: sqlite3.Connection, estab: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, content_hash FROM snapshots WHERE estab = ? ORDER BY seq", (estab,)
    ).fetchall()


def _order_key(taken_at: str, name: str) -> tuple[Any, int, str]:
    """Archive order (`layout.list_archive`'s): the time a snapshot began, then its name's
    `-N` serial as a number."""
    stem, _, serial = name.rpartition("-")
    if stem and serial.isdigit() and name.endswith("Z-" + serial):
        return (parse_started_at(taken_at), int(serial), stem)
    return (parse_started_at(taken_at), 1, name)


def _plan(
    conn: sqlite3.Connection, archive: Path, estab: str
) -> tuple[list[tuple[str, str]], dict[str, SnapshotInfo], list[UnreadableSnapshot]] | None:
    """The school's snapshots when the archive only gained newer ones since the index was
    updated (the nightly case): the indexed ones are taken as they are, only the new files are
    opened. None when a snapshot went, or one arrived out of order: then all are read."""
    on_disk = {path.stem: path for path in snapshot_paths(archive, estab)}
    indexed = conn.execute(
        "SELECT name, content_hash, taken_at FROM snapshots WHERE estab = ? ORDER BY seq",
        (estab,),
    ).fetchall()
    if any(name not in on_disk for name, _hash, _taken in indexed):
        return None
    known = {name for name, _hash, _taken in indexed}
    new = [path for stem, path in on_disk.items() if stem not in known]
    read: list[SnapshotInfo] = []
    unreadable: list[UnreadableSnapshot] = []
    for path in new:
        try:
            read.append(read_snapshot_info(path))
        except ArchiveError as exc:  # as `list_archive` words it
            problem = exc.problem if isinstance(exc, SnapshotFileError) else str(exc)
            named = time_from_name(path)
            taken_at = utc_iso(named) if named is not None else ""
            unreadable.append(UnreadableSnapshot(path, estab, taken_at, problem))
    infos = sorted(read, key=lambda i: _order_key(i.taken_at, i.path.stem))
    if indexed and infos:
        last_name, _hash, last_taken = indexed[-1]
        if _order_key(infos[0].taken_at, infos[0].path.stem) <= _order_key(last_taken, last_name):
            return None
    wanted = [(name, digest) for name, digest, _taken in indexed]
    wanted += [(info.path.stem, info.content_hash) for info in infos]
    return wanted, {info.path.stem: info for info in infos}, unreadable


def _update_school(
    conn: sqlite3.Connection,
    archive: Path,
    estab: str,
    report: IndexReport,
    progress: Callable[[str, int, int], None] | None,
) -> None:
    plan = _plan(conn, archive, estab)
    if plan is None:
        listing = list_archive(archive, estab)
        wanted = [(info.path.stem, info.content_hash) for info in listing.snapshots]
        plan = wanted, {info.path.stem: info for info in listing.snapshots}, listing.unreadable
    wanted, infos, unreadable = plan
    on_disk = {path.stem for path in snapshot_paths(archive, estab)}
    with _immediate(conn):
        # Files still unreadable stay noted; new ones are added; those gone are forgotten.
        for (name,) in conn.execute(
            "SELECT name FROM unreadable WHERE estab = ?", (estab,)
        ).fetchall():
            if name not in on_disk or name in infos:
                conn.execute("DELETE FROM unreadable WHERE estab = ? AND name = ?", (estab, name))
        conn.executemany(
            "INSERT OR REPLACE INTO unreadable (estab, name, reason) VALUES (?, ?, ?)",
            [(estab, lost.path.stem, lost.reason) for lost in unreadable],
        )
    state = OpenSpans(estab)
    while True:
        with _immediate(conn):
            indexed = _indexed(conn, estab)
            skipped = {
                row[0]
                for row in conn.execute("SELECT name FROM unreadable WHERE estab = ?", (estab,))
            }
            todo = [pair for pair in wanted if pair[0] not in skipped]
            if indexed != todo[: len(indexed)]:
                if len(infos) < len(wanted):
                    # Another process changed the index meanwhile: read every snapshot.
                    listing = list_archive(archive, estab)
                    wanted = [(info.path.stem, info.content_hash) for info in listing.snapshots]
                    infos = {info.path.stem: info for info in listing.snapshots}
                    continue
                # Reordered (an older snapshot imported) or removed (pruned): start again.
                _delete_school(conn, estab)
                report.rebuilt = [*(report.rebuilt or []), estab]
                state = OpenSpans(estab)
                continue
            if len(indexed) == len(todo):
                return
            info = infos[todo[len(indexed)][0]]
            seq = len(indexed) + 1
            try:
                index_snapshot(conn, info, seq, state)
            except (sqlite3.DatabaseError, ArchiveError, ValueError):
                problem = damage_problem(info.path)
                if problem is None:
                    raise  # history.db is what failed
                # The snapshot file itself is damaged: noted and left out, as the listing does.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT OR REPLACE INTO unreadable (estab, name, reason) VALUES (?, ?, ?)",
                    (estab, info.path.stem, problem),
                )
                state = OpenSpans(estab)
                continue
            report.indexed += 1
        if progress is not None:
            progress(estab, len(indexed) + 1, len(todo))


def index_published(archive: Path, snapshot_path: Path) -> str | None:
    """Index a snapshot just published by a fetch or an import, with the rest of its school's
    snapshots the index lacks. Never raises: the fetch has succeeded whatever happens here, so a
    failure is returned as one line for stderr (the index catches up at the next update)."""
    try:
        update_index(archive, snapshot_path.parent.name)
    except Exception as exc:  # noqa: BLE001 - any failure here must leave the fetch a success
        return f"Warning: the record index (history and search) was not updated: {exc}"
    return None


def catch_up(archive: Path, say: Callable[[str], None], *, after_s: float = 2.0) -> None:
    """Bring the index up to date before a server starts, saying how far it has got (on
    `say`, e.g. stderr) when that takes more than `after_s` seconds; a failure is said, not
    raised (the pages then say it too)."""
    began = time.monotonic()
    shown = [began]

    def progress(estab: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - began >= after_s and (now - shown[0] >= after_s or done == total):
            shown[0] = now
            say(f"Indexing snapshots for history and search: school {estab}, {done} of {total}")

    try:
        if not is_current(archive):
            update_index(archive, progress=progress)
    except (HistoryIndexError, ArchiveError, OSError) as exc:
        say(f"Warning: {exc}")
