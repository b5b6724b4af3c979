"""`snapshotter import`: a snapshot from saved API responses, for offline replay and benchmarks.

A directory holds, per collection, `<collection>.json` (the API envelope `{"<collection>":
[...]}`, or a list of such envelopes, one per saved page) or `<collection>.ndjson` (one record a
line). Records go through the same envelope check and the same `SnapshotWriter` as a live fetch;
only the HTTP layer is missing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .api.envelope import loads as fast_loads
from .api.envelope import records_from_envelope
from .api.errors import FetchError
from .archive.snapshot import (
    ConflictingRecordsError,
    EndpointStats,
    SnapshotDataError,
    SnapshotMeta,
    SnapshotWriter,
    parse_drop_fields,
    prepare_page,
    store_chunk,
)
from .model import COLLECTIONS

# Records per write: large enough that SQLite's per-statement cost vanishes, small enough that
# memory stays flat.
IMPORT_BATCH = 5000
# Files at least this big are parsed, canonicalised and hashed in worker processes while this
# one only inserts (two cores roughly double the rate); smaller ones are not worth the start-up.
PARALLEL_FROM_BYTES = 8_000_000
PARALLEL_WORKERS = int(os.environ.get("SNAPSHOTTER_IMPORT_WORKERS", "2"))
CHUNK_BYTES = 2_000_000


class ImportSourceError(Exception):
    """The saved responses cannot be imported as they are (names the file and the record)."""


def source_files(source_dir: Path) -> dict[str, Path]:
    """The saved response file of each collection present in `source_dir`."""
    if not source_dir.is_dir():
        raise ImportSourceError(f"{source_dir} is not a directory of saved responses")
    found: dict[str, Path] = {}
    for collection in COLLECTIONS:
        candidates = [source_dir / f"{collection}.{ext}" for ext in ("json", "ndjson")]
        present = [p for p in candidates if p.is_file()]
        if len(present) > 1:
            raise ImportSourceError(
                f"both {present[0].name} and {present[1].name} are in {source_dir}: keep one"
            )
        if present:
            found[collection] = present[0]
    return found


def _why_not_json(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


def _ndjson_batches(path: Path, batch_size: int) -> Iterator[tuple[int, list[Any]]]:
    batch: list[Any] = []
    start = 0
    loads = fast_loads
    with open(path, "rb") as lines:
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                batch.append(loads(line))
            except ValueError as exc:  # bad JSON, or bytes that are not UTF-8
                raise ImportSourceError(
                    f"{path.name} line {number + 1}: not valid JSON ({_why_not_json(exc)})"
                ) from None
            if len(batch) >= batch_size:
                yield start, batch
                start += len(batch)
                batch = []
    if batch:
        yield start, batch


def _chunk_bounds(path: Path, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges of a file, each ending just after a newline."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = 0
        while start < size:
            handle.seek(min(start + chunk_bytes, size))
            handle.readline()  # on to the end of the line the cut fell in
            end = min(handle.tell(), size)
            yield start, end
            start = end


@dataclass(frozen=True)
class _ChunkDone:
    chunk: bytes  # a serialised SQLite database of the rows
    records: int  # rows stored plus identical repeats dropped within the chunk
    extras: list[tuple[str, dict[str, Any]]]
    removed: list[tuple[str, tuple[str, ...]]]  # paths left out of records (never values)


def _prepare_chunk(
    collection: str, dropped: frozenset[str], path: str, start: int, end: int
) -> _ChunkDone:
    """In a worker process: read, parse and prepare one byte range of an ndjson file into a
    serialised SQLite database of its rows. Offsets in errors are relative to the byte range;
    the caller, who knows where it starts, rebases them."""
    with open(path, "rb") as handle:
        handle.seek(start)
        lines = handle.read(end - start).splitlines()
    loads = fast_loads
    records = []
    for line in lines:
        if not line.strip():
            continue
        try:
            records.append(loads(line))
        except ValueError as exc:  # bad JSON, or bytes that are not UTF-8
            raise SnapshotDataError(
                collection, len(records), f"not valid JSON ({_why_not_json(exc)})"
            ) from None
    prepared = prepare_page(collection, dropped, records, 0)
    return _ChunkDone(
        store_chunk(prepared),
        len(prepared.rows) + prepared.within_page_repeats,
        prepared.extras,
        prepared.removed,
    )


def _rebased(exc: SnapshotDataError, base: int) -> SnapshotDataError:
    offset = None if exc.offset is None else base + exc.offset
    if isinstance(exc, ConflictingRecordsError):
        return ConflictingRecordsError(
            exc.collection, offset, exc.sourced_id, within_page=exc.within_page
        )
    return SnapshotDataError(exc.collection, offset, exc.problem)


def _save_in_parallel(
    writer: SnapshotWriter, collection: str, path: Path, stats: EndpointStats
) -> None:
    """Worker processes parse, canonicalise, hash and lay out rows in in-memory SQLite
    databases; this process copies each into the snapshot in file order (one INSERT ... SELECT,
    in C), so the outcome is exactly the sequential one."""
    workers = max(1, min(PARALLEL_WORKERS, os.cpu_count() or 1))
    dropped = writer.dropped_fields(collection)
    # fork: fast, and no re-import of the caller's __main__ (spawn needs a guarded script);
    # only used when this process has no other thread (see `import_snapshot`).
    context = multiprocessing.get_context("fork")
    saved = 0

    def store(future: Future[_ChunkDone]) -> None:
        nonlocal saved
        try:
            done = future.result()
        except SnapshotDataError as exc:
            raise _rebased(exc, saved) from None
        writer.save_chunk(collection, done.chunk, saved)
        writer.save_extras(collection, done.extras)
        writer.save_removed(collection, done.removed)
        saved += done.records
        stats.pages += 1

    pending: deque[Future[_ChunkDone]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for start, end in _chunk_bounds(path, CHUNK_BYTES):
            pending.append(pool.submit(_prepare_chunk, collection, dropped, str(path), start, end))
            # A few chunks ahead per worker keeps them busy and memory flat.
            while len(pending) > 2 * workers:
                store(pending.popleft())
        while pending:
            store(pending.popleft())


# What a saved response file must hold, said after anything wrong with one: the file is the
# user's, so the advice is about the file, never about the provider.
_FILE_SHAPE = (
    'a saved response is the API envelope {{"{collection}": [...]}} (or a list of such '
    "pages) as UTF-8 JSON, or {collection}.ndjson with one record a line"
)


def _not_a_saved_response(path: Path, collection: str, problem: str) -> ImportSourceError:
    shape = _FILE_SHAPE.format(collection=collection)
    return ImportSourceError(f"{path} is not a saved {collection} response: {problem}; {shape}")


def _envelope_batches(
    path: Path, collection: str, batch_size: int
) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise _not_a_saved_response(
            path, collection, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at {exc.start})"
        ) from None
    if not text.strip():
        raise _not_a_saved_response(path, collection, "the file is empty")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
        if text.lstrip().startswith("<"):
            problem = "an HTML or XML page, not JSON"
        raise _not_a_saved_response(path, collection, problem) from None
    pages = body if isinstance(body, list) and all(isinstance(p, dict) for p in body) else [body]
    offset = 0
    for page in pages:
        try:
            records, _warnings = records_from_envelope(collection, page, offset=offset)
        except FetchError as exc:
            where = f" (the page at record {offset})" if len(pages) > 1 else ""
            raise _not_a_saved_response(path, collection, exc.problem + where) from None
        for start in range(0, len(records), batch_size):
            yield offset + start, records[start : start + batch_size]
        offset += len(records)


def record_batches(
    path: Path, collection: str, batch_size: int = IMPORT_BATCH
) -> Iterator[tuple[int, list[Any]]]:
    """(offset of the first record, records) batches of one saved response file."""
    if path.suffix == ".ndjson":
        return _ndjson_batches(path, batch_size)
    return _envelope_batches(path, collection, batch_size)


def import_snapshot(
    source_dir: Path,
    estab: str,
    archive: Path,
    *,
    school_name: str | None = None,
    drop_fields: Sequence[str] = (),
    allow_partial: bool = False,
    batch_size: int = IMPORT_BATCH,
) -> Path:
    """Build a snapshot from saved responses and return its path.

    Every collection must have a file unless `allow_partial`, which marks the snapshot
    incomplete instead. Any bad record fails the import and leaves the archive untouched.
    """
    parse_drop_fields(drop_fields)
    files = source_files(source_dir)
    missing = [c for c in COLLECTIONS if c not in files]
    if missing and not allow_partial:
        raise ImportSourceError(
            f"no saved responses for {', '.join(missing)} in {source_dir} "
            "(expected <collection>.json or <collection>.ndjson; --allow-partial imports the rest)"
        )
    started_at = datetime.now(UTC)
    endpoints: dict[str, EndpointStats] = {}
    with SnapshotWriter(
        archive, estab, started_at=started_at, drop_fields=drop_fields, redo="import"
    ) as writer:
        for collection, path in files.items():
            began = time.monotonic()
            stats = EndpointStats(attempts=1)
            try:
                parallel = (
                    path.suffix == ".ndjson"
                    and (os.cpu_count() or 1) > 1
                    and path.stat().st_size >= PARALLEL_FROM_BYTES
                    # forking a process with threads may copy a held lock into the child
                    and threading.active_count() == 1
                )
                if parallel:
                    _save_in_parallel(writer, collection, path, stats)
                else:
                    for offset, records in record_batches(path, collection, batch_size):
                        writer.save_records(collection, records, offset=offset)
                        stats.pages += 1
            except (SnapshotDataError, FetchError) as exc:
                raise ImportSourceError(f"{path.name}: {exc}") from None
            stats.duration_s = time.monotonic() - began
            stats.records = writer.count(collection)
            stats.complete = stats.stable = True
            endpoints[collection] = stats
        for collection in missing:
            endpoints[collection] = EndpointStats(attempts=0, note="no saved responses")
        meta = SnapshotMeta(
            estab=estab,
            source="import",
            started_at=started_at,
            school_name=school_name,
            endpoints=endpoints,
        )
        reason = f"no saved responses for {', '.join(missing)}" if missing else None
        path = writer.finish(
            meta, complete=not missing, stable=not missing, incomplete_reason=reason
        )
    # Data-quality findings kept beside it (issue 11); a failure there is only a warning.
    from .quality.store import keep_for_new_snapshot

    keep_for_new_snapshot(archive, path)
    return path
