"""How the school changes from one term to the next, the way a real school does.

Each step of `advance()` is one kind of real-world event; rates are shares of the school so a
school of any size sees every kind of event (at least one of each where possible).
"""

from __future__ import annotations

import random

from .build import (
    CLASS_TITLE_LABELS,
    GUIDE_PUPIL_ID,
    UPN_LA_NUMBERS,
    SchoolState,
    leave,
    upn_with_check_letter,
)
from .curriculum import (
    YEARS,
    change_window_s,
    format_date,
    is_rollover,
    school_year_dates,
    school_year_index,
    year_sizes,
)
from .names import FAMILY_NAMES, GIVEN_NAMES, MIDDLE_NAMES
from .roster import DELETE_FIELD, ActionLog

LEAVER_SHARE = 0.02
JOINER_SHARE = 0.02
SET_MOVE_SHARE = 0.03
FORM_MOVE_SHARE = 0.01
RENAME_SHARE = 0.005
CLASS_RETITLE_SHARE = 0.01
TOUCH_SHARE = 0.01
SHUFFLE_SHARE = 0.03
RETURNER_SHARE = 0.0025
TEACHER_LEAVER_SHARE = 1 / 60
JOIN_AND_LEAVE_SHARE = 0.002  # pupils who arrive and leave again between two snapshots
LATE_MOVE_SHARE = 0.005  # pupils moved set in the last weeks of a school year
PRUNE_CHANCE = 0.5  # a record tobedeleted a term ago disappears with this chance...
PRUNE_AFTER_TERMS = 3  # ...and surely once it has been tobedeleted this long
# Joiners arrive in every year group, fewer in the exam years and the sixth form.
JOINER_YEAR_WEIGHTS = (1.0, 1.0, 1.0, 0.6, 0.3, 0.8, 0.2)


def _count(share: float, population: int) -> int:
    return min(population, max(1, round(share * population)))


def advance(state: SchoolState, term: int) -> ActionLog:
    """Turn the school at term-1 into the school at `term`, logging every change."""
    log = state.roster.begin_term(term, state.seed_text)
    state.rng = random.Random(f"{state.seed_text}:term:{term}")
    _purge_added_records(state)
    rollover = is_rollover(term)
    if rollover:
        _roll_over(state, term)
    _bring_back_returners(state, term, rollover)
    _prune_tobedeleted(state, term)
    _retire_ended_enrollments(state)
    _pupils_leave(state)
    _pupils_join(state)
    if not rollover:  # at a rollover every class is new: nobody moves, nothing is retitled
        _move_sets(state)
        _move_forms(state)
        _retitle_classes(state)
    _change_names(state)
    _teachers_leave(state)
    _touch_records(state)
    _shuffle_set_arrays(state)
    # Events added later, last and on streams of their own: the rest stays as it was.
    with state.added_events("joined-and-left"):
        _join_and_leave(state)
    if rollover:
        with state.added_events("late-summer-moves"):
            _late_summer_moves(state, term)
    return log


def _purge_added_records(state: SchoolState) -> None:
    """The provider purges what the added events left tobedeleted last term (dependants first)."""
    keys, state.purge_next_term = state.purge_next_term, []
    for collection, sourced_id in reversed(keys):
        if state.roster.has(collection, sourced_id):
            state.roster.remove(collection, sourced_id)


def _join_and_leave(state: SchoolState) -> None:
    """A pupil arrives and leaves again between two snapshots (a family passing through): the
    next snapshot holds them already tobedeleted, with enrollments that began and ended."""
    rng, roster = state.rng, state.roster
    for _ in range(_count(JOIN_AND_LEAVE_SHARE, state.pupils)):
        year = rng.choices(YEARS, weights=JOINER_YEAR_WEIGHTS)[0]
        pupil_id = state.admit_pupil(year)
        state.place_pupil(pupil_id, year, roster.date_in_term())
        leave(state, pupil_id, roster.date_in_term())


