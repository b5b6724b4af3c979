"""The changes of a report page, a few per section: people first, worded as the text report
words them (`report.sections`), then the records, each changed field as old → new.

People sections come from `report.sections` itself (its labels, its order, its grouping of
year-group changes). Record sections are read a page at a time in SQL: a rollover of a large
school has a hundred thousand changed enrollments, and none of them is decoded unless shown.
Each section says how many it did not show and which table or view of `changes.db` holds them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ..diff.kinds import ALL_KINDS
from ..model import COLLECTIONS
from ..report.saved import Report
from ..report.sections import (
    PEOPLE_FIELDS,
    Line,
    Section,
    as_code,
    class_move_section,
    ident,
    identity_section,
    joined_section,
    left_section,
    provider,
    purged_section,
    words,
    year_group_section,
)
from ..report.wording import KIND_WORDS, show
from .cells import history_path

# Entries shown per section; the rest are a link away.
SHOWN_PER_SECTION = 20
CHANGES_TABLE = "changed_records"

# The people sections, each with the view of changes.db that lists all of its people and the
# headline's count of them (`archive.people.headline`): a section counted empty is not read, as
# some views take seconds on a large rollover (class moves most).
PEOPLE_SECTIONS: tuple[tuple[Callable[[Report], Section], str, Callable[[Any], int]], ...] = (
    (joined_section, "joiners", lambda people: people["joiners"]["total"]),
    (left_section, "leavers", lambda people: people["leavers"]["total"]),
    (purged_section, "purged", lambda people: people["purged"]["total"]),
    (year_group_section, "year_group_changes", lambda people: people["year_group_changes"]),
    (class_move_section, "class_moves", lambda people: people["class_moves"]),
    (identity_section, "identity_changes", lambda people: people["identity_changes"]),
)
_PEOPLE_FIELD_LIST = ", ".join(f"'{name}'" for name in sorted(PEOPLE_FIELDS))
# A user's change beyond what the people sections tell (names, identifiers, year group).
_OTHER_USER_CHANGE = (
    f"EXISTS (SELECT 1 FROM changed_fields f WHERE f.record_id = r.id "
    f"AND f.field NOT IN ({_PEOPLE_FIELD_LIST}))"
)


@dataclass
class ShownLine:
    """A report line as (kind, text, history path) segments, kinds as in `report.sections`;
    an `id` segment's path is that record's history page, None for the others."""

    segments: list[tuple[str, str, str | None]]


def shown_line(line: Line, estab: str, entity: str) -> ShownLine:
    """`line`, its sourcedIds (records of `entity`) linked to their history."""
    return ShownLine(
        [
            (kind, text, history_path(estab, entity, text) if kind == "id" else None)
            for kind, text in line
        ]
    )


@dataclass
class ShownEntry:
    first: ShownLine
    more: list[ShownLine] = field(default_factory=list)


@dataclass
class ShownSection:
    title: str
    entries: list[ShownEntry]
    hidden: int  # entries not shown
    table: str  # the table or view of changes.db that holds them all
    query: str  # ... and the query string that picks this section's rows there


def report_sections(
    report: Report, people: dict[str, Any], limit: int = SHOWN_PER_SECTION
) -> list[ShownSection]:
    """The sections of a report page with anything in them, at most `limit` entries each;
    `people` is the run's headline."""
    return [*_people_sections(report, people, limit), *_record_sections(report, limit)]


def _people_sections(report: Report, people: dict[str, Any], limit: int) -> list[ShownSection]:
    shown = []
    for make, view, counted in PEOPLE_SECTIONS:
        if not counted(people):
            continue
        section = make(report)
        if not section.entries:
            continue
        estab = report.new["estab"]
        entries = [
            ShownEntry(
                shown_line(entry.first, estab, "users"),
                [shown_line(line, estab, "users") for line in entry.more],
            )
            for entry in section.entries[:limit]
        ]
        shown.append(
            ShownSection(
                section.title,
                entries,
                hidden=len(section.entries) - len(entries),
                table=view,
                query=urlencode({"run_id": report.run_id}),
            )
        )
    return shown


def _record_sections(report: Report, limit: int) -> list[ShownSection]:
    """A section per entity and kind of change, in the text report's order; users only for
    changes the people sections do not tell."""
    conn = report.conn
    conn.row_factory = sqlite3.Row
    sections = []
    for entity in COLLECTIONS:
        for kind in ALL_KINDS:
            count = report.summary.get(entity, {}).get(kind, 0)
            if not count:
                continue
            where = "r.run_id = ? AND r.entity = ? AND r.change = ?"
            if entity == "users":
                if kind != "changed":
                    continue  # joiners, leavers and the purged are told above
                where += f" AND {_OTHER_USER_CHANGE}"
                count = conn.execute(
                    f"SELECT count(*) FROM changed_records r WHERE {where}",
                    (report.run_id, entity, kind),
                ).fetchone()[0]
                if not count:
                    continue
                title = f"Other changes to users ({count})"
            else:
                title = f"{entity} {KIND_WORDS.get(kind, kind)} ({count})"
            records = conn.execute(
                f"SELECT r.id, r.sourcedId, r.label FROM changed_records r WHERE {where} "
                "ORDER BY r.label, r.sourcedId LIMIT ?",
                (report.run_id, entity, kind, limit),
            ).fetchall()
            fields = _fields_of(conn, [row["id"] for row in records], people=entity == "users")
            estab = report.new["estab"]
            entries = [
                ShownEntry(
                    shown_line(
                        [provider(row["label"] or row["sourcedId"]), ident(row["sourcedId"])],
                        estab,
                        entity,
                    ),
                    [shown_line(line, estab, entity) for line in fields.get(row["id"], [])],
                )
                for row in records
            ]
            query = urlencode({"run_id": report.run_id, "entity": entity, "change": kind})
            sections.append(
                ShownSection(title, entries, count - len(entries), CHANGES_TABLE, query)
            )
    return sections


def _fields_of(
    conn: sqlite3.Connection, record_ids: list[int], *, people: bool
) -> dict[int, list[Line]]:
    """Each record's changed fields as `path: old → new` lines, people's fields left out of a
    user's (the people sections tell them)."""
    if not record_ids:
        return {}
    marks = ", ".join("?" * len(record_ids))
    skip = f" AND field NOT IN ({_PEOPLE_FIELD_LIST})" if people else ""
    lines: dict[int, list[Line]] = {}
    for row in conn.execute(
        f"SELECT record_id, path, old_json, new_json FROM changed_fields "
        f"WHERE record_id IN ({marks}){skip} ORDER BY id",
        record_ids,
    ):
        old, new = _decoded(row["old_json"]), _decoded(row["new_json"])
        line: Line = [as_code(row["path"]), words(": "), as_code(show(old))]
        line += [words(" → "), as_code(show(new))]
        lines.setdefault(row["record_id"], []).append(line)
    return lines


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)
