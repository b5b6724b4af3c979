"""What a report needs to know about a changed record beyond the record itself.

A label a person can read, and the few facts the change report's views need (the pupil and class
of an enrollment, the course of that class, the classes a leaving teacher held). Looked up in the
two snapshots with SQL, in batches, and only for records that changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..report.labels import class_label, class_name, enrollment_label, person_name, record_label
from .scan import NEW, OLD

# Roles whose leaving leaves classes without an adult.
STAFF_ROLES = frozenset({"teacher", "aide", "administrator", "proctor"})
LEAVING = frozenset({"tobedeleted", "removed"})
BEGINNING = frozenset({"added", "reactivated"})
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit


@dataclass
class Pending:
    """A change found by the comparison, before it has a label and details."""

    collection: str
    sourced_id: str
    change: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def current(self) -> dict[str, Any]:
        """The record as it is now, or as it last was if it has gone."""
        return self.new if self.new is not None else self.old  # type: ignore[return-value]


def ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("sourcedId")
    return value if isinstance(value, str) else None


def _rows_by_id(
    conn: sqlite3.Connection, schema: str, table: str, columns: str, ids: Iterable[str]
) -> dict[str, sqlite3.Row]:
    found: dict[str, sqlite3.Row] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        sql = f'SELECT sourcedId, {columns} FROM {schema}."{table}" WHERE sourcedId IN ({marks})'
        for row in conn.execute(sql, chunk):
            found[row["sourcedId"]] = row
    return found


def _lookup(
    conn: sqlite3.Connection, table: str, columns: str, ids: set[str]
) -> dict[str, sqlite3.Row]:
    """Rows from the new snapshot, or from the old one for what is no longer there."""
    found = _rows_by_id(conn, NEW, table, columns, ids)
    missing = ids - set(found)
    if missing:
        found.update(_rows_by_id(conn, OLD, table, columns, missing))
    return found


def _user_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"givenName": row["givenName"], "familyName": row["familyName"], "role": row["role"]}


def _class_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"sourcedId": row["sourcedId"], "title": row["title"], "classCode": row["classCode"]}


def _class_grades(row: sqlite3.Row | None) -> list[Any] | None:
    """A class's year groups (stored as a JSON array, sorted): which year a form is for."""
    if row is None or not row["grades"]:
        return None
    try:
        grades = json.loads(row["grades"])
    except ValueError:
        return None
    return grades if isinstance(grades, list) else None


