"""One diff run: compare two snapshots and keep the result in a changes database."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..archive import changes
from ..archive.layout import SnapshotInfo
from ..model import COLLECTIONS
from .core import SnapshotDiff
from .kinds import CHANGE_KINDS, TOUCHED
from .volume import (
    DEFAULT_MASS_CHANGE_PCT,
    MassChange,
    current_school_year,
    is_rollover,
    mass_changes,
)


@dataclass(frozen=True)
class RunResult:
    run_id: int
    summary: dict[str, dict[str, int]]
    mass_changes: list[MassChange]
    rollover: bool


def empty_summary(include_touched: bool) -> dict[str, dict[str, int]]:
    """Every entity and every kind, at zero: scripts can rely on every key being there."""
    kinds = (*CHANGE_KINDS, TOUCHED) if include_touched else CHANGE_KINDS
    return {collection: dict.fromkeys(kinds, 0) for collection in COLLECTIONS}


def diff_and_save(
    old: SnapshotInfo,
    new: SnapshotInfo,
    changes_db: Path,
    *,
    include_touched: bool = False,
    mass_change_pct: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Compare two snapshots and save the run into `changes_db`, all in one transaction."""
    with closing(changes.open_changes_db(changes_db)) as conn, changes.write_transaction(conn):
        return diff_into(
            conn,
            old,
            new,
            include_touched=include_touched,
            mass_change_pct=mass_change_pct,
            options=options,
        )


def diff_into(
    conn: sqlite3.Connection,
    old: SnapshotInfo,
    new: SnapshotInfo,
    *,
    include_touched: bool = False,
    mass_change_pct: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Compare two snapshots and write the run into a shaped changes database, inside the
    caller's transaction (`changes.write_transaction`)."""
    threshold = DEFAULT_MASS_CHANGE_PCT if mass_change_pct is None else mass_change_pct
    old_year, new_year = current_school_year(old), current_school_year(new)
    rollover = is_rollover(old_year, new_year)
    diff = SnapshotDiff(old, new, include_touched=include_touched)
    run_id = changes.begin_run(
        conn,
        changes.RunKey(old, new, include_touched),
        options={"include_touched": include_touched, **(options or {})},
        tool_version=__version__,
        old_school_year=old_year.title if old_year else None,
        new_school_year=new_year.title if new_year else None,
    )
    summary = empty_summary(include_touched)
    for entity, kinds in changes.add_changes(conn, run_id, diff).items():
        summary[entity].update(kinds)
    flagged = mass_changes(summary, old.record_counts, threshold)
    changes.finish_run(
        conn,
        run_id,
        summary=summary,
        old_counts=old.record_counts,
        new_counts=new.record_counts,
        mass_change_pct=threshold,
        mass_changes=[asdict(flag) for flag in flagged],
        rollover=rollover,
    )
    return RunResult(run_id, summary, flagged, rollover)
