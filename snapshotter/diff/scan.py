"""Finding the records that differ: SQL over both snapshot files, in threads of their own.

Both files are attached read-only and joined on `sourcedId`, comparing content hashes, so
unchanged records never reach Python. Two background threads scan, one the old file's records
(removed or differing) and one the new file's (added), a slice of the table at a time: each
slice is one SQL statement that hands back the records that differ as one JSON array, so SQLite
scans it without holding the GIL, and the caller meanwhile compares what the earlier slices
found. A bounded queue of small slices keeps memory flat. Batches come entity by entity within
each side, but the two sides interleave: callers must not rely on the order.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from ..archive.layout import read_only_uri
from ..archive.schema import HASH_COLUMN, RECORD_COLUMN, quote
from ..model import ENTITIES, Entity

OLD = "main"  # the schema names of the two snapshots on a diff's connections
NEW = "new"
# Table rows joined per statement: small enough that a slice in which every record differs
# (a school re-keyed, a wiped roster) still fits in a few megabytes.
SLICE = 2_000
_KEY_SAMPLE_STEP = 200  # one key in this many rowids marks out the new side's key ranges
BATCH = 500  # differing records handed over together
_QUEUED_SLICES = 4
_DONE = object()
_Found = queue.Queue[object]

Record = dict[str, Any]
# (sourcedId, old canonical record, new canonical record); None where the record is absent.
DifferingRow = tuple[str, Record | None, Record | None]


def connect_pair(old_path: Path, new_path: Path) -> sqlite3.Connection:
    """One read-only connection: the old snapshot as `main`, the new one attached as `new`."""
    conn = sqlite3.connect(read_only_uri(old_path), uri=True)
    conn.execute(f"ATTACH DATABASE ? AS {NEW}", (read_only_uri(new_path),))
    conn.row_factory = sqlite3.Row
    return conn


def _removed_or_differing_sql(entity: Entity, include_touched: bool) -> str:
    """For an old rowid range: `[old, new]` records that differ (new null where removed), as
    one JSON array."""
    table = quote(entity.collection)
    differs = f"n.{HASH_COLUMN} IS NOT o.{HASH_COLUMN}"
    if include_touched:
        differs += " OR n.dateLastModified IS NOT o.dateLastModified"
    return (
        f"SELECT json_group_array(json_array(json(o.{RECORD_COLUMN}), json(n.{RECORD_COLUMN}))) "
        f"FROM {OLD}.{table} o LEFT JOIN {NEW}.{table} n ON n.sourcedId = o.sourcedId "
        f"WHERE o.rowid BETWEEN ? AND ? AND ({differs})"
    )


def _added_sql(entity: Entity, bounded: bool) -> str:
    """For a key range (above one sourcedId, up to another unless unbounded): the rowids of new
    records the old file lacks, as one text. Both sides read only their key indexes."""
    table = quote(entity.collection)
    upper = "AND n.sourcedId <= ? " if bounded else ""
    return (
        f"SELECT group_concat(n.rowid, ',') FROM {NEW}.{table} n WHERE n.sourcedId > ? {upper}"
        f"AND NOT EXISTS (SELECT 1 FROM {OLD}.{table} o WHERE o.sourcedId = n.sourcedId)"
    )


def _records_by_rowid_sql(entity: Entity) -> str:
    """New records by rowid (a JSON array of rowids), as one JSON array."""
    return (
        f"SELECT json_group_array(json({RECORD_COLUMN})) FROM {NEW}.{quote(entity.collection)} "
        "WHERE rowid IN (SELECT value FROM json_each(?))"
    )


def _key_slices(conn: sqlite3.Connection, table: str, last_rowid: int) -> list[tuple[str, ...]]:
    """Key ranges of about SLICE records of a new table, for slices along its key index.

    The edges are the keys of records at evenly spaced rowids, sorted. However the records were
    written the ranges cover the table; should a pattern in the data make them uneven, a range
    costs only its added records' rowids in memory, the records being read BATCH at a time.
    """
    rowids = range(1, last_rowid + 1, _KEY_SAMPLE_STEP)
    keys: list[str] = []
    for start in range(0, len(rowids), 500):
        chunk = list(rowids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT sourcedId FROM {NEW}.{table} WHERE rowid IN ({marks})"
        keys += [key for (key,) in conn.execute(sql, chunk)]
    edges = sorted(keys)[SLICE // _KEY_SAMPLE_STEP :: SLICE // _KEY_SAMPLE_STEP]
    lowers = ["", *edges]  # every sourcedId is a non-empty text, so above "" is all of them
    return [(low, high) for low, high in zip(lowers, edges, strict=False)] + [(lowers[-1],)]


def _last_rowid(conn: sqlite3.Connection, schema: str, entity: Entity) -> int:
    sql = f"SELECT max(rowid) FROM {schema}.{quote(entity.collection)}"
    return conn.execute(sql).fetchone()[0] or 0


def _scan_old(
    conn: sqlite3.Connection, entity: Entity, include_touched: bool, found: _Found
) -> Iterator[None]:
    """Removed and differing records, by rowid slices of the old table (read in order)."""
    sql = _removed_or_differing_sql(entity, include_touched)
    for start in range(1, _last_rowid(conn, OLD, entity) + 1, SLICE):
        text = conn.execute(sql, (start, start + SLICE - 1)).fetchone()[0]
        if text != "[]":
            found.put((entity, OLD, text))
        yield


def _scan_new(conn: sqlite3.Connection, entity: Entity, found: _Found) -> Iterator[None]:
    """Added records, by key slices of the new table's key index, then read by rowid."""
    last = _last_rowid(conn, NEW, entity)
    table = quote(entity.collection)
    for bounds in _key_slices(conn, table, last) if last else []:
        sql = _added_sql(entity, bounded=len(bounds) == 2)
        text = conn.execute(sql, bounds).fetchone()[0]
        rowids = text.split(",") if text else []
        for start in range(0, len(rowids), BATCH):
            batch = "[" + ",".join(rowids[start : start + BATCH]) + "]"
            found.put(
                (entity, NEW, conn.execute(_records_by_rowid_sql(entity), (batch,)).fetchone()[0])
            )
        yield


