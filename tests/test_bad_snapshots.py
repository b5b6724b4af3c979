"""Bad snapshot files: one clear line, never a traceback, nothing changed by trying; one bad file
never stops `snapshots` or `diff` for the others, nor vanishes in silence; snapshots are ordered
by the time they began, to the millisecond."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers_diff import ESTAB, sim_snapshot, term_time, write_snapshot
from helpers_fetch import tree

from snapshotter.cli import cli
from snapshotter.sim.school import generate

ADVICE = "fetch a new snapshot, or move the file out of the archive"


def run(*args: str | Path) -> Result:
    # catch_exceptions=False: a traceback fails the test instead of hiding in `result`.
    return CliRunner().invoke(cli, [*map(str, args)], catch_exceptions=False)


def _foreign_schema(path: Path) -> None:
    """An SQLite file of another program (or an old version) with a snapshot_metadata table."""
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE snapshot_metadata (estab TEXT, started_at TEXT)")
        conn.execute(
            "INSERT INTO snapshot_metadata VALUES (?, '2027-05-15T08:30:00.000Z')", (ESTAB,)
        )
    conn.close()


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(statement)
        conn.close()

    return damage


def _random_bytes_in_the_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = random.Random(7).randbytes(8192)
    path.write_bytes(bytes(data))


def _first_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text(path: Path) -> None:
    path.write_text("id,name\n1,not a snapshot\n")


# (how the file is spoilt, what the one line says is wrong with it)
DAMAGE = {
    "another schema": (_foreign_schema, "snapshot_metadata table lacks"),
    "a table missing": (_sql("DROP TABLE users"), "has no users table"),
    "record_counts not JSON": (
        _sql("UPDATE snapshot_metadata SET record_counts = '{users: 3'"),
        "record_counts is not a JSON object",
    ),
    "record_counts not an object": (
        _sql("UPDATE snapshot_metadata SET record_counts = '[1, 2]'"),
        "record_counts is not a JSON object",
    ),
    "record_counts negative": (
        _sql("""UPDATE snapshot_metadata SET record_counts = '{"users": -3}'"""),
        "gives users the count -3",
    ),
    "truncated": (_first_half, "cut short"),
    "not SQLite": (_text, "not an SQLite database"),
}
# Damage in the tables, not the metadata: only reading them (a diff) shows it.
DAMAGED_TABLES = {
    "damaged tables": (_random_bytes_in_the_middle, "the file is damaged"),
    "a record not JSON": (
        _sql("UPDATE users SET _record = '{\"sourcedId\": ', _hash = 'x' WHERE rowid = 1"),
        "damaged, it seems",
    ),
}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Three snapshots of one school, in terms 0, 1 and 2."""
    for term in range(3):
        sim_snapshot(tmp_path / "archive", term)
    return tmp_path / "archive"


def snapshot_files(archive: Path) -> list[Path]:
    return sorted((archive / ESTAB).glob("*.db"))


