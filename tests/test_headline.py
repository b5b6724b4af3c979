"""People-level counts (the report's headline and the views under it), against the simulator's
own record of what each term did to people: a normal term and a rollover of a 1,000-pupil school."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers_diff import sim_snapshot

from snapshotter.archive.changes import open_changes_db
from snapshotter.archive.layout import read_snapshot_info
from snapshotter.archive.people import headline, role_group
from snapshotter.diff import diff_and_save
from snapshotter.natural import natural_key
from snapshotter.sim.school import PeopleChanges, people_changes

PUPILS = 1000
RUNS = {1: 1, 2: 2, 3: 3}  # term -> run id of the diff from term - 1 to term


@pytest.fixture(scope="module")
def changes_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Terms 0 to 3 of the simulated school, diffed term after term into one changes.db."""
    archive = tmp_path_factory.mktemp("archive")
    paths = {term: sim_snapshot(archive, term, pupils=PUPILS) for term in range(4)}
    database = archive / "changes.db"
    for term, run_id in RUNS.items():
        old, new = read_snapshot_info(paths[term - 1]), read_snapshot_info(paths[term])
        assert diff_and_save(old, new, database).run_id == run_id
    return database


@pytest.fixture(scope="module")
def truth() -> dict[int, PeopleChanges]:
    return {term: people_changes(seed=1, pupils=PUPILS, term=term) for term in RUNS}


def _ids(conn: sqlite3.Connection, sql: str, run_id: int) -> set[Any]:
    return {row[0] if len(row) == 1 else tuple(row) for row in conn.execute(sql, (run_id,))}


def _counts(people: dict[str, tuple[str | None, str | None]]) -> dict[str, Any]:
    """The headline block the truth calls for: total, by role group, pupils by year group."""
    by_role = Counter(role_group(role) for role, _ in people.values())
    by_year = Counter(year or "none" for role, year in people.values() if role == "student")
    return {
        "total": len(people),
        "by_role": {
            group: by_role.get(group, 0) for group in ("students", "staff", "guardians", "other")
        },
        "by_year_group": {key: by_year[key] for key in sorted(by_year, key=natural_key)},
    }


@pytest.mark.parametrize("term", [1, 3], ids=["autumn-to-spring", "rollover"])
def test_the_headline_counts_what_the_simulated_school_did_to_people(
    changes_db: Path, truth: dict[int, PeopleChanges], term: int
) -> None:
    expected = truth[term]
    with closing(open_changes_db(changes_db)) as conn:
        found = headline(conn, RUNS[term])
    assert found == {
        "joiners": _counts(expected.joiners),
        "leavers": _counts(expected.leavers),
        "purged": _counts(expected.purged),
        "year_group_changes": len(expected.year_group_changes),
        "class_moves": len(expected.class_moves),
        "identity_changes": len(expected.identity_changes),
    }
    # Every case the counts must get right is in the data.
    assert expected.purged and expected.identity_changes
    assert set(expected.joiners) & set(expected.leavers), "nobody joined and left"
    if term == 3:
        assert found["year_group_changes"] > 0.7 * PUPILS
        assert found["leavers"]["by_year_group"].keys() >= {"11", "13"}
    else:
        assert found["class_moves"] > 0


@pytest.mark.parametrize(
    "term", [1, 2, 3], ids=["autumn-to-spring", "spring-to-summer", "rollover"]
)
def test_the_views_list_exactly_the_people_the_simulated_school_changed(
    changes_db: Path, truth: dict[int, PeopleChanges], term: int
) -> None:
    expected, run_id = truth[term], RUNS[term]
    with closing(open_changes_db(changes_db)) as conn:
        assert _ids(conn, "SELECT sourcedId FROM joiners WHERE run_id = ?", run_id) == set(
            expected.joiners
        )
        assert _ids(conn, "SELECT sourcedId FROM leavers WHERE run_id = ?", run_id) == set(
            expected.leavers
        )
        assert _ids(conn, "SELECT sourcedId FROM purged WHERE run_id = ?", run_id) == set(
            expected.purged
        )
        moves = "SELECT user_sourcedId, from_class_sourcedId, to_class_sourcedId FROM class_moves"
        assert _ids(conn, moves + " WHERE run_id = ?", run_id) == expected.class_moves
        identity = "SELECT DISTINCT sourcedId FROM identity_changes WHERE run_id = ?"
        assert _ids(conn, identity, run_id) == expected.identity_changes
        joined_and_left = _ids(
            conn,
            "SELECT sourcedId FROM leavers WHERE run_id = ? AND evidence = 'joined and left'",
            run_id,
        )
        assert joined_and_left == set(expected.joiners) & set(expected.leavers) != set()


