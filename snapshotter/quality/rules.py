"""The data-quality rules: one list, read by the checks, the reports, the README and the tests.

Each rule has an id (stable: findings are kept and compared by it), a family, a severity and,
for the README and `snapshotter check`, what it finds and why that matters to a school.
Severities: `error` breaks a system fed by the data (a dangling reference, a duplicate sign-in,
an identifier the census rejects, an impossible date); `warning` leaves someone without what
they need (a pupil with no classes, a class with no teacher); `info` is worth a look.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("error", "warning", "info")  # most serious first


@dataclass(frozen=True)
class Rule:
    id: str
    family: str
    severity: str
    entity: str  # the collection its findings name (or "orgs" for the school itself)
    finds: str  # what it finds, in a phrase
    why: str  # why it matters


@dataclass(frozen=True)
class Finding:
    """One problem with one record: `related` names the other records involved."""

    rule: str
    severity: str
    entity: str
    sourcedId: str  # noqa: N815 - the OneRoster name
    label: str
    message: str
    related: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "entity": self.entity,
            "sourcedId": self.sourcedId,
            "label": self.label,
            "message": self.message,
            "related": list(self.related),
        }


RULES: tuple[Rule, ...] = (
    # References: a record pointing at one the snapshot does not hold.
    Rule(
        "enrollment-without-user",
        "references",
        "error",
        "enrollments",
        "an active enrollment whose user is missing or tobedeleted",
        "systems fed by the data enrol nobody, or someone who has left",
    ),
    Rule(
        "enrollment-without-class",
        "references",
        "error",
        "enrollments",
        "an active enrollment whose class is missing or tobedeleted",
        "the pupil or teacher is placed in a class no system knows",
    ),
    Rule(
        "class-without-course",
        "references",
        "error",
        "classes",
        "a class whose course is not in the snapshot",
        "the class cannot be filed under a subject and year",
    ),
    Rule(
        "class-without-school",
        "references",
        "error",
        "classes",
        "a class with no school, or one not in the snapshot",
        "a sync cannot tell which school the class belongs to, and drops it",
    ),
    Rule(
        "class-without-terms",
        "references",
        "error",
        "classes",
        "a class with no terms, or a term not in the snapshot",
        "the class has no dates: timetables and gradebooks cannot place it",
    ),
    Rule(
        "user-without-org",
        "references",
        "error",
        "users",
        "an active user with no org, or an org not in the snapshot",
        "the person belongs to no school a sync knows, and is left out",
    ),
    Rule(
        "session-without-parent",
        "references",
        "error",
        "academicSessions",
        "an academic session whose parent is not in the snapshot",
        "the term hangs outside any school year",
    ),
    # Coverage: someone without what they need.
    Rule(
        "pupil-without-classes",
        "coverage",
        "warning",
        "users",
        "an active pupil with no active enrollment in a scheduled class",
        "the pupil has no timetable: no homework app, no class lists, no marks",
    ),
    Rule(
        "pupil-without-registration-group",
        "coverage",
        "warning",
        "users",
        "an active pupil with no registration group (homeroom)",
        "nobody takes the pupil's register",
    ),
    Rule(
        "class-without-teacher",
        "coverage",
        "warning",
        "classes",
        "an active class with no active teacher",
        "nobody can set or mark the class's work",
    ),
    Rule(
        "class-without-pupils",
        "coverage",
        "warning",
        "classes",
        "an active class with no active pupils",
        "an empty class clutters every teacher's and system's lists",
    ),
    Rule(
        "teacher-without-classes",
        "coverage",
        "info",
        "users",
        "an active teacher with no active class",
        "worth a look: a leaver not yet marked, or a timetable not yet entered",
    ),
    # Uniqueness: one value on two active people.
    Rule(
        "duplicate-email",
        "uniqueness",
        "error",
        "users",
        "two active users with one email address (any case)",
        "sign-in and messages go to the wrong person, or fail for both",
    ),
    Rule(
        "duplicate-username",
        "uniqueness",
        "error",
        "users",
        "two active users with one username (any case)",
        "single sign-on cannot tell the two apart",
    ),
    Rule(
        "duplicate-upn",
        "uniqueness",
        "error",
        "users",
        "two active users with one UPN",
        "the school census rejects both, and records merge",
    ),
    # Identifiers.
    Rule(
        "invalid-upn",
        "identifiers",
        "error",
        "users",
        "a UPN that is not 13 characters, has an unknown LA number or a wrong check letter",
        "the school census rejects it (the DfE check letter, via python-stdnum)",
    ),
    Rule(
        "pupil-without-upn",
        "identifiers",
        "warning",
        "users",
        "an active pupil without a UPN",
        "the census and a move between schools need it",
    ),
    Rule(
        "invalid-email",
        "identifiers",
        "error",
        "users",
        "an email that is not an address",
        "the account cannot be created or reached",
    ),
    # Year groups.
    Rule(
        "pupil-without-year-group",
        "year groups",
        "warning",
        "users",
        "an active pupil with no year group (grades)",
        "year-based groups, reports and rollovers miss the pupil",
    ),
    Rule(
        "pupil-with-several-year-groups",
        "year groups",
        "warning",
        "users",
        "an active pupil with more than one year group",
        "a pupil is in one year group: systems pick one at random",
    ),
    Rule(
        "pupil-year-outside-school",
        "year groups",
        "warning",
        "users",
        "an active pupil in a year group none of the school's classes teaches",
        "usually a typo in the MIS; the pupil lands in no year-based group",
    ),
    Rule(
        "pupil-in-class-of-other-year",
        "year groups",
        "warning",
        "enrollments",
        "an active pupil in a class whose year groups do not include theirs",
        "a wrong set or form, or a wrong year group on the pupil",
    ),
    # Dates.
    Rule(
        "enrollment-ends-before-it-begins",
        "dates",
        "error",
        "enrollments",
        "an active enrollment whose endDate is before its beginDate",
        "no system can place it in time: some drop it, some keep it for ever",
    ),
    Rule(
        "terms-overlap",
        "dates",
        "warning",
        "academicSessions",
        "two terms of one school year whose dates overlap",
        "a date falls in two terms: reports and timetables double count",
    ),
    Rule(
        "term-outside-school-year",
        "dates",
        "warning",
        "academicSessions",
        "a term that begins before or ends after its school year",
        "a wrong date in the MIS calendar",
    ),
    Rule(
        "snapshot-outside-sessions",
        "dates",
        "warning",
        "orgs",
        "a snapshot taken outside every active academic session of the school",
        "the calendar was not rolled forward: term-based selections find nothing",
    ),
)
RULE_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(rule.family for rule in RULES))


def at_least(severity: str) -> frozenset[str]:
    """The severities as serious as `severity` or more: `at_least("warning")` = error, warning."""
    return frozenset(SEVERITIES[: SEVERITIES.index(severity) + 1])
