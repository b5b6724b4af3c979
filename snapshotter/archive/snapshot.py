"""Writing one snapshot file: records stream in by page, the file appears only when finished.

The writer knows nothing about HTTP: `snapshotter fetch` and `snapshotter import` both feed it
pages of records, so replaying saved responses exercises the same path as a live fetch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..canonical import canonicaliser, dumps
from ..credentials import credential_like
from ..model import COLLECTIONS, ENTITIES, ENTITY_BY_COLLECTION, Entity
from .layout import (
    PARTIAL_SUFFIX,
    SNAPSHOT_SUFFIX,
    ArchiveError,
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
    METADATA_COLUMNS,
    METADATA_SQL,
    METADATA_TABLE,
    RECORD_COLUMN,
    columns_for,
    create_table_sql,
    index_sql,
    quote,
)
from .write_errors import explained_write_failures


class PublishRefused(Exception):
    """A finished snapshot that was not to be published after all (Ctrl-C came first)."""


class SnapshotDataError(Exception):
    """A page of records that cannot go into a snapshot as it is."""

    def __init__(self, collection: str, offset: int | None, problem: str) -> None:
        where = f"{collection}" + (f" at offset {offset}" if offset is not None else "")
        super().__init__(f"{where}: {problem}")
        self.collection = collection
        self.offset = offset
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries (parallel import)
        return (type(self), (self.collection, self.offset, self.problem))


def _conflict(collection: str, offset: int | None, sourced_id: str, within_page: bool) -> Any:
    return ConflictingRecordsError(collection, offset, sourced_id, within_page=within_page)


class ConflictingRecordsError(SnapshotDataError):
    """Two different records with one sourcedId. Within one page the server is broken; across
    pages the record may simply have changed between two reads (`within_page` tells which)."""

    def __init__(
        self, collection: str, offset: int | None, sourced_id: str, *, within_page: bool
    ) -> None:
        where = "in one page" if within_page else "in two pages"
        super().__init__(
            collection, offset, f"two different records share sourcedId {sourced_id!r} ({where})"
        )
        self.sourced_id = sourced_id
        self.within_page = within_page

    def __reduce__(self) -> tuple[Any, ...]:
        return (_conflict, (self.collection, self.offset, self.sourced_id, self.within_page))


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
    warnings: list[str] = field(default_factory=list)  # the provider's, beside a 200 answer
    # How the records kept were read: "server" (the server's own order, no `sort` asked),
    # "sorted" (sort=sourcedId, honoured) or "whole" (one request, paging never settled); and
    # why. None when not fetched (an import).
    order: str | None = None
    order_reason: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SnapshotMeta:
    estab: str
    source: str  # "fetch" or "import"; "demo (simulated clock)" for the demo's snapshots
    started_at: datetime
    school_name: str | None = None
    rp: str | None = None
    base_url: str | None = None
    provider_version: Any = None
    auth_version: Any = None
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    # What `finished_at` is read from: the demo's runs on the simulated school's calendar.
    clock: Callable[[], datetime] = field(default=utc_now, repr=False, compare=False)


@dataclass(frozen=True)
class SaveResult:
    inserted: int
    duplicates: int  # identical records seen again (offset drift repeats them)


def parse_drop_fields(specs: Iterable[str]) -> dict[str, frozenset[str]]:
    """`users.sms` or `users.metadata.sen` style options into {collection: fields}.

    A dotted path reaches into objects, and into every object of a list on the way
    (`users.userIds.identifier`). Refused: an unknown collection, an empty step (`users.`,
    `users.metadata..sen`), and `sourcedId` itself (the key every snapshot table is built on).
    """
    dropped: dict[str, set[str]] = {}
    collections = ", ".join(COLLECTIONS)
    for spec in specs:
        collection, _, name = spec.partition(".")
        if collection not in ENTITY_BY_COLLECTION or not name:
            raise ValueError(
                f"--drop-field {spec!r}: expected COLLECTION.FIELD or COLLECTION.FIELD.SUBFIELD "
                f"with a collection among {collections}"
            )
        steps = name.split(".")
        if any(not step.strip() for step in steps):
            raise ValueError(
                f"--drop-field {spec!r}: a step of the path is empty; write it as "
                f"{collection}.FIELD or {collection}.FIELD.SUBFIELD"
            )
        if steps == ["sourcedId"]:
            raise ValueError(
                f"--drop-field {spec!r}: sourcedId identifies every record and cannot be dropped"
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
        self.canonicalise = canonicaliser(entity, dropped)
        self.columns = [name for name, _ in columns_for(entity)]
        self.known = frozenset(entity.known_fields) | entity.never_store | dropped
        self.extra_columns: set[str] = set()
        # SQLite column names ignore case: an unknown field that collides with a column
        # (`Status`, `_record`) stays in `_record` only.
        self.taken_names = {c.lower() for c in self.columns}
        placeholders = ", ".join("?" for _ in self.columns)
        column_list = ", ".join(quote(c) for c in self.columns)
        self.insert_sql = (
            f"INSERT OR IGNORE INTO {quote(entity.collection)} ({column_list}) "
            f"VALUES ({placeholders})"
        )
        self.scalars = entity.scalars
        self.references = tuple((ref.name, ref.bare_ids, ref.many) for ref in entity.references)
        self.json_fields = (*entity.arrays, "metadata")

    def row(self, record: Mapping[str, Any]) -> tuple[tuple[Any, ...], str, tuple[str, ...]]:
        """The row's cells, its content hash and the paths left out of the record."""
        canonical, canonical_json, record_hash, removed = self.canonicalise(record)
        get = canonical.get
        cells: list[Any] = [canonical["sourcedId"], get("status"), get("dateLastModified")]
        for name in self.scalars:
            value = get(name)
            cells.append(value if value is None or type(value) is str else _scalar_cell(value))
        for name, bare_ids, many in self.references:
            value = get(name)
            if value is None:
                cells.append(None)
            elif bare_ids:
                cells.append(dumps(value))
            elif many:
                items = value if isinstance(value, list) else [value]
                cells.append(dumps([_ref_id(item) for item in items]))
            else:
                cells.append(_ref_id(value))
        for name in self.json_fields:
            value = get(name)
            cells.append(None if value is None else dumps(value))
        cells.append(canonical_json)
        cells.append(record_hash)
        return tuple(cells), record_hash, removed

    def unknown_scalars(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        unknown_names = record.keys() - self.known
        if not unknown_names:
            return None
        found = {
            name: record[name]
            for name in unknown_names
            if (record[name] is None or isinstance(record[name], str | int | float | bool))
            and not credential_like(name)
        }
        return found or None


@dataclass(frozen=True)
class PreparedPage:
    """A page of records turned into rows, checked within itself, ready to store."""

    collection: str
    offset: int | None
    rows: list[tuple[Any, ...]]  # sourcedId first, content hash last
    extras: list[tuple[str, dict[str, Any]]]  # (sourcedId, unknown scalar fields)
    within_page_repeats: int
    # (sourcedId, paths left out of that record), for the records that had any
    removed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


_TABLE_WRITERS: dict[tuple[str, frozenset[str]], _TableWriter] = {}


def prepare_page(
    collection: str, dropped: frozenset[str], records: Iterable[Any], offset: int | None
) -> PreparedPage:
    """Canonicalise, hash and lay out a page of records (pure: runs in any process).

    Refuses a record that is not an object or has no sourcedId, and two different records
    with one sourcedId in the page; identical repeats within the page are counted and dropped.
    """
    key = (collection, dropped)
    table = _TABLE_WRITERS.get(key)
    if table is None:
        table = _TABLE_WRITERS[key] = _TableWriter(ENTITY_BY_COLLECTION[collection], dropped)
    row_of = table.row
    unknown_of = table.unknown_scalars
    rows: list[tuple[Any, ...]] = []
    hashes: dict[str, str] = {}
    extras: list[tuple[str, dict[str, Any]]] = []
    removed: list[tuple[str, tuple[str, ...]]] = []
    within_page_repeats = 0
    for position, record in enumerate(records):
        sourced_id = record.get("sourcedId") if type(record) is dict else None
        if type(sourced_id) is not str or not sourced_id:
            where = None if offset is None else offset + position
            if not isinstance(record, dict):
                raise SnapshotDataError(collection, where, "a record is not a JSON object")
            if sourced_id is not None and sourced_id != "":
                problem = f"a record's sourcedId is {sourced_id!r}, not a string"
                raise SnapshotDataError(collection, where, problem)
            raise SnapshotDataError(collection, where, "a record has no sourcedId")
        row, record_hash, removed_here = row_of(record)
        previous = hashes.get(sourced_id)
        if previous is not None:
            if previous != record_hash:
                where = None if offset is None else offset + position
                raise ConflictingRecordsError(collection, where, sourced_id, within_page=True)
            within_page_repeats += 1
            continue
        hashes[sourced_id] = record_hash
        rows.append(row)
        if removed_here:
            removed.append((sourced_id, removed_here))
        unknown = unknown_of(record)
        if unknown:
            extras.append((sourced_id, unknown))
    return PreparedPage(collection, offset, rows, extras, within_page_repeats, removed)


def store_chunk(prepared: PreparedPage) -> bytes:
    """Prepared rows as a serialised in-memory SQLite database (built in a worker process;
    `SnapshotWriter.save_chunk` copies it in). Bytes cross a process boundary at the cost of a
    copy, where pickled rows cost more than building them."""
    entity = ENTITY_BY_COLLECTION[prepared.collection]
    insert_sql = _TableWriter(entity, frozenset()).insert_sql  # columns do not depend on drops
    conn = sqlite3.connect(":memory:")
    try:
        with conn:
            conn.execute(create_table_sql(entity))
            conn.executemany(insert_sql, prepared.rows)
        return conn.serialize()
    finally:
        conn.close()


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _explained(method: _Method) -> _Method:
    """A writer's method whose full disk or unwritable archive ends in one clear line (reads
    too: after a failed write they fail the same way)."""

    @functools.wraps(method)
    def explained(self: SnapshotWriter, *args: Any, **kwargs: Any) -> Any:
        with self._writing():
            return method(self, *args, **kwargs)

    return explained  # type: ignore[return-value]


def school_name_from_orgs(conn: sqlite3.Connection, estab: str) -> str | None:
    """The school's own name, from the snapshot's `orgs`: the org whose `identifier` is the
    estab, else the one org of type school (a school-scoped API serves its school and the
    trust above it). None when neither settles it: a report then names the estab."""
    rows = conn.execute(
        "SELECT name, identifier, type FROM orgs WHERE name IS NOT NULL AND trim(name) != '' "
        "ORDER BY status = 'active' DESC, sourcedId"
    ).fetchall()
    by_identifier = [name for name, identifier, _ in rows if (identifier or "").strip() == estab]
    if by_identifier:
        return by_identifier[0].strip()
    schools = [name for name, _, org_type in rows if org_type == "school"]
    return schools[0].strip() if len(schools) == 1 else None


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
        redo: str = "fetch",
    ) -> None:
        self.started_at = started_at or datetime.now(UTC)
        self.drop_fields = sorted(set(drop_fields))
        dropped = parse_drop_fields(self.drop_fields)
        self.directory = school_dir(archive, estab)
        self.stem = snapshot_stem(estab, self.started_at)
        self.redo = redo  # the command to run again after a full disk: "fetch", "import"
        unique = secrets.token_hex(4)
        self.partial_path = self.directory / f".{self.stem}.{unique}.{os.getpid()}{PARTIAL_SUFFIX}"
        self._lock = threading.Lock()
        self._closed = True
        self._failure: ArchiveError | None = None
        # Directories this writer made are removed again by `abort` when left empty, so a
        # failed first fetch leaves no trace.
        self._created_dirs: list[Path] = []
        try:
            with self._writing():
                self._created_dirs = make_private_dir(self.directory)
                clean_stale_partials(self.directory)
                # Created 0600 before SQLite opens it; SQLite gives its journals the same mode.
                fd = os.open(self.partial_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                os.close(fd)
                self._conn = sqlite3.connect(self.partial_path, check_same_thread=False)
                self._closed = False
                # The temporary file is thrown away on any failure, so durability can wait for
                # finish.
                self._conn.execute("PRAGMA journal_mode=OFF")
                self._conn.execute("PRAGMA synchronous=OFF")
                self._tables = {
                    e.collection: _TableWriter(e, dropped.get(e.collection, frozenset()))
                    for e in ENTITIES
                }
                with self._conn:
                    for e in ENTITIES:
                        self._conn.execute(create_table_sql(e))
                    # Which records had which paths left out (never the values): counted
                    # into the metadata by `finish`. A temporary table, so memory stays flat.
                    self._conn.execute(
                        "CREATE TEMP TABLE removed_paths (collection TEXT, path TEXT, "
                        "sourcedId TEXT, PRIMARY KEY (collection, path, sourcedId)) WITHOUT ROWID"
                    )
        except BaseException:
            self.abort()
            raise

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A full disk or an unwritable archive, met inside, as one clear `ArchiveError`.

        After one, the file is past saving (it has no journal to roll back with): every later
        call fails the same way, rather than with what SQLite then makes of the file."""
        if self._failure is not None:
            raise type(self._failure)(*self._failure.args)
        snapshot = self.directory / f"{self.stem}{SNAPSHOT_SUFFIX}"
        try:
            with explained_write_failures(snapshot, self.partial_path, self.redo):
                yield
        except ArchiveError as exc:
            self._failure = exc
            raise

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.abort()

    def save_records(
        self, collection: str, records: Iterable[Any], *, offset: int | None = None
    ) -> SaveResult:
        """Add a page of records; identical repeats are dropped, conflicting ones refused."""
        if collection not in self._tables:
            raise SnapshotDataError(collection, offset, "not a OneRoster collection")
        prepared = prepare_page(collection, self._tables[collection].dropped, records, offset)
        return self.save_prepared(prepared)

    @_explained
    def save_prepared(self, prepared: PreparedPage) -> SaveResult:
        """Store a page made by `prepare_page` (which may have run in another process)."""
        collection, offset = prepared.collection, prepared.offset
        table = self._tables[collection]
        rows = prepared.rows
        with self._lock, self._conn:
            before = self._conn.total_changes
            self._conn.executemany(table.insert_sql, rows)
            inserted = self._conn.total_changes - before
            if inserted < len(rows):
                self._check_repeats(collection, offset, {row[0]: row[-1] for row in rows})
            for sourced_id, unknown in prepared.extras:
                self._save_unknown_scalars(table, sourced_id, unknown)
            self._save_removed(collection, prepared.removed)
        duplicates = len(rows) - inserted + prepared.within_page_repeats
        return SaveResult(inserted=inserted, duplicates=duplicates)

    @_explained
    def save_extras(self, collection: str, extras: list[tuple[str, dict[str, Any]]]) -> None:
        """Columns for fields not known yet, for rows already stored (see `save_chunk`)."""
        if not extras:
            return
        table = self._tables[collection]
        with self._lock, self._conn:
            for sourced_id, unknown in extras:
                self._save_unknown_scalars(table, sourced_id, unknown)

    @_explained
    def save_removed(self, collection: str, removed: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        """Note the paths left out of records stored by `save_chunk`."""
        if removed:
            with self._lock, self._conn:
                self._save_removed(collection, removed)

    def _save_removed(
        self, collection: str, removed: Sequence[tuple[str, tuple[str, ...]]]
    ) -> None:
        if removed:
            self._conn.executemany(
                "INSERT OR IGNORE INTO temp.removed_paths VALUES (?, ?, ?)",
                [(collection, path, sourced_id) for sourced_id, paths in removed for path in paths],
            )

    def removed_paths(self) -> dict[str, int]:
        """{`collection.path`: records it was left out of}, e.g. `users.metadata.pwd`."""
        with self._lock:
            return self._removed_paths()

    def _removed_paths(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT collection || '.' || path, count(*) FROM temp.removed_paths "
            "GROUP BY collection, path ORDER BY collection, path"
        )
        return dict(rows.fetchall())

    @_explained
    def save_chunk(self, collection: str, chunk: bytes, offset: int | None) -> SaveResult:
        """Copy the rows a worker stored in `chunk` (by `store_chunk`) into the snapshot, with
        the same rules as `save_prepared`: identical repeats dropped, conflicts refused."""
        table = self._tables[collection]
        name = quote(collection)
        columns = ", ".join(quote(c) for c in table.columns)
        with self._lock:
            self._conn.execute("ATTACH DATABASE ':memory:' AS chunk")
            try:
                self._conn.deserialize(chunk, name="chunk")
                with self._conn:
                    rows = self._conn.execute(f"SELECT count(*) FROM chunk.{name}").fetchone()[0]
                    before = self._conn.total_changes
                    self._conn.execute(
                        f"INSERT OR IGNORE INTO main.{name} ({columns}) "
                        f"SELECT {columns} FROM chunk.{name}"
                    )
                    inserted = self._conn.total_changes - before
                    # Only rows that were ignored can conflict: look for them only then (the
                    # failed import is thrown away whole, so what went in does not matter).
                    if inserted < rows:
                        conflict = self._conn.execute(
                            f"SELECT c.sourcedId FROM chunk.{name} c JOIN main.{name} m "
                            f"ON m.sourcedId = c.sourcedId "
                            f"WHERE m.{HASH_COLUMN} != c.{HASH_COLUMN} LIMIT 1"
                        ).fetchone()
                        if conflict is not None:
                            raise ConflictingRecordsError(
                                collection, offset, conflict[0], within_page=False
                            )
            finally:
                self._conn.execute("DETACH DATABASE chunk")
        return SaveResult(inserted=inserted, duplicates=rows - inserted)

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
                    raise ConflictingRecordsError(collection, offset, sourced_id, within_page=False)

    def _save_unknown_scalars(
        self, table: _TableWriter, sourced_id: str, unknown: dict[str, Any]
    ) -> None:
        # Fields we do not know yet get columns of their own, as the known ones do, unless
        # the name collides with a column (SQLite ignores case): those stay in `_record` only.
        kept = {}
        for name, value in unknown.items():
            if name not in table.extra_columns:
                if name.lower() in table.taken_names:
                    continue
                self._conn.execute(
                    f"ALTER TABLE {quote(table.entity.collection)} ADD {quote(name)}"
                )
                table.extra_columns.add(name)
                table.taken_names.add(name.lower())
            kept[name] = value
        if not kept:
            return
        assignments = ", ".join(f"{quote(name)} = ?" for name in kept)
        self._conn.execute(
            f"UPDATE {quote(table.entity.collection)} SET {assignments} WHERE sourcedId = ?",
            [_scalar_cell(v) for v in kept.values()] + [sourced_id],
        )

    @_explained
    def reset(self, collection: str) -> None:
        """Forget what was saved for a collection, before fetching it again."""
        with self._lock, self._conn:
            self._conn.execute(f"DELETE FROM {quote(collection)}")
            self._conn.execute("DELETE FROM temp.removed_paths WHERE collection = ?", (collection,))

    @_explained
    def count(self, collection: str) -> int:
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM {quote(collection)}").fetchone()[0]

    @_explained
    def ids(self, collection: str) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute(f"SELECT sourcedId FROM {quote(collection)}")}

    def dropped_fields(self, collection: str) -> frozenset[str]:
        """The fields of a collection that are not stored (besides those never stored)."""
        return self._tables[collection].dropped

    @_explained
    def hashes(self, collection: str) -> dict[str, str]:
        """{sourcedId: content hash} of what is saved for a collection."""
        with self._lock:
            rows = self._conn.execute(f"SELECT sourcedId, {HASH_COLUMN} FROM {quote(collection)}")
            return dict(rows)

    def _content_hash(self) -> str:
        """SHA-256 over `collection TAB sourcedId TAB _hash TAB dateLastModified` lines in
        collection and sourcedId order; SQLite builds the lines, Python hashes them in bulk."""
        digest = hashlib.sha256()
        for collection in COLLECTIONS:
            rows = self._conn.execute(
                f"SELECT ? || char(9) || sourcedId || char(9) || {HASH_COLUMN} || char(9) || "
                f"ifnull(dateLastModified, 'None') || char(10) FROM {quote(collection)} "
                "ORDER BY sourcedId",
                (collection,),
            )
            while batch := rows.fetchmany(10_000):
                digest.update("".join([line for (line,) in batch]).encode())
        return digest.hexdigest()

    @_explained
    def finish(
        self,
        meta: SnapshotMeta,
        *,
        complete: bool,
        stable: bool,
        incomplete_reason: str | None = None,
        may_publish: Callable[[], bool] | None = None,
    ) -> Path:
        """Index, hash, record provenance, make durable, then give the file its real name.
        `may_publish`, asked just before the rename: False stops there (`PublishRefused`), and
        `abort` then removes the file."""
        with self._lock:
            counts = {
                c: self._conn.execute(f"SELECT count(*) FROM {quote(c)}").fetchone()[0]
                for c in COLLECTIONS
            }
            if meta.school_name is None:
                meta.school_name = school_name_from_orgs(self._conn, meta.estab)
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
        if may_publish is not None and not may_publish():
            raise PublishRefused(f"{self.stem} was not published")
        final_path = self._publish()
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
        columns = ", ".join(METADATA_COLUMNS)
        marks = ", ".join("?" for _ in METADATA_COLUMNS)
        self._conn.execute(
            f"INSERT INTO {METADATA_TABLE} ({columns}) VALUES ({marks})",
            (
                meta.estab,
                meta.school_name,
                meta.rp,
                meta.base_url,
                meta.source,
                utc_iso(meta.started_at),
                utc_iso(meta.clock()),
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
                json.dumps(self._removed_paths()),
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

    def _publish(self) -> Path:
        """Give the finished file its real name, never replacing another snapshot: a hard
        link fails if the name is taken (by a fetch of the same school in the same second),
        so the check and the naming are one atomic step."""
        serial = 1
        while True:
            suffix = "" if serial == 1 else f"-{serial}"
            candidate = self.directory / f"{self.stem}{suffix}{SNAPSHOT_SUFFIX}"
            try:
                os.link(self.partial_path, candidate)
            except FileExistsError:
                serial += 1
                continue
            except OSError:  # a filesystem without hard links
                if candidate.exists():
                    serial += 1
                    continue
                os.replace(self.partial_path, candidate)
                return candidate
            self.partial_path.unlink()
            return candidate

    def abort(self) -> None:
        """Close and delete the temporary file: the archive is as it was."""
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True
        self.partial_path.unlink(missing_ok=True)
        for directory in reversed(self._created_dirs):
            try:
                directory.rmdir()
            except OSError:
                break  # not empty (another fetch wrote into it): keep it


__all__ = [
    "store_chunk",
    "ConflictingRecordsError",
    "PreparedPage",
    "PublishRefused",
    "prepare_page",
    "EndpointStats",
    "RECORD_COLUMN",
    "SaveResult",
    "SnapshotDataError",
    "SnapshotMeta",
    "SnapshotWriter",
    "parse_drop_fields",
    "school_name_from_orgs",
]