class RecordContext:
    """Labels and details for batches of pending changes, read from the attached snapshots."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        old_taken_on: str | None = None,
        new_taken_on: str | None = None,
    ) -> None:
        self.conn = conn
        # The days the snapshots were taken (YYYY-MM-DD), to tell whether an enrollment's end
        # falls between them (see `_ended_now`).
        self.taken_on = (old_taken_on, new_taken_on)

    def describe(self, batch: Sequence[Pending]) -> list[tuple[str, dict[str, Any]]]:
        """(label, details) for each pending change of one collection, in order."""
        if not batch:
            return []
        collection = batch[0].collection
        if collection == "enrollments":
            return self._enrollments(batch)
        if collection == "users":
            return self._users(batch)
        described = []
        for pending in batch:
            record = pending.current
            details: dict[str, Any] = {}
            if collection == "classes":
                details = {
                    "class": pending.sourced_id,
                    "course": ref_id(record.get("course")),
                    "class_type": record.get("classType"),
                }
            elif collection == "courses":
                details = {"course": pending.sourced_id}
            described.append((record_label(collection, record), details))
        return described

    def _users(self, batch: Sequence[Pending]) -> list[tuple[str, dict[str, Any]]]:
        described = []
        for pending in batch:
            record = pending.current
            details: dict[str, Any] = {
                "user": pending.sourced_id,
                "role": record.get("role"),
                "grades": record.get("grades"),
            }
            if pending.change in LEAVING and record.get("role") in STAFF_ROLES:
                details["classes"] = self._classes_held(pending.sourced_id)
            described.append((record_label("users", record), details))
        return described

    def _classes_held(self, user_id: str) -> list[dict[str, Any]]:
        """The classes a leaving member of staff was enrolled in before leaving (old snapshot)."""
        rows = self.conn.execute(
            f'SELECT e.class_sourcedId, e.role, e."primary", c.title, c.classCode '
            f"FROM {OLD}.enrollments e LEFT JOIN {OLD}.classes c "
            "ON c.sourcedId = e.class_sourcedId "
            "WHERE e.user_sourcedId = ? AND e.status = 'active' "
            "ORDER BY c.classCode, c.title, e.class_sourcedId",
            (user_id,),
        )
        held = []
        for class_id, role, primary, title, code in rows:
            klass = {"sourcedId": class_id, "title": title, "classCode": code}
            held.append(
                {
                    "sourcedId": class_id,
                    "label": class_label(klass),
                    "role": role,
                    "primary": None if primary is None else bool(primary),
                }
            )
        return held

    def _enrollments(self, batch: Sequence[Pending]) -> list[tuple[str, dict[str, Any]]]:
        # Who and which class, now (or last seen) and before: the class may be what changed.
        refs = [
            (
                ref_id(pending.current.get("user")),
                ref_id(pending.current.get("class")),
                ref_id(pending.old.get("class")) if pending.old is not None else None,
            )
            for pending in batch
        ]
        users = _lookup(
            self.conn, "users", "givenName, familyName, role", {u for u, _, _ in refs if u}
        )
        classes = _lookup(
            self.conn,
            "classes",
            "title, classCode, classType, course_sourcedId, grades",
            {c for _, new, old in refs for c in (new, old) if c},
        )
        # A class's status in the new snapshot (None: gone): a move into a class that has been
        # dissolved is no move.
        status_now = {
            sid: row["status"]
            for sid, row in _rows_by_id(
                self.conn, NEW, "classes", "status", {c for _, c, _ in refs if c}
            ).items()
        }
        described = []
        for pending, (user_id, class_id, old_class_id) in zip(batch, refs, strict=True):
            record = pending.current
            class_row = classes.get(class_id or "")
            person = person_name(_user_dict(users.get(user_id or "")), user_id or "?")
            klass = class_name(_class_dict(class_row), class_id or "?")
            details: dict[str, Any] = {
                "user": user_id,
                "person": person,
                "class": class_id,
                "class_name": klass,
                "course": class_row["course_sourcedId"] if class_row else None,
                "class_type": class_row["classType"] if class_row else None,
                "class_grades": _class_grades(class_row),
                "class_status": status_now.get(class_id or ""),
                "role": record.get("role"),
                "began": pending.change in BEGINNING,
                "ended": _ended_now(pending, *self.taken_on),
            }
            both_sides = pending.old is not None and pending.new is not None
            if both_sides and old_class_id != class_id:
                old_row = classes.get(old_class_id or "")
                details["old_class"] = old_class_id
                details["old_class_name"] = class_name(_class_dict(old_row), old_class_id or "?")
                details["old_course"] = old_row["course_sourcedId"] if old_row else None
                details["old_class_type"] = old_row["classType"] if old_row else None
                details["old_class_grades"] = _class_grades(old_row)
            described.append((enrollment_label(person, record.get("role"), klass), details))
        return described


def _ended_now(pending: Pending, old_taken_on: str | None, new_taken_on: str | None) -> bool:
    """The enrollment ended between the two snapshots: it was running in the old one (active,
    and not past an end date it already had) and it has since gone, turned tobedeleted, or
    been given an end date; or it is new and its end date had already come when the new
    snapshot was taken, or it came already tobedeleted (it began and ended in between). An
    enrollment that ended a term ago and is only now marked tobedeleted or removed did not end
    now: pairing it with this term's new enrollment would report a move from a class the pupil
    left long before."""
    old, new = pending.old, pending.new
    if old is None:
        if new is None:
            return False
        end = new.get("endDate")
        passed = bool(end and new_taken_on and str(end) <= new_taken_on)
        return passed or new.get("status") == "tobedeleted"
    if old.get("status") != "active":
        return False
    if _end_date_set(pending):
        return True
    if pending.change not in LEAVING:
        return False
    old_end = old.get("endDate")
    unchanged = new is None or new.get("endDate") == old_end
    return not (old_end and unchanged and old_taken_on and str(old_end) <= old_taken_on)


def _end_date_set(pending: Pending) -> bool:
    """An enrollment given an end date it did not have: it ends, though the record stays."""
    return (
        pending.old is not None
        and pending.new is not None
        and not pending.old.get("endDate")
        and bool(pending.new.get("endDate"))
    )
