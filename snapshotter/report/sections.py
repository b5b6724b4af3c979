"""What the short reports (text and Markdown) say, before either renders it: the people-first
headline, then sections, each a list of entries that a renderer caps at `--limit`.

People first, from the change report's views (the numbers of `archive.people.headline`): who
joined, who left, who was purged, year-group changes (said once per group: "802 pupils: 7 → 8 …
12 → 13"), class moves (one line each, old class → new class) and identity changes. Then the
records, entity by entity and kind by kind, where records with the same change are said once
("10318 enrollments: status ... → ...") and a person's added or removed enrollments make one
entry. Users are told as people above; the records behind a class move are not repeated.

Entries are lines of segments tagged with what they hold, so each renderer escapes provider text
its own way: `w` our own words, `t` provider text, `c` provider text shown as code (paths,
values), `id` a sourcedId.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..archive.people import OTHER, role_group
from ..natural import natural_key
from .saved import Report, ReportChange
from .wording import KIND_WORDS, noun, show

Segment = tuple[str, str]  # (kind, text): see the module's docstring
Line = list[Segment]

# Fields told in the people sections (identity changes, year-group changes), not again.
IDENTITY_FIELDS = frozenset(
    {"givenName", "familyName", "middleName", "username", "email", "identifier", "userIds"}
)
PEOPLE_FIELDS = IDENTITY_FIELDS | {"grades"}
# Year-group changes shared by more than this many people are said once, as a count.
NAMED_UP_TO = 3
ROLE_NOUNS = {
    "students": ("pupil", "pupils"),
    "staff": ("member of staff", "staff"),
    "guardians": ("parent or guardian", "parents and guardians"),
    OTHER: ("other user", "other users"),
}


def words(text: str) -> Segment:
    return ("w", text)


def provider(text: Any) -> Segment:
    return ("t", "" if text is None else str(text))


def as_code(text: str) -> Segment:
    return ("c", text)


def ident(sourced_id: Any) -> Segment:
    return ("id", "" if sourced_id is None else str(sourced_id))


@dataclass
class Entry:
    first: Line
    more: list[Line] = field(default_factory=list)  # indented under the first line


@dataclass
class Section:
    title: str  # our words, with the count: "Joined: 184 people"
    entries: list[Entry]


def people_noun(group: str, count: int) -> str:
    singular, plural = ROLE_NOUNS.get(group, ROLE_NOUNS[OTHER])
    return f"{count} {singular if count == 1 else plural}"


def year_group_name(year_group: str) -> str:
    """`7` -> `Year 7`; anything else as it is (`Reception`)."""
    if year_group == "none":
        return "no year group"
    return f"Year {year_group}" if year_group.isdigit() else year_group


def _people_phrase(block: dict[str, Any]) -> Line:
    """`183 pupils (Year 7: 166, Year 8: 3) and 1 member of staff`."""
    parts: list[Line] = []
    for group, count in block["by_role"].items():
        if not count:
            continue
        part: Line = [words(people_noun(group, count))]
        if group == "students" and block["by_year_group"]:
            years = [
                [provider(year_group_name(year)), words(f": {n}")]
                for year, n in block["by_year_group"].items()
            ]
            part += [words(" (")] + _joined(years, ", ") + [words(")")]
        parts.append(part)
    if len(parts) > 1:
        return _joined(parts[:-1], ", ") + [words(" and ")] + parts[-1]
    return parts[0] if parts else [words("nobody")]


def _joined(parts: Iterable[Line], separator: str) -> Line:
    line: Line = []
    for index, part in enumerate(parts):
        if index:
            line.append(words(separator))
        line += part
    return line


def headline_lines(report: Report, headline: dict[str, Any]) -> list[Line]:
    """The report's first lines: people, not records."""
    joiners, leavers, purged = headline["joiners"], headline["leavers"], headline["purged"]
    lines = [
        _people_phrase(joiners) + [words(" joined")],
        _people_phrase(leavers) + [words(" left")],
    ]
    if purged["total"]:
        who = noun_people(purged["total"])
        lines.append([words(f"{who} who had left before were purged: their records are gone now")])
    year_rows = _year_group_pairs(report.conn, report.run_id)
    changed_year = headline["year_group_changes"]
    if not changed_year:
        year_words = "nobody changed year group"
    elif _all_moved_up(year_rows):
        year_words = f"{_people_of(year_rows)} moved up a year group"
    else:
        year_words = f"{noun_people(changed_year)} changed year group"
    moves, identities = headline["class_moves"], headline["identity_changes"]
    lines.append(
        [
            words(
                f"{year_words}, {moves} class move{'' if moves == 1 else 's'}, "
                f"{identities} identity change{'' if identities == 1 else 's'}"
            )
        ]
    )
    return lines


