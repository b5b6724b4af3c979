"""What a digest says, read from a saved diff run at one privacy level.

Privacy levels (`--detail`): `counts` gives numbers only; `ids` adds each record's sourcedId,
role, year group and the names of classes (never a person's name, email, username or
identifier); `names` adds people's names and, for identity changes, the old and new values.
Everything a level must not show is left out here, before any template sees it.

The "New data problems" section compares the two snapshots' data-quality findings (kept in
changes.db, else computed, read-only): at `counts` the number per rule, at `ids` each problem's
rule, entity and sourcedId (a finding's label and message quote names, emails and UPNs: never
below `names`), at `names` the label and message too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ..archive.layout import (
    ArchiveError,
    SnapshotInfo,
    read_only_uri,
    read_snapshot_info,
    safe_estab,
)
from ..archive.terms import term_of
from ..natural import natural_key
from ..quality.compare import QualityChanges, compare, rule_title
from ..quality.run import CheckResult, check_snapshot
from ..quality.store import load_kept
from ..report.saved import Report, load_report
from ..report.wording import KIND_WORDS, utc_text, volume_lines

DETAILS = ("counts", "ids", "names")
DEFAULT_DETAIL = "ids"
DEFAULT_MAX_PER_SECTION = 20
# Year-group moves shared by at most this many people name them; larger ones give a count.
NAMED_UP_TO = 3


class DigestError(Exception):
    """No digest can be made: no such run, no run yet; the message says what to do."""


@dataclass
class Section:
    """One part of the body: its title, how many there are, the lines shown (none at
    `counts`), how many more, and where to see them all (when a Datasette URL is set)."""

    key: str
    title: str
    total: int
    lines: list[str] = field(default_factory=list)
    more: int = 0
    link: str | None = None
    note: str | None = None  # one more line under the title (the problems fixed)


@dataclass
class SnapshotSide:
    name: str
    taken: str
    complete: bool
    school_year: str | None
    term: str | None


@dataclass
class Digest:
    run_id: int
    estab: str
    school: str
    detail: str
    subject: str
    old: SnapshotSide
    new: SnapshotSide
    warnings: list[str]
    rollover: bool
    total: int
    people: dict[str, Any]
    counts: list[tuple[str, str, int]]  # (entity, change kind in words, records)
    sections: list[Section]
    report_url: str | None
    quality_line: str | None = None  # "Data quality: N new problems, M fixed"


def latest_run(conn: sqlite3.Connection, estab: str | None) -> int:
    """The newest diff run of the school (by the new snapshot's time), or of the only school."""
    schools = [row[0] for row in conn.execute("SELECT DISTINCT estab FROM diff_runs ORDER BY 1")]
    if not schools:
        raise DigestError("no diff run is saved in this archive yet: run `snapshotter diff` first")
    if estab is None:
        if len(schools) > 1:
            raise DigestError(
                f"the archive holds diff runs of several schools ({', '.join(schools)}): "
                "choose one with --estab"
            )
        estab = schools[0]
    row = conn.execute(
        "SELECT id FROM diff_runs WHERE estab = ? ORDER BY new_taken_at DESC, id DESC LIMIT 1",
        (estab,),
    ).fetchone()
    if row is None:
        raise DigestError(
            f"no diff run of estab {estab} in this archive (schools with runs: "
            f"{', '.join(schools)})"
        )
    return int(row[0])


def _term_of(snapshot: dict[str, Any]) -> str | None:
    term = term_of(Path(snapshot["path"]), snapshot["taken_at"])
    return term[0] if term else None


def _side(snapshot: dict[str, Any]) -> SnapshotSide:
    return SnapshotSide(
        name=snapshot["name"],
        taken=utc_text(snapshot["taken_at"]),
        complete=snapshot["complete"],
        school_year=snapshot.get("school_year"),
        term=_term_of(snapshot),
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def subject_line(school: str, people: dict[str, Any], total: int, span: str) -> str:
    """`Northfield Academy: 19 joiners, 18 leavers, 43 class moves, 12 identity changes
    (Autumn 2026 → Spring 2027)`; `no changes` when nothing changed."""
    if total == 0:
        return f"{school}: no changes ({span})"
    parts = [
        _plural(people["joiners"]["total"], "joiner", "joiners"),
        _plural(people["leavers"]["total"], "leaver", "leavers"),
        _plural(people["class_moves"], "class move", "class moves"),
        _plural(people["identity_changes"], "identity change", "identity changes"),
    ]
    if not any(part[0] != "0" for part in parts):
        parts = [_plural(total, "record changed", "records changed")]
    return f"{school}: {', '.join(parts)} ({span})"


def _span(old: SnapshotSide, new: SnapshotSide, old_day: str, new_day: str) -> str:
    if old.term and new.term:
        return old.term if old.term == new.term else f"{old.term} → {new.term}"
    return f"{old_day} → {new_day}"


def _who(sourced_id: str, role: str | None, year_group: str | None) -> str:
    details = [part for part in (role, f"year {year_group}" if year_group else None) if part]
    return f"{sourced_id} ({', '.join(details)})" if details else sourced_id


class _Reader:
    """Reads one run's sections at one privacy level."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        report: Report,
        detail: str,
        cap: int,
        datasette_url: str | None,
    ) -> None:
        self.conn = conn
        self.run_id = report.run_id
        self.names = detail == "names"
        self.counts_only = detail == "counts"
        self.cap = cap
        self.base = datasette_url.rstrip("/") if datasette_url else None

    def link(self, view: str, **filters: str) -> str | None:
        if self.base is None:
            return None
        query = urlencode({"run_id": self.run_id, **filters})
        return f"{self.base}/changes/{quote(view)}?{query}"

    def section(
        self, key: str, title: str, total: int, rows: Iterable[Any], line: Any, link: str | None
    ) -> Section:
        shown: list[str] = []
        if not self.counts_only:
            for row in rows:
                if len(shown) >= self.cap:
                    break
                shown.append(line(row))
        more = 0 if self.counts_only else max(total - len(shown), 0)
        return Section(key, title, total, shown, more, link)

    def person(self, row: sqlite3.Row, sourced_id: str = "sourcedId") -> str:
        """A person at this level: `U123 (student, year 8)`, or their label at `names`."""
        if self.names and row["label"]:
            return f"{row['label']} [{row[sourced_id]}]"
        return _who(row[sourced_id], row["role"], row["year_group"])

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        limit = 0 if self.counts_only else self.cap
        return self.conn.execute(sql + " LIMIT ?", (self.run_id, *params, limit)).fetchall()

    def count(self, sql: str, *params: Any) -> int:
        return int(self.conn.execute(sql, (self.run_id, *params)).fetchone()[0])

    def joiners(self) -> Section:
        sql = "FROM joiners WHERE run_id = ?"
        rows = self.rows(
            f"SELECT sourcedId, role, year_group, label, how {sql} "
            "ORDER BY role, year_group, label, sourcedId"
        )
        return self.section(
            "joiners",
            "Joiners",
            self.count(f"SELECT count(*) {sql}"),
            rows,
            lambda r: self.person(r) + ("" if r["how"] == "new record" else f": {r['how']}"),
            self.link("joiners"),
        )

    def leavers(self, evidence: str, title: str) -> Section:
        sql = "FROM leavers WHERE run_id = ? AND evidence = ?"
        rows = self.rows(
            f"SELECT sourcedId, role, year_group, label {sql} "
            "ORDER BY role, year_group, label, sourcedId",
            evidence,
        )
        return self.section(
            f"leavers_{evidence.replace(' ', '_')}",
            title,
            self.count(f"SELECT count(*) {sql}", evidence),
            rows,
            self.person,
            self.link("leavers", evidence=evidence),
        )

    def purged(self) -> Section:
        sql = "FROM purged WHERE run_id = ?"
        rows = self.rows(f"SELECT sourcedId, role, year_group, label {sql} ORDER BY role, label")
        return self.section(
            "purged",
            "Purged: left in an earlier report, records now removed",
            self.count(f"SELECT count(*) {sql}"),
            rows,
            self.person,
            self.link("purged"),
        )

    def staff_leavers(self) -> Section:
        sql = "FROM staff_leavers_classes WHERE run_id = ?"
        rows = self.rows(
            "SELECT user_sourcedId, role, staff_member AS label, NULL AS year_group, "
            f"group_concat(class, ', ') AS classes {sql} "
            "GROUP BY user_sourcedId ORDER BY staff_member, user_sourcedId"
        )

        def line(row: sqlite3.Row) -> str:
            classes = row["classes"] or "no classes"
            return f"{self.person(row, 'user_sourcedId')}: {classes}"

        return self.section(
            "staff_leavers",
            "Staff leavers and the classes they held",
            self.count(f"SELECT count(DISTINCT user_sourcedId) {sql}"),
            rows,
            line,
            self.link("staff_leavers_classes"),
        )

    def year_groups(self) -> Section:
        """One line per move between two year groups (a rollover moves whole years): its count,
        and who, when they are few."""
        groups = self.conn.execute(
            "SELECT old_year_group, new_year_group, count(DISTINCT sourcedId) AS people, "
            "json_group_array(json_array(sourcedId, label)) AS who "
            "FROM year_group_changes WHERE run_id = ? GROUP BY old_year_group, new_year_group",
            (self.run_id,),
        ).fetchall()
        groups.sort(key=lambda g: (natural_key(g[0] or ""), natural_key(g[1] or "")))

        def line(group: sqlite3.Row) -> str:
            old, new = _shown(group["old_year_group"]), _shown(group["new_year_group"])
            text = f"year {old} → {new}: {_plural(group['people'], 'person', 'people')}"
            if group["people"] <= NAMED_UP_TO:
                who = [
                    f"{label} [{sourced_id}]" if self.names and label else sourced_id
                    for sourced_id, label in json.loads(group["who"])
                ]
                text += f" ({', '.join(who)})"
            return text

        total = sum(group["people"] for group in groups)
        section = self.section(
            "year_group_changes",
            "Year-group changes",
            total,
            groups,
            line,
            self.link("year_group_changes"),
        )
        # The lines are groups, so "more" counts the people in the groups not shown.
        section.more = sum(group["people"] for group in groups[len(section.lines) :])
        if self.counts_only:
            section.more = 0
        return section

    def class_moves(self) -> Section:
        sql = "FROM class_moves WHERE run_id = ?"
        rows = self.rows(
            f"SELECT user_sourcedId, person, move, from_class, to_class {sql} "
            "ORDER BY move, from_class, to_class, person"
        )

        def line(row: sqlite3.Row) -> str:
            who = row["user_sourcedId"]
            if self.names and row["person"]:
                who = f"{row['person']} [{who}]"
            kind = "" if row["move"] == "class" else " (registration group)"
            return f"{who}: {row['from_class']} → {row['to_class']}{kind}"

        return self.section(
            "class_moves",
            "Class and registration-group moves",
            self.count(f"SELECT count(*) {sql}"),
            rows,
            line,
            self.link("class_moves"),
        )

    def identity(self) -> Section:
        sql = "FROM identity_changes WHERE run_id = ?"
        rows = self.rows(
            "SELECT sourcedId, role, label, group_concat(field, ', ') AS fields, "
            "json_group_array(json_array(field, old_value, new_value)) AS pairs "
            f"{sql} GROUP BY sourcedId ORDER BY label, sourcedId"
        )

        def line(row: sqlite3.Row) -> str:
            if not self.names:
                return f"{_who(row['sourcedId'], row['role'], None)}: {row['fields']} changed"
            changes = "; ".join(
                f"{name} {_shown(old)} → {_shown(new)}"
                for name, old, new in json.loads(row["pairs"])
            )
            return f"{row['label']} [{row['sourcedId']}]: {changes}"

        return self.section(
            "identity_changes",
            "Identity changes (name, username, email, identifier)",
            self.count(f"SELECT count(DISTINCT sourcedId) {sql}"),
            rows,
            line,
            self.link("identity_changes"),
        )

    def structure(self) -> Section:
        sql = "FROM structure_changes WHERE run_id = ?"
        rows = self.rows(
            f"SELECT entity, change, sourcedId, label {sql} ORDER BY entity, change, label"
        )

        def line(row: sqlite3.Row) -> str:
            what = KIND_WORDS.get(row["change"], row["change"])
            # Classes, courses, terms and orgs are named: their titles are not personal data.
            kind = _STRUCTURE_NOUNS.get(row["entity"], row["entity"])
            name = row["label"] or row["sourcedId"]
            return f"{kind} {name} [{row['sourcedId']}]: {what}"

        return self.section(
            "structure_changes",
            "Structural changes (classes, courses, terms, orgs)",
            self.count(f"SELECT count(*) {sql}"),
            rows,
            line,
            self.link("structure_changes"),
        )


_STRUCTURE_NOUNS = {
    "orgs": "org",
    "academicSessions": "session",
    "courses": "course",
    "classes": "class",
}


def _snapshot_file(archive: Path | None, side: dict[str, Any]) -> SnapshotInfo | None:
    """The snapshot file a report names, where it was compared or where the archive keeps it;
    None when it is gone (pruned) or cannot be read."""
    candidates = [Path(side["path"])]
    if archive is not None:
        with suppress(ArchiveError):
            candidates.append(archive / safe_estab(side["estab"]) / f"{side['name']}.db")
    for path in candidates:
        if path.is_file():
            try:
                info = read_snapshot_info(path)
            except ArchiveError:
                continue
            if info.content_hash == side["content_hash"]:
                return info
    return None


def _findings(conn: sqlite3.Connection, info: SnapshotInfo) -> CheckResult:
    """Kept in changes.db, else computed here (read-only: a digest writes nothing)."""
    kept = load_kept(conn, info)
    return kept if kept is not None else check_snapshot(info)


def quality_changes_of(
    conn: sqlite3.Connection, report: Report, archive: Path | None
) -> QualityChanges | None:
    """The data-quality problems new and fixed between the report's snapshots; None when a
    snapshot file is gone (pruned) or the checks cannot run: the digest goes without them."""
    infos = [_snapshot_file(archive, side) for side in (report.old, report.new)]
    if infos[0] is None or infos[1] is None:
        return None
    try:
        return compare(_findings(conn, infos[0]), _findings(conn, infos[1]))
    except (ArchiveError, sqlite3.Error, OSError):
        return None


def _fixed_note(quality: QualityChanges) -> str | None:
    fixed = quality.counts("fixed")
    if not fixed:
        return None
    by_rule = ", ".join(f"{rule} {n}" for rule, n in fixed.items())
    return f"Fixed: {len(quality.fixed)} ({by_rule})"


def quality_section(quality: QualityChanges, detail: str, cap: int, link: str | None) -> Section:
    """At `counts` a line per rule; at `ids` a line per new problem: its rule, entity and
    sourcedId only; at `names` its label and message too."""
    total = len(quality.new)
    note = _fixed_note(quality)
    if detail == "counts":
        lines = [f"{rule_title(rule)}: {n}" for rule, n in quality.counts("new").items()]
        return Section("quality", "New data problems", total, lines, 0, link, note)
    lines = []
    for rule, findings in quality.by_rule("new"):
        for finding in findings:
            if len(lines) >= cap:
                break
            line = f"{rule_title(rule)}: {finding.entity} {finding.sourcedId}"
            if detail == "names":
                line = (
                    f"{rule_title(rule)}: {finding.label} [{finding.entity} "
                    f"{finding.sourcedId}]: {finding.message}"
                )
            lines.append(line)
    return Section(
        "quality", "New data problems", total, lines, max(total - len(lines), 0), link, note
    )


def _shown(value: Any) -> str:
    return "(none)" if value in (None, "") else str(value)


def read_digest(
    changes_db: Path,
    *,
    run_id: int | None = None,
    estab: str | None = None,
    detail: str = DEFAULT_DETAIL,
    max_per_section: int = DEFAULT_MAX_PER_SECTION,
    datasette_url: str | None = None,
) -> Digest:
    """The digest of run `run_id` (default: the school's latest) at privacy level `detail`."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}")
    if not changes_db.is_file():
        raise DigestError(
            f"no change reports at {changes_db}: run `snapshotter diff` to save one first"
        )
    with closing(sqlite3.connect(read_only_uri(changes_db), uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        if run_id is None:
            run_id = latest_run(conn, estab)
        try:
            report = load_report(conn, run_id)
        except LookupError:
            raise DigestError(f"no diff run {run_id} in {changes_db}") from None
        if estab is not None and report.new["estab"] != estab:
            raise DigestError(f"diff run {run_id} is of estab {report.new['estab']}, not {estab}")
        return _digest(conn, report, detail, max_per_section, datasette_url, changes_db.parent)


def _digest(
    conn: sqlite3.Connection,
    report: Report,
    detail: str,
    cap: int,
    datasette_url: str | None,
    archive: Path | None = None,
) -> Digest:
    people = report.headline
    school = report.new.get("school_name") or f"estab {report.new['estab']}"
    old, new = _side(report.old), _side(report.new)
    span = _span(old, new, report.old["taken_at"][:10], report.new["taken_at"][:10])
    reader = _Reader(conn, report, detail, cap, datasette_url)
    sections = [
        reader.joiners(),
        reader.leavers("soft", "Leavers: marked tobedeleted"),
        reader.leavers("hard", "Leavers: records removed"),
        reader.leavers("joined and left", "Joined and left between the two snapshots"),
        reader.purged(),
        reader.staff_leavers(),
        reader.year_groups(),
        reader.class_moves(),
        reader.identity(),
        reader.structure(),
    ]
    counts = [
        (entity, KIND_WORDS.get(kind, kind), n)
        for entity, kinds in report.summary.items()
        for kind, n in kinds.items()
        if n
    ]
    base = datasette_url.rstrip("/") if datasette_url else None
    quality = quality_changes_of(conn, report, archive)
    quality_line = None
    if quality is not None:
        link = (
            f"{base}/-/snapshotter/quality/{quote(report.new['name'], safe='')}" if base else None
        )
        section = quality_section(quality, detail, cap, link)
        if section.total or section.note:
            sections.append(section)
        quality_line = (
            f"Data quality: {_plural(len(quality.new), 'new problem', 'new problems')}, "
            f"{len(quality.fixed)} fixed"
        )
    return Digest(
        run_id=report.run_id,
        estab=report.new["estab"],
        school=school,
        detail=detail,
        subject=subject_line(school, people, report.total, span),
        old=old,
        new=new,
        warnings=volume_lines(
            report.mass_changes, report.mass_change_pct, report.rollover, report.new["school_year"]
        ),
        rollover=report.rollover,
        total=report.total,
        people=people,
        counts=counts,
        sections=[section for section in sections if section.total or section.note],
        report_url=f"{base}/-/snapshotter/runs/{report.run_id}" if base else None,
        quality_line=quality_line,
    )
