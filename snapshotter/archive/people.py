"""People-level counts of a saved diff run: who joined, who left, who was purged, and how many
changed year group, moved class or changed identity.

`headline(conn, run_id)` reads them with SQL over the change report's views (`changes.VIEWS_SQL`),
so every report format, the Datasette pages and the digest give the same numbers as the views.

Roles: `student` counts as students; `teacher`, `aide`, `administrator` and `proctor` as staff;
`guardian`, `parent` and `relative` as guardians (contacts, never pupils or staff); any other
role, or none, as other. Every total counts them all; year groups are given for students only.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..natural import natural_key

ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "students": ("student",),
    "staff": ("teacher", "aide", "administrator", "proctor"),
    "guardians": ("guardian", "parent", "relative"),
}
OTHER = "other"
NO_YEAR_GROUP = "none"
_GROUP_OF_ROLE = {role: group for group, roles in ROLE_GROUPS.items() for role in roles}


def role_group(role: str | None) -> str:
    """`teacher` -> `staff`; see the module's docstring."""
    return _GROUP_OF_ROLE.get(role or "", OTHER)


def _people(conn: sqlite3.Connection, view: str, run_id: int) -> dict[str, Any]:
    """`{"total", "by_role", "by_year_group"}` of one view's people in one run."""
    by_role = dict.fromkeys((*ROLE_GROUPS, OTHER), 0)
    by_year: dict[str, int] = {}
    rows = conn.execute(
        f'SELECT role, year_group, count(*) FROM "{view}" WHERE run_id = ? '
        "GROUP BY role, year_group",
        (run_id,),
    )
    for role, year_group, count in rows:
        group = role_group(role)
        by_role[group] += count
        if group == "students":
            key = year_group or NO_YEAR_GROUP
            by_year[key] = by_year.get(key, 0) + count
    return {
        "total": sum(by_role.values()),
        "by_role": by_role,
        "by_year_group": {key: by_year[key] for key in sorted(by_year, key=natural_key)},
    }


def _count(conn: sqlite3.Connection, sql: str, run_id: int) -> int:
    return conn.execute(sql, (run_id,)).fetchone()[0]


def headline(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """The people-level counts of run `run_id` (the JSON report's `headline`):

    joiners      users added (whatever their new status) or reactivated
    leavers      users marked tobedeleted, removed while active, or added already tobedeleted
                 (joined and left between the snapshots)
    purged       users removed who were already tobedeleted: they left in an earlier run
    year_group_changes   people whose year group changed
    class_moves          class moves (a pupil moving in two subjects makes two)
    identity_changes     people whose name, username, email, identifier or userIds changed
    """
    return {
        "joiners": _people(conn, "joiners", run_id),
        "leavers": _people(conn, "leavers", run_id),
        "purged": _people(conn, "purged", run_id),
        "year_group_changes": _count(
            conn,
            "SELECT count(DISTINCT sourcedId) FROM year_group_changes WHERE run_id = ?",
            run_id,
        ),
        "class_moves": _count(conn, "SELECT count(*) FROM class_moves WHERE run_id = ?", run_id),
        "identity_changes": _count(
            conn, "SELECT count(DISTINCT sourcedId) FROM identity_changes WHERE run_id = ?", run_id
        ),
    }
