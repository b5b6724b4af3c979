"""The synthetic school: deterministic, shaped like a UK secondary school, changing term by term
the way a real one does, with a change log that matches what a diff of two terms would see."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from snapshotter.canonical import canonical_record, comparable_record
from snapshotter.model import COLLECTIONS, ENTITY_BY_COLLECTION
from snapshotter.sim.school import (
    CHANGE_KINDS,
    GUIDE_CLASS_ID,
    GUIDE_PUPIL_ID,
    SYNTHETIC_PASSWORD,
    Change,
    changes,
    generate,
)

PUPILS = 120
SOURCED_ID = re.compile(r"^x[A-Z0-9]{8}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

School = dict[str, list[dict[str, Any]]]


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["sourcedId"]: record for record in records}


def diff_terms(old: School, new: School) -> list[Change]:
    """A straightforward comparison with the diff's semantics, to hold the change log to."""
    found = []
    for name in COLLECTIONS:
        entity = ENTITY_BY_COLLECTION[name]
        before, after = by_id(old[name]), by_id(new[name])
        for sourced_id in sorted(before.keys() | after.keys()):
            if sourced_id not in before:
                found.append(Change(name, sourced_id, "added"))
                continue
            if sourced_id not in after:
                found.append(Change(name, sourced_id, "removed"))
                continue
            old_record = canonical_record(entity, before[sourced_id])
            new_record = canonical_record(entity, after[sourced_id])
            if old_record["status"] != new_record["status"]:
                kind = "tobedeleted" if new_record["status"] == "tobedeleted" else "reactivated"
            elif comparable_record(entity, old_record) != comparable_record(entity, new_record):
                kind = "changed"
            elif old_record != new_record:
                kind = "touched"
            else:
                continue
            found.append(Change(name, sourced_id, kind))
    return found


def active(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["status"] == "active"]


def pupils_of(school: School) -> list[dict[str, Any]]:
    return [user for user in school["users"] if user["role"] == "student"]


@pytest.fixture(scope="module")
def terms() -> list[School]:
    """The same school at terms 0 to 4 (the rollover is term 3)."""
    return [generate(seed=3, pupils=PUPILS, term=term) for term in range(5)]


def test_the_same_arguments_give_byte_identical_data() -> None:
    first = json.dumps(generate(seed=5, pupils=80, term=2), ensure_ascii=False)
    second = json.dumps(generate(seed=5, pupils=80, term=2), ensure_ascii=False)
    assert first == second


def test_the_data_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "import json, sys; from snapshotter.sim.school import generate, changes; "
        "sys.stdout.write(json.dumps([generate(2, 90, 3), changes(2, 90, 3)], default=vars))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_another_seed_gives_another_school() -> None:
    one = generate(seed=5, pupils=80, term=0)
    other = generate(seed=6, pupils=80, term=0)
    assert json.dumps(one) != json.dumps(other)
    assert {u["familyName"] for u in one["users"]} != {u["familyName"] for u in other["users"]}


def test_sourced_ids_look_like_xporters_and_are_unique(terms: list[School]) -> None:
    for school in terms:
        ids = [record["sourcedId"] for name in COLLECTIONS for record in school[name]]
        assert all(SOURCED_ID.match(sourced_id) for sourced_id in ids)
        assert len(ids) == len(set(ids))


def test_the_guides_example_ids_are_a_pupil_and_a_set_that_pupil_is_in(
    terms: list[School],
) -> None:
    school = terms[0]
    pupil = by_id(school["users"])[GUIDE_PUPIL_ID]
    assert pupil["role"] == "student"
    assert by_id(school["classes"])[GUIDE_CLASS_ID]["classType"] == "scheduled"
    assert any(
        e["user"]["sourcedId"] == GUIDE_PUPIL_ID and e["class"]["sourcedId"] == GUIDE_CLASS_ID
        for e in school["enrollments"]
    )


def test_every_record_has_the_fields_xporter_sends_in_its_formats(terms: list[School]) -> None:
    school = terms[1]
    for name in COLLECTIONS:
        entity = ENTITY_BY_COLLECTION[name]
        for record in school[name]:
            assert record["status"] in ("active", "tobedeleted")
            assert TIMESTAMP.match(record["dateLastModified"])
            # Optional fields are left out, never sent as null.
            assert None not in record.values()
            for reference in entity.references:
                value = record.get(reference.name)
                if value is None:
                    continue
                refs = value if reference.many else [value]
                for ref in refs:
                    if reference.bare_ids:
                        assert SOURCED_ID.match(ref)
                        continue
                    target = ENTITY_BY_COLLECTION[reference.target]
                    assert ref["type"] == target.singular
                    assert ref["href"].endswith(f"/{target.collection}/{ref['sourcedId']}")
            for field in ("startDate", "endDate", "beginDate"):
                if field in record:
                    assert DATE.match(record[field])


