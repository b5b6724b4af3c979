"""The comparison of two snapshots of one school, record by record.

`scan` finds the records that differ in SQL, so unchanged records never reach Python; here each
of those is classified (added, removed, tobedeleted, reactivated, changed, touched) and compared
field by field, and `context` gives it a label and the details the change report's views need.
A batch at a time: memory stays flat however large the snapshots are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive.layout import SnapshotInfo, blaming_snapshots, read_snapshot_info
from ..canonical import comparable_record
from ..credentials import credential_like, strip_credentials
from ..model import Entity
from .context import Pending, RecordContext
from .fields import FieldChange, field_changes
from .kinds import TOUCHED
from .scan import DifferingRow, connect_pair, differing_rows


@dataclass(frozen=True)
class RecordChange:
    """One record that differs between the two snapshots."""

    entity: str  # the collection, as in the snapshot tables: "users", "enrollments"
    sourcedId: str  # noqa: N815 - the OneRoster name, as everywhere in the archive
    change: str  # one of ALL_KINDS
    label: str
    fields: tuple[FieldChange, ...] = ()
    # Facts the change report's views need: the user, class and course involved, the role...
    details: dict[str, Any] = field(default_factory=dict)
    # The record's status in each snapshot; None where it is absent. What a removal or an
    # addition means depends on them: a record removed while already tobedeleted left earlier.
    old_status: str | None = None
    new_status: str | None = None

    @property
    def changed_field_names(self) -> list[str]:
        return list(dict.fromkeys(change.field for change in self.fields))


def classify(old_status: Any, new_status: Any, fields_differ: bool) -> str:
    """The kind of change of a record present in both snapshots.

    Statuses are canonical already: `inactive` was read as `tobedeleted` when stored.
    """
    if new_status == "tobedeleted" and old_status != "tobedeleted":
        return "tobedeleted"
    if old_status == "tobedeleted" and new_status == "active":
        return "reactivated"
    return "changed" if fields_differ else TOUCHED


class SnapshotDiff:
    """What changed from `old` to `new`: iterate it for the changes, one pass per iteration.

    Nothing is computed until iterated, and iterating holds one batch of records at a time.
    The order of the changes means nothing (reports sort them).
    """

    def __init__(self, old: SnapshotInfo, new: SnapshotInfo, *, include_touched: bool = False):
        self.old = old
        self.new = new
        self.include_touched = include_touched

    def __iter__(self) -> Iterator[RecordChange]:
        # A damaged page surfaces only here, reading the tables: name the file it is in.
        with (
            blaming_snapshots(self.old.path, self.new.path),
            closing(connect_pair(self.old.path, self.new.path)) as conn,
        ):
            taken_on = (self.old.taken_at[:10], self.new.taken_at[:10])
            context = RecordContext(conn, *taken_on)
            for entity, rows in differing_rows(
                self.old.path, self.new.path, include_touched=self.include_touched
            ):
                yield from self._describe(context, entity, rows)

    def _describe(
        self,
        context: RecordContext,
        entity: Entity,
        rows: list[DifferingRow],
    ) -> Iterator[RecordChange]:
        batch: list[Pending] = []
        fields_of: list[tuple[FieldChange, ...]] = []
        for sourced_id, old, new in rows:
            changes: tuple[FieldChange, ...] = ()
            if old is None:
                kind = "added"
            elif new is None:
                kind = "removed"
            else:
                changes = tuple(
                    _without_credentials(
                        field_changes(
                            entity, comparable_record(entity, old), comparable_record(entity, new)
                        )
                    )
                )
                kind = classify(old.get("status"), new.get("status"), bool(changes))
                if kind == TOUCHED:
                    modified = (old.get("dateLastModified"), new.get("dateLastModified"))
                    if not self.include_touched or modified[0] == modified[1]:
                        # Equal content under different hashes (a hash from another version).
                        continue
                    changes = (FieldChange("dateLastModified", "dateLastModified", *modified),)
            batch.append(Pending(entity.collection, sourced_id, kind, old, new))
            fields_of.append(changes)
        for pending, changes, (label, details) in zip(
            batch, fields_of, context.describe(batch), strict=True
        ):
            yield RecordChange(
                entity=pending.collection,
                sourcedId=pending.sourced_id,
                change=pending.change,
                label=label,
                fields=changes,
                details=details,
                old_status=_status(pending.old),
                new_status=_status(pending.new),
            )


_SELECTORS = re.compile(r"\[[^\]]*\]")  # `[type=UPN]`: values, not key names


def _without_credentials(changes: Iterable[FieldChange]) -> Iterator[FieldChange]:
    """Changes with credential-like keys left out. New snapshots never hold them, but one
    written before they were dropped on the way in may: its values must not reach a report.
    Looked at per changed field only, so the diff's speed does not change."""
    for change in changes:
        if credential_like(_SELECTORS.sub("", change.path)):
            continue
        old, _ = strip_credentials(change.old)
        new, _ = strip_credentials(change.new)
        if old is change.old and new is change.new:
            yield change
        elif old != new:
            yield FieldChange(change.field, change.path, old, new)


def _status(record: dict[str, Any] | None) -> str | None:
    if record is None:
        return None
    status = record.get("status")
    return status if isinstance(status, str) else None


def diff_snapshots(
    old_path: Path, new_path: Path, *, include_touched: bool = False
) -> SnapshotDiff:
    """The changes from one snapshot file to another (see `SnapshotDiff`)."""
    return SnapshotDiff(
        read_snapshot_info(Path(old_path)),
        read_snapshot_info(Path(new_path)),
        include_touched=include_touched,
    )
