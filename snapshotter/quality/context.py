"""What every rule family reads: the snapshot (read-only), the day it was taken, the school.

The snapshot is only ever read. Helpers live in SQLite's TEMP schema, which belongs to this
connection alone, so a read-only snapshot file stays untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The enrollments table is by far the biggest, and its rows carry the whole record: it is read
# once, into a narrow table of the columns the rules need, indexed both ways. `live` marks the
# enrollments that count now: active, and not ended by the day the snapshot was taken (endDate
# is exclusive).
_HELPERS = (
    """CREATE TEMP TABLE enr AS
    SELECT sourcedId, status, role, beginDate, endDate, user_sourcedId, class_sourcedId,
      status = 'active' AND (endDate IS NULL OR endDate = '' OR endDate > :today) AS live
    FROM main.enrollments""",
    "CREATE INDEX temp.enr_by_user ON enr (user_sourcedId, live)",
    "CREATE INDEX temp.enr_by_class ON enr (class_sourcedId, live)",
    """CREATE TEMP VIEW live_enrollments AS
    SELECT sourcedId, role, user_sourcedId, class_sourcedId FROM enr WHERE live""",
    # Each active class's year groups, one row each.
    """CREATE TEMP TABLE class_grades AS
    SELECT c.sourcedId AS class_sourcedId, CAST(g.value AS TEXT) AS grade
    FROM main.classes c, json_each(c.grades) g
    WHERE c.status = 'active' AND json_valid(c.grades)""",
    "CREATE INDEX temp.class_grades_by_class ON class_grades (class_sourcedId, grade)",
)


@dataclass(frozen=True)
class Raw:
    """A finding before it is labelled: the rule, the record, what is wrong, who else."""

    rule: str
    entity: str
    sourcedId: str  # noqa: N815 - the OneRoster name
    message: str
    related: tuple[str, ...] = ()


class CheckContext:
    def __init__(self, conn: sqlite3.Connection, today: str, school_org: str | None) -> None:
        self.conn = conn
        self.today = today  # YYYY-MM-DD, the day the snapshot was taken (UTC)
        self.school_org = school_org
        conn.execute("PRAGMA temp_store = MEMORY")
        for helper in ("VIEW live_enrollments", "TABLE enr", "TABLE class_grades"):
            conn.execute(f"DROP {helper.split()[0]} IF EXISTS temp.{helper.split()[1]}")
        for statement in _HELPERS:
            conn.execute(statement, {"today": today} if ":today" in statement else {})

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> Iterator[tuple[Any, ...]]:
        return iter(self.conn.execute(sql, {"today": self.today, **(params or {})}).fetchall())


def split_ids(text: str | None) -> tuple[str, ...]:
    """A `group_concat(..., char(31))` of sourcedIds back as a sorted tuple."""
    return tuple(sorted(text.split("\x1f"))) if text else ()
