"""Known data problems planted in the synthetic school, with the ground truth of each.

    plant_problems(collections) -> (collections with the problems, {rule id: [sourcedIds]})
    planted_problems(seed, pupils, term) -> {rule id: [sourcedIds]}

At least one instance of every rule of `snapshotter.quality.rules`, each made so that it sets
off that rule alone: a planted pupil without classes still has a registration group, a class
without a teacher still has a pupil, and so on. Planting only adds records with ids of their own
(`xQPLANT01`...) or edits chosen records (active pupils, classes and a teacher, picked by
sourcedId), so `check` finds exactly these on top of the clean school's findings. The school's
calendar is moved back a year: every snapshot of a planted school is then taken outside every
session (the calendar not rolled forward), which is itself one of the rules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from .build import GUIDE_PUPIL_ID, upn_with_check_letter
from .roster import Record, Roster

PLANTED_PREFIX = "xQPLANT"
PROBLEMS_FILE = "planted-problems.json"


def _planted_id(number: int) -> str:
    return f"{PLANTED_PREFIX}{number:02d}"


def _shift_year(day: str, years: int) -> str:
    return f"{int(day[:4]) + years:04d}{day[4:]}"


def _plus_days(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _upn(record: Record) -> dict[str, Any]:
    return next(entry for entry in record["userIds"] if entry["type"] == "UPN")


def plant_problems(
    collections: Mapping[str, list[Record]],
) -> tuple[dict[str, list[Record]], dict[str, list[str]]]:
    """A deep copy of the school with every rule's problem planted, and the ground truth: each
    rule id with the sourcedIds `snapshotter check` should name for it."""
    school = {name: copy.deepcopy(list(records)) for name, records in collections.items()}
    truth: dict[str, list[str]] = {}

    def found(rule: str, *ids: str) -> None:
        truth.setdefault(rule, []).extend(ids)

    ref = Roster.ref
    orgs = school["orgs"]
    school_org = next(o for o in orgs if o["type"] == "school" and o["status"] == "active")
    sessions = school["academicSessions"]
    years = [s for s in sessions if s["type"] == "schoolYear" and s["status"] == "active"]
    year = max(years, key=lambda s: s["startDate"])
    terms = sorted(
        (s for s in sessions if s.get("parent", {}).get("sourcedId") == year["sourcedId"]),
        key=lambda s: s["startDate"],
    )
    begin = year["startDate"]  # enrollments keep the real calendar's dates
    users = school["users"]
    classes = school["classes"]
    active_classes = sorted(
        (c for c in classes if c["status"] == "active"), key=lambda c: c["sourcedId"]
    )
    pupils = sorted(
        (
            u
            for u in users
            if u["status"] == "active"
            and u["role"] == "student"
            and u["sourcedId"] != GUIDE_PUPIL_ID
            and len(u.get("grades") or []) == 1
        ),
        key=lambda u: u["sourcedId"],
    )
    teachers = sorted(
        (u for u in users if u["status"] == "active" and u["role"] == "teacher"),
        key=lambda u: u["sourcedId"],
    )
    pupil_of = iter(pupils)  # each edit takes a pupil of its own
    grade = pupils[0]["grades"][0]

    def of_year(class_type: str, wanted: str) -> list[Record]:
        return [
            c
            for c in active_classes
            if c["classType"] == class_type and wanted in (c.get("grades") or [])
        ]

    sets, forms = of_year("scheduled", grade), of_year("homeroom", grade)
    other_year_set = next(
        c for c in active_classes if c["classType"] == "scheduled" and grade not in c["grades"]
    )
    domain = pupils[0]["email"].partition("@")[2]
    number = iter(range(1, 100))

    def enrol(user_id: str, class_id: str, role: str = "student", **dates: str) -> str:
        sid = _planted_id(next(number))
        school["enrollments"].append(
            {
                "sourcedId": sid,
                "status": "active",
                "dateLastModified": year["dateLastModified"],
                "role": role,
                "beginDate": dates.get("beginDate", begin),
                **({"endDate": dates["endDate"]} if "endDate" in dates else {}),
                "user": ref("users", user_id),
                "class": ref("classes", class_id),
                "school": ref("orgs", school_org["sourcedId"]),
            }
        )
        return sid

    def person(role: str, serial: int) -> Record:
        sid = _planted_id(next(number))
        username = f"qa-planted-{serial}"
        record: Record = {
            "sourcedId": sid,
            "status": "active",
            "dateLastModified": year["dateLastModified"],
            "username": username,
            "userIds": [{"type": "MIS", "identifier": f"Q{serial:05d}"}],
            "enabledUser": True,
            "givenName": "Planted",
            "familyName": f"Problem {serial}",
            "role": role,
            "identifier": f"Q{serial:05d}",
            "email": f"{username}@{domain}",
            "orgSourcedIds": [school_org["sourcedId"]],
        }
        if role == "student":
            upn = upn_with_check_letter(f"2019999{int(begin[2:4]) - 7:02d}{900 + serial:03d}")
            record["userIds"].append({"type": "UPN", "identifier": upn})
            record["grades"] = [grade]
        users.append(record)
        return record

    def new_class(title: str) -> Record:
        model = sets[0]
        record = copy.deepcopy(model)
        record.update(
            sourcedId=_planted_id(next(number)),
            title=title,
            classCode=title.replace(" ", ""),
        )
        classes.append(record)
        return record

    # References.
    found("enrollment-without-user", enrol(_planted_id(90), sets[0]["sourcedId"]))
    found("enrollment-without-class", enrol(next(pupil_of)["sourcedId"], _planted_id(91)))
    edited = sets[1:4]  # past the first teaching set, which the planted people use
    edited[0]["course"] = ref("courses", _planted_id(92))
    found("class-without-course", edited[0]["sourcedId"])
    del edited[1]["school"]
    found("class-without-school", edited[1]["sourcedId"])
    edited[2]["terms"] = [*edited[2]["terms"], ref("academicSessions", _planted_id(93))]
    found("class-without-terms", edited[2]["sourcedId"])
    teachers[0]["orgSourcedIds"] = [*teachers[0]["orgSourcedIds"], _planted_id(94)]
    found("user-without-org", teachers[0]["sourcedId"])

    # Coverage: new people and classes, each missing one thing.
    unplaced = person("student", 1)
    enrol(unplaced["sourcedId"], forms[0]["sourcedId"])
    found("pupil-without-classes", unplaced["sourcedId"])
    formless = person("student", 2)
    enrol(formless["sourcedId"], sets[0]["sourcedId"])
    found("pupil-without-registration-group", formless["sourcedId"])
    untaught = new_class("Planted untaught class")
    enrol(next(p for p in pupil_of if p["grades"] == [grade])["sourcedId"], untaught["sourcedId"])
    found("class-without-teacher", untaught["sourcedId"])
    empty = new_class("Planted empty class")
    enrol(teachers[1]["sourcedId"], empty["sourcedId"], role="teacher")
    found("class-without-pupils", empty["sourcedId"])
    idle = person("teacher", 3)
    found("teacher-without-classes", idle["sourcedId"])

    # Uniqueness: a value of one active pupil copied onto another.
    for rule, field in (("duplicate-email", "email"), ("duplicate-username", "username")):
        first, second = next(pupil_of), next(pupil_of)
        second[field] = first[field]
        found(rule, first["sourcedId"], second["sourcedId"])
    first, second = next(pupil_of), next(pupil_of)
    _upn(second)["identifier"] = _upn(first)["identifier"]
    found("duplicate-upn", first["sourcedId"], second["sourcedId"])

    # Identifiers.
    wrong_letter, too_short = next(pupil_of), next(pupil_of)
    value = _upn(wrong_letter)["identifier"]
    _upn(wrong_letter)["identifier"] = ("B" if value[0] == "A" else "A") + value[1:]
    _upn(too_short)["identifier"] = _upn(too_short)["identifier"][:12]
    found("invalid-upn", wrong_letter["sourcedId"], too_short["sourcedId"])
    no_upn = next(pupil_of)
    no_upn["userIds"] = [entry for entry in no_upn["userIds"] if entry["type"] != "UPN"]
    found("pupil-without-upn", no_upn["sourcedId"])
    bad_email = next(pupil_of)
    bad_email["email"] = bad_email["email"].replace("@", " at ")
    found("invalid-email", bad_email["sourcedId"])

    # Year groups.
    yearless = next(pupil_of)
    del yearless["grades"]
    found("pupil-without-year-group", yearless["sourcedId"])
    twice = next(pupil_of)
    twice["grades"] = [twice["grades"][0], str(int(twice["grades"][0]) + 1)]
    found("pupil-with-several-year-groups", twice["sourcedId"])
    outside = next(pupil_of)
    outside["grades"] = ["14"]
    found("pupil-year-outside-school", outside["sourcedId"])
    misplaced = next(p for p in pupil_of if p["grades"][0] not in other_year_set["grades"])
    found(
        "pupil-in-class-of-other-year",
        enrol(misplaced["sourcedId"], other_year_set["sourcedId"]),
    )

    # Dates: the calendar a year behind (so every snapshot is outside it), then two terms.
    for session in sessions:
        for key in ("startDate", "endDate"):
            if session.get(key):
                session[key] = _shift_year(session[key], -1)
    backwards = enrol(
        next(pupil_of)["sourcedId"],
        sets[0]["sourcedId"],
        beginDate=_plus_days(begin, 10),
        endDate=begin,
    )
    found("enrollment-ends-before-it-begins", backwards)
    found("snapshot-outside-sessions", school_org["sourcedId"])

    def term(title: str, start: str, end: str, parent: str, kind: str = "term") -> str:
        sid = _planted_id(next(number))
        sessions.append(
            {
                "sourcedId": sid,
                "status": "active",
                "dateLastModified": year["dateLastModified"],
                "title": title,
                "type": kind,
                "startDate": start,
                "endDate": end,
                "schoolYear": year["schoolYear"],
                "parent": ref("academicSessions", parent),
            }
        )
        return sid

    first_term = terms[0]
    overlapping = term(
        "Planted overlapping term",
        _plus_days(first_term["startDate"], 7),
        _plus_days(first_term["startDate"], 21),
        year["sourcedId"],
    )
    found("terms-overlap", overlapping, first_term["sourcedId"])
    found(
        "term-outside-school-year",
        term(
            "Planted summer term",
            year["endDate"],
            _plus_days(year["endDate"], 30),
            year["sourcedId"],
        ),
    )
    parentless = term(
        "Planted orphan term",
        _plus_days(year["startDate"], 40),
        _plus_days(year["startDate"], 50),
        _planted_id(95),
        kind="gradingPeriod",  # not a term: overlaps none
    )
    found("session-without-parent", parentless)
    return school, {rule: sorted(ids) for rule, ids in sorted(truth.items())}


def planted_problems(seed: int = 1, pupils: int = 1000, term: int = 0) -> dict[str, list[str]]:
    """The ground truth of `generate(..., plant_problems=True)`: each rule id with the
    sourcedIds of the records `snapshotter check` names for it."""
    from .school import generate

    _, truth = plant_problems(generate(seed=seed, pupils=pupils, term=term))
    return truth
