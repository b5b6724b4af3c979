"""What changed between two snapshots of one school (the reading side: never fetches).

diff_snapshots(old_path, new_path) -> SnapshotDiff   iterate it for RecordChange objects
diff_and_save(old, new, changes_db) -> RunResult     ... and keep the run in changes.db
"""

from __future__ import annotations

from .core import RecordChange, SnapshotDiff, classify, diff_snapshots
from .fields import FieldChange, field_changes
from .kinds import ALL_KINDS, CHANGE_KINDS, TOUCHED
from .run import RunResult, diff_and_save
from .volume import DEFAULT_MASS_CHANGE_PCT, MassChange, SchoolYear, current_school_year

__all__ = [
    "ALL_KINDS",
    "CHANGE_KINDS",
    "DEFAULT_MASS_CHANGE_PCT",
    "FieldChange",
    "MassChange",
    "RecordChange",
    "RunResult",
    "SchoolYear",
    "SnapshotDiff",
    "TOUCHED",
    "classify",
    "current_school_year",
    "diff_and_save",
    "diff_snapshots",
    "field_changes",
]