def test_users_carry_xporters_user_fields(terms: list[School]) -> None:
    users = terms[0]["users"]
    for pupil in pupils_of(terms[0]):
        assert pupil["grades"] in [[str(year)] for year in range(7, 14)]
        assert {entry["type"] for entry in pupil["userIds"]} == {"MIS", "UPN"}
        assert isinstance(pupil["enabledUser"], bool)
        assert pupil["email"].startswith(pupil["username"] + "@")
    assert {user["role"] for user in users} == {"student", "teacher", "aide", "administrator"}
    assert any("middleName" in user for user in users)
    assert any("middleName" not in user for user in users)
    assert any("sms" in user for user in users)
    assert all(isinstance(user["orgSourcedIds"], list) for user in users)


def test_a_few_users_carry_a_synthetic_password_for_the_fetcher_to_drop() -> None:
    users = generate(seed=1, pupils=1000, term=0)["users"]
    with_password = [user for user in users if "password" in user]
    assert 0 < len(with_password) < len(users) // 20
    assert {user["password"] for user in with_password} == {SYNTHETIC_PASSWORD}


def test_names_include_diacritics_and_apostrophes(terms: list[School]) -> None:
    users = terms[0]["users"]
    family_names = {user["familyName"] for user in users}
    given_names = {user["givenName"] for user in users}
    assert {"O'Brien", "Ó Súilleabháin"} <= family_names
    assert "Zoë" in given_names
    assert sum(not name.isascii() for name in family_names | given_names) >= 5


def test_the_school_has_years_7_to_13_each_with_registration_groups(terms: list[School]) -> None:
    school = terms[0]
    years = Counter(pupil["grades"][0] for pupil in active(pupils_of(school)))
    assert sorted(years, key=int) == [str(year) for year in range(7, 14)]
    homerooms = [c for c in school["classes"] if c["classType"] == "homeroom"]
    assert {c["grades"][0] for c in homerooms} == set(years)
    assert all("course" not in c for c in homerooms)
    # Every active pupil is in exactly one active registration group.
    homeroom_ids = {c["sourcedId"] for c in homerooms}
    forms_of = Counter(
        e["user"]["sourcedId"]
        for e in active(school["enrollments"])
        if e["class"]["sourcedId"] in homeroom_ids
    )
    assert all(forms_of[pupil["sourcedId"]] == 1 for pupil in active(pupils_of(school)))


def test_courses_exist_per_subject_and_year_and_sets_belong_to_them(terms: list[School]) -> None:
    school = terms[0]
    courses = by_id(school["courses"])
    assert len({(c["subjects"][0], c["grades"][0]) for c in courses.values()}) == len(courses)
    year_session = next(s for s in school["academicSessions"] if s["type"] == "schoolYear")
    for course in courses.values():
        assert course["schoolYear"]["sourcedId"] == year_session["sourcedId"]
    for teaching_set in (c for c in school["classes"] if c["classType"] == "scheduled"):
        course = courses[teaching_set["course"]["sourcedId"]]
        assert teaching_set["grades"] == course["grades"]
        assert len(teaching_set["terms"]) == 3


def test_every_class_has_exactly_one_primary_teacher(terms: list[School]) -> None:
    for school in terms:
        primaries = Counter(
            e["class"]["sourcedId"]
            for e in active(school["enrollments"])
            if e["role"] == "teacher" and e["primary"] is True
        )
        assert {c["sourcedId"]: 1 for c in active(school["classes"])} == dict(primaries)
        students = [e for e in school["enrollments"] if e["role"] == "student"]
        assert all("primary" not in e for e in students)


def test_the_school_is_part_of_a_trust(terms: list[School]) -> None:
    orgs = by_id(terms[0]["orgs"])
    school = next(org for org in orgs.values() if org["type"] == "school")
    trust = orgs[school["parent"]["sourcedId"]]
    assert trust["type"] == "district"
    assert [child["sourcedId"] for child in trust["children"]] == [school["sourcedId"]]
    assert re.match(r"^\d{7}$", school["identifier"])


def test_the_school_year_has_autumn_spring_and_summer_terms(terms: list[School]) -> None:
    sessions = by_id(terms[0]["academicSessions"])
    (year,) = [s for s in sessions.values() if s["type"] == "schoolYear"]
    assert (year["title"], year["schoolYear"], year["startDate"]) == (
        "2026/27",
        "2027",
        "2026-09-01",
    )
    children = [sessions[child["sourcedId"]] for child in year["children"]]
    assert sorted(t["title"] for t in children) == ["Autumn 2026", "Spring 2027", "Summer 2027"]
    assert all(t["parent"]["sourcedId"] == year["sourcedId"] for t in children)
    assert all(t["type"] == "term" and t["schoolYear"] == "2027" for t in children)


