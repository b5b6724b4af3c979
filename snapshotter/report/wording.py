"""Words shared by the renderers: counts in sentences, values as people read them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..model import ENTITY_BY_COLLECTION

# How each kind of change reads in a sentence: "3 users marked tobedeleted".
KIND_WORDS = {
    "added": "added",
    "changed": "changed",
    "tobedeleted": "marked tobedeleted",
    "reactivated": "reactivated",
    "removed": "removed",
    "touched": "touched (only dateLastModified)",
}


def noun(collection: str, count: int) -> str:
    """`1 user`, `2 users`: the singular is the model's GUIDRef type, the plural its endpoint."""
    entity = ENTITY_BY_COLLECTION.get(collection)
    singular = entity.singular if entity else collection
    return f"{count} {singular if count == 1 else collection}"


def entity_sentence(collection: str, counts: Mapping[str, int]) -> str | None:
    """`12 users added, 1 user removed`, or None when nothing changed."""
    parts = [
        f"{noun(collection, n)} {KIND_WORDS.get(kind, kind)}" for kind, n in counts.items() if n
    ]
    return ", ".join(parts) if parts else None


def show(value: Any) -> str:
    """A value for a person: strings quoted (so spaces show), absence as `(none)`."""
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def snapshot_line(snapshot: Mapping[str, Any]) -> str:
    complete = "complete" if snapshot["complete"] else "INCOMPLETE"
    stable = "stable" if snapshot["stable"] else "not stable"
    state = f"{complete}, {stable}"
    year = f", school year {snapshot['school_year']}" if snapshot.get("school_year") else ""
    pruned = f"; file pruned {utc_text(snapshot['pruned_at'])}" if snapshot.get("pruned_at") else ""
    return f"{snapshot['name']} (taken {utc_text(snapshot['taken_at'])}, {state}{year}{pruned})"


def utc_text(timestamp: str) -> str:
    """`2026-09-01T08:30:00.000Z` -> `2026-09-01 08:30:00 UTC`."""
    text = timestamp.replace("T", " ")
    if text.endswith("Z"):
        text = text[:-1].split(".")[0] + " UTC"
    return text


def school_line(report_new: Mapping[str, Any]) -> str:
    name = report_new.get("school_name")
    estab = report_new["estab"]
    return f"{name} (estab {estab})" if name else f"estab {estab}"


def volume_lines(
    mass_changes: list[Mapping[str, Any]], threshold: float | None, rollover: bool, new_year: Any
) -> list[str]:
    """One sentence per entity of which more than the threshold left."""
    lines = []
    for flag in mass_changes:
        what = (
            f"{flag['percent']}% of {flag['entity']} ({flag['leaving']} of {flag['old_total']}) "
            f"removed or marked tobedeleted, more than {threshold:g}%"
        )
        if rollover:
            year = f" ({new_year})" if new_year else ""
            lines.append(f"{what}: expected, the new snapshot is in a new school year{year}.")
        else:
            lines.append(f"{what}: not a new school year; check the sync did not wipe the roster.")
    return lines


def more_line(hidden: int) -> str:
    """Where a capped section ends: the rest is in the complete forms."""
    return f"… and {hidden} more: `--format csv` or the Datasette page has them all"