def test_a_leaver_is_counted_once_in_the_run_they_left_and_purged_later(
    changes_db: Path, truth: dict[int, PeopleChanges]
) -> None:
    with closing(open_changes_db(changes_db)) as conn:
        leavers = {
            term: _ids(conn, "SELECT sourcedId FROM leavers WHERE run_id = ?", run_id)
            for term, run_id in RUNS.items()
        }
        purged = {
            term: _ids(conn, "SELECT sourcedId FROM purged WHERE run_id = ?", run_id)
            for term, run_id in RUNS.items()
        }
        removed_users = _ids(
            conn,
            "SELECT sourcedId FROM changed_records WHERE run_id = ? AND entity = 'users' "
            "AND change = 'removed' AND old_status = 'tobedeleted'",
            RUNS[2],
        )
    # Pupils marked tobedeleted in term 1 and removed in term 2: leavers of run 1 only.
    came_back_purged = leavers[1] & purged[2]
    assert came_back_purged and came_back_purged <= removed_users
    for earlier, later in ((1, 2), (2, 3), (1, 3)):
        assert not leavers[earlier] & leavers[later]
    assert sum(len(found) for found in leavers.values()) == len(set().union(*leavers.values()))


def test_moves_into_classes_the_rollover_dissolved_are_no_class_moves(
    changes_db: Path, truth: dict[int, PeopleChanges]
) -> None:
    with closing(open_changes_db(changes_db)) as conn:
        late = conn.execute(
            "SELECT e.user_sourcedId, e.class_sourcedId FROM changed_records e "
            "WHERE e.run_id = ? AND e.entity = 'enrollments' AND e.change = 'added' "
            "AND e.new_status = 'tobedeleted' "
            "AND json_extract(e.details, '$.class_status') = 'tobedeleted' "
            "AND json_extract(e.details, '$.role') = 'student'",
            (RUNS[3],),
        ).fetchall()
        moves = conn.execute("SELECT count(*) FROM class_moves WHERE run_id = ?", (RUNS[3],))
        assert moves.fetchone()[0] == 0
    # The simulator moved pupils set in the summer, into classes the rollover then dissolved.
    assert len(late) >= 5
    assert truth[3].class_moves == frozenset()


def test_a_saved_run_stores_its_headline_as_the_views_count_it(changes_db: Path) -> None:
    with closing(sqlite3.connect(changes_db)) as conn:
        for run_id in RUNS.values():
            stored = conn.execute("SELECT headline FROM diff_runs WHERE id = ?", (run_id,))
            assert json.loads(stored.fetchone()[0]) == headline(conn, run_id)


def test_the_archive_page_reads_the_stored_headlines(changes_db: Path, tmp_path: Path) -> None:
    from snapshotter.datasette.catalogue import schools

    shutil.copy(changes_db, tmp_path / "changes.db")
    with closing(sqlite3.connect(tmp_path / "changes.db")) as conn, conn:
        stored = json.loads(
            conn.execute("SELECT headline FROM diff_runs WHERE id = 1").fetchone()[0]
        )
        stored["joiners"]["total"] = 12345  # a count the views cannot give: read, not computed
        conn.execute("UPDATE diff_runs SET headline = ? WHERE id = 1", (json.dumps(stored),))
    (school,) = schools(tmp_path)
    assert {run["id"]: run["headline"]["joiners"]["total"] for run in school.runs}[1] == 12345


def test_a_changes_db_saved_before_headlines_were_stored_shows_the_right_counts(
    changes_db: Path, tmp_path: Path
) -> None:
    from snapshotter.datasette.catalogue import schools

    shutil.copy(changes_db, tmp_path / "changes.db")
    with closing(sqlite3.connect(tmp_path / "changes.db")) as conn, conn:
        expected = {run_id: headline(conn, run_id) for run_id in RUNS.values()}
        conn.execute("ALTER TABLE diff_runs DROP COLUMN headline")
        conn.execute("PRAGMA user_version = 1")  # an older shape
    (school,) = schools(tmp_path)
    assert {run["id"]: run["headline"] for run in school.runs} == expected