def noun_people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


# --- people sections ---------------------------------------------------------------------------


def _rows(conn: sqlite3.Connection, sql: str, run_id: int) -> list[sqlite3.Row]:
    conn.row_factory = sqlite3.Row
    return conn.execute(sql, (run_id,)).fetchall()


def _person_order(row: sqlite3.Row) -> tuple[Any, ...]:
    """Pupils first, by year group, then staff...; by name within."""
    groups = list(ROLE_NOUNS)
    return (
        groups.index(role_group(row["role"])),
        natural_key(row["year_group"]),
        natural_key(row["label"]),
        row["sourcedId"],
    )


def _person_line(row: sqlite3.Row, note: str = "") -> Line:
    line: Line = [provider(row["label"]), ident(row["sourcedId"])]
    return line + [words(f"  {note}")] if note else line


def joined_section(report: Report) -> Section:
    rows = _rows(
        report.conn,
        "SELECT sourcedId, label, role, how, new_status, year_group FROM joiners WHERE run_id = ?",
        report.run_id,
    )
    entries = []
    for row in sorted(rows, key=_person_order):
        note = "reactivated" if row["how"] == "reactivated" else ""
        if row["new_status"] == "tobedeleted":
            note = "joined and left again"
        entries.append(Entry(_person_line(row, note)))
    return Section(f"Joined: {noun_people(len(rows))}", entries)


_EVIDENCE_WORDS = {
    "soft": "marked tobedeleted",
    "hard": "record removed",
    "joined and left": "joined and left again",
}


def left_section(report: Report) -> Section:
    rows = _rows(
        report.conn,
        "SELECT sourcedId, label, role, evidence, year_group FROM leavers WHERE run_id = ?",
        report.run_id,
    )
    held: dict[str, list[str]] = {}
    for row in _rows(
        report.conn,
        "SELECT user_sourcedId, class FROM staff_leavers_classes "
        "WHERE run_id = ? AND class IS NOT NULL",
        report.run_id,
    ):
        held.setdefault(row["user_sourcedId"], []).append(row["class"])
    entries = []
    for row in sorted(rows, key=_person_order):
        entry = Entry(_person_line(row, _EVIDENCE_WORDS.get(row["evidence"], row["evidence"])))
        classes = sorted(held.get(row["sourcedId"], []), key=natural_key)
        if classes:
            entry.more.append([words("held: ")] + _joined(([provider(c)] for c in classes), ", "))
        entries.append(entry)
    return Section(f"Left: {noun_people(len(rows))}", entries)


def purged_section(report: Report) -> Section:
    rows = _rows(
        report.conn,
        "SELECT sourcedId, label, role, year_group FROM purged WHERE run_id = ?",
        report.run_id,
    )
    entries = [Entry(_person_line(row)) for row in sorted(rows, key=_person_order)]
    title = f"Purged: {noun_people(len(rows))} who had left before, records now removed"
    return Section(title, entries)


def _year_group_pairs(conn: sqlite3.Connection, run_id: int) -> list[sqlite3.Row]:
    return _rows(
        conn,
        "SELECT sourcedId, label, role, coalesce(old_year_group, '') AS old, "
        "coalesce(new_year_group, '') AS new FROM year_group_changes WHERE run_id = ?",
        run_id,
    )


def _moved_up(old: str, new: str) -> bool:
    return old.isdigit() and new.isdigit() and int(new) == int(old) + 1


def _all_moved_up(rows: list[sqlite3.Row]) -> bool:
    return bool(rows) and all(_moved_up(row["old"], row["new"]) for row in rows)


def year_group_section(report: Report) -> Section:
    """Said once per change shared by many ("170 pupils: 7 → 8"), and once for a whole rollover
    ("802 pupils: 7 → 8 … 12 → 13 (the rollover)"); people named where few share a change."""
    rows = _year_group_pairs(report.conn, report.run_id)
    by_pair: dict[tuple[str, str], list[sqlite3.Row]] = {}
    for row in rows:
        by_pair.setdefault((row["old"], row["new"]), []).append(row)
    entries: list[Entry] = []
    if report.rollover:
        up = sorted((pair for pair in by_pair if _moved_up(*pair)), key=natural_key)
        if len(up) > 1:
            people = [row for pair in up for row in by_pair.pop(pair)]
            first, last = up[0], up[-1]
            line = [words(f"{_people_of(people)}: ")] + _arrow(*first)
            line += [words(" … ")] + _arrow(*last) + [words(" (the rollover)")]
            entries.append(Entry(line))
    for pair in sorted(by_pair, key=lambda p: (natural_key(p[0]), natural_key(p[1]))):
        people = by_pair[pair]
        if len(people) > NAMED_UP_TO:
            entries.append(Entry([words(f"{_people_of(people)}: ")] + _arrow(*pair)))
        else:
            for row in sorted(people, key=lambda r: natural_key(r["label"])):
                entries.append(Entry(_person_line(row) + [words(": ")] + _arrow(*pair)))
    return Section(f"Year group changes: {noun_people(len(rows))}", entries)


