"""The home page's chart: a school's record counts per entity over time, drawn on the server as
inline SVG. No script, no asset, no request to another host (school networks, children's data).

One line per entity, one point per snapshot, placed by the time it was taken; an incomplete
snapshot's points are hollow and its time is marked. The same numbers are in a table beside it,
for screen readers and for reading exact values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from ..archive.checks import parse_started_at
from ..archive.layout import SnapshotInfo
from ..model import COLLECTIONS
from ..report.wording import utc_text

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 12, 36  # margins: axis labels left and below, legend right
# Colours told apart by people with the common kinds of colour blindness (Okabe and Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")


def _x_positions(moments: Sequence[datetime]) -> list[float]:
    plot = WIDTH - LEFT - RIGHT
    if len(moments) < 2 or moments[-1] == moments[0]:
        return [LEFT + plot / 2] * len(moments)
    first, span = moments[0], (moments[-1] - moments[0]).total_seconds()
    return [LEFT + plot * (m - first).total_seconds() / span for m in moments]


def _top_of_scale(largest: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at least `largest`."""
    decade = 1
    while True:
        for step in (1, 2, 5):
            if decade * step >= largest:
                return decade * step
        decade *= 10


def _y(count: int, top: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - count / top)


def _svg(estab: str, snapshots: Sequence[SnapshotInfo]) -> str:
    moments = [parse_started_at(info.taken_at) for info in snapshots]
    xs = _x_positions(moments)
    largest = max((n for info in snapshots for n in info.record_counts.values()), default=0)
    top = _top_of_scale(max(largest, 1))
    title_id = f"chart-title-{escape(estab)}"
    parts = [
        f'<svg class="snapshotter-chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{title_id}">',
        f'<title id="{title_id}">Records per entity in each of the {len(snapshots)} '
        f"snapshot{'s' if len(snapshots) != 1 else ''}, "
        f"{escape(utc_text(snapshots[0].taken_at))} to "
        f"{escape(utc_text(snapshots[-1].taken_at))}</title>",
    ]
    bottom = HEIGHT - BOTTOM
    for value in (0, top // 2, top):  # the scale
        y = _y(value, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{value:,}</text>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">'
        f"{escape(utc_text(snapshots[0].taken_at)[:10])}</text>"
    )
    if len(snapshots) > 1:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11">'
            f"{escape(utc_text(snapshots[-1].taken_at)[:10])}</text>"
        )
    for info, x in zip(snapshots, xs, strict=True):
        if not info.complete:
            parts.append(
                f'<line class="incomplete-mark" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
                f'y2="{bottom}" stroke="#999" stroke-dasharray="3 3"/>'
            )
    for index, collection in enumerate(COLLECTIONS):
        colour = COLOURS[index % len(COLOURS)]
        points = [
            (x, _y(info.record_counts[collection], top), info)
            for info, x in zip(snapshots, xs, strict=True)
            if collection in info.record_counts
        ]
        if not points:
            continue
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y, info in points:
            state = "" if info.complete else " (incomplete)"
            fill = colour if info.complete else "#fff"
            parts.append(
                f'<circle class="point{"" if info.complete else " incomplete"}" '
                f'data-entity="{collection}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{fill}" '
                f'stroke="{colour}" stroke-width="1.5"><title>{collection}: '
                f"{info.record_counts[collection]:,} on "
                f"{escape(utc_text(info.taken_at))}{state}</title></circle>"
            )
        legend_y = TOP + 14 + index * 18
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 12}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{colour}"/><text x="{WIDTH - RIGHT + 28}" y="{legend_y}" font-size="12">'
            f"{collection}</text>"
        )
    if not all(info.complete for info in snapshots):
        legend_y = TOP + 14 + len(COLLECTIONS) * 18
        parts.append(
            f'<circle cx="{WIDTH - RIGHT + 17}" cy="{legend_y - 4}" r="3.5" fill="#fff" '
            f'stroke="#333"/><text x="{WIDTH - RIGHT + 28}" y="{legend_y}" font-size="12">'
            "incomplete</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(snapshots: Sequence[SnapshotInfo]) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLLECTIONS)
    rows = []
    for info in snapshots:
        cells = "".join(
            f"<td>{info.record_counts[c]:,}</td>" if c in info.record_counts else "<td></td>"
            for c in COLLECTIONS
        )
        state = "complete" if info.complete else "<strong>incomplete</strong>"
        rows.append(f"<tr><td>{escape(utc_text(info.taken_at))}</td><td>{state}</td>{cells}</tr>")
    return (
        '<details class="chart-numbers"><summary>The numbers in the chart</summary>'
        '<table class="rows-and-columns"><thead><tr><th>Taken</th><th>State</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def school_chart(school: object) -> Markup:
    """The chart of a school of `catalogue.schools` (its snapshots oldest first) and the table
    of its numbers; nothing when it has no snapshot."""
    snapshots: list[SnapshotInfo] = getattr(school, "snapshots", [])
    if not snapshots:
        return Markup("")
    estab = str(getattr(school, "estab", ""))
    return Markup(
        f'<figure class="snapshotter-chart">{_svg(estab, snapshots)}{_table(snapshots)}</figure>'
    )
