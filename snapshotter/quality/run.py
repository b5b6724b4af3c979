"""Running every rule over one snapshot: `check_snapshot(info) -> CheckResult`.

The rules are SQL over the snapshot's own tables (see the family modules), run on a read-only
connection; only the findings reach Python, where they are labelled as the change report labels
records (`report.labels`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from ..archive.layout import SnapshotInfo, blaming_snapshots, open_snapshot
from ..report.labels import class_name, enrollment_label, person_name, record_label
from . import coverage, dates, identifiers, references, uniqueness, year_groups
from .context import CheckContext, Raw
from .rules import RULE_BY_ID, RULES, SEVERITIES, Finding

FAMILY_CHECKS: tuple[Callable[[CheckContext], Iterator[Raw]], ...] = (
    references.findings,
    coverage.findings,
    uniqueness.findings,
    identifiers.findings,
    year_groups.findings,
    dates.findings,
)
_RULE_ORDER = {rule.id: index for index, rule in enumerate(RULES)}


@dataclass(frozen=True)
class CheckResult:
    """The findings of one snapshot, in rule order, then by label."""

    snapshot: dict[str, Any]  # provenance, as `SnapshotInfo.as_json`
    findings: list[Finding]

    @property
    def counts(self) -> dict[str, int]:
        """Every rule, zeros included: scripts can rely on every key."""
        counts = dict.fromkeys(RULE_BY_ID, 0)
        for finding in self.findings:
            counts[finding.rule] += 1
        return counts

    def worst(self) -> str | None:
        present = {finding.severity for finding in self.findings}
        return next((severity for severity in SEVERITIES if severity in present), None)


def school_org_id(conn: sqlite3.Connection, estab: str) -> str | None:
    """The school's org, found as the school's name is (`school_name_from_orgs`)."""
    rows = conn.execute(
        "SELECT sourcedId, identifier, type FROM orgs ORDER BY status = 'active' DESC, sourcedId"
    ).fetchall()
    matching = [sid for sid, identifier, _ in rows if (identifier or "").strip() == estab]
    if matching:
        return matching[0]
    schools = [sid for sid, _, org_type in rows if org_type == "school"]
    return schools[0] if len(schools) == 1 else None


def check_snapshot(info: SnapshotInfo) -> CheckResult:
    """Every rule over the snapshot `info` names, read-only."""
    with blaming_snapshots(info.path), closing(open_snapshot(info.path)) as conn:
        today = info.taken_at[:10]
        ctx = CheckContext(conn, today, school_org_id(conn, info.estab))
        raw = [finding for check in FAMILY_CHECKS for finding in check(ctx)]
        findings = _labelled(conn, raw)
    findings.sort(key=lambda f: (_RULE_ORDER[f.rule], f.label.casefold(), f.sourcedId))
    return CheckResult(snapshot=provenance(info), findings=findings)


def provenance(info: SnapshotInfo) -> dict[str, Any]:
    """The snapshot as the JSON form names it: its name first, then `SnapshotInfo.as_json`."""
    return {"name": info.path.stem, **info.as_json()}


def _records(
    conn: sqlite3.Connection, collection: str, ids: Iterable[str], columns: str
) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):  # under SQLite's limit on parameters
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        cursor = conn.execute(
            f'SELECT {columns} FROM "{collection}" WHERE sourcedId IN ({marks})', chunk
        )
        names = [d[0] for d in cursor.description]
        for row in cursor:
            record = dict(zip(names, row, strict=True))
            found[record["sourcedId"]] = record
    return found


_COLUMNS = {
    "users": "sourcedId, givenName, familyName, username, role, grades",
    "classes": "sourcedId, title, classCode",
    "courses": "sourcedId, title, courseCode",
    "orgs": "sourcedId, name, type",
    "academicSessions": "sourcedId, title, type",
    "enrollments": "sourcedId, role, user_sourcedId, class_sourcedId",
}


def _labelled(conn: sqlite3.Connection, raw: list[Raw]) -> list[Finding]:
    """Findings with the labels the change report gives the same records."""
    wanted: dict[str, set[str]] = {}
    for finding in raw:
        wanted.setdefault(finding.entity, set()).add(finding.sourcedId)
    records = {
        collection: _records(conn, collection, ids, _COLUMNS[collection])
        for collection, ids in wanted.items()
    }
    enrollments = records.get("enrollments", {})
    people = _records(
        conn,
        "users",
        (e["user_sourcedId"] for e in enrollments.values() if e["user_sourcedId"]),
        _COLUMNS["users"],
    )
    classes = _records(
        conn,
        "classes",
        (e["class_sourcedId"] for e in enrollments.values() if e["class_sourcedId"]),
        _COLUMNS["classes"],
    )
    labelled = []
    for finding in raw:
        record = records.get(finding.entity, {}).get(finding.sourcedId)
        if record is None:
            label = finding.sourcedId or "the school"
        elif finding.entity == "enrollments":
            person = person_name(people.get(record["user_sourcedId"] or ""), "")
            label = enrollment_label(
                person or str(record["user_sourcedId"] or "nobody"),
                record["role"],
                class_name(classes.get(record["class_sourcedId"] or ""), "")
                or str(record["class_sourcedId"] or "no class"),
            )
        else:
            if "grades" in record:
                record["grades"] = _json_or_text(record["grades"])
            label = record_label(finding.entity, record)
        rule = RULE_BY_ID[finding.rule]
        labelled.append(
            Finding(
                rule=finding.rule,
                severity=rule.severity,
                entity=finding.entity,
                sourcedId=finding.sourcedId,
                label=label,
                message=finding.message,
                related=finding.related,
            )
        )
    return labelled


def _json_or_text(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