def test_term_0_already_holds_leavers_marked_tobedeleted(terms: list[School]) -> None:
    school = terms[0]
    leavers = [u for u in pupils_of(school) if u["status"] == "tobedeleted"]
    assert leavers and all(u["enabledUser"] is False for u in leavers)
    assert any(e["status"] == "tobedeleted" for e in school["enrollments"])


@pytest.mark.parametrize("term", [1, 2, 3, 4])
def test_the_change_log_agrees_with_a_comparison_of_the_two_terms(
    terms: list[School], term: int
) -> None:
    logged = changes(seed=3, pupils=PUPILS, term=term)
    assert logged == diff_terms(terms[term - 1], terms[term])
    assert len({(c.entity, c.sourcedId) for c in logged}) == len(logged)


@pytest.mark.parametrize("term", [1, 2])
def test_every_kind_of_change_happens_between_consecutive_terms(term: int) -> None:
    kinds = Counter(change.kind for change in changes(seed=3, pupils=PUPILS, term=term))
    assert set(kinds) == set(CHANGE_KINDS)


def test_leavers_turn_tobedeleted_with_their_enrollments_and_may_later_disappear(
    terms: list[School],
) -> None:
    log = changes(seed=3, pupils=PUPILS, term=1)
    left = {c.sourcedId for c in log if c.entity == "users" and c.kind == "tobedeleted"}
    enrollments = terms[1]["enrollments"]
    for user_id in left:
        theirs = [e for e in enrollments if e["user"]["sourcedId"] == user_id]
        assert all(e["status"] == "tobedeleted" for e in theirs)
    removed = {c.sourcedId for c in log if c.entity == "users" and c.kind == "removed"}
    was_tobedeleted = {u["sourcedId"] for u in terms[0]["users"] if u["status"] == "tobedeleted"}
    assert removed and removed <= was_tobedeleted


def test_joiners_arrive_with_enrollments(terms: list[School]) -> None:
    log = changes(seed=3, pupils=PUPILS, term=2)
    users = by_id(terms[2]["users"])
    joined = {c.sourcedId for c in log if c.entity == "users" and c.kind == "added"}
    staying = {sid for sid in joined if users[sid]["status"] == "active"}
    enrolled = {e["user"]["sourcedId"] for e in active(terms[2]["enrollments"])}
    assert staying and staying <= enrolled
    # The odd pupil joins and leaves between two snapshots: there already tobedeleted, with
    # enrollments that began and ended.
    (passing_through,) = joined - staying
    theirs = [e for e in terms[2]["enrollments"] if e["user"]["sourcedId"] == passing_through]
    assert theirs and all(e["status"] == "tobedeleted" and e["endDate"] for e in theirs)


def test_the_odd_leaver_comes_back_with_new_enrollments(terms: list[School]) -> None:
    log = changes(seed=3, pupils=PUPILS, term=1)
    (returner,) = [c.sourcedId for c in log if c.entity == "users" and c.kind == "reactivated"]
    assert by_id(terms[0]["users"])[returner]["status"] == "tobedeleted"
    assert by_id(terms[1]["users"])[returner]["enabledUser"] is True
    assert any(e["user"]["sourcedId"] == returner for e in active(terms[1]["enrollments"]))


def test_pupils_move_set_and_a_leaving_teachers_classes_are_reassigned() -> None:
    before, after = (generate(seed=2, pupils=400, term=term) for term in (0, 1))
    old_enrollments, new_enrollments = by_id(before["enrollments"]), by_id(after["enrollments"])
    classes = by_id(after["classes"])
    ended = [
        e
        for sid, e in new_enrollments.items()
        if sid in old_enrollments and "endDate" in e and "endDate" not in old_enrollments[sid]
    ]
    moved = [e for e in ended if e["status"] == "active" and e["role"] == "student"]
    assert moved
    for old in moved:
        course = classes[old["class"]["sourcedId"]].get("course", {}).get("sourcedId")
        begun = [
            e
            for sid, e in new_enrollments.items()
            if sid not in old_enrollments
            and e["user"]["sourcedId"] == old["user"]["sourcedId"]
            and e["beginDate"] == old["endDate"]
        ]
        assert [classes[e["class"]["sourcedId"]].get("course", {}).get("sourcedId") for e in begun]
        assert all(
            classes[e["class"]["sourcedId"]].get("course", {}).get("sourcedId") == course
            for e in begun
        )
    log = changes(seed=2, pupils=400, term=1)
    users = by_id(after["users"])
    gone_teachers = [
        c.sourcedId
        for c in log
        if c.entity == "users"
        and c.kind == "tobedeleted"
        and users[c.sourcedId]["role"] == "teacher"
    ]
    assert gone_teachers
    for teacher_id in gone_teachers:
        held = {
            e["class"]["sourcedId"]
            for e in old_enrollments.values()
            if e["user"]["sourcedId"] == teacher_id and e["status"] == "active"
        }
        for class_id in held:
            teachers_now = [
                e
                for e in active(after["enrollments"])
                if e["class"]["sourcedId"] == class_id and e["role"] == "teacher"
            ]
            assert teachers_now and teacher_id not in {e["user"]["sourcedId"] for e in teachers_now}


