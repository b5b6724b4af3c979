"""`snapshotter prune`: which snapshots stay, over an archive of many snapshots across terms."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_diff import write_snapshot
from helpers_serve import get, save_diff

from snapshotter.archive.layout import SnapshotInfo
from snapshotter.archive.locks import RUN_LOCK, hold
from snapshotter.archive.retention import plan
from snapshotter.cli import cli
from snapshotter.datasette.app import make_datasette
from snapshotter.report import load_report, render
from snapshotter.sim.school import generate

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
# Three terms back to back ending after today, as (title, first day ago, last day ago).
TERMS = [("Term A", 330, 250), ("Term B", 249, 117), ("Term C", 100, -30)]


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).date().isoformat()


@pytest.fixture(scope="module")
def school() -> dict[str, list[dict[str, Any]]]:
    data = copy.deepcopy(dict(generate(seed=4, pupils=12, term=0)))
    terms = [s for s in data["academicSessions"] if s["type"] == "term"]
    for record, (title, first, last) in zip(terms, TERMS, strict=True):
        record.update(title=title, startDate=_day(first), endDate=_day(last))
    return data


def build(archive: Path, school: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """Snapshots named by how many days ago they were taken (and `-late`, `-incomplete`)."""
    plan_of_files = {
        "300": (300, 0, True), "260": (260, 0, True),  # Term A: 260 is its last
        "200": (200, 0, True), "120": (120, 0, True),  # Term B: 120 is its last
        "110": (110, 0, True),  # between terms
        "50": (50, 0, True), "10": (10, 0, True),  # Term C, not its last
        "8-incomplete": (8, 0, False),  # older than the newest complete: goes
        "5": (5, 0, True), "3": (3, 0, True), "3-late": (3, 4, True),
        "0": (0, 0, True), "0-incomplete": (0, 3, False),  # newer than any complete: stays
    }  # fmt: skip
    paths = {}
    for name, (days_ago, hours_later, complete) in plan_of_files.items():
        taken = TODAY - timedelta(days=days_ago) + timedelta(hours=hours_later)
        paths[name] = write_snapshot(archive, school, taken_at=taken, complete=complete)
    return paths


def remaining(archive: Path, paths: dict[str, Path]) -> set[str]:
    return {name for name, path in paths.items() if path.exists()}


def prune(archive: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["prune", "--archive", str(archive), *args])


def test_prune_keeps_the_newest_each_terms_last_and_the_recent_days(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    stray = paths["0"].parent / "notes.txt"
    stray.write_text("not ours")
    foreign = paths["0"].parent / f"{paths['300'].stem[:-6]}999999Z.db"
    foreign.write_text("not a snapshot")
    result = prune(tmp_path, "--keep-daily", "7", "--keep-monthly", "0")
    assert result.exit_code == 0, result.output
    assert remaining(tmp_path, paths) == {"260", "120", "5", "3-late", "0", "0-incomplete"}
    for gone in ("300", "200", "110", "50", "10", "8-incomplete", "3"):
        assert f"removed {paths[gone]}" in result.output
    assert "keeping 6 of 13 snapshots, removed 7" in result.output
    assert stray.exists() and foreign.exists(), "files prune did not write are left alone"


def test_no_keep_terms_drops_the_terms_last_snapshots(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    result = prune(tmp_path, "--keep-daily", "7", "--keep-monthly", "0", "--no-keep-terms")
    assert result.exit_code == 0, result.output
    assert remaining(tmp_path, paths) == {"5", "3-late", "0", "0-incomplete"}


def test_a_dry_run_says_what_would_go_and_deletes_nothing(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    result = prune(tmp_path, "--keep-daily", "7", "--keep-monthly", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert remaining(tmp_path, paths) == set(paths)
    assert f"would remove {paths['300']}" in result.output


def test_nothing_is_deleted_while_a_run_holds_the_archive(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    with hold(tmp_path, RUN_LOCK):
        result = prune(tmp_path, "--keep-daily", "1")
    assert result.exit_code == 5
    assert "nothing was deleted" in result.output
    assert remaining(tmp_path, paths) == set(paths)


def test_a_saved_report_says_its_snapshot_was_pruned(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    run_id = save_diff(paths["300"], paths["260"], tmp_path)
    assert prune(tmp_path, "--keep-daily", "7", "--keep-monthly", "0").exit_code == 0
    assert not paths["300"].exists()
    with closing(sqlite3.connect(tmp_path / "changes.db")) as conn:
        text, as_json = io.StringIO(), io.StringIO()
        render(load_report(conn, run_id), "text", text)
        render(load_report(conn, run_id), "json", as_json)
    assert f"{paths['300'].stem} (taken" in text.getvalue()
    assert "file pruned" in text.getvalue()
    assert json.loads(as_json.getvalue())["from"]["pruned_at"] is not None
    page = get(make_datasette(tmp_path), f"/-/snapshotter/runs/{run_id}")
    assert page.status_code == 200
    assert re.search(r'<tr class="pruned"><th>File pruned</th><td>\d{4}-', page.text)


def _info(day: str) -> SnapshotInfo:
    return SnapshotInfo(
        path=Path(f"/archive/1/1_{day}.db"), estab="1", school_name=None,
        taken_at=f"{day}T06:00:00.000Z", finished_at=f"{day}T06:01:00.000Z", complete=True,
        stable=True, incomplete_reason=None, record_counts={}, content_hash="h",
        size_bytes=1, source="fetch",
    )  # fmt: skip


def test_one_a_month_for_the_last_m_calendar_months() -> None:
    days = ["2026-12-31", "2027-01-05", "2027-01-20", "2027-02-10", "2027-03-01"]
    decisions = plan(
        [_info(d) for d in days],
        datetime(2027, 3, 15, tzinfo=UTC),
        keep_daily=0,
        keep_monthly=3,
        keep_terms=False,
    )
    kept = [d.info.taken_at[:10] for d in decisions if d.keep]
    assert kept == ["2027-01-20", "2027-02-10", "2027-03-01"]
    assert date.fromisoformat(kept[0]).month == 1


def test_nothing_is_deleted_while_a_fetch_is_writing(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    paths = build(tmp_path, school)
    writing = paths["0"].parent / f".{paths['0'].stem}.abcd.{os.getpid()}.partial"
    writing.write_bytes(b"")
    result = prune(tmp_path, "--keep-daily", "1")
    assert result.exit_code == 5
    assert "a fetch is writing" in result.output
    assert remaining(tmp_path, paths) == set(paths)


def test_terms_with_the_same_title_every_year_each_keep_their_last(
    tmp_path: Path, school: dict[str, list[dict[str, Any]]]
) -> None:
    """A school whose terms are titled alike every year ("Term"): each term's last snapshot is
    kept, not only the newest term's."""
    alike = copy.deepcopy(school)
    for record in alike["academicSessions"]:
        if record["type"] == "term":
            record["title"] = "Term"
    paths = build(tmp_path, alike)
    result = prune(tmp_path, "--keep-daily", "7", "--keep-monthly", "0")
    assert result.exit_code == 0, result.output
    assert remaining(tmp_path, paths) == {"260", "120", "5", "3-late", "0", "0-incomplete"}


def test_the_record_index_forgets_what_only_pruned_snapshots_held(tmp_path: Path) -> None:
    """After prune, history.db (the history and search pages) holds nobody who is only in
    the files removed: retention is met when prune ends."""
    from helpers_serve import build_archive

    from snapshotter.archive.history import history_path, update_index

    built = build_archive(tmp_path)
    update_index(built.path)
    with closing(sqlite3.connect(built.snapshots[-1])) as conn:
        kept_ids = {row[0] for row in conn.execute("SELECT sourcedId FROM users")}
    with closing(sqlite3.connect(history_path(built.path))) as conn:
        before = {row[0] for row in conn.execute("SELECT sourcedId FROM people WHERE estab = ?",
                                                 ("3281110",))}  # fmt: skip
    assert before - kept_ids, "the test needs people who are only in older snapshots"
    result = prune(
        built.path, "--keep-daily", "0", "--keep-monthly", "0", "--no-keep-terms", "--estab",
        "3281110",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect(history_path(built.path))) as conn:
        after = {row[0] for row in conn.execute("SELECT sourcedId FROM people WHERE estab = ?",
                                                ("3281110",))}  # fmt: skip
    assert after <= kept_ids
