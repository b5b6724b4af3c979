"""The JSON form that scripts rely on: from, to, summary, then the changes, streamed.

    {"from": {snapshot}, "to": {snapshot},
     "summary": {"<entity>": {"added": n, "changed": n, "tobedeleted": n, "reactivated": n,
                              "removed": n}},
     "volume": {"threshold_pct": 10.0, "rollover": false, "mass_changes": [...]},
     "changes": [{"entity": ..., "sourcedId": ..., "change": ..., "label": ...,
                  "fields": {"<path>": {"old": ..., "new": ...}}, "details": {...}}]}

One change per line, so a large report can be read (and written) a line at a time.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from .saved import Report

_encode = json.JSONEncoder(ensure_ascii=False).encode  # built once: called for every value


def _dumps(value: Any, indent: int | None = None) -> str:
    if indent is None:
        return _encode(value)
    return json.dumps(value, ensure_ascii=False, indent=indent)


def render_json(report: Report, out: TextIO) -> None:
    volume = {
        "threshold_pct": report.mass_change_pct,
        "rollover": report.rollover,
        "mass_changes": report.mass_changes,
    }
    out.write("{\n")
    for key, value in (
        ("from", report.old),
        ("to", report.new),
        ("summary", report.summary),
        ("volume", volume),
    ):
        body = _dumps(value, indent=2).replace("\n", "\n  ")
        out.write(f'  "{key}": {body},\n')
    out.write('  "changes": [')
    separator = "\n    "
    # The stored JSON of values and details is copied through as it is: a large report is
    # written without parsing and re-encoding each value.
    for record, fields in report.raw_changes():
        field_members = ", ".join(
            f'{_dumps(f["path"])}: {{"old": {f["old_json"]}, "new": {f["new_json"]}}}'
            for f in fields
        )
        label = record["label"] or record["sourcedId"]
        out.write(
            f'{separator}{{"entity": {_dumps(record["entity"])}, '
            f'"sourcedId": {_dumps(record["sourcedId"])}, "change": {_dumps(record["change"])}, '
            f'"label": {_dumps(label)}, "fields": {{{field_members}}}, '
            f'"details": {record["details"]}}}'
        )
        separator = ",\n    "
    out.write("\n  ]\n}\n")
