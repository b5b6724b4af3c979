"""Writing one snapshot file: records stream in by page, the file appears only when finished.

The writer knows nothing about HTTP: `snapshotter fetch` and `snapshotter import` both feed it
pages of records, so replaying saved responses exercises the same path as a live fetch.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..canonical import canonical_record, comparable_record, content_hash, dumps
from ..model import COLLECTIONS, ENTITIES, ENTITY_BY_COLLECTION, Entity
from .layout import (
    PARTIAL_SUFFIX,
    SNAPSHOT_SUFFIX,
    clean_stale_partials,
    make_private_dir,
    school_dir,
    snapshot_stem,
    utc_iso,
)
from .schema import (
    ENDPOINTS_SQL,
    ENDPOINTS_TABLE,
    HASH_COLUMN,
    METADATA_SQL,
    METADATA_TABLE,
    RECORD_COLUMN,
    columns_for,
    create_table_sql,
    index_sql,
    quote,
)


class SnapshotDataError(Exception):
    """A page of records that cannot go into a snapshot as it is."""

    def __init__(self, collection: str, offset: int | None, problem: str) -> None:
        where = f"{collection}" + (f" at offset {offset}" if offset is not None else "")
        super().__init__(f"{where}: {problem}")
        self.collection = collection
        self.offset = offset
        self.problem = problem


@dataclass
class EndpointStats:
    """How one collection was fetched: the provenance an auditor asks for."""

    records: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    total_count_seen: int | None = None
    attempts: int = 1
    duration_s: float = 0.0
    complete: bool = False
    stable: bool = False
    note: str | None = None


@dataclass
class SnapshotMeta:
    estab: str
    source: str  # "fetch" or "import"
    started_at: datetime
    school_name: str | None = None
    rp: str | None = None
    base_url: str | None = None
    provider_version: Any = None
    auth_version: Any = None
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)


@dataclass(frozen=True)
class SaveResult:
    inserted: int
    duplicates: int  # identical records seen again (offset drift repeats them)


def parse_drop_fields(specs: Iterable[str]) -> dict[str, frozenset[str]]:
    """`users.sms` style options into {collection: fields}, rejecting unknown collections."""
    dropped: dict[str, set[str]] = {}
    for spec in specs:
        collection, _, name = spec.partition(".")
        if collection not in ENTITY_BY_COLLECTION or not name:
            raise ValueError(
                f"--drop-field {spec!r}: expected COLLECTION.FIELD with a collection among "
                + ", ".join(COLLECTIONS)
            )
        dropped.setdefault(collection, set()).add(name)
    return {collection: frozenset(names) for collection, names in dropped.items()}


def _scalar_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return dumps(value)
    return value


def _ref_id(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("sourcedId")
    return value


class _TableWriter:
    """Row building and inserts for one collection's table."""

    def __init__(self, entity: Entity, dropped: frozenset[str]) -> None:
        self.entity = entity
        self.dropped = dropped
        self.columns = [name for name, _ in columns_for(entity)]
        self.known = frozenset(entity.known_fields) | entity.never_store
        self.extra_columns: set[str] = set()
        placeholders = ", ".join("?" for _ in self.columns)
        column_list = ", ".join(quote(c) for c in self.columns)
        self.insert_sql = (
            f"INSERT OR IGNORE INTO {quote(entity.collection)} ({column_list}) "
            f"VALUES ({placeholders})"
        )

    def row(self, record: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
        entity = self.entity
        canonical = canonical_record(entity, record, self.dropped)
        record_hash = content_hash(comparable_record(entity, canonical))
        get = canonical.get
        cells: list[Any] = [canonical["sourcedId"], get("status"), get("dateLastModified")]
        cells += [_scalar_cell(get(name)) for name in entity.scalars]
        for ref in entity.references:
            value = get(ref.name)
            if value is None:
                cells.append(None)
            elif ref.bare_ids:
                cells.append(dumps(value))
            elif ref.many:
                items = value if isinstance(value, list) else [value]
                cells.append(dumps([_ref_id(item) for item in items]))
            else:
                cells.append(_ref_id(value))
        for name in (*entity.arrays, "metadata"):
            value = get(name)
            cells.append(None if value is None else dumps(value))
        cells.append(dumps(canonical))
        cells.append(record_hash)
        return tuple(cells), record_hash

    def unknown_scalars(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: value
            for name, value in record.items()
            if name not in self.known
            and name not in self.dropped
            and (value is None or isinstance(value, str | int | float | bool))
        }


class SnapshotWriter:
    """One snapshot being written: `save_records` page by page, then `finish` or `abort`.

    The file is written under a hidden temporary name in the school's directory and renamed to
    its final name only by `finish`, so nothing half-written can be taken for a snapshot; a
    process killed mid-way leaves only the temporary file, which the next writer removes.
    """

    def __init__(
        self,
        archive: Path,
        estab: str,
        *,
        started_at: datetime | None = None,
        drop_fields: Sequence[str] = (),
    ) -> None:
        self.started_at = started_at or datetime.now(UTC)
        self.drop_fields = sorted(set(drop_fields))
        dropped = parse_drop_fields(self.drop_fields)
        make_private_dir(archive)
        self.directory = make_private_dir(school_dir(archive, estab))
        clean_stale_partials(self.directory)
        self.stem = snapshot_stem(estab, self.started_at)
        unique = secrets.token_hex(4)
        self.partial_path = self.directory / f".{self.stem}.{unique}.{os.getpid()}{PARTIAL_SUFFIX}"
        # Created 0600 before SQLite opens it; SQLite gives its journals the same mode.
        fd = os.open(self.partial_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.partial_path, check_same_thread=False)
        # The temporary file is thrown away on any failure, so durability can wait for finish.
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._tables = {
            e.collection: _TableWriter(e, dropped.get(e.collection, frozenset())) for e in ENTITIES
        }
        with self._conn:
            for e in ENTITIES:
                self._conn.execute(create_table_sql(e))
        self._closed = False

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.abort()

    def save_records(
        self, collection: str, records: Iterable[Any], *, offset: int | None = None
    ) -> SaveResult:
        """Add a page of records; identical repeats are dropped, conflicting ones refused."""
        table = self._tables.get(collection)
        if table is None:
            raise SnapshotDataError(collection, offset, "not a OneRoster collection")
        rows: list[tuple[Any, ...]] = []
        hashes: dict[str, str] = {}
        extras: list[tuple[str, dict[str, Any]]] = []
        within_page_repeats = 0
        for position, record in enumerate(records):
            where = None if offset is None else offset + position
            if not isinstance(record, dict):
                raise SnapshotDataError(collection, where, "a record is not a JSON object")
            sourced_id = record.get("sourcedId")
            if not isinstance(sourced_id, str) or not sourced_id:
                raise SnapshotDataError(collection, where, "a record has no sourcedId")
            row, record_hash = table.row(record)
            previous = hashes.get(sourced_id)
            if previous is not None:
                if previous != record_hash:
                    raise SnapshotDataError(
                        collection, where, f"two different records share sourcedId {sourced_id!r}"
                    )
                within_page_repeats += 1
                continue
            hashes[sourced_id] = record_hash
            rows.append(row)
            unknown = table.unknown_scalars(record)
            if unknown:
                extras.append((sourced_id, unknown))
        with self._lock, self._conn:
            before = self._conn.total_changes
            self._conn.executemany(table.insert_sql, rows)
            inserted = self._conn.total_changes - before
            if inserted < len(rows):
                self._check_repeats(collection, offset, hashes)
            for sourced_id, unknown in extras:
                self._save_unknown_scalars(table, sourced_id, unknown)
        return SaveResult(inserted=inserted, duplicates=len(rows) - inserted + within_page_repeats)

    def _check_repeats(self, collection: str, offset: int | None, hashes: dict[str, str]) -> None:
        ids = list(hashes)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            stored = self._conn.execute(
                f"SELECT sourcedId, {HASH_COLUMN} FROM {quote(collection)} "
                f"WHERE sourcedId IN ({marks})",
                chunk,
            )
            for sourced_id, stored_hash in stored:
                if stored_hash != hashes[sourced_id]:
                    raise SnapshotDataError(
                        collection,
                        offset,
                        f"two different records share sourcedId {sourced_id!r}",
                    )

    def _save_unknown_scalars(
        self, table: _TableWriter, sourced_id: str, unknown: dict[str, Any]
    ) -> None:
        # Fields we do not know yet get columns of their own, as the known ones do.
        for name in unknown:
            if name not in table.extra_columns:
                self._conn.execute(
                    f"ALTER TABLE {quote(table.entity.collection)} ADD {quote(name)}"
                )
                table.extra_columns.add(name)
        assignments = ", ".join(f"{quote(name)} = ?" for name in unknown)
        self._conn.execute(
            f"UPDATE {quote(table.entity.collection)} SET {assignments} WHERE sourcedId = ?",
            [_scalar_cell(v) for v in unknown.values()] + [sourced_id],
        )

    def reset(self, collection: str) -> None:
        """Forget what was saved for a collection, before fetching it again."""
        with self._lock, self._conn:
            self._conn.execute(f"DELETE FROM {quote(collection)}")

    def count(self, collection: str) -> int:
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM {quote(collection)}").fetchone()[0]

    def ids(self, collection: str) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute(f"SELECT sourcedId FROM {quote(collection)}")}

    def _content_hash(self) -> str:
        digest = hashlib.sha256()
        for collection in COLLECTIONS:
            rows = self._conn.execute(
                f"SELECT sourcedId, {HASH_COLUMN}, dateLastModified FROM {quote(collection)} "
                "ORDER BY sourcedId"
            )
            for sourced_id, record_hash, modified in rows:
                digest.update(f"{collection}\t{sourced_id}\t{record_hash}\t{modified}\n".encode())
        return digest.hexdigest()

    def finish(
        self,
        meta: SnapshotMeta,
        *,
        complete: bool,
        stable: bool,
        incomplete_reason: str | None = None,
    ) -> Path:
        """Index, hash, record provenance, make durable, then give the file its real name."""
        with self._lock:
            counts = {
                c: self._conn.execute(f"SELECT count(*) FROM {quote(c)}").fetchone()[0]
                for c in COLLECTIONS
            }
            with self._conn:
                for e in ENTITIES:
                    for statement in index_sql(e):
                        self._conn.execute(statement)
                self._conn.execute(METADATA_SQL)
                self._conn.execute(ENDPOINTS_SQL)
                content = self._content_hash()
                self._write_metadata(meta, counts, content, complete, stable, incomplete_reason)
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.close()
            self._closed = True
        with open(self.partial_path, "rb+") as handle:
            os.fsync(handle.fileno())
        final_path = self._free_final_path()
        os.replace(self.partial_path, final_path)
        directory_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
        return final_path

    def _write_metadata(
        self,
        meta: SnapshotMeta,
        counts: dict[str, int],
        content: str,
        complete: bool,
        stable: bool,
        incomplete_reason: str | None,
    ) -> None:
        endpoints = {c: asdict(meta.endpoints.get(c, EndpointStats())) for c in COLLECTIONS}
        for collection, stats in endpoints.items():
            stats["records"] = counts[collection]
        self._conn.execute(
            f"INSERT INTO {METADATA_TABLE} VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                meta.estab,
                meta.school_name,
                meta.rp,
                meta.base_url,
                meta.source,
                utc_iso(meta.started_at),
                utc_iso(datetime.now(UTC)),
                __version__,
                None if meta.provider_version is None else dumps(meta.provider_version),
                None if meta.auth_version is None else dumps(meta.auth_version),
                int(complete),
                int(stable),
                incomplete_reason,
                json.dumps(self.drop_fields),
                json.dumps(counts),
                dumps(endpoints),
                content,
            ),
        )
        self._conn.executemany(
            f"INSERT INTO {ENDPOINTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    collection,
                    stats["records"],
                    stats["pages"],
                    stats["requests"],
                    stats["retries"],
                    stats["total_count_seen"],
                    stats["attempts"],
                    round(stats["duration_s"], 3),
                    int(stats["complete"]),
                    int(stats["stable"]),
                    stats["note"],
                )
                for collection, stats in endpoints.items()
            ],
        )

    def _free_final_path(self) -> Path:
        candidate = self.directory / f"{self.stem}{SNAPSHOT_SUFFIX}"
        serial = 2
        while candidate.exists():
            candidate = self.directory / f"{self.stem}-{serial}{SNAPSHOT_SUFFIX}"
            serial += 1
        return candidate

    def abort(self) -> None:
        """Close and delete the temporary file: the archive is as it was."""
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True
        self.partial_path.unlink(missing_ok=True)


__all__ = [
    "EndpointStats",
    "RECORD_COLUMN",
    "SaveResult",
    "SnapshotDataError",
    "SnapshotMeta",
    "SnapshotWriter",
    "parse_drop_fields",
]