def _late_summer_moves(state: SchoolState, term: int) -> None:
    """Set moves in the last weeks of the school year just ended, after the summer snapshot:
    each is a move into a class the rollover has since dissolved, by an enrollment that began
    and ended between the two snapshots. No class move for the report."""
    rng, roster = state.rng, state.roster
    last_year = school_year_dates(school_year_index(term) - 1)
    last_day = last_year.terms[-1][2]
    move_date = format_date(change_window_s(term)[0] + 7 * 86400)  # a week after the snapshot
    enrollments, classes = roster.collections["enrollments"], roster.collections["classes"]
    movable: list[tuple[str, str, str]] = []  # (pupil, enrollment ended at the rollover, course)
    for pupil_id in _active_pupils(state):
        for enrollment_id in state.enrollments_of_user.get(pupil_id, []):
            record = enrollments.get(enrollment_id)
            if record is None or record.get("endDate") != last_day:
                continue
            course = classes[record["class"]["sourcedId"]].get("course")
            if course and len(state.classes_of_course[course["sourcedId"]]) > 1:
                movable.append((pupil_id, enrollment_id, course["sourcedId"]))
                break
    for pupil_id, enrollment_id, course_id in rng.sample(
        movable, min(len(movable), _count(LATE_MOVE_SHARE, state.pupils))
    ):
        old_class = enrollments[enrollment_id]["class"]["sourcedId"]
        new_class = rng.choice([c for c in state.classes_of_course[course_id] if c != old_class])
        roster.edit("enrollments", enrollment_id, endDate=move_date)
        state.current.setdefault(pupil_id, {})
        moved = state.enrol(pupil_id, new_class, "student", move_date)
        state.end_enrollment(moved, last_day, status="tobedeleted")
        roster.log_move(pupil_id, old_class, new_class, moved)


def _active_pupils(state: SchoolState) -> list[str]:
    return [
        sid
        for sid, record in state.roster.collections["users"].items()
        if record["role"] == "student" and record["status"] == "active"
    ]


def _year_of(state: SchoolState, pupil_id: str) -> int:
    return int(state.roster.get("users", pupil_id)["grades"][0])


def _roll_over(state: SchoolState, term: int) -> None:
    """September: last year's classes end, year 13 leaves, everyone moves up, year 7 arrives."""
    roster = state.roster
    last_year = school_year_dates(school_year_index(term) - 1)
    last_day = last_year.terms[-1][2]
    old_classes = [c for forms in state.forms_of_year.values() for c in forms]
    old_classes += [c for sets in state.sets_of_course.values() for c in sets]
    for class_id in old_classes:
        for enrollment_id in state.enrollments_of_class[class_id]:
            enrollments = roster.collections["enrollments"]
            if enrollment_id in enrollments and enrollments[enrollment_id]["status"] == "active":
                state.end_enrollment(enrollment_id, last_day, status="tobedeleted")
        roster.set_status("classes", class_id, "tobedeleted")
    for course_id in state.course_of.values():
        roster.set_status("courses", course_id, "tobedeleted")
    state.ended.clear()
    for user_id in state.current:
        state.current[user_id] = {}

    index = school_year_index(term)
    state.school_year_index = index
    pupils_by_year: dict[int, list[str]] = {year: [] for year in YEARS}
    active = _active_pupils(state)
    # Only as many of year 11 stay on for the sixth form as year 12 has places.
    year_11 = [sid for sid in active if _year_of(state, sid) == 11]
    stay_on = set(state.rng.sample(year_11, min(len(year_11), year_sizes(state.pupils)[12])))
    for pupil_id in active:
        year = _year_of(state, pupil_id)
        if year >= 13 or (year == 11 and pupil_id not in stay_on):
            leave(state, pupil_id, last_day)
        else:
            roster.edit("users", pupil_id, grades=[str(year + 1)])
            pupils_by_year[year + 1].append(pupil_id)
    pupils_by_year[7] = [state.admit_pupil(7) for _ in range(year_sizes(state.pupils)[7])]
    state.build_school_year(index, school_year_dates(index).start, pupils_by_year)


def _bring_back_returners(state: SchoolState, term: int, rollover: bool) -> None:
    """The odd pupil who left last term comes back, in the year group they now belong to."""
    roster = state.roster
    users = roster.collections["users"]
    bump = 1 if rollover else 0
    candidates = [
        sid
        for (collection, sid), since in state.roster.tobedeleted_since.items()
        if collection == "users"
        and since == term - 1
        and users[sid]["role"] == "student"
        and _year_of(state, sid) + bump <= 13
    ]
    if not candidates:
        return
    for pupil_id in state.rng.sample(candidates, _count(RETURNER_SHARE, len(candidates))):
        year = _year_of(state, pupil_id) + bump
        roster.set_status("users", pupil_id, "active")
        roster.edit("users", pupil_id, enabledUser=True, grades=[str(year)])
        state.current[pupil_id] = {}
        state.place_pupil(pupil_id, year, roster.date_in_term())


