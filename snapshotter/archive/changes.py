"""The change report database, `<archive>/changes.db`: diff runs kept for Datasette and the digest.

    snapshots        one row per snapshot ever compared: school, file, times, completeness, hash
    diff_runs        one row per (old snapshot, new snapshot, options): when, options, counts,
                     volume flags, school years, the people counts (`people.headline`, JSON)
    change_counts    counts and percentages per run, entity and kind of change
    changed_records  one row per changed record: entity, sourcedId, change, a readable label, the
                     changed field names, the user/class/course involved, details (JSON), and
                     the record's status in the old and the new snapshot
    changed_fields   one row per changed field: path, old and new value

Views on top answer the questions auditors ask of a term-to-term change (see `VIEWS_SQL`). A run
is saved in one transaction, and saving the same pair with the same options again replaces it
rather than adding to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .layout import SnapshotInfo, make_private_dir, utc_iso
from .people import headline

if TYPE_CHECKING:  # the writer of a run only needs the shape of a change
    from ..diff.core import RecordChange

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  estab TEXT NOT NULL,
  school_name TEXT,
  taken_at TEXT NOT NULL,
  finished_at TEXT,
  complete INTEGER NOT NULL,
  stable INTEGER NOT NULL,
  incomplete_reason TEXT,
  source TEXT,
  provider_version TEXT,
  record_counts TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  school_year TEXT,
  UNIQUE (name, content_hash)
);
CREATE TABLE IF NOT EXISTS diff_runs (
  id INTEGER PRIMARY KEY,
  estab TEXT NOT NULL,
  school_name TEXT,
  old_snapshot INTEGER NOT NULL REFERENCES snapshots(id),
  new_snapshot INTEGER NOT NULL REFERENCES snapshots(id),
  old_taken_at TEXT NOT NULL,
  new_taken_at TEXT NOT NULL,
  include_touched INTEGER NOT NULL,
  options TEXT NOT NULL,
  run_at TEXT NOT NULL,
  tool_version TEXT NOT NULL,
  records_changed INTEGER NOT NULL DEFAULT 0,
  summary TEXT NOT NULL DEFAULT '{}',
  mass_change_pct REAL,
  mass_changes TEXT NOT NULL DEFAULT '[]',
  old_school_year TEXT,
  new_school_year TEXT,
  rollover INTEGER NOT NULL DEFAULT 0,
  headline TEXT,
  UNIQUE (old_snapshot, new_snapshot, include_touched)
);
CREATE TABLE IF NOT EXISTS change_counts (
  run_id INTEGER NOT NULL REFERENCES diff_runs(id),
  entity TEXT NOT NULL,
  change TEXT NOT NULL,
  records INTEGER NOT NULL,
  old_total INTEGER NOT NULL,
  new_total INTEGER NOT NULL,
  percent_of_old REAL,
  PRIMARY KEY (run_id, entity, change)
);
CREATE TABLE IF NOT EXISTS changed_records (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES diff_runs(id),
  entity TEXT NOT NULL,
  sourcedId TEXT NOT NULL,
  change TEXT NOT NULL,
  label TEXT,
  role TEXT,
  changed_fields TEXT,
  user_sourcedId TEXT,
  class_sourcedId TEXT,
  course_sourcedId TEXT,
  details TEXT NOT NULL DEFAULT '{}',
  old_status TEXT,
  new_status TEXT
);
CREATE TABLE IF NOT EXISTS changed_fields (
  id INTEGER PRIMARY KEY,
  record_id INTEGER NOT NULL REFERENCES changed_records(id),
  run_id INTEGER NOT NULL REFERENCES diff_runs(id),
  field TEXT NOT NULL,
  path TEXT NOT NULL,
  old,
  new,
  old_json TEXT,
  new_json TEXT,
  UNIQUE (record_id, path)
);
CREATE INDEX IF NOT EXISTS idx_changed_records_kind ON changed_records(run_id, entity, change);
CREATE INDEX IF NOT EXISTS idx_changed_records_sourcedId ON changed_records(sourcedId);
CREATE INDEX IF NOT EXISTS idx_changed_records_user ON changed_records(user_sourcedId, run_id);
CREATE INDEX IF NOT EXISTS idx_changed_fields_field ON changed_fields(run_id, field);
"""

