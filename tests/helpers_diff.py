"""Snapshot files for the diff's tests, built straight from records (no server, no fetch)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snapshotter.archive.snapshot import SnapshotMeta, SnapshotWriter
from snapshotter.sim.school import GUIDE_PUPIL_ID, generate

ESTAB = "3281110"
SCHOOL = "Quarrendon Academy"
PUPILS = 150  # small enough to build in a blink, big enough for every kind of change


def term_time(term: int) -> datetime:
    """A moment inside simulated term `term`: 0 is Autumn 2026, 3 is Autumn 2027."""
    year = 2026 + (term + 2) // 3
    month = (10, 2, 5)[term % 3]
    return datetime(year, month, 15, 8, 30, tzinfo=UTC)


def write_snapshot(
    archive: Path,
    collections: Mapping[str, list[dict[str, Any]]],
    *,
    taken_at: datetime,
    estab: str = ESTAB,
    complete: bool = True,
    school_name: str = SCHOOL,
    provider_version: Any = None,
) -> Path:
    """A snapshot file holding `collections`, as `snapshotter fetch` would have written it."""
    with SnapshotWriter(archive, estab, started_at=taken_at) as writer:
        for collection, records in collections.items():
            writer.save_records(collection, records)
        meta = SnapshotMeta(
            estab=estab,
            source="import",
            started_at=taken_at,
            school_name=school_name,
            provider_version=provider_version,
        )
        return writer.finish(
            meta,
            complete=complete,
            stable=complete,
            incomplete_reason=None if complete else "users: the server kept failing",
        )


def sim_snapshot(archive: Path, term: int, *, pupils: int = PUPILS, seed: int = 1) -> Path:
    """A snapshot of the simulated school at `term`, taken during that term."""
    return write_snapshot(
        archive, generate(seed=seed, pupils=pupils, term=term), taken_at=term_time(term)
    )


def edited(
    collections: Mapping[str, list[dict[str, Any]]], collection: str, sourced_id: str, **fields: Any
) -> dict[str, list[dict[str, Any]]]:
    """A deep copy of `collections` with one record's fields replaced."""
    result = copy.deepcopy(dict(collections))
    for record in result[collection]:
        if record["sourcedId"] == sourced_id:
            record.update(fields)
            return result
    raise KeyError(f"no {collection} record {sourced_id}")


def first(collections: Mapping[str, list[dict[str, Any]]], collection: str, **match: Any) -> dict:
    """The first record of `collection` whose fields equal `match`."""
    for record in collections[collection]:
        if all(record.get(k) == v for k, v in match.items()):
            return record
    raise LookupError(f"no {collection} record with {match}")


@dataclass(frozen=True)
class AuditScenario:
    """Two snapshots days apart with one of each change an auditor asks about, by id."""

    old_path: Path
    new_path: Path
    year_group_pupil: str  # the simulator's Zoë O'Brien: year 7 -> 8
    renamed_pupil: str  # new family name, email and UPN
    hard_leaver: str  # removed, with her enrollments
    hard_leaver_enrollments: int
    soft_leaver: str  # marked tobedeleted
    leaving_teacher: str  # marked tobedeleted; held classes in the old snapshot
    teacher_classes: tuple[str, ...]  # the class codes she held
    joiner: str  # a new pupil
    moved_pupil: str  # an enrollment ended in `from_class`, another began in `new_class`
    record_moved_pupil: str  # one enrollment record's class changed to `new_class`
    form_moved_pupil: str  # registration group changed (9A to 9B) by editing the enrollment
    from_class: str
    new_class: str


def _ref(collection: str, sourced_id: str, singular: str) -> dict[str, str]:
    return {"href": f"/{collection}/{sourced_id}", "sourcedId": sourced_id, "type": singular}


SECOND_YEAR_9_FORM = "xFORM09B1"


