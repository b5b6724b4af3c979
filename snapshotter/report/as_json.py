"""The JSON form that scripts rely on: from, to, summary, then the changes, streamed.

    {"from": {snapshot}, "to": {snapshot},
     "headline": {"joiners": {"total": n, "by_role": {...}, "by_year_group": {...}},
                  "leavers": {...}, "purged": {...},
                  "year_group_changes": n, "class_moves": n, "identity_changes": n},
     "summary": {"<entity>": {"added": n, "changed": n, "tobedeleted": n, "reactivated": n,
                              "removed": n}},
     "volume": {"threshold_pct": 10.0, "rollover": false, "mass_changes": [...]},
     "changes": [{"entity": ..., "sourcedId": ..., "change": ...,
                  "old_status": ..., "new_status": ..., "label": ...,
                  "fields": {"<path>": {"old": ..., "new": ...}}, "details": {...}}]}

One change per line, so a large report can be read (and written) a line at a time.

Values are exact. The characters JSON allows raw inside a string but a terminal or a script may
act on (DEL, C1 controls, line separators, bidi overrides, lone surrogates) are written as
`\\u` escapes, which read back as the same string: `cat report.json` is safe too.
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

from .saved import Report

_encode = json.JSONEncoder(ensure_ascii=False).encode  # built once: called for every value
# Encoders escape C0 controls already. These can only stand inside a JSON string, so an escape
# in their place is the same value.
_RAW_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_raw(text: str) -> str:
    if _RAW_UNSAFE.search(text) is None:
        return text
    return _RAW_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


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
        ("headline", report.headline),
        ("summary", report.summary),
        ("volume", volume),
        ("quality", None if report.quality is None else report.quality.as_json()),
    ):
        body = _dumps(value, indent=2).replace("\n", "\n  ")
        out.write(_escape_raw(f'  "{key}": {body},\n'))
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
        line = (
            f'{separator}{{"entity": {_dumps(record["entity"])}, '
            f'"sourcedId": {_dumps(record["sourcedId"])}, "change": {_dumps(record["change"])}, '
            f'"old_status": {_dumps(record["old_status"])}, '
            f'"new_status": {_dumps(record["new_status"])}, '
            f'"label": {_dumps(label)}, "fields": {{{field_members}}}, '
            f'"details": {record["details"]}}}'
        )
        out.write(_escape_raw(line))
        separator = ",\n    "
    out.write("\n  ]\n}\n")
