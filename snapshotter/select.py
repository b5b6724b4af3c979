"""Choosing the two snapshots a diff compares, and refusing pairs that would mislead.

A snapshot may be named by:

- a path to a snapshot file;
- `latest` or `previous`: the newest complete snapshot of the school, or the one before it;
- a timestamp prefix such as `2026-09` or `2026-09-01T0830`, matched against the time the
  snapshot was taken (`2026-09-01T08:30:00.000Z`) and the time in its file name
  (`2026-09-01T083000Z`); when several match, the latest of them;
- an academic session title such as `"Autumn 2026"` or `"2026/27"`: the latest snapshot taken
  inside that term, by the dates of the term in the snapshot's own `academicSessions`; for a
  school year, the latest snapshot whose data is in it, as the report says (`diff.volume`).

Only complete snapshots are candidates unless partial ones are allowed. "Latest" and "the one
before" follow the archive's order: the time each snapshot began, to the millisecond, then its
name (`archive.layout.list_archive`); files that cannot be read are left out, never in silence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

from .archive.checks import parse_started_at
from .archive.layout import (
    ArchiveError,
    SnapshotInfo,
    UnreadableSnapshot,
    blaming_snapshots,
    list_archive,
    open_snapshot,
    read_snapshot_info,
    safe_estab,
    snapshot_paths,
)

LATEST = "latest"
PREVIOUS = "previous"
_TIMESTAMP_PREFIX = re.compile(r"^\d{4}(-\d{1,2}(-\d{1,2}([T ][0-9:]*Z?)?)?)?$")


class SelectionError(ArchiveError):
    """The snapshots asked for cannot be found, or should not be compared."""


def school_of_archive(archive: Path, estab: str | None) -> str:
    """The school to look at: the one given, or the only one the archive holds."""
    if not archive.is_dir():
        raise SelectionError(
            f"there is no archive at {archive}: no such directory. Check --archive, "
            "$SNAPSHOTTER_ARCHIVE or the config file's `archive`"
        )
    if estab is not None:
        return estab
    schools = sorted({path.parent.name for path in snapshot_paths(archive)})
    if not schools:
        raise SelectionError(f"no snapshots in the archive {archive}")
    if len(schools) > 1:
        raise SelectionError(
            f"the archive {archive} holds several schools ({', '.join(schools)}): "
            "choose one with --estab"
        )
    return schools[0]


def _is_path(spec: str) -> bool:
    # Not "contains a slash": "2026/27" is a school year's title.
    return spec.endswith(".db") or Path(spec).is_file()


def taken_moment(info: SnapshotInfo) -> datetime:
    """When a snapshot was taken (its fetch began), as an aware datetime."""
    return parse_started_at(info.taken_at)


def _session_dates(info: SnapshotInfo, title: str) -> tuple[str, str | None, str | None] | None:
    """The (startDate, endDate, type) of the session titled `title` in the snapshot, if any."""
    with blaming_snapshots(info.path), closing(open_snapshot(info.path)) as conn:
        row = conn.execute(
            "SELECT startDate, endDate, type FROM academicSessions "
            "WHERE lower(trim(title)) = lower(trim(?)) AND startDate IS NOT NULL "
            "ORDER BY status = 'active' DESC LIMIT 1",
            (title,),
        ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _in_session(info: SnapshotInfo, title: str) -> bool:
    session = _session_dates(info, title)
    if session is None:
        return False
    start, end, session_type = session
    if session_type == "schoolYear":
        # A school year is the one the report prints for the snapshot (its data's, which an MIS
        # may roll over in July or September, whatever day it was taken): "2027/28" finds every
        # snapshot a report calls "school year 2027/28". Imported here: diff.volume imports
        # this module.
        from .diff.volume import current_school_year

        year = current_school_year(info)
        return year is not None and year.title.strip().lower() == title.strip().lower()
    taken = taken_moment(info).date().isoformat()
    return start <= taken and (end is None or taken < end)


def _matches_time(info: SnapshotInfo, prefix: str) -> bool:
    name_time = info.path.stem.split("_", 1)[-1]
    return info.taken_at.startswith(prefix) or name_time.startswith(prefix.replace(":", ""))


def resolve_one(spec: str, candidates: Sequence[SnapshotInfo]) -> SnapshotInfo:
    """The snapshot `spec` names among `candidates` (oldest first); a path need not be one."""
    if _is_path(spec):
        path = Path(spec)
        if not path.is_file():
            raise SelectionError(f"no snapshot file at {spec}")
        return read_snapshot_info(path)
    if not candidates:
        raise SelectionError(f"no snapshot to match {spec!r}: the school has none to compare")
    if spec == LATEST:
        return candidates[-1]
    if spec == PREVIOUS:
        if len(candidates) < 2:
            raise SelectionError("there is no previous snapshot: the school has only one")
        return candidates[-2]
    if _TIMESTAMP_PREFIX.match(spec):
        matching = [info for info in candidates if _matches_time(info, spec)]
        if not matching:
            raise SelectionError(f"no snapshot was taken at a time starting {spec!r}")
        return matching[-1]
    in_session = [info for info in candidates if _in_session(info, spec)]
    if not in_session:
        raise SelectionError(
            f"no snapshot matches {spec!r}: not a snapshot file, latest/previous, a timestamp "
            "prefix (2026-09) or the title of an academic session a snapshot was taken in"
        )
    return in_session[-1]


def select_pair(
    archive: Path,
    specs: Sequence[str] = (),
    *,
    estab: str | None = None,
    allow_partial: bool = False,
    on_unreadable: Callable[[UnreadableSnapshot], None],
) -> tuple[SnapshotInfo, SnapshotInfo]:
    """OLD and NEW from zero, one or two specs: none means the two latest snapshots; one means
    OLD, compared with the latest. Files of the school that cannot be read are left out of the
    choice, each handed to `on_unreadable` (to say so: never skip one in silence)."""
    if len(specs) > 2:
        raise SelectionError(f"a diff compares two snapshots; {len(specs)} were named")
    candidates: list[SnapshotInfo] = []
    if not all(_is_path(spec) for spec in specs) or len(specs) < 2:
        school = school_of_archive(archive, estab)
        listing = list_archive(archive, safe_estab(school))
        for unreadable in listing.unreadable:
            on_unreadable(unreadable)
        candidates = [info for info in listing.snapshots if info.complete or allow_partial]
    if not specs:
        if len(candidates) < 2:
            found = "no complete snapshot" if not candidates else "only one complete snapshot"
            raise SelectionError(
                f"a diff needs two snapshots of the school and the archive {archive} holds "
                f"{found}; take another with `snapshotter fetch`"
            )
        return candidates[-2], candidates[-1]
    old = resolve_one(specs[0], candidates)
    new = resolve_one(specs[1] if len(specs) == 2 else LATEST, candidates)
    return old, new


def check_pair(
    old: SnapshotInfo, new: SnapshotInfo, *, allow_partial: bool = False, reverse: bool = False
) -> None:
    """Refuse, with the reason, a pair whose diff would mislead."""
    if old.path.resolve() == new.path.resolve():
        raise SelectionError(f"OLD and NEW are the same snapshot ({old.path.name})")
    if old.estab != new.estab:
        raise SelectionError(
            f"the snapshots are of different schools ({old.estab} and {new.estab}); "
            "a diff compares two snapshots of one school"
        )
    if not allow_partial:
        for side, info in (("OLD", old), ("NEW", new)):
            if not info.complete:
                reason = f": {info.incomplete_reason}" if info.incomplete_reason else ""
                raise SelectionError(
                    f"{side} snapshot {info.path.name} is incomplete{reason}; its missing "
                    "records would show as leavers. Use --allow-partial to compare it anyway"
                )
    if not reverse and taken_moment(old) > taken_moment(new):
        raise SelectionError(
            f"OLD ({old.path.name}, taken {old.taken_at}) is newer than NEW ({new.path.name}, "
            f"taken {new.taken_at}); give them the other way round, or --reverse to compare "
            "backwards on purpose"
        )


def select_one(
    archive: Path,
    spec: str | None,
    *,
    estab: str | None = None,
    allow_partial: bool = False,
    on_unreadable: Callable[[UnreadableSnapshot], None],
) -> SnapshotInfo:
    """One snapshot, named as `select_pair` names each side (default: the latest complete)."""
    if spec is not None and _is_path(spec):
        return resolve_one(spec, [])
    school = school_of_archive(archive, estab)
    listing = list_archive(archive, safe_estab(school))
    for unreadable in listing.unreadable:
        on_unreadable(unreadable)
    candidates = [info for info in listing.snapshots if info.complete or allow_partial]
    if not candidates:
        raise SelectionError(
            f"the archive {archive} holds no complete snapshot of the school; take one with "
            "`snapshotter fetch` (or --allow-partial to use an incomplete one)"
        )
    return resolve_one(spec or LATEST, candidates)