def _people_of(rows: list[sqlite3.Row]) -> str:
    if all(row["role"] == "student" for row in rows):
        return people_noun("students", len(rows))
    return noun_people(len(rows))


def _arrow(old: Any, new: Any) -> Line:
    return [provider(old or "(none)"), words(" → "), provider(new or "(none)")]


def _class_moves(report: Report) -> list[sqlite3.Row]:
    """The run's class moves, read once per report (a costly view on a large rollover)."""
    if "class_moves" not in report.cache:
        report.cache["class_moves"] = _rows(
            report.conn,
            "SELECT user_sourcedId, person, move, from_class, to_class, ended_enrollment, "
            "began_enrollment FROM class_moves WHERE run_id = ?",
            report.run_id,
        )
    return report.cache["class_moves"]


def class_move_section(report: Report) -> Section:
    rows = _class_moves(report)
    entries = []
    order = sorted(
        rows,
        key=lambda r: (
            natural_key(r["person"]),
            r["user_sourcedId"] or "",
            natural_key(r["from_class"]),
        ),
    )
    for row in order:
        line = [provider(row["person"]), ident(row["user_sourcedId"]), words(": ")]
        line += _arrow(row["from_class"], row["to_class"])
        if row["move"] != "class":
            line.append(words(f"  ({row['move']})"))
        entries.append(Entry(line))
    return Section(f"Class moves: {len(rows)}", entries)


def identity_section(report: Report) -> Section:
    # The rows of the `identity_changes` view, read from its tables by changed_fields' (run_id,
    # field) index: joined back to the view by sourcedId, a rollover of a large school took
    # seconds (every user of the run scanned for each row).
    fields = ", ".join(f"'{name}'" for name in sorted(IDENTITY_FIELDS))
    rows = _rows(
        report.conn,
        "SELECT r.sourcedId, r.label, f.path, f.old_json, f.new_json FROM changed_fields f "
        "JOIN changed_records r ON r.id = f.record_id "
        f"WHERE f.run_id = ? AND r.entity = 'users' AND f.field IN ({fields}) ORDER BY f.id",
        report.run_id,
    )
    people: dict[str, Entry] = {}
    labels: dict[str, str] = {}
    for row in rows:
        entry = people.get(row["sourcedId"])
        if entry is None:
            entry = people[row["sourcedId"]] = Entry(
                [provider(row["label"]), ident(row["sourcedId"])]
            )
            labels[row["sourcedId"]] = row["label"] or ""
        entry.more.append(
            _field_line(row["path"], json.loads(row["old_json"]), json.loads(row["new_json"]))
        )
    order = sorted(people, key=lambda sid: (natural_key(labels[sid]), sid))
    return Section(f"Identity changes: {noun_people(len(people))}", [people[sid] for sid in order])


def _field_line(path: str, old: Any, new: Any) -> Line:
    return [as_code(path), words(": "), as_code(show(old)), words(" → "), as_code(show(new))]


def people_sections(report: Report) -> list[Section]:
    """The people sections that have anyone in them."""
    sections = [
        joined_section(report),
        left_section(report),
        purged_section(report),
        year_group_section(report),
        class_move_section(report),
        identity_section(report),
    ]
    return [section for section in sections if section.entries]


# --- record sections ---------------------------------------------------------------------------


@dataclass
class _Grouped:
    """The records of one entity and kind, gathered for saying each change once."""

    entity: str
    kind: str
    count: int = 0
    skipped_moves: int = 0
    # A change's field changes -> [how many records, a few labels, the first one's change, the
    # one person all its enrollments are of (None once they are of several), the people of the
    # examples].
    by_change: dict[tuple[tuple[str, str, str], ...], list[Any]] = field(default_factory=dict)
    # An enrollment's person -> (label, the classes): one entry per person.
    by_person: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    singles: list[ReportChange] = field(default_factory=list)


