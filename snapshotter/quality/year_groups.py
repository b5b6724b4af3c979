"""Year groups: pupils with none, with several, outside the school's range, or in a class of
another year. The school's range is what its active classes teach (their `grades`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from .context import CheckContext, Raw


def _grades(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(value, list):
        return [str(grade) for grade in value if grade not in (None, "")]
    return [str(value)]


def school_year_groups(ctx: CheckContext) -> set[str]:
    return {str(grade) for (grade,) in ctx.rows("SELECT DISTINCT grade FROM class_grades")}


def findings(ctx: CheckContext) -> Iterator[Raw]:
    taught = school_year_groups(ctx)
    in_range: dict[str, str] = {}  # pupil -> their one year group, when the school teaches it
    for sid, grades_text in ctx.rows(
        "SELECT sourcedId, grades FROM users WHERE status = 'active' AND role = 'student'"
    ):
        grades = _grades(grades_text)
        if not grades:
            yield Raw(
                "pupil-without-year-group",
                "users",
                sid,
                "has no year group: set it in the MIS",
            )
        elif len(grades) > 1:
            yield Raw(
                "pupil-with-several-year-groups",
                "users",
                sid,
                f"has {len(grades)} year groups ({', '.join(grades)}): keep the right one",
            )
        elif taught and grades[0] not in taught:
            yield Raw(
                "pupil-year-outside-school",
                "users",
                sid,
                f"is in year {grades[0]}, which no class of the school teaches "
                f"({_span(taught)}): correct the year group in the MIS",
            )
        else:
            in_range[sid] = grades[0]
    # Only the enrollments whose class has year groups and none of them the pupil's: SQL finds
    # them (few), Python keeps those of pupils with one year group the school teaches.
    ctx.conn.execute("DROP TABLE IF EXISTS temp.pupil_years")
    ctx.conn.execute(
        "CREATE TEMP TABLE pupil_years (sourcedId TEXT PRIMARY KEY, year TEXT) WITHOUT ROWID"
    )
    ctx.conn.executemany("INSERT INTO pupil_years VALUES (?, ?)", in_range.items())
    for sid, user_id, class_id, year, class_grades in ctx.rows(
        """SELECT e.sourcedId, e.user_sourcedId, e.class_sourcedId, p.year, c.grades
        FROM live_enrollments e
        JOIN pupil_years p ON p.sourcedId = e.user_sourcedId
        JOIN classes c ON c.sourcedId = e.class_sourcedId
        WHERE e.role = 'student'
          AND EXISTS (SELECT 1 FROM class_grades g WHERE g.class_sourcedId = e.class_sourcedId)
          AND NOT EXISTS (SELECT 1 FROM class_grades g
            WHERE g.class_sourcedId = e.class_sourcedId AND g.grade = p.year)"""
    ):
        grades = _grades(class_grades)
        if grades:
            yield Raw(
                "pupil-in-class-of-other-year",
                "enrollments",
                sid,
                f"puts a year {year} pupil in a class for year {', '.join(grades)}: move the "
                "pupil to a class of their year, or correct their year group",
                (user_id, class_id),
            )


def _span(grades: set[str]) -> str:
    ordered = sorted(grades, key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g))
    return f"years {ordered[0]} to {ordered[-1]}" if len(ordered) > 1 else f"year {ordered[0]}"
