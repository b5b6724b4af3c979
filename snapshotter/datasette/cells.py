"""Readable cells in Datasette's own table and row pages of snapshot files and `changes.db`.

- a sourcedId (`sourcedId`, `*_sourcedId`, the enrollments of a class move) links to that
  record's history page: the entity from the model's reference target (or the row's `entity`),
  the school from the snapshot's name, or from the row's run for `changes.db`;
- a JSON array (`*_sourcedIds`, `grades`, `userIds`, a changed record's field names...) is a
  list, each sourcedId in it linked;
- a timestamp (`dateLastModified`, `taken_at`, `*_taken_at`, `run_at`...) reads as a UTC date,
  the value as stored in its title;
- a record's whole JSON (`_record`) is cut short, its length said.

Every piece of provider text is escaped: a name may be markup.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from ..archive.layout import estab_of_name, read_only_uri
from ..archive.schema import RECORD_COLUMN
from ..model import ENTITIES, ENTITY_BY_COLLECTION
from ..report.wording import utc_text

CHANGES = "changes"
HISTORY_PREFIX = "/-/snapshotter/history"
RECORD_SHOWN_CHARS = 200
LIST_SHOWN_ITEMS = 50
TIMESTAMP_COLUMNS = frozenset({"dateLastModified", "taken_at", "finished_at", "run_at"})
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_COLLECTION_OF_SINGULAR = {entity.singular: entity.collection for entity in ENTITIES}
# Snapshot tables: each reference column and the collection it points into.
_SNAPSHOT_REFERENCES = {
    (entity.collection, ref.column): ref.target for entity in ENTITIES for ref in entity.references
}
# changes.db: the collection of a `sourcedId` column, where the table says it (else the row's
# `entity`), and columns that hold ids under other names.
_CHANGES_SOURCED_ID = dict.fromkeys(
    ("joiners", "leavers", "purged", "year_group_changes", "identity_changes"), "users"
)
_CHANGES_OTHER_IDS = {"ended_enrollment": "enrollments", "began_enrollment": "enrollments"}


def history_path(estab: str, collection: str, sourced_id: str) -> str:
    """The path of a record's history page (without the site's base_url)."""
    return f"{HISTORY_PREFIX}/{quote(estab, safe='')}/{collection}/{quote(sourced_id, safe='')}"


def _get(row: Any, name: str) -> Any:
    try:
        return row[name]
    except (KeyError, IndexError, TypeError):
        return None


def id_collection(row: Any, column: str, table: str | None, snapshot: bool) -> str | None:
    """The collection the ids of `column` are records of, or None for a column of no ids."""
    if snapshot:
        if column == "sourcedId" and table in ENTITY_BY_COLLECTION:
            return table
        return _SNAPSHOT_REFERENCES.get((table or "", column))
    if column == "sourcedId":
        entity = _get(row, "entity")
        return entity if entity in ENTITY_BY_COLLECTION else _CHANGES_SOURCED_ID.get(table or "")
    if column in _CHANGES_OTHER_IDS:
        return _CHANGES_OTHER_IDS[column]
    if column.endswith("_sourcedId"):
        singular = column.removesuffix("_sourcedId").removeprefix("from_").removeprefix("to_")
        return _COLLECTION_OF_SINGULAR.get(singular)
    return None


def _link(datasette: Any, estab: str | None, collection: str, sourced_id: Any, text: Any) -> str:
    if estab is None or not isinstance(sourced_id, str) or not sourced_id:
        return str(escape(text))
    href = datasette.urls.path(history_path(estab, collection, sourced_id))
    return str(Markup('<a href="{}" title="this record\'s history">{}</a>').format(href, str(text)))


def _ids_cell(datasette: Any, estab: str | None, collection: str | None, value: Any) -> Any:
    """A cell of one id (or Datasette's expanded foreign key), or of a JSON list of ids."""
    if isinstance(value, dict) and "value" in value:  # a foreign key Datasette expanded
        sourced_id, label = value["value"], value.get("label") or value["value"]
        if collection is None:
            return None
        text = label if label == sourced_id else f"{label} [{sourced_id}]"
        return Markup(_link(datasette, estab, collection, sourced_id, text))
    items = _json_list(value)
    if items is not None:
        return _list_cell(items, lambda item: _item_link(datasette, estab, collection, item))
    if collection is None or not isinstance(value, str) or not value:
        return None
    return Markup(_link(datasette, estab, collection, value, value))


def _item_link(datasette: Any, estab: str | None, collection: str | None, item: Any) -> str:
    if isinstance(item, dict):  # a GUIDRef kept whole
        item = item.get("sourcedId", json.dumps(item, ensure_ascii=False))
    if collection is None or not isinstance(item, str):
        return _item_text(item)
    return _link(datasette, estab, collection, item, item)


def _item_text(item: Any) -> str:
    if isinstance(item, str):
        return str(escape(item))
    return str(escape(json.dumps(item, ensure_ascii=False, separators=(", ", ": "))))


def _json_list(value: Any) -> list[Any] | None:
    if not isinstance(value, str) or not value.startswith("[") or not value.endswith("]"):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


def _list_cell(items: list[Any], show: Any) -> Markup | None:
    if not items:
        return None  # Datasette shows `[]` as it is
    shown = "".join(f"<li>{show(item)}</li>" for item in items[:LIST_SHOWN_ITEMS])
    more = len(items) - LIST_SHOWN_ITEMS
    if more > 0:
        shown += f"<li>… and {more} more</li>"
    return Markup(f'<ul class="snapshotter-list">{shown}</ul>')


def _timestamp_cell(value: Any) -> Markup | None:
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(value, utc_text(value))


def _record_cell(value: Any) -> Markup | None:
    if not isinstance(value, str) or len(value) <= RECORD_SHOWN_CHARS:
        return None
    return Markup('<span class="record">{}…</span> <small>({:,} characters)</small>').format(
        value[:RECORD_SHOWN_CHARS], len(value)
    )


def _is_timestamp_column(column: str) -> bool:
    return column in TIMESTAMP_COLUMNS or column.endswith("_taken_at")


# The school of each run of a changes.db, by (file, run id): a run keeps its school. Read with
# a connection of its own, once per run: cheap, and no coroutine left unawaited when another
# render_cell hook answers first.
_ESTAB_OF_RUN: dict[tuple[str, int], str | None] = {}
_RUNS_KEPT = 10000


def _estab_of_run(datasette: Any, run_id: Any) -> str | None:
    if isinstance(run_id, dict):  # run_id expanded as a foreign key
        run_id = run_id.get("value")
    if not isinstance(run_id, int) or CHANGES not in datasette.databases:
        return None
    path = datasette.databases[CHANGES].path
    key = (str(path), run_id)
    if key not in _ESTAB_OF_RUN:
        if len(_ESTAB_OF_RUN) >= _RUNS_KEPT:
            _ESTAB_OF_RUN.clear()
        try:
            with closing(sqlite3.connect(read_only_uri(Path(path)), uri=True)) as conn:
                row = conn.execute("SELECT estab FROM diff_runs WHERE id = ?", (run_id,)).fetchone()
        except sqlite3.Error:
            return None  # the id is shown unlinked
        _ESTAB_OF_RUN[key] = row[0] if row else None
    return _ESTAB_OF_RUN[key]


def readable_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """The cell as a person reads it, or None to leave it to Datasette (see the module)."""
    snapshot_estab = estab_of_name(database)
    if snapshot_estab is None and database != CHANGES:
        return None
    if _is_timestamp_column(column):
        return _timestamp_cell(value)
    if column == RECORD_COLUMN:
        return _record_cell(value)
    collection = id_collection(row, column, table, snapshot_estab is not None)
    if collection is None:
        items = _json_list(value)
        return None if items is None else _list_cell(items, _item_text)
    if snapshot_estab is not None:
        return _ids_cell(datasette, snapshot_estab, collection, value)
    estab = _get(row, "estab")
    if not isinstance(estab, str):
        estab = _estab_of_run(datasette, _get(row, "run_id"))
    return _ids_cell(datasette, estab, collection, value)
