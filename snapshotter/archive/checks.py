"""Is this file a snapshot we can read? The checks behind every open of a snapshot file.

A file in the archive may be named like a snapshot and still not be one: a foreign or older
SQLite database, one with a table dropped, a metadata row edited by hand, a file cut short by a
full disk or a bad copy, bytes damaged on disk, or not SQLite at all. Each gets one sentence
saying what is wrong (`problem`), never a traceback, and the file is only ever read.

`shape_problem` is cheap (the schema, the metadata row and the file's length) and runs whenever
a snapshot's metadata is read. Damage inside the tables shows only when they are read:
`layout.damage_problem` reads the whole file, so it runs only after a read has failed, to say
which file was to blame.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from ..model import ENTITIES
from .schema import LATER_METADATA_COLUMNS, METADATA_SQL, METADATA_TABLE, columns_for

# What to do about a file that is not a readable snapshot: the advice every message ends with.
ADVICE = "fetch a new snapshot, or move the file out of the archive"


@cache
def _expected_columns() -> dict[str, tuple[str, ...]]:
    """{table: columns} every snapshot has, whichever version wrote it: this version's (the
    metadata table's asked of SQLite itself), less the metadata columns added since."""
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(METADATA_SQL)
        metadata = tuple(
            row[1]
            for row in conn.execute(f"PRAGMA table_info({METADATA_TABLE})")
            if row[1] not in LATER_METADATA_COLUMNS
        )
    expected = {METADATA_TABLE: metadata}
    for entity in ENTITIES:
        expected[entity.collection] = tuple(name for name, _ in columns_for(entity))
    return expected


_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_NOTADB = 26
_SQLITE_CORRUPT = 11


class SnapshotProblem(Exception):
    """One sentence on why a file cannot be read as a snapshot (no path, no advice)."""


def sqlite_problem(exc: sqlite3.Error) -> str:
    """An SQLite error while reading a snapshot, as a reason a person can act on."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == _SQLITE_NOTADB:
        return "it is not an SQLite database"
    if code == _SQLITE_CORRUPT:
        return f"the file is damaged ({exc})"
    return f"SQLite cannot read it ({exc})"


def _check_length(path: Path) -> None:
    """A file shorter than its own header says was cut short (a full disk, a bad copy). Read
    from the header itself: SQLite only calls such a file malformed."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return  # SQLite says what it is not
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only when the change counter matches version-valid-for.
    if header[24:28] != header[92:96] or path.with_name(path.name + "-wal").exists():
        return
    expected, actual = page_size * pages, path.stat().st_size
    if actual < expected:
        raise SnapshotProblem(
            f"the file is cut short ({actual:,} of the {expected:,} bytes its header promises)"
        )


def _check_tables(conn: sqlite3.Connection) -> None:
    present: dict[str, set[str]] = {}
    # One query for every table's columns: listing a large archive reads this for each file.
    for table, column in conn.execute(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
        "WHERE m.type = 'table'"
    ):
        present.setdefault(table, set()).add(column)
    if METADATA_TABLE not in present:
        raise SnapshotProblem(f"it has no {METADATA_TABLE} table, so snapshotter did not write it")
    for table, columns in _expected_columns().items():
        if table not in present:
            raise SnapshotProblem(f"it has no {table} table")
        missing = [column for column in columns if column not in present[table]]
        if missing:
            named = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise SnapshotProblem(
                f"its {table} table lacks {len(missing)} of the columns snapshots have "
                f"({named}): another program or version wrote it"
            )


def parse_record_counts(text: Any) -> dict[str, int]:
    """`record_counts` as {collection: count}, or the problem with it."""
    try:
        counts = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        counts = None
    if not isinstance(counts, dict):
        raise SnapshotProblem("its record_counts is not a JSON object of counts")
    for collection, count in counts.items():
        if type(count) is not int or count < 0:
            raise SnapshotProblem(
                f"its record_counts gives {collection} the count {count!r}, not a whole number "
                "of records"
            )
    return counts


def parse_started_at(text: Any) -> datetime:
    """The time a snapshot's fetch began (`started_at`), as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise SnapshotProblem(f"its started_at {text!r} is not a UTC timestamp")
    return moment


def read_metadata_row(conn: sqlite3.Connection, path: Path) -> sqlite3.Row:
    """The metadata row of a snapshot, once its length and shape are checked; raises
    `SnapshotProblem` (or `sqlite3.Error`, for `sqlite_problem`) for anything else."""
    _check_length(path)
    _check_tables(conn)
    conn.row_factory = sqlite3.Row
    rows = conn.execute(f"SELECT * FROM {METADATA_TABLE} LIMIT 2").fetchall()
    if len(rows) != 1:
        state = "empty: not a finished snapshot" if not rows else "holds more than one row"
        raise SnapshotProblem(f"its {METADATA_TABLE} table is {state}")
    row = rows[0]
    if not isinstance(row["estab"], str) or not row["estab"]:
        raise SnapshotProblem(f"its {METADATA_TABLE} names no school (estab)")
    return row
