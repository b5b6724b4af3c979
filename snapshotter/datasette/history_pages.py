"""The history and search pages: one record's history across every snapshot of its school, and
people search (leavers included), both read from the record index `<archive>/history.db`.

    /-/snapshotter/history/<estab>/<entity>/<percent-encoded sourcedId>
    /-/snapshotter/search/<estab>?q=...

Before answering, a page brings the index up to date when the school has snapshot files it
lacks (judged by their names: nothing opened when it is current), so a snapshot fetched while the
server runs is found at once and a fresh archive just works. When the index cannot be written
(a read-only archive) the page says so, and shows what the index holds if there is one.
`history.db` is also a Datasette database (`/history`, read-only), so its `people` table has
Datasette's own search box.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from datasette.utils import tilde_encode
from datasette.utils.asgi import NotFound, Response

from ..archive.history import (
    HISTORY_DB,
    HistoryIndexError,
    is_current,
    open_for_reading,
    update_index,
)
from ..archive.layout import ArchiveError, safe_estab, school_dir
from ..model import COLLECTIONS
from ..report.wording import utc_text
from . import record_history
from .catalogue import open_changes

HISTORY = "history"  # Datasette names a database after its file
HISTORY_METADATA: dict[str, Any] = {
    "title": "Record index: history and people search",
    "description": (
        "Every record's versions across its school's snapshots, and the people of each school "
        "(leavers included) with a full-text search. Built from the snapshot files: safe to "
        "delete, it is rebuilt."
    ),
    "tables": {
        "people": {
            "title": "People",
            "description": (
                "One row per user per school: current names, email, username, identifiers, "
                "role, when first and last seen, when marked tobedeleted or gone, and earlier "
                "names and emails."
            ),
        },
        "snapshots": {"description": "The snapshots indexed, per school, in order (seq)."},
        "versions": {"description": "Each distinct content of a record (its _record JSON)."},
        "spans": {
            "description": "Runs of snapshots a record kept one version (last_seq null: it "
            "is in the latest snapshot; gone_seq: the snapshot it was missing from)."
        },
    },
}


def history_url(estab: str, entity: str, sourced_id: str) -> str:
    """The address of a record's history (`render_cell` links every `*_sourcedId` here)."""
    return (
        f"/-/snapshotter/history/{quote(estab, safe='')}/{quote(entity, safe='')}/"
        f"{quote(sourced_id, safe='')}"
    )


def _catch_up(archive: Path, estab: str) -> str | None:
    """Index the school's snapshots the index lacks; a line saying why not, when it cannot."""
    try:
        if not is_current(archive, estab):
            update_index(archive, estab)
    except (HistoryIndexError, ArchiveError, OSError) as exc:
        return str(exc)
    return None


@contextmanager
def _index_view(
    archive: Path, estab: str
) -> Iterator[tuple[sqlite3.Connection | None, str | None]]:
    """The record index brought up to date for `estab` and read in one transaction (one
    consistent view while another process indexes), with the problem met on the way, if any;
    no connection when the index cannot be read (the problem says why)."""
    problem = _catch_up(archive, estab)
    try:
        conn = open_for_reading(archive)
    except HistoryIndexError as exc:
        conn, problem = None, str(exc)
    if conn is None:
        yield None, problem or "the record index has not been built yet"
        return
    with closing(conn):
        conn.execute("BEGIN")
        yield conn, problem


def _history_data(archive: Path, estab: str, entity: str, sourced_id: str) -> dict[str, Any]:
    with _index_view(archive, estab) as (conn, problem):
        if conn is None:
            return {"unavailable": problem}
        snapshots = record_history.school_snapshots(conn, estab)
        if not snapshots:
            return {"school_missing": True, "problem": problem}
        found = record_history.record_events(conn, estab, entity, sourced_id)
        if found is None:
            return {"record_missing": True, "problem": problem}
        events, latest = found
        changes = open_changes(archive)
        runs = []
        if changes is not None:
            with closing(changes):
                runs = record_history.diff_runs_mentioning(changes, estab, entity, sourced_id)
        return {
            "problem": problem,
            "events": events,
            "latest": latest,
            "label": record_history.label_of(conn, estab, entity, latest),
            "school_name": record_history.school_name(conn, estab),
            "runs": runs,
            "enrollments": (
                record_history.enrollments_of(conn, estab, sourced_id) if entity == "users" else []
            ),
            "latest_snapshot": snapshots[max(snapshots)],
        }