def audit_scenario(archive: Path) -> AuditScenario:
    """The simulated school in its first term, then the same school with hand-made changes."""
    old = generate(seed=1, pupils=PUPILS, term=0)
    # A school this small has one form per year group: give year 9 a second, in both
    # snapshots, for a move between forms within the year.
    form_9a = first(old, "classes", classType="homeroom", grades=["9"])
    form_9b = {**copy.deepcopy(form_9a), "sourcedId": SECOND_YEAR_9_FORM}
    form_9b.update(title="9B", classCode="REG-9B")
    old["classes"].append(form_9b)
    new = copy.deepcopy(old)
    users = {u["sourcedId"]: u for u in new["users"]}
    classes = {c["sourcedId"]: c for c in new["classes"]}
    by_user: dict[str, list[dict[str, Any]]] = {}
    for enrollment in new["enrollments"]:
        by_user.setdefault(enrollment["user"]["sourcedId"], []).append(enrollment)
    year9 = [
        u["sourcedId"]
        for u in new["users"]
        if u["role"] == "student" and u["status"] == "active" and u["grades"] == ["9"]
    ]
    renamed, hard, soft, moved, record_moved, form_moved = year9[:6]

    users[GUIDE_PUPIL_ID]["grades"] = ["8"]
    users[renamed].update(familyName="Tanaka-Reyes", email="tanaka-reyes@pupils.example")
    users[renamed]["userIds"] = [
        {**uid, "identifier": "Z99999999999Z"} if uid["type"] == "UPN" else uid
        for uid in users[renamed]["userIds"]
    ]
    new["users"] = [u for u in new["users"] if u["sourcedId"] != hard]
    new["enrollments"] = [e for e in new["enrollments"] if e["user"]["sourcedId"] != hard]
    users[soft]["status"] = "tobedeleted"
    teacher = next(
        u["sourcedId"]
        for u in new["users"]
        if u["role"] == "teacher" and u["status"] == "active" and by_user.get(u["sourcedId"])
    )
    users[teacher]["status"] = "tobedeleted"
    held = tuple(
        sorted(
            classes[e["class"]["sourcedId"]]["classCode"]
            for e in by_user[teacher]
            if e["status"] == "active"
        )
    )
    new["users"].append({**copy.deepcopy(users[year9[-1]]), "sourcedId": "xJOINER01"})

    # A second set of a course one of the movers takes; two pupils move into it, one by a new
    # enrollment (the old one removed), one by an edit of the enrollment's class.
    ended = next(e for e in by_user[moved] if classes[e["class"]["sourcedId"]].get("course"))
    from_class = ended["class"]["sourcedId"]
    new_set = {**copy.deepcopy(classes[from_class]), "sourcedId": "xNEWSET01"}
    new_set.update(title="Mathematics 9X2", classCode="9X/Ma2")
    new["classes"].append(new_set)
    new["enrollments"].remove(ended)
    began = {**copy.deepcopy(ended), "sourcedId": "xNEWENR01"}
    began["class"] = _ref("classes", "xNEWSET01", "class")
    new["enrollments"].append(began)
    edited_enrollment = next(
        e for e in by_user[record_moved] if e["class"]["sourcedId"] == from_class
    )
    edited_enrollment["class"] = _ref("classes", "xNEWSET01", "class")
    form = next(
        e
        for e in by_user[form_moved]
        if classes[e["class"]["sourcedId"]]["classType"] == "homeroom"
    )
    form["class"] = _ref("classes", SECOND_YEAR_9_FORM, "class")

    taken_at = term_time(0)
    return AuditScenario(
        old_path=write_snapshot(archive, old, taken_at=taken_at),
        new_path=write_snapshot(archive, new, taken_at=taken_at.replace(day=20)),
        year_group_pupil=GUIDE_PUPIL_ID,
        renamed_pupil=renamed,
        hard_leaver=hard,
        hard_leaver_enrollments=len(by_user[hard]),
        soft_leaver=soft,
        leaving_teacher=teacher,
        teacher_classes=held,
        joiner="xJOINER01",
        moved_pupil=moved,
        record_moved_pupil=record_moved,
        form_moved_pupil=form_moved,
        from_class=from_class,
        new_class="xNEWSET01",
    )
