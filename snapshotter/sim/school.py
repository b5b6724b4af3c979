"""The synthetic school: deterministic OneRoster data for any term, and what each term changed.

    generate(seed=1, pupils=1000, term=0) -> {"users": [...], "classes": [...], ...}
    changes(seed=1, pupils=1000, term=1) -> [Change("users", "x42Y7TNMV", "changed"), ...]
    people_changes(seed=1, pupils=1000, term=1) -> PeopleChanges(joiners={...}, leavers={...}, ...)

The same arguments always give byte-identical data. Term 0 is Autumn 2026 (school year
2026/27); 1 is Spring, 2 Summer, 3 Autumn 2027 (the first rollover), and so on.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from .build import GUIDE_CLASS_ID, GUIDE_PUPIL_ID, SYNTHETIC_PASSWORD, SchoolState, build_school
from .evolve import advance
from .roster import CHANGE_KINDS, HREF_BASE, ActionLog, Change, Record

__all__ = [
    "CHANGE_KINDS",
    "GUIDE_CLASS_ID",
    "GUIDE_PUPIL_ID",
    "HREF_BASE",
    "SYNTHETIC_PASSWORD",
    "Change",
    "PeopleChanges",
    "changes",
    "generate",
    "people_changes",
]

IDENTITY_FIELDS = frozenset(
    {"givenName", "familyName", "middleName", "username", "email", "identifier", "userIds"}
)
Person = tuple[str | None, str | None]  # (role, year group: "8", or None)


def _school_at(seed: int, pupils: int, term: int) -> tuple[SchoolState, ActionLog | None]:
    if term < 0:
        raise ValueError(f"term must be 0 or more, not {term}")
    # Millions of small acyclic dicts: the cyclic collector would rescan them again and again
    # (a third of the time at 10,000 pupils, more at 100,000) and never free one.
    collecting = gc.isenabled()
    gc.disable()
    try:
        state = build_school(seed, pupils)
        log = None
        for step in range(1, term + 1):
            log = advance(state, step)
    finally:
        if collecting:
            gc.enable()
    return state, log


def generate(
    seed: int = 1, pupils: int = 1000, term: int = 0, plant_problems: bool = False
) -> dict[str, list[Record]]:
    """Every collection of the school at `term`, records exactly as Xporter's JSON holds them.

    Includes tobedeleted records. The result is freshly built on each call: the caller owns it.
    `plant_problems` plants a known set of data problems (`problems.plant_problems`; their
    ground truth is `problems.planted_problems`).
    """
    state, _ = _school_at(seed, pupils, term)
    collections = state.roster.as_collections()
    if plant_problems:
        from .problems import plant_problems as plant

        collections, _ = plant(collections)
    return collections


def changes(seed: int, pupils: int, term: int) -> list[Change]:
    """What differs between `generate(..., term - 1)` and `generate(..., term)`, one `Change`
    per record, from the generator's own action log, sorted by entity then sourcedId."""
    if term < 1:
        raise ValueError("changes() compares a term with the one before: term must be 1 or more")
    _, log = _school_at(seed, pupils, term)
    assert log is not None
    return log.changes()


@dataclass(frozen=True)
class PeopleChanges:
    """What a term did to people, from the generator's own log: the ground truth of a report's
    headline. Joiners, leavers and purged map each user to (role, year group), the year group
    being the one they have now, or had when their record went."""

    joiners: dict[str, Person]  # added (whatever their status) or back from tobedeleted
    leavers: dict[str, Person]  # active -> tobedeleted or removed; or added already tobedeleted
    purged: dict[str, Person]  # removed after an earlier term marked them tobedeleted
    year_group_changes: frozenset[str]
    class_moves: frozenset[tuple[str, str, str]]  # (pupil, from class, to class)
    identity_changes: frozenset[str]


def people_changes(seed: int, pupils: int, term: int) -> PeopleChanges:
    """The people-level changes from `generate(..., term - 1)` to `generate(..., term)`.

    A class move counts when the pupil was in the old class before the term (not a pupil who
    joined during it) and is, at the end of the term, still enrolled (active, not ended) in the
    class moved into, and that class is still active.
    """
    if term < 1:
        raise ValueError("people_changes() compares a term with the one before: term must be 1+")
    state, log = _school_at(seed, pupils, term)
    assert log is not None
    collections = state.roster.collections
    users = collections["users"]

    def person(user_id: str) -> Person:
        record = users.get(user_id)
        if record is None:
            return log.last_seen_users[user_id]
        return record.get("role"), ", ".join(record.get("grades") or []) or None

    joiners: dict[str, Person] = {}
    leavers: dict[str, Person] = {}
    purged: dict[str, Person] = {}
    arrived: set[str] = set()  # users added this term
    for collection, user_id in log.affected_keys():
        if collection != "users":
            continue
        before, after = log.status_of((collection, user_id))
        if before is None and after is None:
            continue
        if before is None:
            arrived.add(user_id)
        if before is None or (before == "tobedeleted" and after == "active"):
            joiners[user_id] = person(user_id)
        if (before == "active" and after in ("tobedeleted", None)) or (
            before is None and after == "tobedeleted"
        ):
            leavers[user_id] = person(user_id)
        if before == "tobedeleted" and after is None:
            purged[user_id] = person(user_id)
    # Edits show as changes only on records in both snapshots (not on a record added this term).
    edited = {
        sid: fields
        for (kind, sid), fields in log.fields_edited.items()
        if kind == "users" and None not in log.status_of((kind, sid))
    }
    enrollments, classes = collections["enrollments"], collections["classes"]
    moves = set()
    for pupil_id, old_class, new_class, enrollment_id in log.moves:
        if pupil_id in arrived:
            # Joined this term: the enrollment left behind was added already ended, no move.
            continue
        enrollment, klass = enrollments.get(enrollment_id), classes.get(new_class)
        running = enrollment is not None and enrollment["status"] == "active"
        if running and not enrollment.get("endDate") and klass and klass["status"] == "active":
            moves.add((pupil_id, old_class, new_class))
    return PeopleChanges(
        joiners=joiners,
        leavers=leavers,
        purged=purged,
        year_group_changes=frozenset(sid for sid, fields in edited.items() if "grades" in fields),
        class_moves=frozenset(moves),
        identity_changes=frozenset(sid for sid, f in edited.items() if f & IDENTITY_FIELDS),
    )
