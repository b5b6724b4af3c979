"""Markdown, for a ticket, a wiki page or an email to the data-protection officer.

Provider text (names, ids, paths, values, the school's name, the provider's version) goes in
either as escaped text (`escape`) or as a code span (`code`), so that whatever it holds, it
reads as itself: a newline cannot start a heading or a table row, a pipe cannot split a cell,
a backtick cannot end a code span early, and HTML, emphasis and links stay plain text.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

from ..diff.kinds import ALL_KINDS
from ..safe_text import printable
from .saved import Report
from .sections import Line, Section, headline_lines, people_sections, record_sections
from .wording import more_line, school_line, show, utc_text, volume_lines

# Inline syntax, each shown as itself. A backslash escape works on any ASCII punctuation in
# CommonMark; HTML's three characters become entities, which every Markdown dialect honours.
# Parentheses and `!` need nothing once brackets are escaped: no link or image can start.
_INLINE = re.compile(r"[\\`*_\[\]|~#$<>&]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
# What would open a block at the start of a line or a list item: `- x`, `+ x`, `1. x`, `1) x`.
_BLOCK_START = re.compile(r"^([-+])|^(\d+)([.)])")
_BACKTICKS = re.compile("`+")
# Bare addresses that GitHub's Markdown turns into links by itself.
_AUTOLINK = re.compile(r"(?i)(?<=:)//|(?<=\bwww)\.")


def _inline(match: re.Match[str]) -> str:
    char = match.group()
    return _ENTITIES.get(char) or "\\" + char


def escape(text: str) -> str:
    """Text as itself in Markdown, on one line: no emphasis, links, HTML, headings, list items
    or table cells, whatever it holds."""
    text = _INLINE.sub(_inline, text)
    if (start := _BLOCK_START.match(text)) is not None:
        marker, digits, dot = start.groups()
        escaped = f"\\{marker}" if marker else f"{digits}\\{dot}"
        text = escaped + text[start.end() :]
    if "//" in text or "." in text:  # most names hold neither: skip the look-behinds
        text = _AUTOLINK.sub(lambda m: m.group().replace("/", "\\/").replace(".", "\\."), text)
    if text.startswith(" "):
        text = "&#32;" + text[1:]  # leading spaces would make an indented code block
    return printable(text)  # after: its `\x1b` and `\n` are backslash-letter, plain text


def code(text: str, *, in_table: bool = False) -> str:
    """`text` as a code span, shown exactly, on one line; `in_table` for a table cell."""
    text = printable(text)
    if not text:
        return "(empty)"  # a code span cannot be empty
    if in_table:
        text = text.replace("|", "\\|")  # GFM ends a cell at a pipe even inside a code span
    # The fence is one backtick longer than the longest run inside, so nothing inside ends it;
    # the padding (CommonMark strips one space a side) keeps a backtick off the fence.
    if "`" in text:
        longest = max(len(run) for run in _BACKTICKS.findall(text))
        return f"{'`' * (longest + 1)} {text} {'`' * (longest + 1)}"
    if text.strip(" ") and (text[0] == " " or text[-1] == " "):
        text = f" {text} "
    return f"`{text}`"


def _snapshot_row(side: str, snapshot: dict[str, Any]) -> str:
    cells = [
        side,
        code(snapshot["name"], in_table=True),
        escape(utc_text(snapshot["taken_at"])),
        "yes" if snapshot["complete"] else "**no**",
        "yes" if snapshot["stable"] else "**no**",
        escape(str(snapshot.get("school_year") or "")),
        _provider(snapshot.get("provider_version")),
        code(snapshot["content_hash"], in_table=True),  # whole: a shortened hash proves nothing
    ]
    return "| " + " | ".join(cells) + " |\n"


def _provider(version: Any) -> str:
    """The provider's `/version` answer, as recorded in the snapshot."""
    if version is None:
        return "(not recorded)"
    return code(version if isinstance(version, str) else show(version), in_table=True)


def _markdown(line: Line) -> str:
    parts = []
    for kind, text in line:
        if kind == "w":
            parts.append(text)  # our own words
        elif kind == "id":
            parts.append(" " + code(text))
        elif kind == "c":
            parts.append(code(text))
        else:
            parts.append(escape(text))
    return "".join(parts)


def _section(out: TextIO, section: Section, limit: int | None) -> None:
    out.write(f"\n## {section.title}\n\n")
    shown = section.entries if not limit else section.entries[:limit]
    for entry in shown:
        out.write(f"- {_markdown(entry.first)}\n")
        for line in entry.more:
            out.write(f"  - {_markdown(line)}\n")
    if len(shown) < len(section.entries):
        out.write(f"- {more_line(len(section.entries) - len(shown))}\n")


def render_markdown(report: Report, out: TextIO, *, examples: int | None = None) -> None:
    """The same shape as the text report: people, records, then sections of at most
    `examples` entries each (None or 0: all of them)."""
    out.write(f"# Changes for {escape(school_line(report.new))}\n\n")
    out.write(
        "| | snapshot | taken | complete | stable | school year | provider version "
        "| content hash |\n"
    )
    out.write("|---|---|---|---|---|---|---|---|\n")
    out.write(_snapshot_row("from", report.old))
    out.write(_snapshot_row("to", report.new))
    if report.total:
        out.write("\n## People\n\n")
        for line in headline_lines(report, report.headline):
            out.write(f"- {_markdown(line)}\n")
    kinds = [k for k in ALL_KINDS if any(k in counts for counts in report.summary.values())]
    out.write("\n## Summary\n\n| entity | " + " | ".join(kinds) + " | records before | after |\n")
    out.write("|---|" + "---:|" * (len(kinds) + 2) + "\n")
    before, after = report.old["record_counts"], report.new["record_counts"]
    for entity, counts in report.summary.items():
        cells = [str(counts.get(k, 0)) for k in kinds]
        cells += [str(before.get(entity, 0)), str(after.get(entity, 0))]
        out.write(f"| {escape(entity)} | " + " | ".join(cells) + " |\n")
    volume = volume_lines(
        report.mass_changes, report.mass_change_pct, report.rollover, report.new["school_year"]
    )
    for line in volume:
        out.write(f"\n> **Volume:** {escape(line)}\n")
    if report.total == 0:
        out.write("\nNo changes.\n")
        _quality(out, report, examples)
        return
    for section in [*people_sections(report), *record_sections(report)]:
        _section(out, section, examples)
    _quality(out, report, examples)


def _quality(out: TextIO, report: Report, examples: int | None) -> None:
    from ..quality.compare import quality_examples, quality_headline

    quality = report.quality
    if quality is None:
        return
    out.write(f"\n## Data quality\n\n- {escape(quality_headline(quality))}\n")
    for part in quality_examples(quality, examples):
        out.write(f"- {part.which}: {code(part.rule)}: {part.count}\n")
        for finding in part.shown:
            out.write(
                f"  - {escape(finding.label)} {code(finding.sourcedId)}: "
                f"{escape(finding.message)}\n"
            )
        if part.hidden:
            out.write(f"  - … and {part.hidden} more\n")