def _move_enrollments(report: Report) -> set[str]:
    rows = _class_moves(report)
    return {
        sid for row in rows for sid in (row["ended_enrollment"], row["began_enrollment"]) if sid
    }


def _gather(report: Report) -> Iterator[_Grouped]:
    in_moves = _move_enrollments(report)
    group: _Grouped | None = None
    for change in report.changes():
        if change.entity == "users":
            if change.change != "changed":
                continue  # joiners, leavers and the purged are told above
            fields = [
                f for f in change.fields if f.path.split("[")[0].split(".")[0] not in PEOPLE_FIELDS
            ]
            if not fields:
                continue
            change = ReportChange(
                change.entity, change.sourcedId, change.change, change.label, fields, change.details
            )
        if group is None or (group.entity, group.kind) != (change.entity, change.change):
            if group is not None:
                yield group
            group = _Grouped(change.entity, change.change)
        group.count += 1
        if change.entity == "enrollments" and change.sourcedId in in_moves:
            group.skipped_moves += 1
        elif change.fields:
            key = tuple((f.path, show(f.old), show(f.new)) for f in change.fields)
            found = group.by_change.get(key)
            user = change.details.get("user") if change.entity == "enrollments" else None
            if found is None:
                group.by_change[key] = [1, [change.label], change, user, {user}]
            else:
                found[0] += 1
                if found[3] != user:
                    found[3] = None
                if len(found[1]) < 3 and (user is None or user not in found[4]):
                    found[1].append(change.label)  # examples of different people
                    found[4].add(user)
        elif change.entity == "enrollments" and change.details.get("person"):
            person = (
                f"{change.details['person']} ({change.details.get('role') or '?'})",
                str(change.details.get("user") or ""),
            )
            group.by_person.setdefault(person, []).append(
                str(change.details.get("class_name") or change.label)
            )
        else:
            group.singles.append(change)
    if group is not None:
        yield group


def _entries(group: _Grouped) -> list[Entry]:
    entries: list[tuple[tuple[Any, ...], Entry]] = []
    for count, labels, change, user, _ in group.by_change.values():
        if count == 1:
            entry = Entry([provider(change.label), ident(change.sourcedId)])
            entry.more = [_field_line(f.path, f.old, f.new) for f in change.fields]
            held = change.details.get("classes")
            if held:
                entry.more.append(
                    [words("held: ")] + _joined(([provider(c["label"])] for c in held), ", ")
                )
            entries.append(((1, natural_key(change.label)), entry))
            continue
        changed = _joined((_field_line(f.path, f.old, f.new) for f in change.fields), "; ")
        if user is not None:  # one person's enrollments, all changed alike: said once
            person = f"{change.details.get('person')} ({change.details.get('role') or '?'})"
            line = [provider(person), ident(user), words(f": {count} enrollments: ")] + changed
            entries.append(((0, -count, natural_key(person)), Entry(line)))
            continue
        examples = _joined(([provider(label)] for label in sorted(labels, key=natural_key)), ", ")
        more = [words("e.g. ")] + examples + ([words(", …")] if count > len(labels) else [])
        entries.append(
            ((0, -count, ()), Entry([words(f"{noun(group.entity, count)}: ")] + changed, [more]))
        )
    for (person, user_id), classes in group.by_person.items():
        names = sorted(classes, key=natural_key)
        line = [provider(person), ident(user_id), words(": ")]
        line += _joined(([provider(name)] for name in names), ", ")
        if len(names) > 1:
            line.append(words(f"  ({len(names)} enrollments)"))
        entries.append(((1, natural_key(person)), Entry(line)))
    for change in group.singles:
        entries.append(
            (
                (1, natural_key(change.label)),
                Entry([provider(change.label), ident(change.sourcedId)]),
            )
        )
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


def record_sections(report: Report) -> list[Section]:
    """A section per entity and kind of change, users apart from what the people sections tell."""
    sections = []
    for group in _gather(report):
        kind = KIND_WORDS.get(group.kind, group.kind)
        if group.entity == "users":
            title = f"Other changes to users ({group.count})"
        else:
            title = f"{group.entity} {kind} ({group.count})"
            if group.skipped_moves == group.count:
                title = f"{group.entity} {kind} ({group.count}, all in the class moves above)"
            elif group.skipped_moves:
                title = (
                    f"{group.entity} {kind} ({group.count}; {group.skipped_moves} of them in the "
                    "class moves above)"
                )
        entries = _entries(group)
        if entries or group.skipped_moves:
            sections.append(Section(title, entries))
    return sections
