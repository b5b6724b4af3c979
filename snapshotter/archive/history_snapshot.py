"""Indexing one snapshot into the record index (`archive.history` owns the file and decides
which snapshots to index, in which order): records new or changed since the school's last
indexed snapshot get a new span (and a version, its `_record` read only when the index has not
seen that content), records gone get their span closed, and the `people` rows of the users
touched are written again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from typing import Any

from ..model import COLLECTIONS
from .layout import SnapshotInfo, open_snapshot


class OpenSpans:
    """Per entity, the records in the latest indexed snapshot: their hashes (sourcedId ->
    hash, compared as sets of items: the bulk of the work, done in C) and their ids (sourcedId
    -> (span id, record id)). Kept between the snapshots of one update; read again when another
    process indexed in between."""

    def __init__(self, estab: str) -> None:
        self.estab = estab
        self.through: str | None = None  # the name of the last snapshot it reflects
        self.hashes: dict[str, dict[str, str]] = {}
        self.ids: dict[str, dict[str, tuple[int, int]]] = {}

    def load(self, conn: sqlite3.Connection, through: str | None) -> None:
        if self.through == through and self.hashes:
            return
        self.hashes = {collection: {} for collection in COLLECTIONS}
        self.ids = {collection: {} for collection in COLLECTIONS}
        rows = conn.execute(
            "SELECT r.entity, r.sourcedId, s.id, r.id, v.hash FROM records r "
            "JOIN spans s ON s.record_id = r.id AND s.last_seq IS NULL "
            "JOIN versions v ON v.id = s.version_id WHERE r.estab = ?",
            (self.estab,),
        )
        for entity, sourced_id, span_id, record_id, digest in rows:
            self.hashes.setdefault(entity, {})[sourced_id] = digest
            self.ids.setdefault(entity, {})[sourced_id] = (span_id, record_id)
        self.through = through


def _incomplete_collections(snapshot: sqlite3.Connection, info: SnapshotInfo) -> set[str]:
    if info.complete:
        return set()
    try:
        finished = {
            row[0]
            for row in snapshot.execute("SELECT collection FROM snapshot_endpoints WHERE complete")
        }
    except sqlite3.Error:
        finished = set()
    return set(COLLECTIONS) - finished


def _table_exists(snapshot: sqlite3.Connection, table: str) -> bool:
    return bool(
        snapshot.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
    )


def _ref_id(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if isinstance(value, dict):
        value = value.get("sourcedId")
    return value if isinstance(value, str) else None


def index_snapshot(
    conn: sqlite3.Connection, info: SnapshotInfo, seq: int, state: OpenSpans
) -> None:
    """Index one snapshot as number `seq` of its school, inside the caller's transaction."""
    estab = state.estab
    previous = conn.execute(
        "SELECT name FROM snapshots WHERE estab = ? AND seq = ?", (estab, seq - 1)
    ).fetchone()
    state.load(conn, previous[0] if previous else None)
    touched_users: set[str] = set()
    with closing(open_snapshot(info.path)) as snapshot:
        incomplete = _incomplete_collections(snapshot, info)
        conn.execute(
            "INSERT INTO snapshots (estab, seq, name, school_name, taken_at, finished_at, "
            "complete, incomplete_reason, incomplete_collections, content_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                estab,
                seq,
                info.path.stem,
                info.school_name,
                info.taken_at,
                info.finished_at,
                int(info.complete),
                info.incomplete_reason,
                json.dumps(sorted(incomplete)) if incomplete else None,
                info.content_hash,
            ),
        )
        for entity in COLLECTIONS:
            hashes = state.hashes.setdefault(entity, {})
            ids = state.ids.setdefault(entity, {})
            if not _table_exists(snapshot, entity):
                continue  # a partial snapshot's missing collection: nothing is known
            current = dict(snapshot.execute(f'SELECT sourcedId, _hash FROM "{entity}"'))
            changed = sorted(sid for sid, _digest in current.items() - hashes.items())
            gone = [] if entity in incomplete else sorted(hashes.keys() - current.keys())
            conn.executemany(
                "UPDATE spans SET last_seq = ?, gone_seq = ? WHERE id = ?",
                [(seq - 1, seq, ids.pop(sid)[0]) for sid in gone],
            )
            for sid in gone:
                del hashes[sid]
            if changed:
                _save_changed(conn, snapshot, estab, entity, seq, changed, current, ids)
                hashes.update((sid, current[sid]) for sid in changed)
            if entity == "users":
                touched_users.update(gone)
                touched_users.update(changed)
    state.through = info.path.stem
    update_people(conn, estab, touched_users)


