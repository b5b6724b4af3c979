"""Dates: enrollments that end before they begin, terms that overlap or leave their school
year, and a snapshot taken outside every session of the school. Session and enrollment end
dates are exclusive (OneRoster v1.1); dates compare as yyyy-MM-dd text."""

from __future__ import annotations

from collections.abc import Iterator

from .context import CheckContext, Raw


def findings(ctx: CheckContext) -> Iterator[Raw]:
    for sid, begin, end in ctx.rows(
        """SELECT sourcedId, beginDate, endDate FROM enr
        WHERE status = 'active' AND beginDate IS NOT NULL AND endDate IS NOT NULL
          AND beginDate != '' AND endDate != '' AND endDate < beginDate"""
    ):
        yield Raw(
            "enrollment-ends-before-it-begins",
            "enrollments",
            sid,
            f"ends on {end}, before it begins on {begin}: correct the dates in the MIS",
        )
    overlaps: dict[str, list[str]] = {}
    for first, second in ctx.rows(
        """WITH terms AS (SELECT sourcedId, startDate, endDate,
            coalesce(parent_sourcedId, schoolYear) AS year FROM academicSessions
          WHERE status = 'active' AND type = 'term' AND startDate IS NOT NULL
            AND endDate IS NOT NULL)
        SELECT a.sourcedId, b.sourcedId FROM terms a JOIN terms b
          ON a.year = b.year AND a.sourcedId < b.sourcedId
        WHERE a.startDate < b.endDate AND b.startDate < a.endDate"""
    ):
        overlaps.setdefault(first, []).append(second)
        overlaps.setdefault(second, []).append(first)
    for sid, others in overlaps.items():
        yield Raw(
            "terms-overlap",
            "academicSessions",
            sid,
            f"overlaps {len(others)} other term{'s' if len(others) > 1 else ''} of its school "
            "year: correct the dates in the MIS calendar",
            tuple(sorted(others)),
        )
    for sid, start, end, year_id, year_start, year_end in ctx.rows(
        """SELECT t.sourcedId, t.startDate, t.endDate, y.sourcedId, y.startDate, y.endDate
        FROM academicSessions t JOIN academicSessions y ON y.sourcedId = t.parent_sourcedId
        WHERE t.status = 'active' AND t.type = 'term' AND y.type = 'schoolYear'
          AND (t.startDate < y.startDate OR t.endDate > y.endDate)"""
    ):
        yield Raw(
            "term-outside-school-year",
            "academicSessions",
            sid,
            f"runs {start} to {end}, outside its school year ({year_start} to {year_end}): "
            "correct the dates in the MIS calendar",
            (year_id,),
        )
    inside = ctx.rows(
        """SELECT count(*) FROM academicSessions WHERE status = 'active'
          AND startDate <= :today AND :today < endDate"""
    )
    if next(inside)[0] == 0:
        (latest,) = next(
            ctx.rows("SELECT max(endDate) FROM academicSessions WHERE status = 'active'")
        )
        when = f" (the latest ends {latest})" if latest else " (it has none)"
        yield Raw(
            "snapshot-outside-sessions",
            "orgs",
            ctx.school_org or "",
            f"the snapshot was taken on {ctx.today}, outside every session of the school"
            f"{when}: roll the MIS calendar forward",
        )
