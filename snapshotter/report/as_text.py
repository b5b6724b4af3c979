"""The human summary: people first, then the records, then capped sections of examples.

    Changes for <school>, from <old snapshot>, to <new snapshot>
    the headline: who joined, who left, who was purged, year groups, class moves, identities
    the record counts per entity, in the manner of csv-diff; volume warnings
    sections (see `sections`), each at most `limit` entries, then "… and N more"

Read on a terminal: everything that came from the provider (names, ids, paths, values, the
school's name) passes through `printable`, so it is shown and never obeyed.
"""

from __future__ import annotations

from typing import TextIO

from ..safe_text import printable
from .saved import Report
from .sections import Line, Section, headline_lines, people_sections, record_sections
from .wording import entity_sentence, more_line, school_line, snapshot_line, volume_lines


def _text(line: Line) -> str:
    parts = []
    for kind, text in line:
        if kind == "w":
            parts.append(text)
        elif kind == "id":
            parts.append(f"  [{printable(text)}]")
        else:
            parts.append(printable(text))
    return "".join(parts)


def _section(out: TextIO, section: Section, limit: int | None) -> None:
    out.write(f"\n{section.title}\n")
    shown = section.entries if not limit else section.entries[:limit]
    for entry in shown:
        out.write(f"  {_text(entry.first)}\n")
        for line in entry.more:
            out.write(f"    {_text(line)}\n")
    if len(shown) < len(section.entries):
        out.write(f"  {more_line(len(section.entries) - len(shown))}\n")


def render_text(report: Report, out: TextIO, *, examples: int | None = None) -> None:
    """The report; `examples` caps the entries of each section (None or 0: all of them)."""
    out.write(f"Changes for {printable(school_line(report.new))}\n")
    out.write(f"  from {printable(snapshot_line(report.old))}\n")
    out.write(f"  to   {printable(snapshot_line(report.new))}\n\n")
    if report.total == 0:
        out.write("No changes.\n")
        _quality(out, report, examples)
        return
    for line in headline_lines(report, report.headline):
        out.write(_text(line) + "\n")
    out.write("\n")
    sentences = [s for c, counts in report.summary.items() if (s := entity_sentence(c, counts))]
    out.write("\n".join(sentences) + "\n")
    volume = volume_lines(
        report.mass_changes, report.mass_change_pct, report.rollover, report.new["school_year"]
    )
    if volume:
        out.write("\n" + "\n".join(f"Volume: {printable(line)}" for line in volume) + "\n")
    for section in [*people_sections(report), *record_sections(report)]:
        _section(out, section, examples)
    _quality(out, report, examples)


def _quality(out: TextIO, report: Report, examples: int | None) -> None:
    from ..quality.compare import quality_examples, quality_headline

    quality = report.quality
    if quality is None:
        return
    out.write(f"\nData quality: {quality_headline(quality)}\n")
    for part in quality_examples(quality, examples):
        out.write(f"  {part.which}: {part.rule}: {part.count}\n")
        for finding in part.shown:
            out.write(
                f"    {printable(finding.label)}  [{printable(finding.sourcedId)}]: "
                f"{printable(finding.message)}\n"
            )
        if part.hidden:
            out.write(f"    … and {part.hidden} more\n")
