"""What the history and search pages show, read from the record index (`archive.history`) and
`changes.db`: pure functions over read-only connections, no snapshot file opened.

A record's history is its spans (runs of snapshots with one version), worded as events: first
seen, changed (each field old → new, as the diff compares and words them), marked tobedeleted,
reactivated, disappeared, reappeared; then the diff runs that mention it and, for a user, their
enrollments over time.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..canonical import comparable_record
from ..diff.fields import field_changes
from ..model import ENTITY_BY_COLLECTION
from ..report.labels import class_name, enrollment_label, person_name, record_label
from ..report.wording import show, utc_text

SEARCH_LIMIT = 100
# Words of a search as FTS5 reads them (letters and digits); everything else separates words,
# so no quote, `*`, `-`, `NEAR` or parenthesis can reach the FTS query as syntax.
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_WORDS = 8


@dataclass(frozen=True)
class Snapshot:
    seq: int
    name: str
    taken_at: str
    complete: bool


@dataclass
class Event:
    """One thing that happened to a record, at one snapshot."""

    kind: str  # first seen, changed, marked tobedeleted, reactivated, disappeared, reappeared
    snapshot: Snapshot
    status: str | None = None
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # path, old, new
    until: Snapshot | None = None  # the last snapshot of the version begun here
    still_current: bool = False
    snapshots: int = 0  # how many snapshots this version lasted
    note: str = ""


def school_snapshots(conn: sqlite3.Connection, estab: str) -> dict[int, Snapshot]:
    rows = conn.execute(
        "SELECT seq, name, taken_at, complete FROM snapshots WHERE estab = ? ORDER BY seq",
        (estab,),
    )
    return {row[0]: Snapshot(row[0], row[1], row[2], bool(row[3])) for row in rows}


def school_name(conn: sqlite3.Connection, estab: str) -> str | None:
    row = conn.execute(
        "SELECT school_name FROM snapshots WHERE estab = ? AND school_name IS NOT NULL "
        "ORDER BY seq DESC LIMIT 1",
        (estab,),
    ).fetchone()
    return row[0] if row else None


def _spans(conn: sqlite3.Connection, estab: str, entity: str, sourced_id: str) -> list[Any]:
    return conn.execute(
        "SELECT s.first_seq, s.last_seq, s.gone_seq, v.record FROM records r "
        "JOIN spans s ON s.record_id = r.id JOIN versions v ON v.id = s.version_id "
        "WHERE r.estab = ? AND r.entity = ? AND r.sourcedId = ? ORDER BY s.first_seq",
        (estab, entity, sourced_id),
    ).fetchall()


def latest_record(
    conn: sqlite3.Connection, estab: str, entity: str, sourced_id: str
) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT v.record FROM records r JOIN spans s ON s.record_id = r.id "
        "JOIN versions v ON v.id = s.version_id "
        "WHERE r.estab = ? AND r.entity = ? AND r.sourcedId = ? "
        "ORDER BY s.first_seq DESC LIMIT 1",
        (estab, entity, sourced_id),
    ).fetchone()
    return json.loads(row[0]) if row else None


def label_of(conn: sqlite3.Connection, estab: str, entity: str, record: dict[str, Any]) -> str:
    """The record's readable label, as the change report gives it."""
    if entity != "enrollments":
        return record_label(entity, record)
    user_id = _ref(record, "user")
    class_id = _ref(record, "class")
    user = latest_record(conn, estab, "users", user_id) if user_id else None
    klass = latest_record(conn, estab, "classes", class_id) if class_id else None
    return enrollment_label(
        person_name(user, user_id or "?"), record.get("role"), class_name(klass, class_id or "?")
    )


