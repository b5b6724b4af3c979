"""What the pages show, read as the CLI reads it: a small catalogue, not Datasette's
introspection of every file.

Schools and their snapshots come from `archive.layout.list_archive` (one metadata row per file),
diff runs from `changes.db` with the people counts of `archive.people.headline`, so a page's
numbers are the CLI's numbers. Each call opens its own read-only connection: nothing here
writes, and a snapshot fetched or a diff saved while the server runs is read at the next request.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive.changes import SHAPE_VERSION, open_changes_db
from ..archive.layout import (
    CHANGES_DB,
    SnapshotInfo,
    UnreadableSnapshot,
    list_archive,
    read_only_uri,
)
from ..archive.people import headline
from ..report.saved import Report, load_report
from ..report.sections import Line, headline_lines
from ..report.wording import volume_lines
from .changes_list import report_sections


@dataclass
class School:
    estab: str
    school_name: str | None = None
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    unreadable: list[UnreadableSnapshot] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def open_changes(archive: Path) -> sqlite3.Connection | None:
    """`changes.db` read-only, or None when no diff has been saved yet."""
    path = archive / CHANGES_DB
    if not path.is_file():
        return None
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    if conn.execute("PRAGMA user_version").fetchone()[0] != SHAPE_VERSION:
        # Saved by an older version: its views lack what the pages read (the `purged` view,
        # statuses). Shape it once, as the next `diff` would; the pages still only read.
        conn.close()
        with closing(open_changes_db(path)):
            pass
        conn = sqlite3.connect(read_only_uri(path), uri=True)
    conn.row_factory = sqlite3.Row
    return conn


# Headline counts by (changes.db, run id, run_at): a saved run never changes, and a run saved
# again gets a new run_at. Some views cost a tenth of a second on a large rollover.
_HEADLINES: dict[tuple[str, int, str], dict[str, Any]] = {}
_HEADLINES_KEPT = 5000


def cached_headline(
    conn: sqlite3.Connection, path: Path, run_id: int, run_at: str, stored: str | None = None
) -> Any:
    """The run's people counts: as stored with it (`diff_runs.headline`), else (a run saved
    before that column) computed from the views once and kept."""
    if stored:
        return json.loads(stored)
    key = (str(path), run_id, run_at)
    if key not in _HEADLINES:
        if len(_HEADLINES) >= _HEADLINES_KEPT:
            _HEADLINES.clear()
        _HEADLINES[key] = headline(conn, run_id)
    return _HEADLINES[key]


def _runs(conn: sqlite3.Connection, path: Path) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, estab, school_name, old_taken_at, new_taken_at, run_at, records_changed, "
        "mass_change_pct, mass_changes, rollover, headline FROM diff_runs "
        "ORDER BY new_taken_at, id"
    ).fetchall()
    runs = []
    for row in rows:
        run = dict(row)
        run["warning"] = row["mass_changes"] not in (None, "", "[]")
        run["headline"] = cached_headline(conn, path, row["id"], row["run_at"], row["headline"])
        runs.append(run)
    return runs


def has_job_history(archive: Path) -> bool:
    """Whether `snapshotter run` has recorded a job in `changes.db` (its tables exist then)."""
    conn = open_changes(archive)
    if conn is None:
        return False
    with closing(conn):
        return bool(
            conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'job_runs'"
            ).fetchone()[0]
        )


def schools(archive: Path) -> list[School]:
    """Every school of the archive: its snapshots, oldest first, and its saved diff runs."""
    listing = list_archive(archive)
    by_estab: dict[str, School] = {}
    for info in listing.snapshots:
        school = by_estab.setdefault(info.estab, School(info.estab))
        school.snapshots.append(info)
        school.school_name = info.school_name or school.school_name
    for lost in listing.unreadable:
        by_estab.setdefault(lost.estab, School(lost.estab)).unreadable.append(lost)
    conn = open_changes(archive)
    if conn is not None:
        with closing(conn):
            for run in _runs(conn, archive / CHANGES_DB):
                school = by_estab.setdefault(run["estab"], School(run["estab"]))
                school.school_name = school.school_name or run["school_name"]
                school.runs.append(run)
    return [by_estab[estab] for estab in sorted(by_estab)]


def _plain(line: Line) -> str:
    """A report line as text; the page's template escapes it."""
    return "".join(f" [{text}]" if kind == "id" else text for kind, text in line)


def run_page(archive: Path, run_id: int) -> dict[str, Any] | None:
    """What a change report's page shows, read in full while `changes.db` is open: both
    snapshots, the people counts and sentences, the volume warning, the counts per entity and
    change kind, then the changes themselves, a few per section. None for a run that does not
    exist."""
    conn = open_changes(archive)
    if conn is None:
        return None
    with closing(conn):
        try:
            report = load_report(conn, run_id)
        except LookupError:
            return None
        key = (str(archive / CHANGES_DB), run_id, report.run_at)
        if key not in _RUN_PAGES:
            if len(_RUN_PAGES) >= _RUN_PAGES_KEPT:
                _RUN_PAGES.clear()
            _RUN_PAGES[key] = report_context(report, report.headline)
        return dict(_RUN_PAGES[key])


# Report pages as read, by the key of `_HEADLINES`: the changes' sections read views that cost
# seconds on a large rollover, and a saved run never changes. Each is small (a few entries a
# section).
_RUN_PAGES: dict[tuple[str, int, str], dict[str, Any]] = {}
_RUN_PAGES_KEPT = 200


def report_context(report: Report, people: dict[str, Any]) -> dict[str, Any]:
    """What the report template shows of a run, saved (`run_page`) or diffed on demand (the
    compare page): one function, so the two pages cannot drift."""
    return {
        "run_id": report.run_id,
        "old": report.old,
        "new": report.new,
        "run_at": report.run_at,
        "rollover": report.rollover,
        "include_touched": report.include_touched,
        "total": report.total,
        "summary": report.summary,
        "headline": people,
        "headline_lines": [_plain(line) for line in headline_lines(report, people)],
        "volume_lines": volume_lines(
            report.mass_changes,
            report.mass_change_pct,
            report.rollover,
            report.new["school_year"],
        ),
        "sections": report_sections(report, people),
    }
