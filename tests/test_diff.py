"""The diff finds exactly what changed between two snapshots, and nothing else."""

from __future__ import annotations

import copy
import random
import sqlite3
from pathlib import Path

import pytest
from helpers_diff import PUPILS, edited, first, sim_snapshot, term_time, write_snapshot

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.diff import (
    FieldChange,
    current_school_year,
    diff_and_save,
    diff_snapshots,
    field_changes,
)
from snapshotter.diff.volume import is_rollover
from snapshotter.model import USERS
from snapshotter.sim.school import GUIDE_PUPIL_ID, changes, generate


@pytest.fixture(scope="module")
def term_snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The simulated school at terms 0 to 3 (3 is the first year rollover)."""
    archive = tmp_path_factory.mktemp("archive")
    return {term: sim_snapshot(archive, term) for term in range(4)}


def _found(old: Path, new: Path, *, include_touched: bool = False) -> set[tuple[str, str, str]]:
    return {
        (c.entity, c.sourcedId, c.change)
        for c in diff_snapshots(old, new, include_touched=include_touched)
    }


def _truth(term: int, *, include_touched: bool = False) -> set[tuple[str, str, str]]:
    return {
        (c.entity, c.sourcedId, c.kind)
        for c in changes(seed=1, pupils=PUPILS, term=term)
        if include_touched or c.kind != "touched"
    }


@pytest.mark.parametrize(
    "term", [1, 2, 3], ids=["autumn-to-spring", "spring-to-summer", "rollover"]
)
def test_the_diff_finds_every_change_the_generator_made_and_nothing_else(
    term_snapshots: dict[int, Path], term: int
) -> None:
    found = _found(term_snapshots[term - 1], term_snapshots[term])
    truth = _truth(term)
    assert found == truth
    kinds = {kind for _, _, kind in truth}
    assert {"added", "removed", "tobedeleted", "reactivated", "changed"} <= kinds


@pytest.mark.parametrize("term", [1, 3], ids=["autumn-to-spring", "rollover"])
def test_touched_records_are_reported_only_when_asked_for(
    term_snapshots: dict[int, Path], term: int
) -> None:
    old, new = term_snapshots[term - 1], term_snapshots[term]
    assert "touched" not in {kind for _, _, kind in _found(old, new)}
    with_touched = _found(old, new, include_touched=True)
    assert with_touched == _truth(term, include_touched=True)
    assert "touched" in {kind for _, _, kind in with_touched}


def test_a_touched_record_shows_only_its_new_dateLastModified(
    term_snapshots: dict[int, Path],
) -> None:
    touched = [
        c
        for c in diff_snapshots(term_snapshots[0], term_snapshots[1], include_touched=True)
        if c.change == "touched"
    ]
    assert touched
    for change in touched:
        assert [f.path for f in change.fields] == ["dateLastModified"]
        assert change.fields[0].old != change.fields[0].new


def test_reordered_set_arrays_and_records_in_another_order_are_no_change(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    shuffled = copy.deepcopy(school)
    rng = random.Random(7)
    for collection, records in shuffled.items():
        rng.shuffle(records)
        for record in records:
            for name in ("userIds", "orgSourcedIds", "grades", "terms", "children", "subjects"):
                if isinstance(record.get(name), list):
                    record[name].reverse()
            for ref in ("user", "class", "school", "course", "parent", "org"):
                if isinstance(record.get(ref), dict):  # hrefs point anywhere in the wild
                    record[ref]["href"] = f"https://elsewhere.example/{collection}"
    assert shuffled["users"] != school["users"]
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, shuffled, taken_at=term_time(0).replace(day=16))
    assert _found(old, new, include_touched=True) == set()


def test_inactive_counts_as_tobedeleted(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")["sourcedId"]
    already_gone = first(school, "users", status="tobedeleted")["sourcedId"]
    later = edited(school, "users", pupil, status="inactive")
    later = edited(later, "users", already_gone, status="inactive")
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, later, taken_at=term_time(1))
    # An inactive pupil is a leaver; a tobedeleted one sent as inactive has not changed.
    assert _found(old, new) == {("users", pupil, "tobedeleted")}


def test_a_pupil_back_from_tobedeleted_to_active_is_reactivated(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    gone = first(school, "users", status="tobedeleted")["sourcedId"]
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(
        tmp_path, edited(school, "users", gone, status="active"), taken_at=term_time(1)
    )
    [change] = diff_snapshots(old, new)
    assert (change.entity, change.sourcedId, change.change) == ("users", gone, "reactivated")
    assert {f.path: (f.old, f.new) for f in change.fields}["status"] == ("tobedeleted", "active")


def test_a_leaver_whose_other_fields_changed_too_is_tobedeleted_with_every_changed_field(
    tmp_path: Path,
) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")
    later = edited(
        school, "users", pupil["sourcedId"], status="tobedeleted", email="left@pupils.example"
    )
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, later, taken_at=term_time(1))
    [change] = diff_snapshots(old, new)
    assert change.change == "tobedeleted"
    assert {f.path: (f.old, f.new) for f in change.fields} == {
        "status": ("active", "tobedeleted"),
        "email": (pupil["email"], "left@pupils.example"),
    }


def test_changed_fields_are_reported_at_the_path_that_changed(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    zoe = first(school, "users", sourcedId=GUIDE_PUPIL_ID)
    upn_changed = [
        {**uid, "identifier": "Z99999999999Z"} if uid["type"] == "UPN" else uid
        for uid in zoe["userIds"]
    ]
    later = edited(
        school,
        "users",
        GUIDE_PUPIL_ID,
        userIds=[*reversed(upn_changed), {"type": "ULN", "identifier": "1234567890"}],
        grades=["8"],
        metadata={"sen": {"status": "K", "reviews": [2026, 2027]}},
        dateLastModified="2027-01-05T09:00:00.000Z",
    )
    enrollment = first(school, "enrollments", role="student")
    other_class = next(
        c["sourcedId"]
        for c in school["classes"]
        if c["sourcedId"] != enrollment["class"]["sourcedId"]
    )
    moved = {**enrollment["class"], "sourcedId": other_class, "href": "/somewhere/else"}
    later = edited(later, "enrollments", enrollment["sourcedId"], **{"class": moved})
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, later, taken_at=term_time(1))

    by_id = {c.sourcedId: c for c in diff_snapshots(old, new)}
    assert set(by_id) == {GUIDE_PUPIL_ID, enrollment["sourcedId"]}
    zoe_fields = {f.path: (f.old, f.new) for f in by_id[GUIDE_PUPIL_ID].fields}
    old_upn = next(uid["identifier"] for uid in zoe["userIds"] if uid["type"] == "UPN")
    assert zoe_fields == {
        "userIds[type=UPN].identifier": (old_upn, "Z99999999999Z"),
        "userIds[type=ULN]": (None, {"type": "ULN", "identifier": "1234567890"}),
        "grades": (["7"], ["8"]),
        "metadata": (None, {"sen": {"status": "K", "reviews": [2026, 2027]}}),
    }
    assert by_id[GUIDE_PUPIL_ID].label == "Zoë O'Brien (student, year 8)"
    enrollment_fields = {f.path: (f.old, f.new) for f in by_id[enrollment["sourcedId"]].fields}
    assert enrollment_fields == {"class.sourcedId": (enrollment["class"]["sourcedId"], other_class)}


def test_nested_metadata_changes_are_reported_inside_it(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    before = edited(school, "users", GUIDE_PUPIL_ID, metadata={"sen": {"reviews": [2026, 2027]}})
    after = edited(
        school, "users", GUIDE_PUPIL_ID, metadata={"sen": {"reviews": [2026]}, "fsm": True}
    )
    old = write_snapshot(tmp_path, before, taken_at=term_time(0))
    new = write_snapshot(tmp_path, after, taken_at=term_time(1))
    [change] = diff_snapshots(old, new)
    assert {f.path: (f.old, f.new) for f in change.fields} == {
        "metadata.fsm": (None, True),
        "metadata.sen.reviews[1]": (2027, None),
    }


def test_a_replaced_term_of_a_class_reads_as_one_removed_and_one_added(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    klass = first(school, "classes", classType="scheduled")
    terms = klass["terms"]
    replaced = [*terms[1:], {"sourcedId": "xNEWTERM1", "type": "academicSession"}]
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(
        tmp_path,
        edited(school, "classes", klass["sourcedId"], terms=replaced),
        taken_at=term_time(1),
    )
    [change] = diff_snapshots(old, new)
    gone = terms[0]["sourcedId"]
    assert {f.path: (f.old is None, f.new is None) for f in change.fields} == {
        f"terms[sourcedId={gone}]": (False, True),
        "terms[sourcedId=xNEWTERM1]": (True, False),
    }


def test_enrollments_are_labelled_with_the_person_and_the_class(
    term_snapshots: dict[int, Path],
) -> None:
    labels = {
        c.label
        for c in diff_snapshots(term_snapshots[0], term_snapshots[1])
        if c.entity == "enrollments"
    }
    assert labels
    assert all(" in " in label and "(" in label for label in labels)
    assert not any(label.startswith("x") for label in labels)


def test_a_snapshot_s_school_year_comes_from_its_data_not_the_clock(tmp_path: Path) -> None:
    # Taken in the autumn of 2026, as the demo's snapshots are, of a school already rolled over.
    rolled_over = write_snapshot(
        tmp_path, generate(seed=1, pupils=PUPILS, term=3), taken_at=term_time(0)
    )
    before = write_snapshot(
        tmp_path, generate(seed=1, pupils=PUPILS, term=2), taken_at=term_time(0)
    )
    old_year = current_school_year(read_snapshot_info(before))
    new_year = current_school_year(read_snapshot_info(rolled_over))
    assert (old_year.title, new_year.title) == ("2026/27", "2027/28")
    assert is_rollover(old_year, new_year)
    assert not is_rollover(new_year, new_year)


def test_a_userids_entry_changed_beside_one_added_and_one_removed_is_each_reported_once(
    tmp_path: Path,
) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    zoe = first(school, "users", sourcedId=GUIDE_PUPIL_ID)
    upn = next(uid for uid in zoe["userIds"] if uid["type"] == "UPN")
    others = [uid for uid in zoe["userIds"] if uid["type"] != "UPN"]
    # The UPN corrected, every other identifier dropped and a local authority one added.
    user_ids = [{"type": "UPN", "identifier": "Z99999999999Z"}, {"type": "LA", "identifier": "L7"}]
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(
        tmp_path,
        edited(school, "users", GUIDE_PUPIL_ID, userIds=user_ids),
        taken_at=term_time(1),
    )
    [change] = diff_snapshots(old, new)
    assert {f.path: (f.old, f.new) for f in change.fields} == {
        "userIds[type=LA]": (None, {"type": "LA", "identifier": "L7"}),
        "userIds[type=UPN].identifier": (upn["identifier"], "Z99999999999Z"),
        **{f"userIds[type={uid['type']}]": (uid, None) for uid in others},
    }
    # One row per path in the change report database, so saving it works.
    result = diff_and_save(read_snapshot_info(old), read_snapshot_info(new), tmp_path / "c.db")
    assert result.summary["users"]["changed"] == 1


def test_set_items_with_no_name_to_match_them_by_are_reported_as_the_whole_set() -> None:
    before = {"userIds": [{"type": "MIS", "identifier": "a"}, {"type": "MIS", "identifier": "b"}]}
    after = {"userIds": [{"type": "MIS", "identifier": "a"}, {"type": "MIS", "identifier": "c"}]}
    assert field_changes(USERS, before, after) == [
        FieldChange("userIds", "userIds", before["userIds"], after["userIds"])
    ]


def test_a_record_whose_hash_alone_differs_is_not_reported_even_with_touched(
    tmp_path: Path,
) -> None:
    # As after a change in how records are hashed: same content, same dateLastModified.
    school = generate(seed=1, pupils=PUPILS, term=0)
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, school, taken_at=term_time(1))
    with sqlite3.connect(new) as conn:
        conn.execute(
            "UPDATE users SET _hash = 'from-another-version' WHERE sourcedId = ?",
            (GUIDE_PUPIL_ID,),
        )
    conn.close()
    assert _found(old, new, include_touched=True) == set()
