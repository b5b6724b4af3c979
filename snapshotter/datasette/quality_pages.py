"""The data-quality page of a snapshot, and the quality figures the home and run pages show.

    /-/snapshotter/quality/<snapshot name>

The snapshot's findings as `snapshotter check` keeps them in `changes.db` (read-only here); a
snapshot never checked is checked on the spot, in a worker thread, and nothing is written (the
site only reads: the page says how to keep them). Then the trend of each rule across the
school's checked snapshots, from `quality_checks.counts`: a table and a tiny inline SVG per rule
(no script, nothing from another host).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

from ..archive.layout import (
    CHANGES_DB,
    ArchiveError,
    SnapshotInfo,
    estab_of_name,
    read_only_uri,
    read_snapshot_info,
    safe_estab,
)
from ..quality.compare import compare
from ..quality.rules import RULES, SEVERITIES, Finding
from ..quality.run import CheckResult, check_snapshot
from ..quality.store import has_kept_checks, kept_check_id, load_kept
from ..report.wording import utc_text
from .history_pages import history_url

# Findings shown per rule: the rest are one click away in Datasette's table view.
SHOWN_PER_RULE = 50
# Checked snapshots in the trend, newest last.
TREND_SNAPSHOTS = 12
SPARK_WIDTH, SPARK_HEIGHT = 96, 20


def quality_url(name: str) -> str:
    """The address of a snapshot's data-quality page."""
    return f"/-/snapshotter/quality/{quote(name, safe='')}"


def _open_changes(archive: Path) -> sqlite3.Connection | None:
    """`changes.db` read-only (never reshaped nor created here), or None when there is none."""
    path = archive / CHANGES_DB
    if not path.is_file():
        return None
    return sqlite3.connect(read_only_uri(path), uri=True)


def snapshot_info(archive: Path, name: str) -> SnapshotInfo | None:
    """The snapshot a page names, or None when the archive has no such (readable) file."""
    estab = estab_of_name(name)
    if estab is None:
        return None
    path = archive / safe_estab(estab) / f"{name}.db"
    if not path.is_file():
        return None
    try:
        return read_snapshot_info(path)
    except ArchiveError:
        return None


@dataclass(frozen=True)
class TrendPoint:
    name: str
    taken_at: str
    counts: dict[str, int]
    kept: bool


def trend(
    conn: sqlite3.Connection | None, info: SnapshotInfo, result: CheckResult, kept: bool
) -> list[TrendPoint]:
    """The school's checked snapshots, oldest first: the last `TREND_SNAPSHOTS`, or those ending
    at this snapshot when it is older; this snapshot is among them, kept or computed."""
    points: dict[str, TrendPoint] = {}
    if conn is not None and has_kept_checks(conn):
        # A snapshot checked again (another content hash) counts once: its latest check.
        for name, taken_at, counts in conn.execute(
            "SELECT snapshot_name, taken_at, counts FROM quality_checks WHERE estab = ? "
            "ORDER BY id",
            (info.estab,),
        ):
            points[name] = TrendPoint(name, taken_at, json.loads(counts), True)
    points[info.path.stem] = TrendPoint(info.path.stem, info.taken_at, result.counts, kept)
    ordered = sorted(points.values(), key=lambda p: (p.taken_at, p.name))
    at = next(i for i, p in enumerate(ordered) if p.name == info.path.stem)
    end = len(ordered) if len(ordered) - at <= TREND_SNAPSHOTS else at + 1
    return ordered[max(end - TREND_SNAPSHOTS, 0) : end]


def sparkline(values: list[int], marked: int) -> Markup:
    """A tiny line of `values` (oldest first), the marked one as a dot: inline SVG, no script."""
    top = max(max(values, default=0), 1)
    step = (SPARK_WIDTH - 4) / max(len(values) - 1, 1)
    coords = [
        (round(2 + i * step, 1), round(SPARK_HEIGHT - 2 - (SPARK_HEIGHT - 4) * v / top, 1))
        for i, v in enumerate(values)
    ]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dot = ""
    if 0 <= marked < len(coords):
        x, y = coords[marked]
        dot = f'<circle cx="{x}" cy="{y}" r="2.5" fill="#D55E00"/>'
    return Markup(
        f'<svg class="quality-spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" aria-hidden="true">'
        f'<polyline points="{line}" fill="none" stroke="#0072B2" stroke-width="1.5"/>{dot}</svg>'
    )


