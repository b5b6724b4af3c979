"""The findings of a snapshot as text (for a data manager), JSON (for scripts) and CSV.

    text   the school and the snapshot; the counts by severity, then by rule; then the findings
           grouped by rule, at most `limit` each, "… and N more"
    json   {"snapshot": {...provenance...}, "counts": {rule: N}, "findings": [{...}]}
    csv    one row per finding: rule, severity, entity, sourcedId, label, message, related

Provider text is neutralised as in the change report: `printable` for the text form, formula
cells quoted for CSV, the JSON exact with raw control and bidi characters escaped.
"""

from __future__ import annotations

import csv
import json
from itertools import groupby
from typing import TextIO

from ..report.as_csv import neutralise
from ..report.as_json import _escape_raw
from ..report.wording import school_line, snapshot_line
from ..safe_text import printable
from .rules import RULE_BY_ID, RULES, SEVERITIES
from .run import CheckResult

FORMATS = ("text", "json", "csv")
CSV_COLUMNS = ("rule", "severity", "entity", "sourcedId", "label", "message", "related")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 or word == "info" else f"{count} {word}s"


def render_text(result: CheckResult, out: TextIO, *, limit: int | None = None) -> None:
    snapshot = result.snapshot
    out.write(f"Data quality of {printable(school_line(snapshot))}\n")
    out.write(f"  snapshot {printable(snapshot_line(snapshot))}\n\n")
    if not result.findings:
        out.write("No problems found.\n")
        return
    by_severity = {s: sum(1 for f in result.findings if f.severity == s) for s in SEVERITIES}
    severities = ", ".join(_plural(n, s) for s, n in by_severity.items() if n)
    out.write(f"{_plural(len(result.findings), 'finding')}: {severities}\n")
    counts = result.counts
    width = max(len(rule.id) for rule in RULES)
    for rule in RULES:
        if counts[rule.id]:
            out.write(f"  {rule.severity:<8} {rule.id:<{width}}  {counts[rule.id]}\n")
    for rule_id, group in groupby(result.findings, key=lambda f: f.rule):
        findings = list(group)
        rule = RULE_BY_ID[rule_id]
        out.write(f"\n{rule.id} ({rule.severity}): {rule.finds}: {len(findings)}\n")
        shown = findings if not limit else findings[:limit]
        for finding in shown:
            out.write(f"  {printable(finding.label)}  [{printable(finding.sourcedId)}]\n")
            out.write(f"    {printable(finding.message)}\n")
        if len(shown) < len(findings):
            hidden = len(findings) - len(shown)
            out.write(f"  … and {hidden} more: `--format csv` or `--format json` has them all\n")


def as_json(result: CheckResult) -> dict[str, object]:
    return {
        "snapshot": result.snapshot,
        "counts": result.counts,
        "findings": [finding.as_json() for finding in result.findings],
    }


def render_json(result: CheckResult, out: TextIO) -> None:
    out.write(_escape_raw(json.dumps(as_json(result), ensure_ascii=False, indent=2)) + "\n")


def render_csv(result: CheckResult, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    quoting_writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for f in result.findings:
        row = [
            neutralise(str(value))
            for value in (f.rule, f.severity, f.entity, f.sourcedId, f.label, f.message)
        ]
        row.append(neutralise(" ".join(f.related)))
        # A lone carriage return is no row end to Python's writer but is to a reader.
        (quoting_writer if any("\r" in cell for cell in row) else writer).writerow(row)


def render(result: CheckResult, fmt: str, out: TextIO, *, limit: int | None = None) -> None:
    if fmt == "text":
        render_text(result, out, limit=limit)
    elif fmt == "json":
        render_json(result, out)
    else:
        render_csv(result, out)
