"""Volume: how much of each entity left, and whether a new school year explains it.

"The sync wiped the roster" is the classic incident; the September rollover is big and expected.
The report flags both, and tells them apart by the snapshots' own academic sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass

from ..archive.layout import SnapshotInfo, blaming_snapshots, open_snapshot
from ..select import taken_moment

# Percent of an entity removed or marked tobedeleted that the report flags when no
# --fail-on-mass-change threshold is given.
DEFAULT_MASS_CHANGE_PCT = 10.0


@dataclass(frozen=True)
class SchoolYear:
    sourcedId: str  # noqa: N815 - the OneRoster name
    title: str
    start_date: str
    end_date: str


@dataclass(frozen=True)
class MassChange:
    """An entity of which more than the threshold left between the two snapshots."""

    entity: str
    leaving: int  # removed + tobedeleted
    old_total: int
    percent: float


def current_school_year(snapshot: SnapshotInfo) -> SchoolYear | None:
    """The school year a snapshot's data is in, by its own `academicSessions`.

    First by the data: the school year most active courses belong to, else the one most active
    classes' terms belong to (an MIS may roll over in July, or hold next year's sessions early).
    Failing that, the school year whose dates hold the time the snapshot was taken, and then the
    latest active school year.
    """
    with blaming_snapshots(snapshot.path), closing(open_snapshot(snapshot.path)) as conn:
        years = {
            row[0]: SchoolYear(row[0], row[1] or row[0], row[2] or "", row[3] or "")
            for row in conn.execute(
                "SELECT sourcedId, title, startDate, endDate FROM academicSessions "
                "WHERE type = 'schoolYear' ORDER BY status = 'active', startDate"
            )
        }
        if not years:
            return None
        for query in (_YEAR_OF_COURSES, _YEAR_OF_CLASSES):
            row = conn.execute(query).fetchone()
            if row is not None and row[0] in years:
                return years[row[0]]
    taken_on = taken_moment(snapshot).date().isoformat()
    for year in reversed(years.values()):
        if year.start_date <= taken_on and (not year.end_date or taken_on < year.end_date):
            return year
    return list(years.values())[-1]


# The school year most active courses name, and the one most active classes' terms sit in.
_YEAR_OF_COURSES = """
SELECT schoolYear_sourcedId FROM courses
WHERE status = 'active' AND schoolYear_sourcedId IS NOT NULL
GROUP BY schoolYear_sourcedId ORDER BY count(*) DESC LIMIT 1
"""
_YEAR_OF_CLASSES = """
SELECT coalesce(s.parent_sourcedId, s.sourcedId) AS year FROM classes c
JOIN json_each(c.terms_sourcedIds) t JOIN academicSessions s ON s.sourcedId = t.value
WHERE c.status = 'active' AND json_valid(c.terms_sourcedIds)
GROUP BY year ORDER BY count(DISTINCT c.sourcedId) DESC LIMIT 1
"""


def is_rollover(old_year: SchoolYear | None, new_year: SchoolYear | None) -> bool:
    """The new snapshot is in a later school year than the old one."""
    if old_year is None or new_year is None:
        return False
    return new_year.start_date > old_year.start_date


def mass_changes(
    summary: Mapping[str, Mapping[str, int]],
    old_counts: Mapping[str, int],
    threshold_pct: float,
) -> list[MassChange]:
    """Entities of which more than `threshold_pct` percent were removed or marked tobedeleted."""
    flagged = []
    for entity, counts in summary.items():
        old_total = old_counts.get(entity, 0)
        leaving = counts.get("removed", 0) + counts.get("tobedeleted", 0)
        if old_total <= 0 or leaving == 0:
            continue
        percent = 100.0 * leaving / old_total
        if percent > threshold_pct:
            flagged.append(MassChange(entity, leaving, old_total, round(percent, 1)))
    return flagged
