"""The long form for spreadsheets and auditors' files: one row per changed field.

Added and removed records have no changed fields: each gets one row with empty path, old, new.
The record's status in the old and the new snapshot close each row (empty where absent).

Every text cell a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab
or a carriage return) gets a leading `'`, as OWASP advises: a provider's `=HYPERLINK(...)` in a
name is shown, never run. Numbers stay numbers: a JSON `-5` is written `-5`, the string "-5"
as `'-5`.
"""

from __future__ import annotations

import csv
import json
import math
from typing import Any, TextIO

from .saved import Report

COLUMNS = (
    "entity",
    "sourcedId",
    "change",
    "label",
    "path",
    "old",
    "new",
    "old_status",
    "new_status",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """`text` as a spreadsheet shows it and never evaluates it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)  # starts with {, [, t or f: never a formula
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return neutralise(str(value))


def render_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    # Python's writer quotes a field holding "\n" but not one holding a lone "\r", which a reader
    # then takes for the end of a row: such a row is written with every field quoted.
    quoting_writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def write(row: tuple[Any, ...]) -> None:
        cells = [_cell(value) for value in row]
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in cells)
        (quoting_writer if has_cr else writer).writerow(cells)

    writer.writerow(COLUMNS)
    for change in report.changes():
        head = (change.entity, change.sourcedId, change.change, change.label)
        statuses = (change.old_status, change.new_status)
        if not change.fields:
            write((*head, None, None, None, *statuses))
        for field in change.fields:
            write((*head, field.path, field.old, field.new, *statuses))
    # Data-quality problems new since OLD and fixed: the rule as the path, the message as the
    # new (or old) value.
    quality = report.quality
    if quality is not None:
        for finding in quality.new:
            write(quality_row(finding, "new problem", None, finding.message))
        for finding in quality.fixed:
            write(quality_row(finding, "fixed problem", finding.message, None))


def quality_row(finding: Any, change: str, old: Any, new: Any) -> tuple[Any, ...]:
    """A data-quality problem as a row: no record status (it is the finding's, not a change's)."""
    return (
        finding.entity,
        finding.sourcedId,
        change,
        finding.label,
        finding.rule,
        old,
        new,
        None,
        None,
    )
