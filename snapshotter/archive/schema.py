"""The shape of a snapshot file: one table per collection, as the entity model says.

Each table is named exactly as its endpoint. Columns: the record's top-level scalar fields under
their own names, references flattened to `<field>_sourcedId` (or `<field>_sourcedIds`, a JSON
list), other arrays and objects as JSON, and `_record` (the whole canonical record, lossless but
for what must never be stored) beside `_hash` (the content hash the diff compares).
"""

from __future__ import annotations

from ..model import ENTITIES, Entity

RECORD_COLUMN = "_record"
HASH_COLUMN = "_hash"
METADATA_TABLE = "snapshot_metadata"
ENDPOINTS_TABLE = "snapshot_endpoints"


def quote(identifier: str) -> str:
    """An SQL identifier, quoted: unknown fields may carry any name."""
    return '"' + identifier.replace('"', '""') + '"'


def columns_for(entity: Entity) -> list[tuple[str, str]]:
    """(column, SQL type) pairs of an entity's table, in order."""
    columns: list[tuple[str, str]] = [("sourcedId", "TEXT"), ("status", "TEXT")]
    columns.append(("dateLastModified", "TEXT"))
    for name in entity.scalars:
        columns.append((name, "INTEGER" if name in entity.booleans else "TEXT"))
    for ref in entity.references:
        columns.append((ref.column, "TEXT"))
    for name in entity.arrays:
        columns.append((name, "TEXT"))
    columns.append(("metadata", "TEXT"))
    columns.append((RECORD_COLUMN, "TEXT"))
    columns.append((HASH_COLUMN, "TEXT"))
    return columns


def create_table_sql(entity: Entity) -> str:
    lines = []
    for column, sql_type in columns_for(entity):
        suffix = ""
        if column == "sourcedId":
            suffix = " PRIMARY KEY"
        elif column in (HASH_COLUMN, RECORD_COLUMN):
            suffix = " NOT NULL"
        lines.append(f"  {quote(column)} {sql_type}{suffix}")
    # Foreign keys only document the links (Datasette follows them); they are not enforced,
    # since a school-scoped snapshot may legitimately reference records it does not hold.
    for ref in entity.references:
        if ref.target and not ref.many:
            lines.append(
                f"  FOREIGN KEY ({quote(ref.column)}) REFERENCES {quote(ref.target)}(sourcedId)"
            )
    body = ",\n".join(lines)
    return f"CREATE TABLE {quote(entity.collection)} (\n{body}\n)"


def index_sql(entity: Entity) -> list[str]:
    """Indexes for the links (what joins and Datasette's "linked rows" look up); created once
    the data is in. Low-cardinality columns (status, role, type) get none: an index there saves
    nothing over a scan, and costs the import a second or two per million records."""
    statements = []
    # References into `orgs` get none either: a school's snapshot holds a handful of orgs, so
    # nearly every row matches and SQLite would scan anyway.
    indexed = [
        ref.column
        for ref in entity.references
        if ref.target and ref.target != "orgs" and not ref.many
    ]
    for column in dict.fromkeys(indexed):
        name = f"idx_{entity.collection}_{column}"
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} "
            f"ON {quote(entity.collection)}({quote(column)})"
        )
    return statements


METADATA_SQL = f"""
CREATE TABLE {METADATA_TABLE} (
  estab TEXT NOT NULL,
  school_name TEXT,
  rp TEXT,
  base_url TEXT,
  source TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  tool_version TEXT NOT NULL,
  provider_version TEXT,
  auth_version TEXT,
  complete INTEGER NOT NULL,
  stable INTEGER NOT NULL,
  incomplete_reason TEXT,
  drop_fields TEXT NOT NULL,
  record_counts TEXT NOT NULL,
  endpoints TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  dropped_paths TEXT
)
"""
# In the order written. `dropped_paths` ({"users.metadata.pwd": 3}: each path left out of
# records, and of how many) came later: older snapshot files have no such column.
METADATA_COLUMNS = (
    "estab",
    "school_name",
    "rp",
    "base_url",
    "source",
    "started_at",
    "finished_at",
    "tool_version",
    "provider_version",
    "auth_version",
    "complete",
    "stable",
    "incomplete_reason",
    "drop_fields",
    "record_counts",
    "endpoints",
    "content_hash",
    "dropped_paths",
)
# Metadata columns added after snapshots were first written: a file without them is an older
# snapshot, still read (never a file of "another program or version").
LATER_METADATA_COLUMNS = frozenset({"dropped_paths"})

ENDPOINTS_SQL = f"""
CREATE TABLE {ENDPOINTS_TABLE} (
  collection TEXT PRIMARY KEY,
  records INTEGER NOT NULL,
  pages INTEGER,
  requests INTEGER,
  retries INTEGER,
  total_count_seen INTEGER,
  attempts INTEGER,
  duration_s REAL,
  complete INTEGER NOT NULL,
  stable INTEGER NOT NULL,
  note TEXT
)
"""

ALL_TABLES = tuple(e.collection for e in ENTITIES) + (METADATA_TABLE, ENDPOINTS_TABLE)
