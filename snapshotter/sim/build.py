"""The synthetic school as a set of operations: hire, admit, enrol, leave, build a school year.

`build_school()` makes term 0; `evolve.py` applies the same operations term after term.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

from stdnum.gb import upn

from .curriculum import (
    CORE_BY_YEAR,
    FORM_SIZE,
    OPTION_ENTRY_YEARS,
    OPTIONS_BY_YEAR,
    SETS_PER_TEACHER,
    SUBJECTS,
    YEARS,
    form_letters,
    school_year_dates,
    set_size,
    year_sizes,
)
from .names import FAMILY_NAMES, GIVEN_NAMES, MIDDLE_NAMES, PLACE_NAMES, TRUST_WORDS, ascii_fold
from .roster import Record, RecordKey, Roster

# The guide's example sourcedIds: the first pupil and the first teaching set carry them, so
# the guide's filter examples answer with records (the pupil is a student of that set).
GUIDE_PUPIL_ID = "x42Y7TNMV"
GUIDE_CLASS_ID = "x11BSAT6S"
SYNTHETIC_PASSWORD = "sim-pw-123"  # on a few users: the fetcher must never store it
SHOWCASE_NAMES = (("Zoë", "O'Brien", None), ("Seán", "Ó Súilleabháin", "Óscar"))
# Admission numbers of pupils made by added events: a range of their own (see `added_events`).
ADDED_EVENTS_FIRST_ADMISSION = 900_001
CLASS_TITLE_LABELS = ("Higher", "Foundation", "Group A", "Group B", "Extension", "Support")


# Local authorities that issue the school's pupils' UPNs: DfE LA numbers, all known to
# python-stdnum's `stdnum.gb.upn` (which checks the LA as well as the check letter).
UPN_LA_NUMBERS = (*range(201, 214), *range(301, 314))


def upn_with_check_letter(digits: str) -> str:
    """A UPN from its 12 digits: the DfE check letter (computed by python-stdnum) first."""
    return upn.calc_check_digit(digits) + digits


def pupil_upn(rng: random.Random, admission: int, intake_year: int) -> str:
    """A real UPN: check letter, LA (3 digits), establishment (4), issue year (2), serial (3).

    The establishment and serial digits hold the school's admission number, unique within the
    school, so no two pupils share a UPN. It takes the same three draws from `rng` the earlier
    (invalid) UPNs took, so every other record the generator makes is as it was.
    """
    la = UPN_LA_NUMBERS[rng.randrange(26)]
    rng.randrange(10**11)
    rng.randrange(26)
    admission_digits = f"{admission:07d}"
    issue_year = (intake_year - 7) % 100  # allocated on entry to primary school
    return upn_with_check_letter(
        f"{la}{admission_digits[:4]}{issue_year:02d}{admission_digits[4:]}"
    )


class SchoolState:
    """The school's records (in `roster`) plus the indexes the operations need."""

    def __init__(self, seed: int, pupils: int) -> None:
        self.seed = seed
        self.pupils = pupils
        self.seed_text = f"snapshotter-sim:{seed}:{pupils}"
        self.roster = Roster(f"{self.seed_text}:ids")
        self.rng = random.Random(f"{self.seed_text}:build")
        self.school_id = ""
        self.trust_id = ""
        self.school_year_index = -1
        self.year_session_id = ""
        self.term_session_ids: list[str] = []
        self.domain = ""
        # This school year's structure.
        self.course_of: dict[tuple[str, int], str] = {}  # (subject code, year) -> course
        self.sets_of_course: dict[str, list[str]] = {}
        self.forms_of_year: dict[int, list[str]] = {}
        self.class_course: dict[str, str] = {}  # teaching set -> course (forms have none)
        self.set_subject: dict[str, str] = {}  # teaching set -> subject code
        self.class_year: dict[str, int] = {}
        self.class_base_title: dict[str, str] = {}
        # Who is in what now: user -> class -> active, un-ended enrollment.
        self.current: dict[str, dict[str, str]] = {}
        self.ended: dict[str, None] = {}  # active enrollments with an endDate (ordered set)
        self.options: dict[str, tuple[str, ...]] = {}  # pupil -> chosen option subjects
        self.teacher_subject: dict[str, str] = {}
        # Everything ever enrolled, to cascade removals: user/class -> enrollments.
        self.enrollments_of_user: dict[str, list[str]] = {}
        self.enrollments_of_class: dict[str, list[str]] = {}
        self.classes_of_course: dict[str, list[str]] = {}
        self._usernames: set[str] = set()  # membership only
        self._staff_codes: set[str] = set()
        self._next_admission = 1
        self._next_staff_number = 1
        self._next_added_admission = ADDED_EVENTS_FIRST_ADMISSION
        # Records the added events made this term, purged by the provider the next term.
        self.purge_next_term: list[RecordKey] = []
        self.guide_pupil_pending = True
        # Every school, however small, holds the names that break naive pipelines.
        self._showcase_names: list[tuple[str, str, str | None]] = list(SHOWCASE_NAMES)
        self.guide_class_pending = True

    @contextmanager
    def added_events(self, label: str) -> Iterator[None]:
        """Run events added to the simulator after tests and figures were pinned to its output,
        on streams of their own (random choices, ids, admission numbers, usernames): every
        record the other events make stays exactly as it was. Their records are purged the
        next term (see `evolve.advance`)."""
        term = self.roster.term
        saved = (self.rng, self._next_admission, self._usernames)
        self.rng = random.Random(f"{self.seed_text}:term:{term}:{label}")
        self._next_admission = self._next_added_admission
        self._usernames = set(self._usernames)  # theirs are not taken from later pupils
        self.roster.added_keys = self.purge_next_term
        try:
            with self.roster.ids_from(random.Random(f"{self.seed_text}:ids:{term}:{label}")):
                yield
        finally:
            self._next_added_admission = self._next_admission
            self.rng, self._next_admission, self._usernames = saved
            self.roster.added_keys = None

    # --- people ---

    def _random_name(self) -> tuple[str, str, str | None]:
        rng = self.rng
        if self._showcase_names:
            return self._showcase_names.pop(0)
        middle = rng.choice(MIDDLE_NAMES) if rng.random() < 0.25 else None
        return rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES), middle

    def unique_username(self, stem: str) -> str:
        username, suffix = stem, 1
        while username in self._usernames:
            suffix += 1
            username = f"{stem}{suffix}"
        self._usernames.add(username)
        return username

    def pupil_username(self, given: str, family: str, intake_year: int) -> str:
        return self.unique_username(
            f"{intake_year % 100:02d}{ascii_fold(family)[:12]}{ascii_fold(given)[:1]}"
        )

    def staff_username(self, given: str, family: str) -> str:
        return self.unique_username(f"{ascii_fold(given)[:1]}{ascii_fold(family)[:14]}")

    def _user_record(
        self,
        sourced_id: str,
        role: str,
        given: str,
        family: str,
        middle: str | None,
        username: str,
        identifier: str,
        email: str,
        user_ids: list[Record],
        org_ids: list[str],
    ) -> Record:
        record: Record = {
            "sourcedId": sourced_id,
            "status": "active",
            "dateLastModified": self.roster.stamp(),
            "username": username,
            "userIds": user_ids,
            "enabledUser": True,
            "givenName": given,
            "familyName": family,
        }
        if middle is not None:
            record["middleName"] = middle
        record["role"] = role
        record["identifier"] = identifier
        record["email"] = email
        record["orgSourcedIds"] = org_ids
        if self.rng.random() < 0.01:
            record["password"] = SYNTHETIC_PASSWORD
        return record

    def admit_pupil(self, year: int) -> str:
        """A new pupil record (active, no enrollments yet) in year group `year`."""
        roster = self.roster
        if self.guide_pupil_pending:
            sourced_id = roster.reserve_id(GUIDE_PUPIL_ID)
            self.guide_pupil_pending = False
        else:
            sourced_id = roster.new_id()
        given, family, middle = self._random_name()
        admission = self._next_admission
        self._next_admission += 1
        intake_year = school_year_dates(self.school_year_index).end_year - (year - 6)
        username = self.pupil_username(given, family, intake_year)
        upn = pupil_upn(self.rng, admission, intake_year)
        record = self._user_record(
            sourced_id,
            "student",
            given,
            family,
            middle,
            username,
            identifier=f"{admission:06d}",
            email=f"{username}@pupils.{self.domain}",
            user_ids=[
                {"type": "MIS", "identifier": f"{admission:06d}"},
                {"type": "UPN", "identifier": upn},
            ],
            org_ids=[self.school_id],
        )
        record["grades"] = [str(year)]
        roster.add("users", record)
        self.current[sourced_id] = {}
        return sourced_id

    def hire_staff(self, role: str, subject: str | None = None) -> str:
        roster = self.roster
        sourced_id = roster.new_id()
        given, family, middle = self._random_name()
        number = self._next_staff_number
        self._next_staff_number += 1
        username = self.staff_username(given, family)
        code = (ascii_fold(given)[:1] + ascii_fold(family)[:2]).upper()
        while code in self._staff_codes:
            code = code[:2] + chr(ord("A") + self.rng.randrange(26))
            if code in self._staff_codes:
                code = "".join(chr(ord("A") + self.rng.randrange(26)) for _ in range(3))
        self._staff_codes.add(code)
        # Staff belong to the school and the trust: a two-element set-array.
        org_ids = [self.school_id, self.trust_id]
        record = self._user_record(
            sourced_id,
            role,
            given,
            family,
            middle,
            username,
            identifier=f"S{number:05d}",
            email=f"{username}@{self.domain}",
            user_ids=[
                {"type": "MIS", "identifier": f"S{number:05d}"},
                {"type": "StaffCode", "identifier": code},
            ],
            org_ids=org_ids,
        )
        if self.rng.random() < 0.5:
            # Ofcom's ranges reserved for drama: never a real number.
            record["sms"] = f"07700 900{self.rng.randrange(1000):03d}"
        if self.rng.random() < 0.3:
            record["phone"] = f"01632 960{self.rng.randrange(1000):03d}"
        roster.add("users", record)
        self.current[sourced_id] = {}
        if subject is not None:
            self.teacher_subject[sourced_id] = subject
        return sourced_id

    # --- structure ---

    def found_school(self) -> None:
        """The trust and the school: two orgs that persist for ever."""
        rng, roster = self.rng, self.roster
        place = rng.choice(PLACE_NAMES)
        self.domain = f"{ascii_fold(place)}-academy.example"
        self.trust_id = roster.new_id()
        self.school_id = roster.new_id()
        roster.add(
            "orgs",
            {
                "sourcedId": self.trust_id,
                "status": "active",
                "dateLastModified": roster.stamp(),
                "name": f"{rng.choice(TRUST_WORDS)} Learning Trust",
                "type": "district",
                "identifier": f"TR{rng.randrange(10000):04d}",
                "children": [roster.ref("orgs", self.school_id)],
            },
        )
        roster.add(
            "orgs",
            {
                "sourcedId": self.school_id,
                "status": "active",
                "dateLastModified": roster.stamp(),
                "name": f"{place} Academy",
                "type": "school",
                # A DfE number: local authority code and establishment number.
                "identifier": f"{rng.randrange(201, 939)}{rng.randrange(4000, 7000):04d}",
                "parent": roster.ref("orgs", self.trust_id),
            },
        )

    def add_school_year_sessions(self, index: int) -> None:
        roster = self.roster
        dates = school_year_dates(index)
        self.school_year_index = index
        self.year_session_id = roster.new_id()
        self.term_session_ids = [roster.new_id() for _ in dates.terms]
        roster.add(
            "academicSessions",
            {
                "sourcedId": self.year_session_id,
                "status": "active",
                "dateLastModified": roster.stamp(),
                "title": dates.title,
                "type": "schoolYear",
                "startDate": dates.start,
                "endDate": dates.end,
                "schoolYear": str(dates.end_year),
                "children": [roster.ref("academicSessions", sid) for sid in self.term_session_ids],
            },
        )
        for term_id, (title, start, end) in zip(self.term_session_ids, dates.terms, strict=True):
            roster.add(
                "academicSessions",
                {
                    "sourcedId": term_id,
                    "status": "active",
                    "dateLastModified": roster.stamp(),
                    "title": title,
                    "type": "term",
                    "startDate": start,
                    "endDate": end,
                    "schoolYear": str(dates.end_year),
                    "parent": roster.ref("academicSessions", self.year_session_id),
                },
            )

    def _add_course(self, subject_code: str, year: int) -> str:
        roster = self.roster
        subject = SUBJECTS[subject_code]
        course_id = roster.new_id()
        roster.add(
            "courses",
            {
                "sourcedId": course_id,
                "status": "active",
                "dateLastModified": roster.stamp(),
                "title": f"{subject.name} Year {year}",
                "courseCode": f"{year}{subject_code}",
                "schoolYear": roster.ref("academicSessions", self.year_session_id),
                "org": roster.ref("orgs", self.school_id),
                "grades": [str(year)],
                "subjects": [subject.name],
            },
        )
        self.course_of[(subject_code, year)] = course_id
        self.sets_of_course[course_id] = []
        self.classes_of_course[course_id] = []
        return course_id

    def _term_refs(self) -> list[Record]:
        return [self.roster.ref("academicSessions", sid) for sid in self.term_session_ids]

    def _add_class(self, record: Record, year: int) -> str:
        self.roster.add("classes", record)
        class_id = record["sourcedId"]
        self.class_year[class_id] = year
        self.class_base_title[class_id] = record["title"]
        self.enrollments_of_class[class_id] = []
        return class_id

    def _add_set(self, course_id: str, subject_code: str, year: int, band: str, number: int) -> str:
        roster = self.roster
        subject = SUBJECTS[subject_code]
        if self.guide_class_pending:
            class_id = roster.reserve_id(GUIDE_CLASS_ID)
            self.guide_class_pending = False
        else:
            class_id = roster.new_id()
        record = {
            "sourcedId": class_id,
            "status": "active",
            "dateLastModified": roster.stamp(),
            "title": f"{subject.name} {year}{band}{number}",
            "classCode": f"{year}{band}/{subject_code}{number}",
            "classType": "scheduled",
            "location": f"{subject.room_prefix}{self.rng.randrange(1, 30)}",
            "course": roster.ref("courses", course_id),
            "school": roster.ref("orgs", self.school_id),
            "terms": self._term_refs(),
            "grades": [str(year)],
            "subjects": [subject.name],
        }
        self._add_class(record, year)
        self.class_course[class_id] = course_id
        self.set_subject[class_id] = subject_code
        self.sets_of_course[course_id].append(class_id)
        self.classes_of_course[course_id].append(class_id)
        return class_id

    def _add_form(self, year: int, letters: str) -> str:
        roster = self.roster
        record = {
            "sourcedId": roster.new_id(),
            "status": "active",
            "dateLastModified": roster.stamp(),
            "title": f"{year}{letters}",
            "classCode": f"REG-{year}{letters}",
            "classType": "homeroom",
            "location": f"F{self.rng.randrange(1, 60)}",
            "school": roster.ref("orgs", self.school_id),
            "terms": self._term_refs(),
            "grades": [str(year)],
        }
        class_id = self._add_class(record, year)
        self.forms_of_year.setdefault(year, []).append(class_id)
        return class_id

    # --- enrollments ---

    def enrol(
        self, user_id: str, class_id: str, role: str, begin_date: str, primary: bool | None = None
    ) -> str:
        roster = self.roster
        enrollment_id = roster.new_id()
        record: Record = {
            "sourcedId": enrollment_id,
            "status": "active",
            "dateLastModified": roster.stamp(),
            "role": role,
        }
        if primary is not None:
            record["primary"] = primary
        record["beginDate"] = begin_date
        record["user"] = roster.ref("users", user_id)
        record["class"] = roster.ref("classes", class_id)
        record["school"] = roster.ref("orgs", self.school_id)
        roster.add("enrollments", record)
        self.current[user_id][class_id] = enrollment_id
        self.enrollments_of_user.setdefault(user_id, []).append(enrollment_id)
        self.enrollments_of_class[class_id].append(enrollment_id)
        return enrollment_id

    def end_enrollment(self, enrollment_id: str, end_date: str, status: str = "active") -> None:
        """The enrollment ends (endDate), and may turn tobedeleted at once."""
        roster = self.roster
        record = roster.get("enrollments", enrollment_id)
        if "endDate" not in record:
            # A joiner may move or leave in the term they arrived: never end before beginning.
            end_date = max(end_date, record.get("beginDate", ""))
            roster.edit("enrollments", enrollment_id, endDate=end_date)
        if status == "tobedeleted":
            roster.set_status("enrollments", enrollment_id, "tobedeleted")
            self.ended.pop(enrollment_id, None)
        elif record["status"] == "active":
            self.ended[enrollment_id] = None
        user_id = record["user"]["sourcedId"]
        class_id = record["class"]["sourcedId"]
        if self.current.get(user_id, {}).get(class_id) == enrollment_id:
            del self.current[user_id][class_id]

    def choose_options(self, pupil_id: str, year: int) -> tuple[str, ...]:
        """The pupil's option subjects for `year`, kept from the year before where they apply."""
        if year not in OPTIONS_BY_YEAR:
            return ()
        chosen = self.options.get(pupil_id)
        menu, count = OPTIONS_BY_YEAR[year]
        if chosen is None or year in OPTION_ENTRY_YEARS or not set(chosen) <= set(menu):
            # Only subjects already running for that year (joiners pick from what exists).
            running = [code for code in menu if (code, year) in self.course_of]
            if len(running) < count or not self.course_of:
                running = list(menu)
            chosen = tuple(sorted(self.rng.sample(running, count), key=menu.index))
            self.options[pupil_id] = chosen
        return chosen

    def subjects_for(self, pupil_id: str, year: int) -> tuple[str, ...]:
        return CORE_BY_YEAR[year] + self.choose_options(pupil_id, year)

    def place_pupil(self, pupil_id: str, year: int, begin_date: str) -> None:
        """Enrol a pupil (a joiner or a returner) in a form and one set per subject."""
        rng = self.rng
        forms = self.forms_of_year.get(year)
        if forms:
            self.enrol(pupil_id, rng.choice(forms), "student", begin_date)
        for subject_code in self.subjects_for(pupil_id, year):
            course_id = self.course_of.get((subject_code, year))
            if course_id is None or not self.sets_of_course[course_id]:
                continue
            self.enrol(pupil_id, rng.choice(self.sets_of_course[course_id]), "student", begin_date)

    # --- a school year's classes ---

    def build_school_year(
        self, index: int, begin_date: str, pupils_by_year: dict[int, list[str]]
    ) -> None:
        """Sessions, courses, forms, sets and all enrollments for school year `index`."""
        rng = self.rng
        self.add_school_year_sessions(index)
        self.course_of = {}
        self.sets_of_course = {}
        self.forms_of_year = {}
        self.class_course = {}
        self.set_subject = {}

        # Who takes what, in a fixed order: years ascending, subjects in curriculum order.
        takers: dict[tuple[str, int], list[str]] = {}
        for year in YEARS:
            for pupil_id in pupils_by_year.get(year, []):
                for subject_code in self.subjects_for(pupil_id, year):
                    takers.setdefault((subject_code, year), []).append(pupil_id)
        ordered_courses = sorted(takers, key=lambda key: (key[1], list(SUBJECTS).index(key[0])))
        for subject_code, year in ordered_courses:
            self._add_course(subject_code, year)

        # Forms first (registration groups), then the teaching sets.
        form_members: list[tuple[str, list[str]]] = []
        for year in YEARS:
            members = list(pupils_by_year.get(year, []))
            rng.shuffle(members)
            count = max(1, math.ceil(len(members) / FORM_SIZE))
            forms = [self._add_form(year, form_letters(i)) for i in range(count)]
            for i, form_id in enumerate(forms):
                form_members.append((form_id, members[i::count]))

        set_members: list[tuple[str, list[str]]] = []
        for subject_code, year in ordered_courses:
            members = takers[(subject_code, year)]
            rng.shuffle(members)
            if self.guide_class_pending and GUIDE_PUPIL_ID in members:
                members.remove(GUIDE_PUPIL_ID)
                members.insert(0, GUIDE_PUPIL_ID)
            count = max(1, math.ceil(len(members) / set_size(year)))
            half = math.ceil(count / 2)
            course_id = self.course_of[(subject_code, year)]
            for i in range(count):
                band, number = ("X", i + 1) if i < half else ("Y", i + 1 - half)
                set_id = self._add_set(course_id, subject_code, year, band, number)
                set_members.append((set_id, members[i::count]))

        self._assign_teachers(
            [set_id for set_id, _ in set_members],
            [form_id for form_id, _ in form_members],
            begin_date,
        )
        for class_id, members in form_members + set_members:
            for pupil_id in members:
                self.enrol(pupil_id, class_id, "student", begin_date)

    def active_teachers(self) -> list[str]:
        users = self.roster.collections["users"]
        return [
            sid for sid in self.teacher_subject if sid in users and users[sid]["status"] == "active"
        ]

    def _assign_teachers(self, set_ids: list[str], form_ids: list[str], begin_date: str) -> None:
        """Deal the sets, grouped by subject, in contiguous runs over the teachers; hire when
        there are too few; give each form a tutor and some sets a second teacher."""
        subject_order = list(SUBJECTS)
        set_subject = self.set_subject
        by_subject = sorted(set_ids, key=lambda set_id: subject_order.index(set_subject[set_id]))
        needed = max(3, math.ceil(len(set_ids) / SETS_PER_TEACHER))
        teachers = self.active_teachers()
        while len(teachers) < needed:
            # A new teacher's subject is the subject of the run of sets they will take.
            run_start = len(teachers) * len(by_subject) // needed
            subject = set_subject[by_subject[run_start]] if by_subject else "Ma"
            teachers.append(self.hire_staff("teacher", subject))
        teachers.sort(key=lambda sid: subject_order.index(self.teacher_subject[sid]))
        count = len(teachers)
        for position, set_id in enumerate(by_subject):
            teacher_index = position * count // len(by_subject)
            self.enrol(teachers[teacher_index], set_id, "teacher", begin_date, primary=True)
            if self.rng.random() < 0.15:
                helper = teachers[(teacher_index + 1) % count]
                self.enrol(helper, set_id, "teacher", begin_date, primary=False)
        for position, form_id in enumerate(form_ids):
            self.enrol(teachers[position % count], form_id, "teacher", begin_date, primary=True)


