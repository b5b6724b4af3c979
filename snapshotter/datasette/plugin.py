"""Datasette's hooks for the archive: the pages, robots.txt, the templates, and databases
attached when a page asks for them.

The archive is the `archive` of this plugin's configuration (`snapshotter serve` sets it), else
the folder of the `changes.db` Datasette was given, else $SNAPSHOTTER_ARCHIVE. Snapshot files
are not introspected at start: a request for `/<snapshot name>/...` attaches that file, immutable,
the first time (so a snapshot fetched while the server runs is there without a restart, and a
year of nightly snapshots costs nothing until one is opened); `changes.db` likewise, read-only.

`plugins/snapshotter_pages.py` re-exports these hooks for `datasette serve --plugins-dir plugins`.
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from datasette import hookimpl
from datasette.database import Database
from datasette.utils.asgi import NotFound, Response
from jinja2 import FileSystemLoader
from markupsafe import Markup, escape

from ..archive.layout import (
    ARCHIVE_ENV,
    CHANGES_DB,
    ArchiveError,
    SnapshotInfo,
    estab_of_name,
    read_snapshot_info,
    safe_estab,
)
from ..report.wording import KIND_WORDS, noun, utc_text
from . import catalogue, cells, chart, compare_pages, descriptions, history_pages, quality_pages
from .auth import refused as refuse_anonymous

__all__ = [
    "asgi_wrapper",
    "get_metadata",
    "prepare_jinja2_environment",
    "register_routes",
    "render_cell",
]

PLUGIN = "snapshotter"
CHANGES = "changes"  # Datasette names a database after its file
TEMPLATES = Path(__file__).parent / "templates"
ROBOTS_TXT = "User-agent: *\nDisallow: /\n"
# The first segment of a path: a database's name, before `/`, `.json` or the end.
_FIRST_SEGMENT = re.compile(r"^/([^/.]+)")


def archive_of(datasette: Any) -> Path | None:
    """The archive this site shows (see the module's docstring)."""
    configured = (datasette.plugin_config(PLUGIN) or {}).get("archive")
    if configured:
        return Path(configured)
    for database in datasette.databases.values():
        if database.path and Path(database.path).name == CHANGES_DB:
            return Path(database.path).parent
    from_env = os.environ.get(ARCHIVE_ENV)
    return Path(from_env) if from_env else None


def attach(datasette: Any, name: str) -> bool:
    """Attach snapshot `name` (immutable) or `changes` (read-only) from the archive if it is not
    yet; False when there is no such file. No await between the check and the add: two requests
    cannot attach one file twice."""
    if name in datasette.databases:
        return True
    archive = archive_of(datasette)
    if archive is None:
        return False
    estab = estab_of_name(name)
    if name == CHANGES:
        path, mutable = archive / CHANGES_DB, True
    elif name == history_pages.HISTORY:
        path, mutable = archive / history_pages.HISTORY_DB, True  # opened read-only, as changes
    elif estab is not None:
        path, mutable = archive / safe_estab(estab) / f"{name}.db", False
    else:
        return False
    if not path.is_file():
        return False
    if not mutable:
        try:
            info = read_snapshot_info(path)
        except ArchiveError:
            return False  # the home page lists it as unreadable, saying why
        _SNAPSHOT_TITLES.setdefault(datasette, {})[name] = _snapshot_metadata(info)
    datasette.add_database(Database(datasette, path=str(path), is_mutable=mutable), name=name)
    return True


# The title of each snapshot attached, per Datasette instance: files are immutable, so read once.
_SNAPSHOT_TITLES: weakref.WeakKeyDictionary[Any, dict[str, dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def _snapshot_metadata(info: SnapshotInfo) -> dict[str, str]:
    school = info.school_name or f"estab {info.estab}"
    state = "complete" if info.complete else "INCOMPLETE"
    return {
        "title": f"{school}: snapshot of {utc_text(info.taken_at)}",
        "description": f"A {state} snapshot of OneRoster data (source: {info.source}).",
    }


@hookimpl
def get_metadata(datasette: Any, key: str, database: str | None, table: str | None) -> dict:
    """Titles, and descriptions of each table and column, for the snapshot files open: their
    names are timestamps, so metadata.yml cannot list them. Built anew on each call, as
    Datasette writes into the metadata it is given."""
    titles = _SNAPSHOT_TITLES.get(datasette, {})
    # Only a lookup that can reach a table (Datasette's table pages look up "databases", or
    # everything) needs the tables: the others (the site's title, a licence) skip that work.
    with_tables = key in (None, "databases", "tables", "columns")
    snapshots = {}
    for name in list(datasette.databases):
        if name == CHANGES or estab_of_name(name) is None:
            continue
        snapshots[name] = dict(titles.get(name, {}))
        if with_tables:
            snapshots[name]["tables"] = descriptions.snapshot_tables()
    snapshots[history_pages.HISTORY] = history_pages.HISTORY_METADATA
    return {"databases": snapshots}


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    def wrap(app: Any) -> Callable[..., Awaitable[None]]:
        async def attaching_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            # With a password configured, nothing (not even a database attached) before sign-in.
            if await refuse_anonymous(datasette, scope, receive, send):
                return
            if scope.get("type") == "http":
                match = _FIRST_SEGMENT.match(scope.get("path", ""))
                if match and match[1] != "-":
                    attach(datasette, match[1])
            await app(scope, receive, send)

        return attaching_app

    return wrap


@hookimpl
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    # Datasette finds a plugin's templates only for an installed package; this finds them for
    # `--plugins-dir` too. Names are under `snapshotter/`, so no template of Datasette's is hidden.
    env.loader.loaders.append(FileSystemLoader(str(TEMPLATES)))


def _archive_or_404(datasette: Any) -> Path:
    archive = archive_of(datasette)
    if archive is None:
        raise NotFound(
            "No archive: start the site with `snapshotter serve`, or give Datasette the "
            "archive's changes.db"
        )
    return archive


async def robots_txt() -> Response:
    return Response.text(ROBOTS_TXT)


async def home(datasette: Any, request: Any) -> Response:
    archive = _archive_or_404(datasette)
    schools = await asyncio.to_thread(catalogue.schools, archive)
    quality = await asyncio.to_thread(quality_pages.kept_severities, archive)
    return Response.html(
        await datasette.render_template(
            "snapshotter/home.html",
            {
                "schools": schools,
                "archive": str(archive),
                "site_title": datasette.metadata("title") or "Snapshotter archive",
                "utc_text": utc_text,
                "chart": chart.school_chart,
                "job_history": await asyncio.to_thread(catalogue.has_job_history, archive),
                "quality": quality,
            },
            request=request,
        )
    )


def _count_links(datasette: Any, run_id: int, summary: dict[str, dict[str, int]]) -> list[dict]:
    """Each count of the run, and the address of its rows in Datasette's table view."""
    table = datasette.urls.table(CHANGES, "changed_records")
    rows = []
    for entity, kinds in summary.items():
        for kind, count in kinds.items():
            if not count:
                continue
            query = urlencode({"run_id": run_id, "entity": entity, "change": kind})
            rows.append(
                {
                    "entity": entity,
                    "change": kind,
                    "count": count,
                    "words": f"{noun(entity, count)} {KIND_WORDS.get(kind, kind)}",
                    "url": f"{table}?{query}",
                }
            )
    return rows


async def run_report(datasette: Any, request: Any) -> Response:
    archive = _archive_or_404(datasette)
    run_id = int(request.url_vars["run_id"])
    page = await asyncio.to_thread(catalogue.run_page, archive, run_id)
    if page is None:
        raise NotFound(f"No diff run {run_id} in this archive")
    attach(datasette, CHANGES)
    page["counts"] = _count_links(datasette, run_id, page["summary"])
    page["utc_text"] = utc_text
    page["quality"] = await asyncio.to_thread(
        quality_pages.run_quality, archive, page["old"], page["new"]
    )
    page["queries"] = {
        name: datasette.urls.database(CHANGES) + f"/{name}?" + urlencode({"run_id": run_id})
        for name in QUERY_NAMES
    }
    return Response.html(
        await datasette.render_template("snapshotter/run.html", page, request=request)
    )


# Columns of changes.db that hold a diff run's id: their cells link to its change report.
RUN_ID_COLUMNS = {
    ("change_counts", "run_id"),
    ("changed_records", "run_id"),
    ("changed_fields", "run_id"),
}


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """A run id in Datasette's own table and row pages links to that run's change report."""
    # Ids, lists and timestamps as people read them (`cells`).
    readable = cells.readable_cell(row, value, column, table, database, datasette)
    if readable is not None:
        return readable
    if database != CHANGES or (table, column) not in RUN_ID_COLUMNS or not isinstance(value, int):
        return None
    url = datasette.urls.path(f"/-/snapshotter/runs/{value}")
    return Markup(f'<a href="{escape(url)}" title="the change report">{value}</a>')


# The canned queries of metadata.yml a report links to, each taking `run_id`.
QUERY_NAMES = (
    "joiners_and_leavers_by_role",
    "staff_leavers_with_classes",
    "year_group_changes_in_run",
    "class_moves_in_run",
    "identity_changes_in_run",
)


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Callable[..., Any]]]:
    # A plugin's routes come before Datasette's own: `/` is the archive, not Datasette's index
    # (which would open every snapshot file to count its tables).
    return [
        (r"^/$", home),
        (r"^/robots\.txt$", robots_txt),
        (r"^/-/snapshotter/runs/(?P<run_id>[0-9]{1,15})$", run_report),
        (r"^/-/snapshotter/compare/(?P<estab>[^/]+)$", compare_pages.compare_page),
        *history_pages.ROUTES,
        *quality_pages.ROUTES,
    ]
