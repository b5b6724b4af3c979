"""A diff run as saved in the changes database, read back for rendering.

The renderers read runs from here, never from the snapshots, so a report looks the same whether
it was printed just after the diff or months later from the archive.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..archive.people import headline
from ..archive.pruned import pruned_at
from ..diff.kinds import ALL_KINDS
from ..model import COLLECTIONS


@dataclass(frozen=True)
class ReportField:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ReportChange:
    entity: str
    sourcedId: str  # noqa: N815 - the OneRoster name
    change: str
    label: str
    fields: list[ReportField] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    old_status: str | None = None  # the record's status in each snapshot; None: absent there
    new_status: str | None = None


@dataclass
class Report:
    """A saved run: the two snapshots, the counts, the volume flags, and its changes (streamed)."""

    conn: sqlite3.Connection
    run_id: int
    old: dict[str, Any]
    new: dict[str, Any]
    summary: dict[str, dict[str, int]]
    include_touched: bool
    options: dict[str, Any]
    run_at: str
    mass_change_pct: float | None
    mass_changes: list[dict[str, Any]]
    rollover: bool
    # Answers read once per report (some views cost seconds on a large rollover).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def headline(self) -> dict[str, Any]:
        """The people-level counts (`archive.people.headline`): joiners, leavers, purged..."""
        if "headline" not in self.cache:
            self.cache["headline"] = headline(self.conn, self.run_id)
        return self.cache["headline"]

    @property
    def quality(self) -> Any:
        """Problems new since OLD and fixed (`quality.compare.QualityChanges`), when the diff
        that made this report computed them; None otherwise."""
        return self.cache.get("quality")

    @property
    def total(self) -> int:
        return sum(n for kinds in self.summary.values() for n in kinds.values())

    def raw_changes(self) -> Iterator[tuple[sqlite3.Row, list[sqlite3.Row]]]:
        """Every changed record's row and its field rows, JSON still as text: for renderers that
        copy stored JSON through without parsing it. By entity (model order), kind, label."""
        entity_rank = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(COLLECTIONS))
        kind_rank = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(ALL_KINDS))
        rows = self.conn.execute(
            "SELECT r.id, r.entity, r.sourcedId, r.change, r.label, r.details, "
            "r.old_status, r.new_status, f.path, f.old_json, f.new_json "
            "FROM changed_records r LEFT JOIN changed_fields f ON f.record_id = r.id "
            f"WHERE r.run_id = ? ORDER BY CASE r.entity {entity_rank} ELSE 99 END, "
            f"CASE r.change {kind_rank} ELSE 99 END, r.label, r.sourcedId, r.id, f.id",
            (self.run_id,),
        )
        record: sqlite3.Row | None = None
        fields: list[sqlite3.Row] = []
        for row in rows:
            if record is None or row["id"] != record["id"]:
                if record is not None:
                    yield record, fields
                record, fields = row, []
            if row["path"] is not None:
                fields.append(row)
        if record is not None:
            yield record, fields

    def changes(self) -> Iterator[ReportChange]:
        """Every changed record, by entity (model order), kind of change, then label."""
        for record, fields in self.raw_changes():
            yield ReportChange(
                entity=record["entity"],
                sourcedId=record["sourcedId"],
                change=record["change"],
                label=record["label"] or record["sourcedId"],
                fields=[
                    ReportField(f["path"], json.loads(f["old_json"]), json.loads(f["new_json"]))
                    for f in fields
                ],
                details=json.loads(record["details"] or "{}"),
                old_status=record["old_status"],
                new_status=record["new_status"],
            )


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def _snapshot(conn: sqlite3.Connection, snapshot_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    return {
        "name": row["name"],
        "path": row["path"],
        "estab": row["estab"],
        "school_name": row["school_name"],
        "taken_at": row["taken_at"],
        "finished_at": row["finished_at"],
        "complete": bool(row["complete"]),
        "stable": bool(row["stable"]),
        "incomplete_reason": row["incomplete_reason"],
        "source": row["source"],
        "provider_version": _json_or_none(row["provider_version"]),
        "record_counts": json.loads(row["record_counts"]),
        "content_hash": row["content_hash"],
        "school_year": row["school_year"],
        "pruned_at": pruned_at(conn, row["path"]),
    }


def load_report(conn: sqlite3.Connection, run_id: int) -> Report:
    """The saved run `run_id` of a changes database (`archive.changes.open_changes_db`)."""
    conn.row_factory = sqlite3.Row
    run = conn.execute("SELECT * FROM diff_runs WHERE id = ?", (run_id,)).fetchone()
    if run is None:
        raise LookupError(f"no diff run {run_id} in the changes database")
    columns = run.keys()  # a Row's `in` tests its values, not its columns
    # The people counts as saved with the run (runs saved before that column: computed).
    stored = run["headline"] if "headline" in columns else None
    return Report(
        conn=conn,
        run_id=run_id,
        old=_snapshot(conn, run["old_snapshot"]),
        new=_snapshot(conn, run["new_snapshot"]),
        summary=json.loads(run["summary"]),
        include_touched=bool(run["include_touched"]),
        options=json.loads(run["options"]),
        run_at=run["run_at"],
        mass_change_pct=run["mass_change_pct"],
        mass_changes=json.loads(run["mass_changes"]),
        rollover=bool(run["rollover"]),
        cache={"headline": json.loads(stored)} if stored else {},
    )