def build_school(seed: int, pupils: int) -> SchoolState:
    """Term 0: the school in the Autumn term of 2026/27, including earlier leavers."""
    if pupils < 1:
        raise ValueError("a school needs at least one pupil")
    state = SchoolState(seed, pupils)
    rng = state.rng
    state.school_year_index = 0
    state.found_school()

    pupils_by_year: dict[int, list[str]] = {}
    for year, size in year_sizes(pupils).items():
        pupils_by_year[year] = [state.admit_pupil(year) for _ in range(size)]
    for _ in range(max(1, pupils // 60)):
        state.hire_staff("aide")
    for _ in range(max(1, pupils // 150)):
        state.hire_staff("administrator")

    year_start = school_year_dates(0).start
    state.build_school_year(0, year_start, pupils_by_year)

    # Last summer's year 13 and a departed teacher: tobedeleted, their classes long gone.
    roster = state.roster
    for _ in range(max(1, year_sizes(pupils)[13] // 2)):
        leaver_id = state.admit_pupil(13)
        roster.edit("users", leaver_id, enabledUser=False)
        roster.set_status("users", leaver_id, "tobedeleted")
    former_teacher = state.hire_staff("teacher", "Ma")
    del state.teacher_subject[former_teacher]
    roster.edit("users", former_teacher, enabledUser=False)
    roster.set_status("users", former_teacher, "tobedeleted")

    # Some pupils already left this autumn, with their enrollments.
    candidates = [pid for year in YEARS for pid in pupils_by_year[year] if pid != GUIDE_PUPIL_ID]
    for pupil_id in rng.sample(candidates, max(1, pupils // 100)):
        leave(state, pupil_id, roster.date_in_term())
    return state


def leave(state: SchoolState, user_id: str, end_date: str) -> None:
    """A pupil or member of staff leaves: they and their enrollments turn tobedeleted."""
    roster = state.roster
    for enrollment_id in state.enrollments_of_user.get(user_id, []):
        if roster.has("enrollments", enrollment_id):
            record = roster.get("enrollments", enrollment_id)
            if record["status"] == "active":
                state.end_enrollment(enrollment_id, end_date, status="tobedeleted")
    state.current[user_id] = {}
    roster.edit("users", user_id, enabledUser=False)
    roster.set_status("users", user_id, "tobedeleted")