def one_line_naming(result: Result, path: Path, problem: str) -> None:
    """Exit 1 with a single line on stderr: the file, what is wrong, what to do."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and problem in lines[0] and ADVICE in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", list(DAMAGE) + list(DAMAGED_TABLES))
def test_a_bad_snapshot_named_by_path_gets_one_line_and_exit_1(archive: Path, kind: str) -> None:
    spoil, problem = {**DAMAGE, **DAMAGED_TABLES}[kind]
    old, _, bad = snapshot_files(archive)
    spoil(bad)
    before = tree(archive / ESTAB)

    one_line_naming(run("diff", old, bad, "--archive", archive), bad, problem)
    if kind != "damaged tables":  # as OLD, the damaged pages (an index) are not read at all
        one_line_naming(run("diff", bad, old, "--reverse", "--archive", archive), bad, problem)

    # The snapshots are as they were; the changes database, if the diff got as far as opening
    # it (damage in the tables shows only while comparing), holds no run.
    assert tree(archive / ESTAB) == before
    changes_db = archive / "changes.db"
    if changes_db.exists():
        with sqlite3.connect(changes_db) as conn:
            assert conn.execute("SELECT count(*) FROM diff_runs").fetchone() == (0,)
        conn.close()


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_an_unreadable_newest_snapshot_is_listed_as_such_and_the_diff_says_it_skipped_it(
    archive: Path, kind: str
) -> None:
    spoil, problem = DAMAGE[kind]
    first, second, bad = snapshot_files(archive)
    spoil(bad)
    before = tree(archive)

    table = run("snapshots", "--archive", archive)
    assert table.exit_code == 0
    assert "UNREADABLE: " in table.stdout and problem in table.stdout
    assert str(bad) in table.stdout and str(second) in table.stdout
    assert str(bad) in table.stderr and ADVICE in table.stderr

    listed = run("snapshots", "--archive", archive, "--json")
    assert listed.exit_code == 0 and str(bad) in listed.stderr
    entries = json.loads(listed.stdout)
    assert [e["path"] for e in entries] == [str(first), str(second), str(bad)]
    readable_keys = set(entries[0])
    assert entries[0]["unreadable"] is None and entries[0]["record_counts"]["users"] > 0
    unreadable = entries[2]
    assert set(unreadable) == readable_keys
    assert problem in unreadable["unreadable"]
    assert unreadable["estab"] == ESTAB
    assert unreadable["taken_at"] == "2027-05-15T08:30:00.000Z"  # from its name
    named = {"path", "estab", "taken_at", "unreadable"}
    assert all(value is None for key, value in unreadable.items() if key not in named)

    # A plain diff says which file it skipped and why, then compares the two readable ones.
    result = run("diff", "--archive", archive, "--format", "json", "--no-save")
    assert result.exit_code == 0, result.output
    assert f"skipped {bad}" in result.stderr and problem in result.stderr
    report = json.loads(result.stdout)
    assert (report["from"]["name"], report["to"]["name"]) == (first.stem, second.stem)

    assert tree(archive) == before


def test_damaged_tables_found_by_a_plain_diff_get_one_line_naming_the_file(archive: Path) -> None:
    *_, bad = snapshot_files(archive)
    _random_bytes_in_the_middle(bad)
    before = tree(archive)

    one_line_naming(run("diff", "--archive", archive, "--no-save"), bad, "the file is damaged")
    assert tree(archive) == before


def test_snapshots_taken_in_one_second_are_ordered_by_when_they_began(tmp_path: Path) -> None:
    """Two fetches in one second: the later-started one finished first and took the plain
    name, so the earlier one is `-2`. By name, a plain diff would refuse them as OLD newer
    than NEW; by start time it compares them the right way round."""
    archive = tmp_path / "archive"
    second = term_time(1)
    later = write_snapshot(
        archive, generate(seed=1, pupils=150, term=1), taken_at=second + timedelta(seconds=0.6)
    )
    earlier = write_snapshot(
        archive, generate(seed=1, pupils=150, term=0), taken_at=second + timedelta(seconds=0.1)
    )
    assert earlier.stem == later.stem + "-2"  # the premise: finishing order named them

    listed = json.loads(run("snapshots", "--archive", archive, "--json").stdout)
    assert [e["path"] for e in listed] == [str(earlier), str(later)]
    for args in ([], ["previous", "latest"], ["previous"]):
        result = run("diff", *args, "--archive", archive, "--format", "json", "--no-save")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["from"]["name"], report["to"]["name"]) == (earlier.stem, later.stem)


def test_a_snapshot_from_before_dropped_paths_existed_is_still_read_and_compared(
    tmp_path: Path,
) -> None:
    # Snapshot files written by the version before `dropped_paths` lack that metadata column:
    # they are older snapshots, not another program's files, and every archive holds them.
    archive = tmp_path / "archive"
    paths = [sim_snapshot(archive, term) for term in (0, 1)]
    for path in paths:
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE snapshot_metadata DROP COLUMN dropped_paths")
        conn.close()
    listed = run("snapshots", "--archive", archive, "--json")
    assert listed.exit_code == 0 and "Warning" not in listed.stderr
    assert [entry["unreadable"] for entry in json.loads(listed.stdout)] == [None, None]
    compared = run("diff", "--archive", archive, "--no-save", "--format", "json")
    assert compared.exit_code == 0, compared.stderr
    assert json.loads(compared.stdout)["summary"]["users"]
