"""The change report database: what a diff keeps, and the views auditors query."""

from __future__ import annotations

import copy
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_diff import (
    PUPILS,
    AuditScenario,
    audit_scenario,
    first,
    sim_snapshot,
    term_time,
    write_snapshot,
)

from snapshotter.archive.changes import VIEWS_SQL
from snapshotter.cli import cli
from snapshotter.sim.school import generate


def diff(archive: Path, *args: str) -> None:
    result = CliRunner().invoke(
        cli, ["diff", "--archive", str(archive), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Saved as run" in result.stderr


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> AuditScenario:
    scenario = audit_scenario(tmp_path_factory.mktemp("archive"))
    diff(scenario.old_path.parent.parent)
    return scenario


@pytest.fixture(scope="module")
def db(scenario: AuditScenario) -> sqlite3.Connection:
    conn = sqlite3.connect(scenario.old_path.parent.parent / "changes.db")
    conn.row_factory = sqlite3.Row
    return conn


def rows(db: sqlite3.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in db.execute(sql, params)]


def view(db: sqlite3.Connection, columns: str, name: str, where: str = "", *params: Any) -> list:
    """Rows of a view for the scenario's diff (run 1; other tests add runs with other options)."""
    condition = "run_id = 1" + (f" AND {where}" if where else "")
    return rows(db, f"SELECT {columns} FROM {name} WHERE {condition}", *params)


def test_the_run_records_both_snapshots_their_hashes_and_the_counts(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    snapshots = rows(db, "SELECT * FROM snapshots ORDER BY taken_at")
    assert [s["path"] for s in snapshots] == [
        str(scenario.old_path.resolve()),
        str(scenario.new_path.resolve()),
    ]
    assert all(s["complete"] == 1 and len(s["content_hash"]) == 64 for s in snapshots)
    assert all(s["school_year"] == "2026/27" for s in snapshots)
    [run] = rows(db, "SELECT * FROM diff_runs")
    assert (run["estab"], run["school_name"], run["records_changed"]) == (
        "3281110",
        "Quarrendon Academy",
        11 + scenario.hard_leaver_enrollments,
    )
    assert run["rollover"] == 0 and run["mass_changes"] == "[]"
    counts = {
        (r["entity"], r["change"]): r["records"]
        for r in rows(db, "SELECT * FROM change_counts WHERE records > 0")
    }
    assert counts[("enrollments", "removed")] == scenario.hard_leaver_enrollments + 1
    assert counts[("users", "changed")] == 2


def test_each_changed_record_and_field_has_a_row(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    [record] = rows(db, "SELECT * FROM changed_records WHERE sourcedId = ?", scenario.renamed_pupil)
    assert record["entity"] == "users" and record["change"] == "changed"
    assert record["label"].endswith("Tanaka-Reyes (student, year 9)")
    assert record["changed_fields"] == "familyName, email, userIds"
    fields = rows(
        db,
        "SELECT path, old, new FROM changed_fields WHERE record_id = ? ORDER BY id",
        record["id"],
    )
    assert fields[0] == {"path": "familyName", "old": fields[0]["old"], "new": "Tanaka-Reyes"}
    assert [f["path"] for f in fields] == ["familyName", "email", "userIds[type=UPN].identifier"]
    total = db.execute("SELECT count(*) FROM changed_records WHERE run_id = 1").fetchone()[0]
    assert total == 11 + scenario.hard_leaver_enrollments


def test_saving_the_same_pair_again_duplicates_nothing(scenario: AuditScenario) -> None:
    archive = scenario.old_path.parent.parent
    database = archive / "changes.db"

    def totals() -> tuple[int, ...]:
        with sqlite3.connect(database) as conn:
            return tuple(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in (
                    "snapshots",
                    "diff_runs",
                    "change_counts",
                    "changed_records",
                    "changed_fields",
                )
            )

    before = totals()
    diff(archive)
    diff(archive, str(scenario.old_path), str(scenario.new_path))
    assert totals() == before
    diff(archive, "--include-touched")  # other options: another run
    assert totals()[1] == before[1] + 1


def test_the_changes_database_is_readable_by_its_owner_only(scenario: AuditScenario) -> None:
    database = scenario.old_path.parent.parent / "changes.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_every_view_answers_a_query(db: sqlite3.Connection) -> None:
    for view in VIEWS_SQL:
        db.execute(f"SELECT * FROM {view}").fetchall()


def test_joiners_and_leavers_keep_soft_and_hard_evidence_apart(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    joiners = view(db, "sourcedId, role, how", "joiners")
    assert joiners == [{"sourcedId": scenario.joiner, "role": "student", "how": "new record"}]
    leavers = {
        r["sourcedId"]: (r["role"], r["evidence"])
        for r in view(db, "sourcedId, role, evidence", "leavers")
    }
    assert leavers == {
        scenario.hard_leaver: ("student", "hard"),
        scenario.soft_leaver: ("student", "soft"),
        scenario.leaving_teacher: ("teacher", "soft"),
    }


def test_staff_leavers_are_listed_with_the_classes_they_held(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    held = view(db, "user_sourcedId, evidence, class", "staff_leavers_classes")
    assert {r["user_sourcedId"] for r in held} == {scenario.leaving_teacher}
    assert len(held) == len(scenario.teacher_classes)
    assert all(any(f"({code})" in r["class"] for r in held) for code in scenario.teacher_classes)


def test_year_group_changes_show_the_old_and_new_year(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    assert view(db, "sourcedId, label, old_year_group, new_year_group", "year_group_changes") == [
        {
            "sourcedId": scenario.year_group_pupil,
            "label": "Zoë O'Brien (student, year 8)",
            "old_year_group": "7",
            "new_year_group": "8",
        }
    ]


def test_class_moves_pair_an_ended_enrollment_with_one_begun_in_the_same_course(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    moves = {
        r["user_sourcedId"]: r
        for r in view(
            db,
            "user_sourcedId, move, from_class_sourcedId, to_class_sourcedId, to_class, "
            "ended_how, began_how",
            "class_moves",
        )
    }
    assert set(moves) == {
        scenario.moved_pupil,
        scenario.record_moved_pupil,
        scenario.form_moved_pupil,
    }
    by_new_enrollment = moves[scenario.moved_pupil]
    assert (by_new_enrollment["ended_how"], by_new_enrollment["began_how"]) == ("removed", "added")
    by_edit = moves[scenario.record_moved_pupil]
    assert by_edit["ended_how"] == "class changed"
    for move in (by_new_enrollment, by_edit):
        assert move["move"] == "class"
        assert (move["from_class_sourcedId"], move["to_class_sourcedId"]) == (
            scenario.from_class,
            scenario.new_class,
        )
        assert move["to_class"] == "9X/Ma2"
    assert moves[scenario.form_moved_pupil]["move"] == "registration group"


def test_identity_changes_show_each_identity_field_before_and_after(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    changes = {
        r["path"]: (r["old_value"], r["new_value"])
        for r in view(
            db,
            "path, old_value, new_value",
            "identity_changes",
            "sourcedId = ?",
            scenario.renamed_pupil,
        )
    }
    assert set(changes) == {"familyName", "email", "userIds[type=UPN].identifier"}
    assert changes["email"][1] == "tanaka-reyes@pupils.example"
    assert changes["userIds[type=UPN].identifier"][1] == "Z99999999999Z"
    everyone = {r["sourcedId"] for r in view(db, "sourcedId", "identity_changes")}
    assert everyone == {scenario.renamed_pupil}


def test_structure_changes_list_classes_created_or_retired(
    scenario: AuditScenario, db: sqlite3.Connection
) -> None:
    assert view(db, "entity, change, sourcedId, label", "structure_changes") == [
        {
            "entity": "classes",
            "change": "added",
            "sourcedId": scenario.new_class,
            "label": "Mathematics 9X2 (9X/Ma2)",
        }
    ]


def test_a_rollover_run_is_marked_as_one_with_its_mass_changes(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 2)
    sim_snapshot(tmp_path, 3)
    diff(tmp_path)
    with sqlite3.connect(tmp_path / "changes.db") as conn:
        run = conn.execute(
            "SELECT rollover, old_school_year, new_school_year, mass_changes FROM diff_runs"
        ).fetchone()
        moves = conn.execute("SELECT move, count(*) FROM class_moves GROUP BY move").fetchall()
        year_changes = conn.execute("SELECT count(*) FROM year_group_changes").fetchone()[0]
    assert run[:3] == (1, "2026/27", "2027/28")
    assert '"entity":"enrollments"' in run[3]
    assert year_changes > 0  # every pupil staying on moves up a year
    # A new year's sets are in new courses and its forms are for the next year group: moving up
    # a year is a year-group change, not a move, and the simulator moved nobody at the rollover.
    assert moves == []


def _ongoing_classes(school: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    """Each pupil's classes by enrollments running (active, no end date), from the raw records."""
    found: dict[str, set[str]] = {}
    for e in school["enrollments"]:
        if e["role"] == "student" and e["status"] == "active" and not e.get("endDate"):
            found.setdefault(e["user"]["sourcedId"], set()).add(e["class"]["sourcedId"])
    return found


@pytest.mark.parametrize("term", [1, 4], ids=["autumn-to-spring", "after-the-rollover"])
def test_class_moves_are_the_set_and_form_moves_the_simulated_school_made(
    tmp_path: Path, term: int
) -> None:
    pupils = 300  # enough for two sets of a course and two forms of a year group
    old_school = generate(seed=1, pupils=pupils, term=term - 1)
    new_school = generate(seed=1, pupils=pupils, term=term)
    sim_snapshot(tmp_path, term - 1, pupils=pupils)
    sim_snapshot(tmp_path, term, pupils=pupils)
    diff(tmp_path)
    classes = {c["sourcedId"]: c for c in old_school["classes"] + new_school["classes"]}

    def one_group(a: str, b: str) -> bool:
        ca, cb = classes[a], classes[b]
        if ca.get("course") is not None and ca.get("course") == cb.get("course"):
            return True
        return ca["classType"] == cb["classType"] == "homeroom" and ca["grades"] == cb["grades"]

    before, after = _ongoing_classes(old_school), _ongoing_classes(new_school)
    truth = {
        (pupil, left, joined)
        for pupil in before.keys() & after.keys()
        for left in before[pupil] - after[pupil]
        for joined in after[pupil] - before[pupil]
        if one_group(left, joined)
    }
    with sqlite3.connect(tmp_path / "changes.db") as conn:
        found = set(
            conn.execute(
                "SELECT user_sourcedId, from_class_sourcedId, to_class_sourcedId FROM class_moves"
            )
        )
        kinds = {move for (move,) in conn.execute("SELECT move FROM class_moves")}
    conn.close()
    assert found == truth
    assert kinds == {"class", "registration group"}


def test_a_pupil_who_moves_again_is_not_moved_from_the_class_left_a_term_ago(
    tmp_path: Path,
) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active", grades=["9"])["sourcedId"]
    classes = {c["sourcedId"]: c for c in school["classes"]}
    first_set = next(
        e
        for e in school["enrollments"]
        if e["user"]["sourcedId"] == pupil and "course" in classes[e["class"]["sourcedId"]]
    )
    set_a = classes[first_set["class"]["sourcedId"]]
    # Sets B and C of the same course, in both snapshots.
    school["classes"] += [
        {**copy.deepcopy(set_a), "sourcedId": sid, "classCode": code}
        for sid, code in (("xSETB0001", "9X/Zz2"), ("xSETC0001", "9X/Zz3"))
    ]
    # Before: moved from A to B in September (A's enrollment ended then, still active).
    first_set["endDate"] = "2026-09-20"
    second = {
        **copy.deepcopy(first_set),
        "sourcedId": "xENRB0001",
        "beginDate": "2026-09-20",
        "class": {"sourcedId": "xSETB0001", "type": "class"},
    }
    del second["endDate"]
    school["enrollments"].append(second)
    # After: A's old enrollment only now marked tobedeleted, and a move from B to C.
    later = copy.deepcopy(school)
    moved = {e["sourcedId"]: e for e in later["enrollments"]}
    moved[first_set["sourcedId"]]["status"] = "tobedeleted"
    moved["xENRB0001"]["endDate"] = "2026-10-18"
    later["enrollments"].append(
        {
            **copy.deepcopy(second),
            "sourcedId": "xENRC0001",
            "beginDate": "2026-10-18",
            "class": {"sourcedId": "xSETC0001", "type": "class"},
        }
    )
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    write_snapshot(tmp_path, later, taken_at=term_time(0).replace(day=20))
    diff(tmp_path)
    with sqlite3.connect(tmp_path / "changes.db") as conn:
        moves = conn.execute(
            "SELECT from_class_sourcedId, to_class_sourcedId FROM class_moves "
            "WHERE user_sourcedId = ?",
            (pupil,),
        ).fetchall()
    conn.close()
    assert moves == [("xSETB0001", "xSETC0001")]


def test_a_changes_database_from_before_statuses_were_kept_is_upgraded_in_place(
    tmp_path: Path,
) -> None:
    from snapshotter.archive.changes import TABLES_SQL

    sim_snapshot(tmp_path, 0)
    sim_snapshot(tmp_path, 1)
    database = tmp_path / "changes.db"
    old_tables = TABLES_SQL.replace("  details TEXT NOT NULL DEFAULT '{}',\n", "  details TEXT")
    old_tables = old_tables.replace(
        "  old_status TEXT,\n  new_status TEXT\n", " NOT NULL DEFAULT '{}'\n"
    )
    assert "old_status" not in old_tables
    with sqlite3.connect(database) as conn:
        conn.executescript(old_tables)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO changed_records (run_id, entity, sourcedId, change, details) "
            "VALUES (99, 'users', 'xKEPT0001', 'removed', '{}')"
        )
    conn.close()
    database.chmod(0o600)
    diff(tmp_path)
    with sqlite3.connect(database) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(changed_records)")]
        kept = conn.execute(
            "SELECT change, old_status, new_status FROM changed_records WHERE run_id = 99"
        ).fetchall()
        statuses = conn.execute(
            "SELECT count(*) FROM changed_records WHERE run_id != 99 AND old_status IS NULL "
            "AND new_status IS NULL"
        ).fetchone()[0]
        purged = conn.execute("SELECT count(*) FROM purged").fetchone()[0]
    conn.close()
    assert columns[-2:] == ["old_status", "new_status"]
    assert kept == [("removed", None, None)]  # the old run is kept as it was
    assert statuses == 0 and purged > 0  # the new run has them, and purged people apart


def test_a_move_counts_only_into_an_active_class_by_an_enrollment_still_running(
    tmp_path: Path,
) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    classes = {c["sourcedId"]: c for c in school["classes"]}
    year9 = [
        u["sourcedId"]
        for u in school["users"]
        if u["role"] == "student" and u["status"] == "active" and u["grades"] == ["9"]
    ]
    maths = {
        pupil: next(
            e
            for e in school["enrollments"]
            if e["user"]["sourcedId"] == pupil
            and classes[e["class"]["sourcedId"]]["classCode"].endswith("/Ma1")
        )
        for pupil in year9[:3]
    }
    set_a = classes[next(iter(maths.values()))["class"]["sourcedId"]]
    assert all(e["class"]["sourcedId"] == set_a["sourcedId"] for e in maths.values())
    # Two more sets of the course: B runs on, C is dissolved by the new snapshot.
    school["classes"] += [
        {**copy.deepcopy(set_a), "sourcedId": sid, "classCode": code}
        for sid, code in (("xSETB0001", "9X/Ma2"), ("xSETC0001", "9X/Ma3"))
    ]
    later = copy.deepcopy(school)
    next(c for c in later["classes"] if c["sourcedId"] == "xSETC0001")["status"] = "tobedeleted"
    by_id = {e["sourcedId"]: e for e in later["enrollments"]}
    ended_again, into_dissolved, moved = year9[:3]
    targets = {ended_again: "xSETB0001", into_dissolved: "xSETC0001", moved: "xSETB0001"}
    for number, (pupil, target) in enumerate(targets.items()):
        by_id[maths[pupil]["sourcedId"]]["endDate"] = "2026-10-16"
        began = {
            **copy.deepcopy(maths[pupil]),
            "sourcedId": f"xMOVE0000{number}",
            "beginDate": "2026-10-16",
            "class": {"sourcedId": target, "type": "class"},
        }
        if pupil == ended_again:
            began["endDate"] = "2026-10-18"  # a week's trial, over before the snapshot
        later["enrollments"].append(began)
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    write_snapshot(tmp_path, later, taken_at=term_time(0).replace(day=20))
    diff(tmp_path)
    with sqlite3.connect(tmp_path / "changes.db") as conn:
        moves = conn.execute(
            "SELECT user_sourcedId, to_class_sourcedId FROM class_moves"
        ).fetchall()
    conn.close()
    assert moves == [(moved, "xSETB0001")]
