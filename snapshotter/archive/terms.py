"""Which academic session (term) a snapshot was taken in, read from the snapshot itself."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from .layout import open_snapshot


def term_of(path: Path, taken_at: str) -> tuple[str, str] | None:
    """(title, startDate) of the active term holding the day `taken_at`, from the snapshot at
    `path`; None when the file is gone or no term holds that day (a holiday)."""
    if not path.is_file():
        return None
    day = taken_at[:10]
    try:
        with closing(open_snapshot(path)) as conn:
            row = conn.execute(
                "SELECT title, startDate FROM academicSessions WHERE type = 'term' "
                "AND status = 'active' AND startDate <= ? AND (endDate IS NULL OR endDate >= ?) "
                "ORDER BY startDate DESC LIMIT 1",
                (day, day),
            ).fetchone()
    except (sqlite3.Error, OSError):
        return None
    if row is None or not row[0]:
        return None
    return str(row[0]), str(row[1])