def test_names_and_class_titles_change_between_terms(terms: list[School]) -> None:
    changed = {
        (c.entity, c.sourcedId)
        for c in changes(seed=3, pupils=PUPILS, term=1)
        if c.kind == "changed"
    }
    old_users, new_users = by_id(terms[0]["users"]), by_id(terms[1]["users"])
    identity_fields = ("givenName", "familyName", "middleName", "userIds")
    assert any(
        any(old_users[sid].get(f) != new_users[sid].get(f) for f in identity_fields)
        for entity, sid in changed
        if entity == "users"
    )
    old_classes, new_classes = by_id(terms[0]["classes"]), by_id(terms[1]["classes"])
    assert any(
        old_classes[sid]["title"] != new_classes[sid]["title"]
        for entity, sid in changed
        if entity == "classes"
    )


def test_set_arrays_are_reordered_between_terms_without_counting_as_change(
    terms: list[School],
) -> None:
    logged = {(c.entity, c.sourcedId) for c in changes(seed=3, pupils=PUPILS, term=1)}
    reordered = []
    for name in ("users", "classes"):
        entity = ENTITY_BY_COLLECTION[name]
        before = by_id(terms[0][name])
        for record in terms[1][name]:
            old = before.get(record["sourcedId"])
            if old is None or (name, record["sourcedId"]) in logged:
                continue
            assert canonical_record(entity, old) == canonical_record(entity, record)
            if old != record:
                reordered.append(record["sourcedId"])
    assert reordered


def test_the_rollover_moves_everyone_up_and_starts_a_new_school_year(
    terms: list[School],
) -> None:
    summer, autumn = terms[2], terms[3]
    old_users, new_users = by_id(summer["users"]), by_id(autumn["users"])
    for pupil in active(pupils_of(summer)):
        now = new_users[pupil["sourcedId"]]
        if pupil["grades"] == ["13"]:
            assert now["status"] == "tobedeleted"
        elif now["status"] == "active":
            assert int(now["grades"][0]) == int(pupil["grades"][0]) + 1
    arrivals = [u for u in pupils_of(autumn) if u["sourcedId"] not in old_users]
    assert Counter(u["grades"][0] for u in arrivals).most_common(1)[0][0] == "7"
    years = [s for s in autumn["academicSessions"] if s["type"] == "schoolYear"]
    assert sorted(s["schoolYear"] for s in years) == ["2027", "2028"]
    new_year = next(s for s in years if s["schoolYear"] == "2028")
    assert new_year["startDate"] == "2027-09-01" and len(new_year["children"]) == 3
    # Last year's classes and courses are retired; this year's are new.
    old_classes = {c["sourcedId"] for c in summer["classes"]}
    assert all(
        c["status"] == "tobedeleted" for c in autumn["classes"] if c["sourcedId"] in old_classes
    )
    assert active(autumn["classes"]) and active(autumn["courses"])


def test_changes_compare_a_term_with_the_one_before_only() -> None:
    with pytest.raises(ValueError, match="term must be 1 or more"):
        changes(seed=1, pupils=60, term=0)


def test_a_school_of_50_pupils_still_has_every_year_and_class() -> None:
    school = generate(seed=1, pupils=50, term=0)
    years = {pupil["grades"][0] for pupil in active(pupils_of(school))}
    assert years == {str(year) for year in range(7, 14)}
    assert active(school["classes"]) and active(school["enrollments"])


def test_a_school_of_10000_pupils_holds_about_120000_records() -> None:
    school = generate(seed=1, pupils=10_000, term=0)
    counts = {name: len(records) for name, records in school.items()}
    assert 10_000 < counts["users"] < 12_000
    assert 9 * 10_000 < counts["enrollments"] < 12 * 10_000
    assert 110_000 < sum(counts.values()) < 140_000


@pytest.mark.parametrize("term", [1, 2, 3, 4])
def test_no_enrollment_ends_before_it_began(term: int) -> None:
    school = generate(seed=1, pupils=1000, term=term)
    backwards = [
        (e["sourcedId"], e["beginDate"], e["endDate"])
        for e in school["enrollments"]
        if e.get("beginDate") and e.get("endDate") and e["endDate"] < e["beginDate"]
    ]
    assert backwards == []
