"""The compare page, `/-/snapshotter/compare/<estab>?old=…&new=…`: any two snapshots of a
school diffed on demand with the diff's own engine and shown as a saved report is, without
saving anything.

`old` and `new` take the selectors of `snapshotter diff` (`select.resolve_one`: `latest`,
`previous`, a time prefix, an academic session's title) and a snapshot's name; never a path,
which would let a visitor open any file of the server. The diff runs in a worker thread, one at
a time, into a changes database in a temporary directory of its own (on disk, not in memory: a
rollover of a large school is a hundred thousand rows), deleted once the page is made. The
archive and its changes.db are only read.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import threading
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasette.utils.asgi import NotFound, Response

from ..archive.changes import open_changes_db, write_transaction
from ..archive.layout import (
    ArchiveError,
    SnapshotInfo,
    list_archive,
    open_snapshot,
    safe_estab,
)
from ..archive.people import headline
from ..diff.run import diff_into
from ..report.saved import load_report
from ..report.wording import KIND_WORDS, noun, utc_text

# `_is_path`: the very test `resolve_one` applies before it opens a file a selector names.
from ..select import LATEST, PREVIOUS, SelectionError, _is_path, check_pair, resolve_one
from . import catalogue

TEMPLATE = "snapshotter/compare.html"
# A diff of two large snapshots keeps a core busy for seconds: one at a time, so that a few
# visitors cannot take the machine (or its temporary disk) between them.
_ONE_DIFF_AT_A_TIME = threading.Lock()


class CompareRefused(Exception):
    """The selectors name no pair that can be compared; the message says why (a 400)."""


@dataclass
class Session:
    title: str
    type: str
    start: str


@dataclass
class CompareChoices:
    """What the form offers: the school's complete snapshots (oldest first) and the academic
    sessions at least one of them was taken in."""

    estab: str
    school_name: str | None
    snapshots: list[SnapshotInfo]
    sessions: list[Session] = field(default_factory=list)


def choices(archive: Path, estab: str) -> CompareChoices | None:
    """The form's choices for a school, or None when the archive holds no snapshot of it."""
    try:
        listing = list_archive(archive, safe_estab(estab))
    except ArchiveError:
        return None
    if not listing.snapshots:
        return None
    complete = [info for info in listing.snapshots if info.complete]
    school_name = next((s.school_name for s in reversed(listing.snapshots) if s.school_name), None)
    # The estab as the files spell it, not as the address did.
    return CompareChoices(listing.snapshots[-1].estab, school_name, complete, _sessions(complete))


def _sessions(snapshots: list[SnapshotInfo]) -> list[Session]:
    """Sessions of the first and the last snapshot (a year's snapshots share most of them)
    that some snapshot was taken in, by start date."""
    if not snapshots:
        return []
    taken = [info.taken_at[:10] for info in snapshots]
    found: dict[str, Session] = {}
    for info in {id(s): s for s in (snapshots[0], snapshots[-1])}.values():
        try:
            with closing(open_snapshot(info.path)) as conn:
                rows = conn.execute(
                    "SELECT title, type, startDate, endDate FROM academicSessions "
                    "WHERE title IS NOT NULL AND trim(title) != '' AND startDate IS NOT NULL"
                ).fetchall()
        except (sqlite3.Error, ArchiveError):
            continue  # the form still offers the snapshots by date
        for title, session_type, start, end in rows:
            if any(start <= day and (end is None or day < end) for day in taken):
                found.setdefault(
                    str(title).strip().lower(), Session(str(title), session_type, start)
                )
    return sorted(found.values(), key=lambda s: (s.start, s.type != "schoolYear", s.title))


def resolve(spec: str, snapshots: list[SnapshotInfo]) -> SnapshotInfo:
    """The snapshot a selector names among the school's complete snapshots."""
    by_name = {info.path.stem: info for info in snapshots}
    name = spec.strip().removesuffix(".db")
    if name in by_name:
        return by_name[name]
    if _is_path(spec) or "\x00" in spec:
        raise SelectionError(
            f"{spec!r} is not the name of a complete snapshot of this school: choose one from "
            "the list (a file path is not accepted here)"
        )
    return resolve_one(spec.strip(), snapshots)


def compare(archive: Path, choice: CompareChoices, old_spec: str, new_spec: str) -> dict[str, Any]:
    """The report of the two snapshots the selectors name, diffed now and kept nowhere: the
    context of the run page's template (`catalogue.report_context`), or `same` when both name
    one snapshot. Raises CompareRefused."""
    try:
        old = resolve(old_spec, choice.snapshots)
        new = resolve(new_spec, choice.snapshots)
        if old.path.resolve() == new.path.resolve():
            return {"same": old}
        check_pair(old, new)
    except ArchiveError as exc:  # SelectionError, or a snapshot that cannot be read
        raise CompareRefused(str(exc)) from exc
    with (
        _ONE_DIFF_AT_A_TIME,
        tempfile.TemporaryDirectory(prefix="snapshotter-compare-") as scratch,
        closing(open_changes_db(Path(scratch) / "compare.db")) as conn,
    ):
        with write_transaction(conn):
            result = diff_into(conn, old, new)
        report = load_report(conn, result.run_id)
        return catalogue.report_context(report, headline(conn, result.run_id))


def _counts(summary: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The run page's counts table, without links: the rows are in no table."""
    return [
        {
            "entity": entity,
            "change": kind,
            "count": count,
            "words": f"{noun(entity, count)} {KIND_WORDS.get(kind, kind)}",
            "url": None,
        }
        for entity, kinds in summary.items()
        for kind, count in kinds.items()
        if count
    ]


async def compare_page(datasette: Any, request: Any) -> Response:
    # Imported here: the plugin module imports this one for its routes.
    from .plugin import _archive_or_404

    archive = _archive_or_404(datasette)
    estab = request.url_vars["estab"]
    choice = await asyncio.to_thread(choices, archive, estab)
    if choice is None:
        raise NotFound(f"No snapshots of school {estab} in this archive")
    old_spec = (request.args.get("old") or "").strip()
    new_spec = (request.args.get("new") or "").strip()
    context: dict[str, Any] = {
        "choice": choice,
        "old_spec": old_spec or PREVIOUS,
        "new_spec": new_spec or LATEST,
        "utc_text": utc_text,
        "compared": True,
        "report": None,
        "message": None,
    }
    status = 200
    if old_spec or new_spec:
        try:
            found = await asyncio.to_thread(
                compare, archive, choice, old_spec or PREVIOUS, new_spec or LATEST
            )
        except CompareRefused as exc:
            context["message"] = str(exc)
            status = 400
        else:
            if "same" in found:
                context["same"] = found["same"]
            else:
                context.update(found)
                context["report"] = True
                context["counts"] = _counts(context["summary"])
    html = await datasette.render_template(TEMPLATE, context, request=request)
    return Response.html(html, status=status)
