"""Markdown, for a ticket, a wiki page or an email to the data-protection officer."""

from __future__ import annotations

import re
from typing import Any, TextIO

from ..diff.kinds import ALL_KINDS
from .saved import Report
from .wording import KIND_WORDS, school_line, show, utc_text, volume_lines

# Parentheses need no escape once brackets have one: no link can start.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def escape(text: str) -> str:
    """Text as itself in Markdown: no stray emphasis, links or table cells."""
    return _SPECIAL.sub(r"\\\1", text)


def code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def _snapshot_row(side: str, snapshot: dict[str, Any]) -> str:
    cells = [
        side,
        code(snapshot["name"]),
        utc_text(snapshot["taken_at"]),
        "yes" if snapshot["complete"] else "**no**",
        "yes" if snapshot["stable"] else "**no**",
        escape(str(snapshot.get("school_year") or "")),
        _provider(snapshot.get("provider_version")),
        code(snapshot["content_hash"]),  # whole: a shortened hash proves nothing
    ]
    return "| " + " | ".join(cells) + " |\n"


def _provider(version: Any) -> str:
    """The provider's `/version` answer, as recorded in the snapshot."""
    if version is None:
        return "(not recorded)"
    return code(version if isinstance(version, str) else show(version))


def render_markdown(report: Report, out: TextIO) -> None:
    out.write(f"# Changes for {escape(school_line(report.new))}\n\n")
    out.write(
        "| | snapshot | taken | complete | stable | school year | provider version "
        "| content hash |\n"
    )
    out.write("|---|---|---|---|---|---|---|---|\n")
    out.write(_snapshot_row("from", report.old))
    out.write(_snapshot_row("to", report.new))
    kinds = [k for k in ALL_KINDS if any(k in counts for counts in report.summary.values())]
    out.write("\n## Summary\n\n| entity | " + " | ".join(kinds) + " | records before | after |\n")
    out.write("|---|" + "---:|" * (len(kinds) + 2) + "\n")
    before, after = report.old["record_counts"], report.new["record_counts"]
    for entity, counts in report.summary.items():
        cells = [str(counts.get(k, 0)) for k in kinds]
        cells += [str(before.get(entity, 0)), str(after.get(entity, 0))]
        out.write(f"| {entity} | " + " | ".join(cells) + " |\n")
    volume = volume_lines(
        report.mass_changes, report.mass_change_pct, report.rollover, report.new["school_year"]
    )
    for line in volume:
        out.write(f"\n> **Volume:** {escape(line)}\n")
    if report.total == 0:
        out.write("\nNo changes.\n")
    entity = heading = None
    for change in report.changes():
        if change.entity != entity:
            entity = change.entity
            out.write(f"\n## {entity}\n")
        if (change.entity, change.change) != heading:
            heading = (change.entity, change.change)
            count = report.summary.get(change.entity, {}).get(change.change, 0)
            out.write(f"\n### {KIND_WORDS.get(change.change, change.change)} ({count})\n\n")
        out.write(f"- {escape(change.label)} {code(change.sourcedId)}\n")
        for field in change.fields:
            old, new = code(show(field.old)), code(show(field.new))
            out.write(f"  - {code(field.path)}: {old} → {new}\n")
        held = change.details.get("classes")
        if held:
            out.write("  - held: " + ", ".join(escape(c["label"]) for c in held) + "\n")