def _search_data(archive: Path, estab: str, text: str) -> dict[str, Any]:
    with _index_view(archive, estab) as (conn, problem):
        if conn is None:
            return {"unavailable": problem}
        snapshots = record_history.school_snapshots(conn, estab)
        if not snapshots and not school_dir(archive, estab).is_dir():
            return {"school_missing": True}
        hits = record_history.search_people(conn, estab, text) if text.strip() else []
        return {
            "problem": problem,
            "hits": hits,
            "school_name": record_history.school_name(conn, estab),
            "searched": record_history.fts_query(text) is not None or bool(hits),
        }


def _estab_of(value: str) -> str:
    try:
        return safe_estab(unquote(value))
    except ArchiveError:
        raise NotFound("No such school in this archive") from None


async def _unavailable(datasette: Any, request: Any, problem: str) -> Response:
    response = Response.html(
        await datasette.render_template(
            "snapshotter/unavailable.html", {"problem": problem}, request=request
        )
    )
    response.status = 503
    return response


async def history_page(datasette: Any, request: Any) -> Response:
    from .plugin import _archive_or_404  # imported late: plugin imports this module

    archive = _archive_or_404(datasette)
    estab = _estab_of(request.url_vars["estab"])
    entity = unquote(request.url_vars["entity"])
    sourced_id = unquote(request.url_vars["sourced_id"])
    if entity not in COLLECTIONS:
        raise NotFound(f"No entity {entity!r}: one of {', '.join(COLLECTIONS)}")
    data = await asyncio.to_thread(_history_data, archive, estab, entity, sourced_id)
    if "unavailable" in data:
        return await _unavailable(datasette, request, data["unavailable"])
    if data.get("school_missing"):
        raise NotFound(f"No snapshots of school {estab} in this archive")
    if data.get("record_missing"):
        raise NotFound(f"No {entity} record {sourced_id!r} in the snapshots of school {estab}")

    def row_url(snapshot_name: str) -> str:
        # By path: the snapshot is attached when that page is asked for, not before.
        return datasette.urls.path(
            f"/{snapshot_name}/{tilde_encode(entity)}/{tilde_encode(sourced_id)}"
        )

    def run_url(run_id: int) -> str:
        return datasette.urls.path(f"/-/snapshotter/runs/{run_id}")

    context = {
        **data,
        "estab": estab,
        "entity": entity,
        "sourced_id": sourced_id,
        "utc_text": utc_text,
        "row_url": row_url,
        "run_url": run_url,
        "history_url": lambda ent, sid: datasette.urls.path(history_url(estab, ent, sid)),
        "search_url": datasette.urls.path(f"/-/snapshotter/search/{quote(estab, safe='')}"),
    }
    return Response.html(
        await datasette.render_template("snapshotter/history.html", context, request=request)
    )


async def search_page(datasette: Any, request: Any) -> Response:
    from .plugin import _archive_or_404

    archive = _archive_or_404(datasette)
    estab = _estab_of(request.url_vars["estab"])
    text = request.args.get("q") or ""
    data = await asyncio.to_thread(_search_data, archive, estab, text)
    if "unavailable" in data:
        return await _unavailable(datasette, request, data["unavailable"])
    if data.get("school_missing"):
        raise NotFound(f"No snapshots of school {estab} in this archive")
    context = {
        **data,
        "estab": estab,
        "q": text,
        "utc_text": utc_text,
        "history_url": lambda sid: datasette.urls.path(history_url(estab, "users", sid)),
        "people_table": datasette.urls.path(f"/{HISTORY}/people"),
    }
    return Response.html(
        await datasette.render_template("snapshotter/search.html", context, request=request)
    )


ROUTES = [
    (
        r"^/-/snapshotter/history/(?P<estab>[^/]+)/(?P<entity>[^/]+)/(?P<sourced_id>[^/]+)$",
        history_page,
    ),
    (r"^/-/snapshotter/search/(?P<estab>[^/]+)$", search_page),
]

__all__ = ["HISTORY", "HISTORY_DB", "HISTORY_METADATA", "ROUTES", "history_url"]
