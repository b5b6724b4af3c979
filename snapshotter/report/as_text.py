"""The human summary: counts per entity, then each change, in the manner of csv-diff.

Read on a terminal: everything that came from the provider (names, ids, paths, values, the
school's name) passes through `printable`, so it is shown and never obeyed.
"""

from __future__ import annotations

from typing import TextIO

from ..safe_text import printable
from .saved import Report
from .wording import KIND_WORDS, entity_sentence, school_line, show, snapshot_line, volume_lines


def render_text(report: Report, out: TextIO, *, examples: int | None = None) -> None:
    """The whole report; with `examples`, at most that many records of each kind and entity."""
    out.write(f"Changes for {printable(school_line(report.new))}\n")
    out.write(f"  from {printable(snapshot_line(report.old))}\n")
    out.write(f"  to   {printable(snapshot_line(report.new))}\n\n")
    sentences = [s for c, counts in report.summary.items() if (s := entity_sentence(c, counts))]
    out.write("\n".join(sentences) if sentences else "No changes.")
    out.write("\n")
    volume = volume_lines(
        report.mass_changes, report.mass_change_pct, report.rollover, report.new["school_year"]
    )
    if volume:
        out.write("\n" + "\n".join(f"Volume: {printable(line)}" for line in volume) + "\n")
    heading = None
    shown = count = 0
    for change in report.changes():
        if (change.entity, change.change) != heading:
            heading = (change.entity, change.change)
            count = report.summary.get(change.entity, {}).get(change.change, 0)
            kind = KIND_WORDS.get(change.change, change.change)
            out.write(f"\n{change.entity} {kind} ({count})\n")
            shown = 0
        if examples is not None and shown >= examples:
            continue
        shown += 1
        out.write(f"  {printable(change.label)}  [{printable(change.sourcedId)}]\n")
        for field in change.fields:
            old, new = show(field.old), show(field.new)
            out.write(f"    {printable(field.path)}: {printable(old)} → {printable(new)}\n")
        held = change.details.get("classes")
        if held:
            out.write("    held: " + ", ".join(printable(c["label"]) for c in held) + "\n")
        if examples is not None and shown == examples and count > examples:
            out.write(f"  ... and {count - examples} more\n")