def _save_changed(
    conn: sqlite3.Connection,
    snapshot: sqlite3.Connection,
    estab: str,
    entity: str,
    seq: int,
    changed: list[str],
    current: dict[str, str],
    open_now: dict[str, tuple[int, int]],
) -> None:
    """New spans for records new or changed in snapshot `seq`; `_record` is read only for the
    versions the index has not seen. In bulk (a first snapshot or a rollover changes most
    records): lists of ids travel as one JSON parameter."""
    conn.executemany(
        "UPDATE spans SET last_seq = ? WHERE id = ?",
        [(seq - 1, open_now[sid][0]) for sid in changed if sid in open_now],
    )
    record_ids = {sid: open_now[sid][1] for sid in changed if sid in open_now}
    unseen = [sid for sid in changed if sid not in open_now]
    if unseen:
        conn.executemany(
            "INSERT OR IGNORE INTO records (estab, entity, sourcedId) VALUES (?, ?, ?)",
            [(estab, entity, sid) for sid in unseen],
        )
        record_ids.update(
            conn.execute(
                "SELECT sourcedId, id FROM records WHERE estab = ? AND entity = ? "
                "AND sourcedId IN (SELECT value FROM json_each(?))",
                (estab, entity, json.dumps(unseen)),
            )
        )
    ids_json = json.dumps([record_ids[sid] for sid in changed])

    def known_versions() -> dict[tuple[int, str], int]:
        rows = conn.execute(
            "SELECT record_id, hash, id FROM versions "
            "WHERE record_id IN (SELECT value FROM json_each(?))",
            (ids_json,),
        )
        return {(record_id, digest): version_id for record_id, digest, version_id in rows}

    versions = known_versions()
    need = [sid for sid in changed if (record_ids[sid], current[sid]) not in versions]
    if need:
        rows = []
        for sourced_id, record_json in _records_of(snapshot, entity, need):
            record = json.loads(record_json)
            enrollment = entity == "enrollments"
            rows.append(
                (
                    record_ids[sourced_id],
                    current[sourced_id],
                    record.get("status"),
                    record_json,
                    _ref_id(record, "user") if enrollment else None,
                    _ref_id(record, "class") if enrollment else None,
                )
            )
        conn.executemany(
            "INSERT INTO versions (record_id, hash, status, record, user_sourcedId, "
            "class_sourcedId) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        versions = known_versions()
    conn.executemany(
        "INSERT INTO spans (record_id, version_id, first_seq) VALUES (?, ?, ?)",
        [(record_ids[sid], versions[(record_ids[sid], current[sid])], seq) for sid in changed],
    )
    span_ids = dict(
        conn.execute(
            "SELECT record_id, id FROM spans WHERE last_seq IS NULL "
            "AND record_id IN (SELECT value FROM json_each(?))",
            (ids_json,),
        )
    )
    for sid in changed:
        open_now[sid] = (span_ids[record_ids[sid]], record_ids[sid])


def _records_of(
    snapshot: sqlite3.Connection, entity: str, sourced_ids: list[str]
) -> Iterable[tuple[str, str]]:
    # One query for the lot: json_each keeps the statement short for any number of ids.
    if not sourced_ids:
        return []
    return snapshot.execute(
        f'SELECT sourcedId, _record FROM "{entity}" '
        "WHERE sourcedId IN (SELECT value FROM json_each(?))",
        (json.dumps(sourced_ids),),
    ).fetchall()


def _upn(record: dict[str, Any]) -> str | None:
    for item in record.get("userIds") or []:
        if isinstance(item, dict) and str(item.get("type", "")).upper() == "UPN":
            return str(item.get("identifier") or "") or None
    return None


def _name(record: dict[str, Any]) -> str:
    parts = [record.get("givenName"), record.get("middleName"), record.get("familyName")]
    return " ".join(str(part) for part in parts if part)


def update_people(conn: sqlite3.Connection, estab: str, sourced_ids: Iterable[str]) -> None:
    """The `people` rows of these users, from their versions (inside the caller's
    transaction)."""
    times = dict(conn.execute("SELECT seq, taken_at FROM snapshots WHERE estab = ?", (estab,)))
    for sourced_id in sourced_ids:
        spans = conn.execute(
            "SELECT s.first_seq, s.last_seq, s.gone_seq, v.record FROM records r "
            "JOIN spans s ON s.record_id = r.id JOIN versions v ON v.id = s.version_id "
            "WHERE r.estab = ? AND r.entity = 'users' AND r.sourcedId = ? ORDER BY s.first_seq",
            (estab, sourced_id),
        ).fetchall()
        if not spans:
            continue
        records = [json.loads(span[3]) for span in spans]
        latest = records[-1]
        first_seq, last_seq, gone_seq = spans[0][0], spans[-1][1], spans[-1][2]
        marked = None
        for (first, _last, _gone, _json), record, before in zip(
            spans, records, [None, *records[:-1]], strict=True
        ):
            if record.get("status") == "tobedeleted":
                if marked is None or (before or {}).get("status") != "tobedeleted":
                    marked = times.get(first)
            else:
                marked = None
        earlier: list[str] = []
        now = {_name(latest), latest.get("email"), latest.get("username"), latest.get("identifier")}
        for record in records[:-1]:
            for value in (
                _name(record),
                record.get("email"),
                record.get("username"),
                record.get("identifier"),
            ):
                if value and value not in now and value not in earlier:
                    earlier.append(str(value))
        grades = latest.get("grades")
        row = {
            "estab": estab,
            "sourcedId": sourced_id,
            "name": _name(latest) or None,
            "givenName": latest.get("givenName"),
            "familyName": latest.get("familyName"),
            "email": latest.get("email"),
            "username": latest.get("username"),
            "identifier": latest.get("identifier"),
            "upn": _upn(latest),
            "role": latest.get("role"),
            "grades": ", ".join(str(g) for g in grades) if isinstance(grades, list) else grades,
            "status": latest.get("status"),
            "first_seen": times.get(first_seq),
            "last_seen": times.get(last_seq) if last_seq is not None else None,
            "in_latest": int(last_seq is None),
            "marked_tobedeleted_at": marked,
            "gone_at": times.get(gone_seq) if gone_seq is not None else None,
            "earlier": "; ".join(earlier) or None,
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{name} = excluded.{name}" for name in row)
        conn.execute(
            f"INSERT INTO people ({columns}) VALUES ({marks}) "
            f"ON CONFLICT (estab, sourcedId) DO UPDATE SET {updates}",
            tuple(row.values()),
        )
