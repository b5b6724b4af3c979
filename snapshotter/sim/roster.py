"""The synthetic school's records, and the log of what each term did to them.

Every change to a record goes through `Roster`, which stamps `dateLastModified` and writes the
action log; the log, not a comparison of two terms, is the ground truth `changes()` returns.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..model import COLLECTIONS, ENTITY_BY_COLLECTION
from .curriculum import change_window_s, format_date, format_timestamp

Record = dict[str, Any]
RecordKey = tuple[str, str]  # (collection, sourcedId)

# Where hrefs point. Clients must key on sourcedId + type and never follow an href, so these
# name the provider's real base rather than the simulator's.
HREF_BASE = "https://xporter.groupcall.com/api/ims/oneroster/v1p1/school"
CHANGE_KINDS = ("added", "removed", "tobedeleted", "reactivated", "changed", "touched")
ID_ALPHABET = string.ascii_uppercase + string.digits  # Xporter-like ids: "x" + 8 of these
_DELETE = object()  # `Roster.edit(..., field=DELETE_FIELD)` drops the key from the record
DELETE_FIELD: Any = _DELETE


@dataclass(frozen=True, order=True)
class Change:
    """One record that differs between term-1 and term, and how (the diff's semantics)."""

    entity: str  # the collection name, e.g. "users"
    sourcedId: str  # named as the OneRoster field
    kind: str  # one of CHANGE_KINDS


class ActionLog:
    """What happened to each record during one term, folded into one `Change` per record."""

    def __init__(self) -> None:
        # Status at the start of the term (None: did not exist) and now (None: removed).
        self._status_before: dict[RecordKey, str | None] = {}
        self._status_after: dict[RecordKey, str | None] = {}
        self._edited: dict[RecordKey, None] = {}  # an ordered set
        self._touched: dict[RecordKey, None] = {}
        # For the people-level truth: the fields each record had edited, a user's role and year
        # group as last seen, and each class move made (pupil, from class, to class, enrollment).
        self.fields_edited: dict[RecordKey, set[str]] = {}
        self.last_seen_users: dict[str, tuple[str | None, str | None]] = {}
        self.moves: list[tuple[str, str, str, str]] = []

    def affected(self, key: RecordKey) -> bool:
        return key in self._status_before

    def created(self, key: RecordKey, status: str) -> None:
        self._status_before.setdefault(key, None)
        self._status_after[key] = status

    def removed(self, key: RecordKey, status: str, record: Record | None = None) -> None:
        self._status_before.setdefault(key, status)
        self._status_after[key] = None
        if key[0] == "users" and record is not None:
            grades = record.get("grades")
            self.last_seen_users[key[1]] = (record.get("role"), ", ".join(grades or []) or None)

    def status_changed(self, key: RecordKey, old: str, new: str) -> None:
        self._status_before.setdefault(key, old)
        self._status_after[key] = new

    def edited(self, key: RecordKey, status: str, fields: tuple[str, ...] = ()) -> None:
        self._status_before.setdefault(key, status)
        self._status_after.setdefault(key, status)
        self._edited[key] = None
        self.fields_edited.setdefault(key, set()).update(fields)

    def status_of(self, key: RecordKey) -> tuple[str | None, str | None]:
        """(status at the start of the term, status now); None: absent. Only affected keys."""
        return self._status_before[key], self._status_after[key]

    def affected_keys(self) -> list[RecordKey]:
        return list(self._status_before)

    def touched(self, key: RecordKey, status: str) -> None:
        self._status_before.setdefault(key, status)
        self._status_after.setdefault(key, status)
        self._touched[key] = None

    def changes(self) -> list[Change]:
        found: list[Change] = []
        for key, before in self._status_before.items():
            after = self._status_after[key]
            if before is None and after is None:
                continue  # created and removed within the term: invisible to a diff
            if before is None:
                kind = "added"
            elif after is None:
                kind = "removed"
            elif before != after:
                kind = "tobedeleted" if after == "tobedeleted" else "reactivated"
            elif key in self._edited:
                kind = "changed"
            elif key in self._touched:
                kind = "touched"
            else:
                continue
            found.append(Change(key[0], key[1], kind))
        order = {collection: index for index, collection in enumerate(COLLECTIONS)}
        return sorted(found, key=lambda change: (order[change.entity], change.sourcedId))


class Roster:
    """All records of the school, by collection then sourcedId, in insertion (default) order."""

    def __init__(self, id_seed: str) -> None:
        self.collections: dict[str, dict[str, Record]] = {name: {} for name in COLLECTIONS}
        self.log: ActionLog | None = None  # None while building term 0: nothing to compare with
        self.term = 0
        # Which term each tobedeleted record turned so (ordered: iterated when pruning).
        self.tobedeleted_since: dict[RecordKey, int] = {}
        self._used_ids: set[str] = set()  # membership only, never iterated
        self._id_rng = random.Random(id_seed)
        self._stamp_rng = random.Random(f"{id_seed}:stamps:0")
        self._window_ms = self._window(0)
        self.added_keys: list[RecordKey] | None = None  # collects what `add` adds, when a list

    # --- ids, timestamps, references ---

    def new_id(self) -> str:
        while True:
            sourced_id = "x" + "".join(self._id_rng.choices(ID_ALPHABET, k=8))
            if sourced_id not in self._used_ids:
                self._used_ids.add(sourced_id)
                return sourced_id

    @contextmanager
    def ids_from(self, rng: random.Random) -> Iterator[None]:
        """New ids drawn from `rng` meanwhile: events added to the simulator take their ids from
        a stream of their own, so every record the school had before keeps its id."""
        saved, self._id_rng = self._id_rng, rng
        try:
            yield
        finally:
            self._id_rng = saved

    def reserve_id(self, sourced_id: str) -> str:
        self._used_ids.add(sourced_id)
        return sourced_id

    def begin_term(self, term: int, id_seed: str) -> ActionLog:
        self.term = term
        self.log = ActionLog()
        self._stamp_rng = random.Random(f"{id_seed}:stamps:{term}")
        self._window_ms = self._window(term)
        return self.log

    @staticmethod
    def _window(term: int) -> tuple[int, int]:
        start_s, end_s = change_window_s(term)
        return start_s * 1000, end_s * 1000

    def stamp(self) -> str:
        """A dateLastModified inside the current term's change window."""
        return format_timestamp(self._stamp_rng.randrange(*self._window_ms))

    def date_in_term(self) -> str:
        """A yyyy-MM-dd date inside the current term's change window (joins, moves, leaves)."""
        return format_date(self._stamp_rng.randrange(*self._window_ms) // 1000)

    @staticmethod
    def ref(collection: str, sourced_id: str) -> Record:
        return {
            "href": f"{HREF_BASE}/{collection}/{sourced_id}",
            "sourcedId": sourced_id,
            "type": ENTITY_BY_COLLECTION[collection].singular,
        }

    # --- reading ---

    def get(self, collection: str, sourced_id: str) -> Record:
        return self.collections[collection][sourced_id]

    def has(self, collection: str, sourced_id: str) -> bool:
        return sourced_id in self.collections[collection]

    # --- changing, always through these so the log stays true ---

    def add(self, collection: str, record: Record) -> Record:
        sourced_id = record["sourcedId"]
        self.collections[collection][sourced_id] = record
        if self.added_keys is not None:
            self.added_keys.append((collection, sourced_id))
        if record["status"] == "tobedeleted":
            self.tobedeleted_since[(collection, sourced_id)] = self.term
        if self.log is not None:
            self.log.created((collection, sourced_id), record["status"])
        return record

    def remove(self, collection: str, sourced_id: str) -> None:
        record = self.collections[collection].pop(sourced_id)
        self.tobedeleted_since.pop((collection, sourced_id), None)
        if self.log is not None:
            self.log.removed((collection, sourced_id), record["status"], record)

    def set_status(self, collection: str, sourced_id: str, status: str) -> bool:
        record = self.collections[collection][sourced_id]
        old = record["status"]
        if old == status:
            return False
        record["status"] = status
        record["dateLastModified"] = self.stamp()
        key = (collection, sourced_id)
        if status == "tobedeleted":
            self.tobedeleted_since[key] = self.term
        else:
            self.tobedeleted_since.pop(key, None)
        if self.log is not None:
            self.log.status_changed(key, old, status)
        return True

    def edit(self, collection: str, sourced_id: str, **fields: Any) -> bool:
        """Set fields (DELETE_FIELD drops one); logged only when a value really changes."""
        record = self.collections[collection][sourced_id]
        changed: list[str] = []
        for name, value in fields.items():
            if value is _DELETE:
                if name in record:
                    del record[name]
                    changed.append(name)
            elif record.get(name, _DELETE) != value:
                record[name] = value
                changed.append(name)
        if changed:
            record["dateLastModified"] = self.stamp()
            if self.log is not None:
                self.log.edited((collection, sourced_id), record["status"], tuple(changed))
        return bool(changed)

    def log_move(self, pupil_id: str, old_class: str, new_class: str, enrollment_id: str) -> None:
        """A class move, for the people-level truth (its records change through the others)."""
        if self.log is not None:
            self.log.moves.append((pupil_id, old_class, new_class, enrollment_id))

    def touch(self, collection: str, sourced_id: str) -> None:
        """Move dateLastModified and nothing else, as a no-op save in the MIS does."""
        record = self.collections[collection][sourced_id]
        record["dateLastModified"] = self.stamp()
        if self.log is not None:
            self.log.touched((collection, sourced_id), record["status"])

    def affected(self, collection: str, sourced_id: str) -> bool:
        return self.log is not None and self.log.affected((collection, sourced_id))

    def as_collections(self) -> dict[str, list[Record]]:
        return {name: list(records.values()) for name, records in self.collections.items()}
