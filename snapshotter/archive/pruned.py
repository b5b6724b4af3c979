"""Snapshots removed by `snapshotter prune`, remembered in `changes.db` so that a saved change
report still says which files it compared, and that they were pruned (and when)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from .changes import open_changes_db, write_transaction
from .layout import SnapshotInfo

PRUNED_SQL = """
CREATE TABLE IF NOT EXISTS pruned_snapshots (
  path TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  estab TEXT NOT NULL,
  taken_at TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  pruned_at TEXT NOT NULL
);
"""


def record_pruned(changes_db: Path, snapshots: Iterable[SnapshotInfo], pruned_at: str) -> None:
    """Remember `snapshots` as pruned at `pruned_at` (before their files are removed)."""
    with closing(open_changes_db(changes_db)) as conn:
        conn.executescript(PRUNED_SQL)
        with write_transaction(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO pruned_snapshots VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (str(i.path), i.path.stem, i.estab, i.taken_at, i.content_hash, pruned_at)
                    for i in snapshots
                ],
            )


def forget_pruned(changes_db: Path, paths: Iterable[Path]) -> None:
    """A file that could not be removed after all is not pruned."""
    with closing(open_changes_db(changes_db)) as conn, write_transaction(conn):
        conn.executemany("DELETE FROM pruned_snapshots WHERE path = ?", [(str(p),) for p in paths])


def pruned_at(conn: sqlite3.Connection, path: str) -> str | None:
    """When the snapshot file at `path` was pruned, if it was (reading any changes.db)."""
    try:
        row = conn.execute(
            "SELECT pruned_at FROM pruned_snapshots WHERE path = ?", (path,)
        ).fetchone()
    except sqlite3.OperationalError:  # no table: nothing was ever pruned
        return None
    return row[0] if row else None