def _prune_tobedeleted(state: SchoolState, term: int) -> None:
    """Records tobedeleted since an earlier term may vanish, taking their own dependants."""
    rng = state.rng
    for (collection, sourced_id), since in list(state.roster.tobedeleted_since.items()):
        if since >= term or not state.roster.has(collection, sourced_id):
            continue
        if since <= term - PRUNE_AFTER_TERMS or rng.random() < PRUNE_CHANCE:
            _remove_with_dependants(state, collection, sourced_id)


def _remove_with_dependants(state: SchoolState, collection: str, sourced_id: str) -> bool:
    """Remove a tobedeleted record and what hangs off it, unless an active record still
    references it (then it stays, so the school never holds a dangling reference)."""
    roster = state.roster
    if not roster.has(collection, sourced_id):
        return True
    if roster.get(collection, sourced_id)["status"] != "tobedeleted":
        return False
    dependants: list[tuple[str, str]] = []
    if collection == "users":
        dependants = [("enrollments", e) for e in state.enrollments_of_user.get(sourced_id, [])]
    elif collection == "classes":
        dependants = [("enrollments", e) for e in state.enrollments_of_class.get(sourced_id, [])]
    elif collection == "courses":
        dependants = [("classes", c) for c in state.classes_of_course.get(sourced_id, [])]
    for dependant in dependants:
        if not _remove_with_dependants(state, *dependant):
            return False
    roster.remove(collection, sourced_id)
    return True


def _retire_ended_enrollments(state: SchoolState) -> None:
    """Enrollments that ended last term (set moves) turn tobedeleted."""
    for enrollment_id in list(state.ended):
        state.roster.set_status("enrollments", enrollment_id, "tobedeleted")
    state.ended.clear()


def _pupils_leave(state: SchoolState) -> None:
    roster = state.roster
    candidates = [
        sid
        for sid in _active_pupils(state)
        if sid != GUIDE_PUPIL_ID and not roster.affected("users", sid)
    ]
    for pupil_id in state.rng.sample(candidates, _count(LEAVER_SHARE, len(candidates))):
        leave(state, pupil_id, roster.date_in_term())


def _pupils_join(state: SchoolState) -> None:
    rng = state.rng
    for _ in range(_count(JOINER_SHARE, state.pupils)):
        year = rng.choices(YEARS, weights=JOINER_YEAR_WEIGHTS)[0]
        pupil_id = state.admit_pupil(year)
        state.place_pupil(pupil_id, year, state.roster.date_in_term())


def _move(state: SchoolState, pupil_id: str, old_class: str, new_class: str) -> None:
    """The old enrollment ends (it turns tobedeleted next term); a new one begins."""
    move_date = state.roster.date_in_term()
    state.end_enrollment(state.current[pupil_id][old_class], move_date)
    moved = state.enrol(pupil_id, new_class, "student", move_date)
    state.roster.log_move(pupil_id, old_class, new_class, moved)


def _move_sets(state: SchoolState) -> None:
    rng = state.rng
    pupils = [sid for sid in _active_pupils(state) if state.current.get(sid)]
    for pupil_id in rng.sample(pupils, _count(SET_MOVE_SHARE, len(pupils)) if pupils else 0):
        movable = [
            class_id
            for class_id in state.current[pupil_id]
            if class_id in state.class_course
            and len(state.sets_of_course[state.class_course[class_id]]) > 1
        ]
        if movable:
            old_class = rng.choice(movable)
            others = state.sets_of_course[state.class_course[old_class]]
            _move(state, pupil_id, old_class, rng.choice([c for c in others if c != old_class]))


def _move_forms(state: SchoolState) -> None:
    rng = state.rng
    pupils = [sid for sid in _active_pupils(state) if state.current.get(sid)]
    for pupil_id in rng.sample(pupils, _count(FORM_MOVE_SHARE, len(pupils)) if pupils else 0):
        year = _year_of(state, pupil_id)
        forms = state.forms_of_year.get(year, [])
        held = [class_id for class_id in state.current[pupil_id] if class_id in forms]
        if held and len(forms) > 1:
            _move(state, pupil_id, held[0], rng.choice([f for f in forms if f != held[0]]))