def _ref(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if isinstance(value, dict):
        value = value.get("sourcedId")
    return value if isinstance(value, str) else None


def _field_lines(
    entity: str, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[str, str, str]]:
    model = ENTITY_BY_COLLECTION[entity]
    changes = field_changes(model, comparable_record(model, old), comparable_record(model, new))
    return [(change.path, show(change.old), show(change.new)) for change in changes]


def record_events(
    conn: sqlite3.Connection, estab: str, entity: str, sourced_id: str
) -> tuple[list[Event], dict[str, Any]] | None:
    """The record's events, oldest first, and its latest version; None if never seen."""
    spans = _spans(conn, estab, entity, sourced_id)
    if not spans:
        return None
    snapshots = school_snapshots(conn, estab)
    latest_seq = max(snapshots) if snapshots else 0
    events: list[Event] = []
    before: dict[str, Any] | None = None
    gone_before = False
    for first_seq, last_seq, gone_seq, record_json in spans:
        record = json.loads(record_json)
        status = record.get("status")
        if before is None:
            kind = "first seen"
        elif gone_before:
            kind = "reappeared"
        elif status == "tobedeleted" and before.get("status") != "tobedeleted":
            kind = "marked tobedeleted"
        elif status != "tobedeleted" and before.get("status") == "tobedeleted":
            kind = "reactivated"
        else:
            kind = "changed"
        until_seq = latest_seq if last_seq is None else last_seq
        event = Event(
            kind=kind,
            snapshot=snapshots[first_seq],
            status=status,
            fields=_field_lines(entity, before, record) if before is not None else [],
            until=snapshots.get(until_seq),
            still_current=last_seq is None,
            snapshots=until_seq - first_seq + 1,
        )
        if kind == "reappeared" and status == "tobedeleted":
            event.note = "already marked tobedeleted"
        events.append(event)
        if gone_seq is not None:
            events.append(
                Event(
                    kind="disappeared",
                    snapshot=snapshots[gone_seq],
                    note="not in this snapshot; last seen "
                    + utc_text(snapshots[last_seq].taken_at),
                )
            )
        before, gone_before = record, gone_seq is not None
    assert before is not None
    return events, before


def diff_runs_mentioning(
    changes: sqlite3.Connection | None, estab: str, entity: str, sourced_id: str
) -> list[dict[str, Any]]:
    """Every saved diff run of this school that lists the record among its changes."""
    if changes is None:
        return []
    rows = changes.execute(
        "SELECT r.run_id, r.change, r.changed_fields, r.old_status, r.new_status, "
        "d.old_taken_at, d.new_taken_at FROM changed_records r "
        "JOIN diff_runs d ON d.id = r.run_id "
        "WHERE r.sourcedId = ? AND r.entity = ? AND d.estab = ? "
        "ORDER BY d.new_taken_at, r.run_id",
        (sourced_id, entity, estab),
    ).fetchall()
    runs = []
    for run_id, change, changed_fields, old_status, new_status, old_at, new_at in rows:
        try:
            names = json.loads(changed_fields) if changed_fields else []
        except (TypeError, json.JSONDecodeError):
            names = [changed_fields]
        runs.append(
            {
                "run_id": run_id,
                "change": change,
                "fields": ", ".join(str(name) for name in names or []),
                "old_status": old_status,
                "new_status": new_status,
                "old_taken_at": old_at,
                "new_taken_at": new_at,
            }
        )
    return runs


def enrollments_of(conn: sqlite3.Connection, estab: str, user_id: str) -> list[dict[str, Any]]:
    """A user's enrollments over time: class, role, dates, first and last seen, from the
    enrollments' versions that name this user."""
    snapshots = school_snapshots(conn, estab)
    latest_seq = max(snapshots) if snapshots else 0
    rows = conn.execute(
        "SELECT r.sourcedId, s.first_seq, s.last_seq, v.record FROM versions v "
        "JOIN records r ON r.id = v.record_id JOIN spans s ON s.version_id = v.id "
        "WHERE v.user_sourcedId = ? AND r.estab = ? AND r.entity = 'enrollments' "
        "ORDER BY r.sourcedId, s.first_seq",
        (user_id, estab),
    ).fetchall()
    by_id: dict[str, dict[str, Any]] = {}
    for sourced_id, first_seq, last_seq, record_json in rows:
        record = json.loads(record_json)
        entry = by_id.setdefault(sourced_id, {"sourcedId": sourced_id, "first_seq": first_seq})
        entry["last_seq"] = latest_seq if last_seq is None else last_seq
        entry["current"] = last_seq is None
        entry["record"] = record  # the latest version wins
    classes: dict[str, dict[str, Any] | None] = {}
    result = []
    for entry in by_id.values():
        record = entry.pop("record")
        class_id = _ref(record, "class")
        if class_id and class_id not in classes:
            classes[class_id] = latest_record(conn, estab, "classes", class_id)
        result.append(
            {
                **entry,
                "class_sourcedId": class_id,
                "class_name": class_name(classes.get(class_id or ""), class_id or "?"),
                "role": record.get("role"),
                "primary": record.get("primary"),
                "beginDate": record.get("beginDate"),
                "endDate": record.get("endDate"),
                "status": record.get("status"),
                "first_seen": snapshots[entry["first_seq"]].taken_at,
                "last_seen": snapshots[entry["last_seq"]].taken_at,
            }
        )
    result.sort(key=lambda e: (e["first_seq"], e["beginDate"] or "", e["class_name"]))
    return result


def fts_query(text: str) -> str | None:
    """A person's search as an FTS5 query: each word a quoted prefix ("smi" finds Smith), all
    words required; None when there is no word to search for."""
    words = _WORD.findall(text)[:_MAX_WORDS]
    if not words:
        return None
    return " ".join('"' + word.replace('"', "") + '"*' for word in words)


def search_people(conn: sqlite3.Connection, estab: str, text: str) -> list[dict[str, Any]]:
    """People of the school matching `text` (names, earlier names, email, username, identifier,
    UPN, or exactly a sourcedId), best first, leavers included."""
    query = fts_query(text)
    rows: list[sqlite3.Row] = []
    if query is not None:
        rows = conn.execute(
            "SELECT p.* FROM people_fts JOIN people p ON p.rowid = people_fts.rowid "
            "WHERE people_fts MATCH ? AND p.estab = ? "
            "ORDER BY people_fts.rank, p.familyName, p.givenName LIMIT ?",
            (query, estab, SEARCH_LIMIT),
        ).fetchall()
    exact = conn.execute(
        "SELECT * FROM people WHERE estab = ? AND sourcedId = ?", (estab, text.strip())
    ).fetchall()
    exact_ids = {row["sourcedId"] for row in exact}
    return [dict(row) for row in [*exact, *(r for r in rows if r["sourcedId"] not in exact_ids)]]
