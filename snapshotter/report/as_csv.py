"""The long form for spreadsheets and auditors' files: one row per changed field.

Added and removed records have no changed fields: each gets one row with empty path, old, new.
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from .saved import Report

COLUMNS = ("entity", "sourcedId", "change", "label", "path", "old", "new")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)
    return value


def render_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for change in report.changes():
        head = (change.entity, change.sourcedId, change.change, change.label)
        if not change.fields:
            writer.writerow((*head, "", "", ""))
        for field in change.fields:
            writer.writerow((*head, field.path, _cell(field.old), _cell(field.new)))
