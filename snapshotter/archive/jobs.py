"""The history of `snapshotter run` in `changes.db`: each job, and each school's steps in it, so
an operator (or Datasette) can see when the nightly job ran, what it produced, and what failed.

The tables are created when a job first records itself; a job killed half-way leaves its row
`running`, and the next job (which holds the run lock, so the old one is dead) marks it
`interrupted`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from .changes import open_changes_db, write_transaction
from .layout import utc_iso

JOBS_SQL = """
CREATE TABLE IF NOT EXISTS job_runs (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL,
  schools TEXT NOT NULL,
  pid INTEGER
);
CREATE TABLE IF NOT EXISTS job_schools (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES job_runs(id),
  school TEXT NOT NULL,
  estab TEXT NOT NULL,
  ok INTEGER NOT NULL,
  failed_step TEXT,
  message TEXT,
  snapshot TEXT,
  diff_run_id INTEGER REFERENCES diff_runs(id),
  records_changed INTEGER,
  mailed INTEGER NOT NULL DEFAULT 0,
  alerted INTEGER NOT NULL DEFAULT 0,
  steps TEXT NOT NULL DEFAULT '{}'
);
"""


def _connect(changes_db: Path) -> sqlite3.Connection:
    conn = open_changes_db(changes_db)
    conn.executescript(JOBS_SQL)
    return conn


def start_job(changes_db: Path, schools: list[str], started: Any) -> int:
    """Record a job as running (and any job left running by a killed one as interrupted)."""
    with closing(_connect(changes_db)) as conn, write_transaction(conn):
        conn.execute("UPDATE job_runs SET status = 'interrupted' WHERE status = 'running'")
        cursor = conn.execute(
            "INSERT INTO job_runs (started_at, status, schools, pid) VALUES (?, 'running', ?, ?)",
            (utc_iso(started), json.dumps(schools), os.getpid()),
        )
        return int(cursor.lastrowid or 0)


def record_school(changes_db: Path, job_id: int, outcome: dict[str, Any]) -> None:
    """One school's outcome in job `job_id` (see `job.SchoolOutcome.as_row`)."""
    columns = ", ".join(outcome)
    marks = ", ".join("?" for _ in outcome)
    with closing(_connect(changes_db)) as conn, write_transaction(conn):
        conn.execute(
            f"INSERT INTO job_schools (job_id, {columns}) VALUES (?, {marks})",
            (job_id, *outcome.values()),
        )


def finish_job(changes_db: Path, job_id: int, status: str, finished: Any) -> None:
    with closing(_connect(changes_db)) as conn, write_transaction(conn):
        conn.execute(
            "UPDATE job_runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, utc_iso(finished), job_id),
        )
