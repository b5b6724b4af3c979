"""Findings kept in the archive's `changes.db`, one set per snapshot (by name and content hash).

    quality_checks    one row per snapshot checked: its name, content hash, school, when it
                      was taken, when checked, by which version, and the counts per rule
    quality_findings  one row per finding: the rule, severity, entity, sourcedId, label,
                      message and related sourcedIds (JSON)

Written in one write transaction (BEGIN IMMEDIATE, as every changes.db write), replacing the
snapshot's earlier findings. A snapshot whose findings are kept is not checked again: its file
never changes, and a changed file has another content hash.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..archive import changes
from ..archive.layout import SnapshotInfo, changes_db_path, read_snapshot_info, utc_iso
from ..safe_text import printable
from .rules import RULE_BY_ID, Finding
from .run import CheckResult, check_snapshot, provenance

_TABLES = (
    """CREATE TABLE IF NOT EXISTS quality_checks (
  id INTEGER PRIMARY KEY,
  snapshot_name TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  estab TEXT NOT NULL,
  taken_at TEXT NOT NULL,
  checked_at TEXT NOT NULL,
  tool_version TEXT NOT NULL,
  counts TEXT NOT NULL,
  UNIQUE (snapshot_name, content_hash)
)""",
    """CREATE TABLE IF NOT EXISTS quality_findings (
  id INTEGER PRIMARY KEY,
  check_id INTEGER NOT NULL REFERENCES quality_checks(id) ON DELETE CASCADE,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  entity TEXT NOT NULL,
  sourcedId TEXT NOT NULL,
  label TEXT,
  message TEXT NOT NULL,
  related TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS quality_findings_by_check ON quality_findings (check_id, rule)",
)


def has_kept_checks(conn: sqlite3.Connection) -> bool:
    """Whether this changes.db holds the quality tables (a check was ever kept in it)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'quality_findings'"
    ).fetchone()
    return row[0] > 0


def kept_check_id(conn: sqlite3.Connection, info: SnapshotInfo) -> int | None:
    """The `quality_checks` row kept for this snapshot (its name and content), if any."""
    if not has_kept_checks(conn):
        return None
    row = conn.execute(
        "SELECT id FROM quality_checks WHERE snapshot_name = ? AND content_hash = ?",
        (info.path.stem, info.content_hash),
    ).fetchone()
    return None if row is None else int(row[0])


def load_kept(conn: sqlite3.Connection, info: SnapshotInfo) -> CheckResult | None:
    """The findings kept for this snapshot, or None when it was never checked."""
    check_id = kept_check_id(conn, info)
    if check_id is None:
        return None
    findings = [
        Finding(
            rule=rule,
            severity=severity,
            entity=entity,
            sourcedId=sid,
            label=label or sid,
            message=message,
            related=tuple(json.loads(related)),
        )
        for rule, severity, entity, sid, label, message, related in conn.execute(
            "SELECT rule, severity, entity, sourcedId, label, message, related "
            "FROM quality_findings WHERE check_id = ? ORDER BY id",
            (check_id,),
        )
        if rule in RULE_BY_ID  # a rule a later version dropped is not shown
    ]
    return CheckResult(snapshot=provenance(info), findings=findings)


def save(conn: sqlite3.Connection, info: SnapshotInfo, result: CheckResult) -> None:
    """Keep `result` as the findings of `info`, replacing any kept before, in one transaction."""
    with changes.write_transaction(conn):
        for statement in _TABLES:
            conn.execute(statement)
        conn.execute(
            "DELETE FROM quality_findings WHERE check_id IN (SELECT id FROM quality_checks "
            "WHERE snapshot_name = ? AND content_hash = ?)",
            (info.path.stem, info.content_hash),
        )
        conn.execute(
            "DELETE FROM quality_checks WHERE snapshot_name = ? AND content_hash = ?",
            (info.path.stem, info.content_hash),
        )
        check_id = conn.execute(
            "INSERT INTO quality_checks (snapshot_name, content_hash, estab, taken_at, "
            "checked_at, tool_version, counts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                info.path.stem,
                info.content_hash,
                info.estab,
                info.taken_at,
                utc_iso(datetime.now(UTC)),
                __version__,
                json.dumps(result.counts),
            ),
        ).lastrowid
        conn.executemany(
            "INSERT INTO quality_findings (check_id, rule, severity, entity, sourcedId, label, "
            "message, related) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    check_id,
                    f.rule,
                    f.severity,
                    f.entity,
                    f.sourcedId,
                    f.label,
                    f.message,
                    json.dumps(list(f.related), ensure_ascii=False),
                )
                for f in result.findings
            ],
        )


def kept_check(changes_db: Path | None, info: SnapshotInfo) -> CheckResult:
    """The snapshot's findings: those kept in `changes_db`, else computed and kept there once
    (not kept when `changes_db` is None)."""
    if changes_db is None:
        return check_snapshot(info)
    result: CheckResult | None = None
    try:
        with closing(changes.open_changes_db(changes_db)) as conn:
            kept = load_kept(conn, info)
            if kept is not None:
                return kept
            result = check_snapshot(info)
            save(conn, info, result)
            return result
    except (sqlite3.Error, OSError) as exc:
        # changes.db read-only, damaged or on a full disk: the findings are still shown.
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        print(
            printable(f"Warning: the findings were not kept in {changes_db}: {reason}"),
            file=sys.stderr,
            flush=True,
        )
        return result if result is not None else check_snapshot(info)


def keep_for_new_snapshot(archive: Path, snapshot: Path) -> CheckResult | None:
    """Run and keep the checks of a snapshot just fetched or imported. A failure of the checks
    never fails the fetch: it is one warning line on stderr, and None."""
    try:
        info = read_snapshot_info(snapshot)
        with closing(changes.open_changes_db(changes_db_path(archive))) as conn:
            result = check_snapshot(info)
            save(conn, info, result)
            return result
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the snapshot stays
        print(
            printable(
                f"Warning: the data-quality checks of {snapshot.name} were not kept: {exc}; "
                f"run `snapshotter check {snapshot}` to try again"
            ),
            file=sys.stderr,
            flush=True,
        )
        return None