def _scan_side(
    old_path: Path,
    new_path: Path,
    side: str,
    include_touched: bool,
    found: _Found,
    stop: threading.Event,
) -> None:
    """Put (entity, side, JSON array of records) on `found` for one side, until done or stopped."""
    with closing(connect_pair(old_path, new_path)) as conn:
        for entity in ENTITIES:
            if side == OLD:
                steps = _scan_old(conn, entity, include_touched, found)
            else:
                steps = _scan_new(conn, entity, found)
            for _ in steps:
                if stop.is_set():
                    return


def _rows(side: str, text: str) -> list[DifferingRow]:
    if side == OLD:
        return [(old["sourcedId"], old, new) for old, new in json.loads(text)]
    return [(new["sourcedId"], None, new) for new in json.loads(text)]


def differing_rows(
    old_path: Path, new_path: Path, *, include_touched: bool = False
) -> Iterator[tuple[Entity, list[DifferingRow]]]:
    """Batches of (entity, rows) of the records that differ between two snapshot files."""
    found: queue.Queue[object] = queue.Queue(maxsize=_QUEUED_SLICES)
    stop = threading.Event()

    def scan(side: str) -> None:
        try:
            _scan_side(old_path, new_path, side, include_touched, found, stop)
        except BaseException as exc:  # handed to the consumer, which raises it
            found.put(exc)
        finally:
            found.put(_DONE)

    threads = [
        threading.Thread(target=scan, args=(side,), name=f"diff-scan-{side}", daemon=True)
        for side in (OLD, NEW)
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = found.get()
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            entity, side, text = item  # type: ignore[misc]
            rows = _rows(side, text)
            for start in range(0, len(rows), BATCH):
                yield entity, rows[start : start + BATCH]
    finally:
        stop.set()
        while any(thread.is_alive() for thread in threads):
            with suppress(queue.Empty):  # let a scan blocked on a full queue see the stop
                found.get(timeout=0.05)
        for thread in threads:
            thread.join()
