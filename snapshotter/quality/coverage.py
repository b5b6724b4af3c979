"""Coverage: pupils without classes or a registration group, classes without a teacher or
pupils, teachers without classes. "Active" enrollments are those not ended by the day the
snapshot was taken (`live_enrollments`), in classes that are active."""

from __future__ import annotations

from collections.abc import Iterator

from .context import CheckContext, Raw

_PUPIL_WITHOUT = """
SELECT u.sourcedId FROM users u
WHERE u.status = 'active' AND u.role = 'student' AND NOT EXISTS (
  SELECT 1 FROM live_enrollments e JOIN classes c ON c.sourcedId = e.class_sourcedId
  WHERE e.user_sourcedId = u.sourcedId AND c.status = 'active' AND c.classType = :class_type)
"""
_CLASS_WITHOUT = """
SELECT c.sourcedId FROM classes c
WHERE c.status = 'active' AND NOT EXISTS (
  SELECT 1 FROM live_enrollments e JOIN users u ON u.sourcedId = e.user_sourcedId
  WHERE e.class_sourcedId = c.sourcedId AND e.role = :role AND u.status = 'active')
"""


def findings(ctx: CheckContext) -> Iterator[Raw]:
    for (sid,) in ctx.rows(_PUPIL_WITHOUT, {"class_type": "scheduled"}):
        yield Raw(
            "pupil-without-classes",
            "users",
            sid,
            "is in no active teaching class: enrol the pupil in their classes in the MIS",
        )
    for (sid,) in ctx.rows(_PUPIL_WITHOUT, {"class_type": "homeroom"}):
        yield Raw(
            "pupil-without-registration-group",
            "users",
            sid,
            "is in no registration group: add the pupil to a form in the MIS",
        )
    for (sid,) in ctx.rows(_CLASS_WITHOUT, {"role": "teacher"}):
        yield Raw(
            "class-without-teacher",
            "classes",
            sid,
            "has no active teacher: assign one in the MIS, or end the class",
        )
    for (sid,) in ctx.rows(_CLASS_WITHOUT, {"role": "student"}):
        yield Raw(
            "class-without-pupils",
            "classes",
            sid,
            "has no active pupils: enrol its pupils, or end the class in the MIS",
        )
    for (sid,) in ctx.rows(
        """SELECT u.sourcedId FROM users u
        WHERE u.status = 'active' AND u.role = 'teacher' AND NOT EXISTS (
          SELECT 1 FROM live_enrollments e JOIN classes c ON c.sourcedId = e.class_sourcedId
          WHERE e.user_sourcedId = u.sourcedId AND c.status = 'active')"""
    ):
        yield Raw(
            "teacher-without-classes",
            "users",
            sid,
            "teaches no active class: a leaver to mark, or a timetable to enter",
        )