def page_context(archive: Path, name: str) -> dict[str, Any] | None:
    """What the page shows of snapshot `name`; None when the archive has no such snapshot.
    Runs in a worker thread: checking a snapshot never checked takes a moment."""
    info = snapshot_info(archive, name)
    if info is None:
        return None
    conn = _open_changes(archive)
    with closing(conn) if conn is not None else _nothing():
        kept_result = load_kept(conn, info) if conn is not None else None
        kept = kept_result is not None
        result = kept_result if kept_result is not None else check_snapshot(info)
        kept_id = kept_check_id(conn, info) if kept and conn is not None else None
        points = trend(conn, info, result, kept)
    grouped: dict[str, list[Finding]] = {}
    for finding in result.findings:
        grouped.setdefault(finding.rule, []).append(finding)
    counts = result.counts
    marked = next(i for i, p in enumerate(points) if p.name == name)
    rules = []
    for rule in RULES:
        findings = grouped.get(rule.id, [])
        rules.append(
            {
                "rule": rule,
                "count": counts[rule.id],
                "findings": findings[:SHOWN_PER_RULE],
                "more": max(len(findings) - SHOWN_PER_RULE, 0),
                "more_query": urlencode({"check_id": kept_id, "rule": rule.id})
                if kept_id is not None
                else None,
                "trend": [p.counts.get(rule.id, 0) for p in points],
                "spark": sparkline([p.counts.get(rule.id, 0) for p in points], marked),
            }
        )
    by_severity = {s: sum(counts[r.id] for r in RULES if r.severity == s) for s in SEVERITIES}
    return {
        "info": info,
        "name": name,
        "kept": kept,
        "check_id": kept_id,
        "total": len(result.findings),
        "by_severity": by_severity,
        "rules": rules,
        "points": points,
        "marked": marked,
        "utc_text": utc_text,
    }


class _nothing:  # noqa: N801 - a stand-in for `closing` when there is no connection
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def kept_severities(archive: Path) -> dict[tuple[str, str], dict[str, int]]:
    """The kept counts by severity of each checked snapshot, by (name, content hash): the home
    page shows them beside each snapshot."""
    conn = _open_changes(archive)
    if conn is None:
        return {}
    severity_of = {rule.id: rule.severity for rule in RULES}
    kept: dict[tuple[str, str], dict[str, int]] = {}
    with closing(conn):
        if not has_kept_checks(conn):
            return {}
        for name, content_hash, counts in conn.execute(
            "SELECT snapshot_name, content_hash, counts FROM quality_checks"
        ):
            by_severity = dict.fromkeys(SEVERITIES, 0)
            for rule, count in json.loads(counts).items():
                if rule in severity_of:
                    by_severity[severity_of[rule]] += count
            kept[(name, content_hash)] = by_severity
    return kept


def run_quality(archive: Path, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """For a change report: both snapshots' quality pages, and the new and fixed problems when
    both snapshots' findings are kept (nothing is computed here: the page stays fast)."""
    infos = [snapshot_info(archive, side["name"]) for side in (old, new)]
    # A pruned snapshot has no page: no link to a 404.
    links = {
        key: quality_url(side["name"]) if info is not None else None
        for key, side, info in zip(("old", "new"), (old, new), infos, strict=True)
    }
    conn = _open_changes(archive)
    if conn is None or None in infos:
        if conn is not None:
            conn.close()
        return {"links": links, "changes": None}
    with closing(conn):
        results = [load_kept(conn, info) for info in infos if info is not None]
    if len(results) != 2 or results[0] is None or results[1] is None:
        return {"links": links, "changes": None}
    changes = compare(results[0], results[1])
    return {"links": links, "changes": {"new": len(changes.new), "fixed": len(changes.fixed)}}


async def quality_page(datasette: Any, request: Any) -> Response:
    from .plugin import CHANGES, _archive_or_404, attach

    archive = _archive_or_404(datasette)
    name = request.url_vars["name"]
    page = await asyncio.to_thread(page_context, archive, name)
    if page is None:
        raise NotFound(f"No snapshot {name} in this archive")
    if page["check_id"] is not None and attach(datasette, CHANGES):
        page["findings_table"] = datasette.urls.table(CHANGES, "quality_findings")
    else:
        page["findings_table"] = None
    page["snapshot_url"] = datasette.urls.path(quote(name, safe=""))
    page["history_link"] = lambda entity, sid: datasette.urls.path(
        history_url(page["info"].estab, entity, sid)
    )
    return Response.html(
        await datasette.render_template("snapshotter/quality.html", page, request=request)
    )


ROUTES = [(r"^/-/snapshotter/quality/(?P<name>[^/]+)$", quality_page)]