# Who counts as staff, and the fields that make up a person's identity.
_STAFF = "('teacher', 'aide', 'administrator', 'proctor')"
_IDENTITY_FIELDS = (
    "('givenName', 'familyName', 'middleName', 'username', 'email', 'identifier', 'userIds')"
)
_RUN_COLUMNS = "r.run_id, d.estab, d.old_taken_at, d.new_taken_at"
_RUN_JOIN = "JOIN diff_runs d ON d.id = r.run_id"
_YEAR_GROUP = "(SELECT group_concat(value, ', ') FROM json_each(r.details, '$.grades'))"
# A user who left in this run's window: marked tobedeleted, removed while still active (runs
# saved before statuses were kept count every removal), or added already tobedeleted.
_LEFT_NOW = """r.entity = 'users' AND (r.change = 'tobedeleted'
  OR (r.change = 'removed' AND r.old_status IS NOT 'tobedeleted')
  OR (r.change = 'added' AND r.new_status = 'tobedeleted'))"""
# The class an enrollment is in is active in the new snapshot (runs saved before this was
# recorded lack the key: taken as active).
_CLASS_ACTIVE_NOW = """(json_extract({t}.details, '$.class_status') = 'active'
       OR json_type({t}.details, '$.class_status') IS NULL)"""

VIEWS_SQL: dict[str, str] = {
    # Users who joined: new records (whatever their status: one added already tobedeleted
    # joined and left between the snapshots, and is a leaver too), and returning ones.
    "joiners": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId, r.label,
  CASE r.change WHEN 'added' THEN 'new record' ELSE 'reactivated' END AS how,
  json_extract(r.details, '$.grades') AS grades, r.new_status, {_YEAR_GROUP} AS year_group
FROM changed_records r {_RUN_JOIN}
WHERE r.entity = 'users' AND r.change IN ('added', 'reactivated')""",
    # Users who left in this run's window, soft evidence (marked tobedeleted), hard evidence
    # (gone while active) and those who joined and left between the snapshots apart. Each
    # leaver is counted in one run only: a removal of someone already tobedeleted is in `purged`.
    "leavers": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId, r.label,
  CASE r.change WHEN 'removed' THEN 'hard' WHEN 'added' THEN 'joined and left' ELSE 'soft' END
    AS evidence,
  CASE r.change WHEN 'removed' THEN 'record removed' WHEN 'added' THEN 'added already tobedeleted'
    ELSE 'marked tobedeleted' END AS how,
  json_extract(r.details, '$.grades') AS grades, {_YEAR_GROUP} AS year_group
FROM changed_records r {_RUN_JOIN}
WHERE {_LEFT_NOW}""",
    # Users removed who were already tobedeleted: they left in an earlier window (a leaver
    # there), and the provider has now purged their records.
    "purged": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId, r.label,
  json_extract(r.details, '$.grades') AS grades, {_YEAR_GROUP} AS year_group
FROM changed_records r {_RUN_JOIN}
WHERE r.entity = 'users' AND r.change = 'removed' AND r.old_status = 'tobedeleted'""",
    # Staff who left, one row per class they held (in the old snapshot); none: one empty row.
    "staff_leavers_classes": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId AS user_sourcedId, r.label AS staff_member,
  CASE r.change WHEN 'removed' THEN 'hard' ELSE 'soft' END AS evidence,
  json_extract(held.value, '$.sourcedId') AS class_sourcedId,
  json_extract(held.value, '$.label') AS class,
  json_extract(held.value, '$.role') AS enrollment_role,
  json_extract(held.value, '$.primary') AS "primary"
FROM changed_records r {_RUN_JOIN}
LEFT JOIN json_each(r.details, '$.classes') held
WHERE {_LEFT_NOW} AND r.change != 'added' AND r.role IN {_STAFF}""",
    # Pupils (and anyone else) whose year group changed.
    "year_group_changes": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId, r.label, r.change,
  (SELECT group_concat(value, ', ') FROM json_each(f.old_json)) AS old_year_group,
  (SELECT group_concat(value, ', ') FROM json_each(f.new_json)) AS new_year_group
FROM changed_fields f JOIN changed_records r ON r.id = f.record_id {_RUN_JOIN}
WHERE r.entity = 'users' AND f.field = 'grades'""",
    # A pupil's enrollment ended in one class and another began in a class of the same course
    # (or both registration groups of the same year group: moving up a year at the rollover is a
    # year-group change, not a move); or one enrollment record moved class. Only into a class
    # still active in the new snapshot, by an enrollment still running there.
    "class_moves": f"""
WITH ended AS MATERIALIZED (
  SELECT run_id, user_sourcedId, class_sourcedId, course_sourcedId, sourcedId, change,
    json_extract(details, '$.person') AS person, json_extract(details, '$.role') AS role,
    json_extract(details, '$.class_name') AS class_name,
    json_extract(details, '$.class_type') AS class_type,
    json_extract(details, '$.class_grades') AS class_grades
  FROM changed_records
  WHERE entity = 'enrollments' AND change <> 'added'
    AND json_extract(details, '$.role') = 'student' AND json_extract(details, '$.ended')
),
began AS MATERIALIZED (
  SELECT run_id, user_sourcedId, class_sourcedId, course_sourcedId, sourcedId, change,
    json_extract(details, '$.class_name') AS class_name,
    json_extract(details, '$.class_type') AS class_type,
    json_extract(details, '$.class_grades') AS class_grades
  FROM changed_records
  WHERE entity = 'enrollments' AND json_extract(details, '$.role') = 'student'
    AND json_extract(details, '$.began') AND NOT json_extract(details, '$.ended')
    AND (json_extract(details, '$.class_status') = 'active'
         OR json_type(details, '$.class_status') IS NULL)
)
SELECT e.run_id, d.estab, d.old_taken_at, d.new_taken_at, e.user_sourcedId, e.person, e.role,
  CASE WHEN e.course_sourcedId = b.course_sourcedId THEN 'class' ELSE 'registration group' END
    AS move,
  e.course_sourcedId,
  e.class_sourcedId AS from_class_sourcedId, e.class_name AS from_class,
  b.class_sourcedId AS to_class_sourcedId, b.class_name AS to_class,
  e.sourcedId AS ended_enrollment, e.change AS ended_how,
  b.sourcedId AS began_enrollment, b.change AS began_how
FROM ended e JOIN began b
  ON b.run_id = e.run_id AND b.user_sourcedId = e.user_sourcedId
  AND b.class_sourcedId IS NOT e.class_sourcedId
JOIN diff_runs d ON d.id = e.run_id
WHERE e.course_sourcedId = b.course_sourcedId
  OR (e.class_type = 'homeroom' AND b.class_type = 'homeroom' AND e.class_grades IS b.class_grades)
UNION ALL
SELECT {_RUN_COLUMNS}, r.user_sourcedId,
  json_extract(r.details, '$.person'), json_extract(r.details, '$.role'),
  CASE WHEN r.course_sourcedId = json_extract(r.details, '$.old_course')
    THEN 'class' ELSE 'registration group' END,
  r.course_sourcedId,
  json_extract(r.details, '$.old_class'), json_extract(r.details, '$.old_class_name'),
  r.class_sourcedId, json_extract(r.details, '$.class_name'),
  r.sourcedId, 'class changed', r.sourcedId, 'class changed'
FROM changed_records r {_RUN_JOIN}
WHERE r.entity = 'enrollments' AND r.change = 'changed'
  AND json_extract(r.details, '$.role') = 'student'
  AND json_extract(r.details, '$.old_class') IS NOT NULL
  AND NOT json_extract(r.details, '$.ended') AND {_CLASS_ACTIVE_NOW.format(t="r")}
  AND (r.course_sourcedId = json_extract(r.details, '$.old_course')
       OR (json_extract(r.details, '$.class_type') = 'homeroom'
           AND json_extract(r.details, '$.old_class_type') = 'homeroom'
           AND json_extract(r.details, '$.class_grades')
               IS json_extract(r.details, '$.old_class_grades')))""",
    # Names, username, email, identifier and userIds, before and after.
    "identity_changes": f"""
SELECT {_RUN_COLUMNS}, r.role, r.sourcedId, r.label, r.change, f.field, f.path,
  f.old AS old_value, f.new AS new_value
FROM changed_fields f JOIN changed_records r ON r.id = f.record_id {_RUN_JOIN}
WHERE r.entity = 'users' AND f.field IN {_IDENTITY_FIELDS}""",
    # Classes, courses, terms and orgs created or retired.
    "structure_changes": f"""
SELECT {_RUN_COLUMNS}, r.entity, r.change, r.sourcedId, r.label
FROM changed_records r {_RUN_JOIN}
WHERE r.entity IN ('orgs', 'academicSessions', 'courses', 'classes')
  AND r.change IN ('added', 'removed', 'tobedeleted', 'reactivated')""",
}


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists already."""
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


# Which shape a database has, kept in its user_version: a database already in this shape is
# left alone (shaping it again would cost a commit on every diff).
SHAPE_VERSION = zlib.crc32((TABLES_SQL + repr(sorted(VIEWS_SQL.items()))).encode()) & 0x7FFFFFFF


# A diff that cannot get the write lock (another diff is saving) says so on stderr after this
# many seconds, then waits on as long as it takes: losing a report to a timeout is worse.
LOCK_NOTICE_AFTER_S = 3.0
LOCK_NOTICE = "waiting for changes.db: another diff is saving into {path}"


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _wait_for_lock(conn: sqlite3.Connection, statement: str, path: str) -> sqlite3.Cursor:
    """Run `statement`, retrying as long as another connection holds the lock it needs; one
    line on stderr the first time a wait outlasts the connection's busy timeout."""
    told = False
    while True:
        try:
            return conn.execute(statement)
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                raise
            if not told:
                print(LOCK_NOTICE.format(path=path), file=sys.stderr, flush=True)
                told = True


def _database_path(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] or ":memory:"


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that holds the write lock from its start (BEGIN IMMEDIATE),
    waiting for it as long as needed; committed at the end, rolled back on any error."""
    path = _database_path(conn)
    _wait_for_lock(conn, "BEGIN IMMEDIATE", path)
    try:
        yield conn
        _wait_for_lock(conn, "COMMIT", path)  # waits for readers to finish, if any
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        _settle(conn)
        raise


def _settle(conn: sqlite3.Connection) -> None:
    """After a failed write (a full disk), read once: SQLite then plays its journal back
    into the file at once, instead of leaving that to whoever opens it next."""
    with suppress(sqlite3.Error):  # else the next connection to open the file rolls it back
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


# Columns added to a table after it was first shipped: `CREATE TABLE IF NOT EXISTS` leaves an
# older database's table as it was, so `ensure_shape` adds them (empty for the runs already kept).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("changed_records", "old_status", "TEXT"),
    ("changed_records", "new_status", "TEXT"),
    ("diff_runs", "headline", "TEXT"),
)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, kind in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
        if column not in present:
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {kind}')


def ensure_shape(conn: sqlite3.Connection) -> None:
    """Tables, indexes and views, created if missing; views always match this version.

    Shaping happens in one write transaction, the version checked again once it holds the
    lock: two diffs shaping a fresh (or older) database at once shape it once, in turn."""
    path = _database_path(conn)
    if _wait_for_lock(conn, "PRAGMA user_version", path).fetchone()[0] == SHAPE_VERSION:
        return
    with write_transaction(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == SHAPE_VERSION:
            return  # another diff shaped it while this one waited
        # One statement at a time: executescript would commit the transaction first.
        for statement in TABLES_SQL.split(";"):
            if statement.strip():
                conn.execute(statement)
        _add_missing_columns(conn)
        for name, select in VIEWS_SQL.items():
            conn.execute(f'DROP VIEW IF EXISTS "{name}"')
            conn.execute(f'CREATE VIEW "{name}" AS {select}')
        conn.execute(f"PRAGMA user_version = {SHAPE_VERSION}")


def open_changes_db(path: Path) -> sqlite3.Connection:
    """The changes database at `path`, created (owner-only) and shaped if need be."""
    create_private_file(path)
    conn = sqlite3.connect(path, timeout=LOCK_NOTICE_AFTER_S)
    try:
        conn.row_factory = sqlite3.Row
        ensure_shape(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def memory_changes_db() -> sqlite3.Connection:
    """A throwaway changes database in memory: for --no-save, and for the report of a diff
    whose save failed (a full disk must not stop the report)."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    ensure_shape(conn)
    return conn


def _display(value: Any) -> Any:
    """A value as a person reads it in a table: text as text, the rest (structures, true and
    false) as JSON; `old_json` and `new_json` keep the exact value."""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return value


# One encoder for every value written: building one per call costs more than the encoding.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _save_snapshot(conn: sqlite3.Connection, info: SnapshotInfo, school_year: str | None) -> int:
    row = (
        info.path.stem,
        str(info.path.resolve()),
        info.estab,
        info.school_name,
        info.taken_at,
        info.finished_at,
        int(info.complete),
        int(info.stable),
        info.incomplete_reason,
        info.source,
        None if info.provider_version is None else _json(info.provider_version),
        _json(info.record_counts),
        info.content_hash,
        school_year,
    )
    conn.execute(
        "INSERT INTO snapshots (name, path, estab, school_name, taken_at, finished_at, complete, "
        "stable, incomplete_reason, source, provider_version, record_counts, content_hash, "
        "school_year) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name, content_hash) DO UPDATE SET path = excluded.path, "
        "school_year = excluded.school_year",
        row,
    )
    return conn.execute(
        "SELECT id FROM snapshots WHERE name = ? AND content_hash = ?",
        (info.path.stem, info.content_hash),
    ).fetchone()[0]


@dataclass(frozen=True)
class RunKey:
    """What makes two diff runs the same run: the same two snapshots, the same options."""

    old: SnapshotInfo
    new: SnapshotInfo
    include_touched: bool


def begin_run(
    conn: sqlite3.Connection,
    key: RunKey,
    *,
    options: Mapping[str, Any],
    tool_version: str,
    old_school_year: str | None = None,
    new_school_year: str | None = None,
) -> int:
    """Start (or restart) the run for `key` inside the caller's transaction: its id, emptied."""
    old_id = _save_snapshot(conn, key.old, old_school_year)
    new_id = _save_snapshot(conn, key.new, new_school_year)
    conn.execute(
        "INSERT INTO diff_runs (estab, school_name, old_snapshot, new_snapshot, old_taken_at, "
        "new_taken_at, include_touched, options, run_at, tool_version, old_school_year, "
        "new_school_year) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (old_snapshot, new_snapshot, include_touched) DO UPDATE SET "
        "options = excluded.options, run_at = excluded.run_at, "
        "tool_version = excluded.tool_version, old_school_year = excluded.old_school_year, "
        "new_school_year = excluded.new_school_year",
        (
            key.new.estab,
            key.new.school_name or key.old.school_name,
            old_id,
            new_id,
            key.old.taken_at,
            key.new.taken_at,
            int(key.include_touched),
            _json(dict(options)),
            utc_iso(datetime.now(UTC)),
            tool_version,
            old_school_year,
            new_school_year,
        ),
    )
    run_id = conn.execute(
        "SELECT id FROM diff_runs WHERE old_snapshot = ? AND new_snapshot = ? "
        "AND include_touched = ?",
        (old_id, new_id, int(key.include_touched)),
    ).fetchone()[0]
    # Saving a pair again replaces what it found last time.
    for table in ("changed_fields", "changed_records", "change_counts"):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    return run_id


def add_changes(
    conn: sqlite3.Connection, run_id: int, changes: Iterable[RecordChange], batch_size: int = 2000
) -> dict[str, dict[str, int]]:
    """Write a stream of record changes into a run; the count of each kind per entity."""
    counts: dict[str, dict[str, int]] = {}
    next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM changed_records").fetchone()[0]
    records: list[tuple[Any, ...]] = []
    fields: list[tuple[Any, ...]] = []
    for change in changes:
        per_entity = counts.setdefault(change.entity, {})
        per_entity[change.change] = per_entity.get(change.change, 0) + 1
        details = change.details
        records.append(
            (
                next_id,
                run_id,
                change.entity,
                change.sourcedId,
                change.change,
                change.label,
                details.get("role"),
                ", ".join(change.changed_field_names) or None,
                details.get("user"),
                details.get("class"),
                details.get("course"),
                _json(details),
                change.old_status,
                change.new_status,
            )
        )
        for field_change in change.fields:
            fields.append(
                (
                    next_id,
                    run_id,
                    field_change.field,
                    field_change.path,
                    _display(field_change.old),
                    _display(field_change.new),
                    _json(field_change.old),
                    _json(field_change.new),
                )
            )
        next_id += 1
        if len(records) >= batch_size:
            _flush(conn, records, fields)
    _flush(conn, records, fields)
    return counts


def _flush(
    conn: sqlite3.Connection, records: list[tuple[Any, ...]], fields: list[tuple[Any, ...]]
) -> None:
    conn.executemany(
        "INSERT INTO changed_records (id, run_id, entity, sourcedId, change, label, role, "
        "changed_fields, user_sourcedId, class_sourcedId, course_sourcedId, details, "
        "old_status, new_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        records,
    )
    conn.executemany(
        "INSERT INTO changed_fields (record_id, run_id, field, path, old, new, old_json, "
        "new_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        fields,
    )
    records.clear()
    fields.clear()


def finish_run(
    conn: sqlite3.Connection,
    run_id: int,
    *,
    summary: Mapping[str, Mapping[str, int]],
    old_counts: Mapping[str, int],
    new_counts: Mapping[str, int],
    mass_change_pct: float,
    mass_changes: list[dict[str, Any]],
    rollover: bool,
) -> None:
    """Record a run's totals, per-kind counts and volume flags."""
    rows = []
    for entity, kinds in summary.items():
        old_total = old_counts.get(entity, 0)
        for kind, records in kinds.items():
            percent = round(100.0 * records / old_total, 2) if old_total else None
            new_total = new_counts.get(entity, 0)
            rows.append((run_id, entity, kind, records, old_total, new_total, percent))
    conn.executemany("INSERT INTO change_counts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute(
        "UPDATE diff_runs SET records_changed = ?, summary = ?, mass_change_pct = ?, "
        "mass_changes = ?, rollover = ? WHERE id = ?",
        (
            sum(n for kinds in summary.values() for kind, n in kinds.items() if kind != "touched"),
            _json(summary),
            mass_change_pct,
            _json(mass_changes),
            int(rollover),
            run_id,
        ),
    )
    # The people counts, stored with the run: a page listing a year of runs reads one small row
    # each instead of running the views per run. Runs saved before this column have NULL.
    conn.execute(
        "UPDATE diff_runs SET headline = ? WHERE id = ?", (_json(headline(conn, run_id)), run_id)
    )
