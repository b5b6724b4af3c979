"""Canonical records: equal content always serialises, and so hashes, equal.

Servers vary in ways that mean nothing: key order, the order of arrays that are sets, booleans
sent as `"true"`/`"false"`, `inactive` for `tobedeleted`. A canonical record irons those out so
that the snapshot's content hash and the diff see only real change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .model import STATUS_ALIASES, Entity


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: the one serialisation used for hashing and storage."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _as_bool(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _sorted_set(values: list[Any]) -> list[Any]:
    return sorted(values, key=dumps)


def canonical_record(
    entity: Entity, record: Mapping[str, Any], drop_fields: Iterable[str] = ()
) -> dict[str, Any]:
    """The record with fields that must never be kept removed and variation ironed out.

    Unknown fields are kept as they came: the archive is lossless for what it may keep.
    """
    dropped = entity.never_store | frozenset(drop_fields)
    canonical: dict[str, Any] = {}
    for name, value in record.items():
        if name in dropped:
            continue
        if name in entity.booleans:
            value = _as_bool(value)
        elif name == "status" and isinstance(value, str):
            value = STATUS_ALIASES.get(value, value)
        elif name in entity.set_arrays and isinstance(value, list):
            value = _sorted_set(value)
        canonical[name] = value
    return canonical


def _without_href(value: Any) -> Any:
    """References keyed on sourcedId + type only: hrefs are unreliable in the wild."""
    if isinstance(value, dict) and "sourcedId" in value and "href" in value:
        return {k: v for k, v in value.items() if k != "href"}
    if isinstance(value, list):
        return [_without_href(item) for item in value]
    return value


def comparable_record(entity: Entity, canonical: Mapping[str, Any]) -> dict[str, Any]:
    """What the diff compares: the canonical record less `dateLastModified` and reference hrefs.

    A record whose only difference is `dateLastModified` is "touched", not changed.
    """
    comparable: dict[str, Any] = {}
    ref_names = entity.reference_by_name
    for name, value in canonical.items():
        if name == "dateLastModified":
            continue
        comparable[name] = _without_href(value) if name in ref_names else value
    return comparable


def content_hash(comparable: Mapping[str, Any]) -> str:
    """A short, stable hash of a comparable record (128-bit BLAKE2b, hex)."""
    return hashlib.blake2b(dumps(comparable).encode("utf-8"), digest_size=16).hexdigest()