def _retitle_classes(state: SchoolState) -> None:
    rng = state.rng
    sets = [c for sets in state.sets_of_course.values() for c in sets]
    for class_id in rng.sample(sets, _count(CLASS_RETITLE_SHARE, len(sets)) if sets else 0):
        title = state.roster.get("classes", class_id)["title"]
        base = state.class_base_title[class_id]
        labels = [label for label in CLASS_TITLE_LABELS if f"{base} ({label})" != title]
        state.roster.edit("classes", class_id, title=f"{base} ({rng.choice(labels)})")


def _change_names(state: SchoolState) -> None:
    """Identity changes: a new family or given name (with username and email), a middle name
    added or dropped, a corrected UPN."""
    rng, roster = state.rng, state.roster
    users = roster.collections["users"]
    active = [sid for sid, record in users.items() if record["status"] == "active"]
    for user_id in rng.sample(active, _count(RENAME_SHARE, len(active))):
        record = users[user_id]
        what = rng.choice(("family", "given", "middle", "upn"))
        if what == "upn" and record["role"] != "student":
            what = "family"
        if what in ("family", "given"):
            given, family = record["givenName"], record["familyName"]
            if what == "family":
                family = rng.choice([name for name in FAMILY_NAMES if name != family])
            else:
                given = rng.choice([name for name in GIVEN_NAMES if name != given])
            if record["role"] == "student":
                intake = int(record["username"][:2]) + 2000
                username = state.pupil_username(given, family, intake)
                email = f"{username}@pupils.{state.domain}"
            else:
                username = state.staff_username(given, family)
                email = f"{username}@{state.domain}"
            roster.edit(
                "users", user_id, givenName=given, familyName=family, username=username, email=email
            )
        elif what == "middle":
            if "middleName" in record:
                roster.edit("users", user_id, middleName=DELETE_FIELD)
            else:
                roster.edit("users", user_id, middleName=rng.choice(MIDDLE_NAMES))
        else:
            user_ids = [dict(entry) for entry in record["userIds"]]
            for entry in user_ids:
                if entry["type"] == "UPN":
                    # Corrected in the MIS: the issuing LA was wrong. Still a valid UPN (a new
                    # check letter), and no other pupil's: the admission digits are unchanged.
                    digits = entry["identifier"][1:]
                    la = UPN_LA_NUMBERS.index(int(digits[:3])) if digits[:3].isdigit() else 0
                    new_la = UPN_LA_NUMBERS[(la + 1) % len(UPN_LA_NUMBERS)]
                    entry["identifier"] = upn_with_check_letter(f"{new_la}{digits[3:]}")
            roster.edit("users", user_id, userIds=user_ids)


def _teachers_leave(state: SchoolState) -> None:
    """A teacher leaves mid-year; a new teacher of the same subject takes over their classes."""
    roster = state.roster
    teaching = [sid for sid in state.active_teachers() if state.current.get(sid)]
    for teacher_id in state.rng.sample(teaching, _count(TEACHER_LEAVER_SHARE, len(teaching))):
        change_date = roster.date_in_term()
        successor = state.hire_staff("teacher", state.teacher_subject[teacher_id])
        for class_id, enrollment_id in list(state.current[teacher_id].items()):
            primary = roster.get("enrollments", enrollment_id).get("primary", True)
            state.end_enrollment(enrollment_id, change_date, status="tobedeleted")
            state.enrol(successor, class_id, "teacher", change_date, primary=primary)
        leave(state, teacher_id, change_date)


def _touch_records(state: SchoolState) -> None:
    """Saves in the MIS that change nothing but dateLastModified."""
    rng, roster = state.rng, state.roster
    for collection, records in roster.collections.items():
        ids = list(records)
        for sourced_id in rng.sample(ids, _count(TOUCH_SHARE, len(ids)) if ids else 0):
            if not roster.affected(collection, sourced_id):
                roster.touch(collection, sourced_id)


def _shuffle_set_arrays(state: SchoolState) -> None:
    """Reorder arrays whose order means nothing, without changing or stamping the record."""
    rng, collections = state.rng, state.roster.collections
    users = list(collections["users"].values())
    for record in rng.sample(users, _count(SHUFFLE_SHARE, len(users))):
        record["userIds"].reverse()
        record["orgSourcedIds"].reverse()
    classes = list(collections["classes"].values())
    for record in rng.sample(classes, _count(SHUFFLE_SHARE, len(classes))):
        record["terms"].append(record["terms"].pop(0))
    for record in collections["academicSessions"].values():
        if "children" in record and rng.random() < 0.5:
            record["children"].reverse()
