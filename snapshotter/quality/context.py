"""What every rule family reads: the snapshot (read-only), the day it was taken, the school.

The snapshot is only ever read. Helpers live in SQLite's TEMP schema, which belongs to this
connection alone, so a read-only snapshot file stays untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Enrollments that count now: active, and not ended by the day the snapshot was taken
# (endDate is exclusive). Indexed, because every coverage rule joins it both ways.
_LIVE_ENROLLMENTS = """
CREATE TEMP TABLE live_enrollments AS
SELECT e.sourcedId, e.role, e.user_sourcedId, e.class_sourcedId
FROM main.enrollments e
WHERE e.status = 'active' AND (e.endDate IS NULL OR e.endDate = '' OR e.endDate > :today)
"""


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
        conn.execute("DROP TABLE IF EXISTS temp.live_enrollments")
        conn.execute(_LIVE_ENROLLMENTS, {"today": today})
        conn.execute("CREATE INDEX temp.live_by_user ON live_enrollments (user_sourcedId)")
        conn.execute("CREATE INDEX temp.live_by_class ON live_enrollments (class_sourcedId)")

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> Iterator[tuple[Any, ...]]:
        return iter(self.conn.execute(sql, {"today": self.today, **(params or {})}).fetchall())


def split_ids(text: str | None) -> tuple[str, ...]:
    """A `group_concat(..., char(31))` of sourcedIds back as a sorted tuple."""
    return tuple(sorted(text.split("\x1f"))) if text else ()
