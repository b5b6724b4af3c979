"""Canonical records: equal content always serialises, and so hashes, equal.

Servers vary in ways that mean nothing: key order, the order of arrays that are sets, booleans
sent as `"true"`/`"false"`, `inactive` for `tobedeleted`. A canonical record irons those out so
that the snapshot's content hash and the diff see only real change.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .credentials import SAFE_KEYS, holds_no_credentials, strip_credentials
from .model import STATUS_ALIASES, Entity

try:  # several times faster; the writer serialises every record twice
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback renders alike
    orjson = None  # type: ignore[assignment]

# One encoder built once: `json.dumps` would rebuild it on every call.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_ORJSON_SORTED = orjson.OPT_SORT_KEYS if orjson is not None else 0


def _dumps_bytes(value: Any) -> bytes:
    """UTF-8 compact key-sorted JSON. orjson and the standard library write the same bytes for
    everything a OneRoster record holds (floats in exponent form aside: `1e16` / `1e+16`)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=_ORJSON_SORTED)
        except TypeError:  # integers beyond 64 bits, lone surrogates: the stdlib copes
            pass
    return _encode(value).encode("utf-8")


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: the one serialisation used for hashing and storage."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=_ORJSON_SORTED).decode("utf-8")
        except TypeError:
            pass
    return _encode(value)


def _as_bool(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _sorted_set(values: list[Any]) -> list[Any]:
    if all(type(v) is str for v in values):
        return sorted(values)  # the usual case (ids, grades): same order, no serialising
    return sorted(values, key=dumps)


@functools.cache
def _reference_names(entity: Entity) -> frozenset[str]:
    return frozenset(ref.name for ref in entity.references)


def _without_path(value: Any, parts: tuple[str, ...]) -> tuple[Any, bool]:
    """`value` without the field at `parts` (in every item of a list on the way), and
    whether anything was there. Copies only what it changes."""
    if isinstance(value, list):
        results = [_without_path(item, parts) for item in value]
        if not any(found for _, found in results):
            return value, False
        return [item for item, _ in results], True
    if not isinstance(value, dict) or parts[0] not in value:
        return value, False
    if len(parts) == 1:
        trimmed = dict(value)
        del trimmed[parts[0]]
        return trimmed, True
    inner, found = _without_path(value[parts[0]], parts[1:])
    if not found:
        return value, False
    return {**value, parts[0]: inner}, True


class Canonicaliser:
    """Turns records of one entity into canonical records, leaving out what must not be kept:
    the `dropped` fields (`sms`, or dotted paths such as `metadata.sen`), the entity's
    `never_store` fields, and credential-like keys at any depth (see `credentials`).

    Calling it gives the canonical record, its JSON, the content hash of its comparable record
    and the paths it left out. The snapshot writer's hot path: one is built per entity and
    set of dropped fields, so per record nothing is looked up twice.
    """

    def __init__(self, entity: Entity, dropped: frozenset[str] = frozenset()) -> None:
        self.entity = entity
        self.top = frozenset({n for n in dropped if "." not in n} | entity.never_store)
        self.nested = tuple(
            (spec, tuple(spec.split("."))) for spec in sorted(dropped) if "." in spec
        )
        self.booleans = entity.booleans
        self.set_arrays = entity.set_arrays
        self.ref_names = _reference_names(entity)

    def pair(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool, int]:
        """The canonical and comparable records in one pass; whether every key of the record
        and of its reference objects was seen before and found safe; and how many objects
        that check covered (see `__call__`)."""
        dropped = self.top
        booleans = self.booleans
        set_arrays = self.set_arrays
        ref_names = self.ref_names
        safe = SAFE_KEYS
        clean = record.keys() <= safe
        objects = 1
        canonical: dict[str, Any] = {}
        comparable: dict[str, Any] = {}
        for name, value in record.items():
            if name in dropped:
                continue
            if name in booleans:
                value = _as_bool(value)
            elif name == "status":
                if isinstance(value, str):
                    value = STATUS_ALIASES.get(value, value)
            elif name in set_arrays and isinstance(value, list):
                value = _sorted_set(value)
                if value and type(value[0]) is dict:  # `userIds`, `terms`: objects to check
                    for item in value:
                        if type(item) is dict:
                            objects += 1
                            if not item.keys() <= safe:
                                clean = False
            canonical[name] = value
            if name == "dateLastModified":
                continue
            if name in ref_names:
                if type(value) is dict:
                    objects += 1
                    if not value.keys() <= safe:
                        clean = False
                    if "sourcedId" in value and "href" in value:  # `_without_href`, inline
                        value = value.copy()
                        del value["href"]
                else:
                    value = _without_href(value)
            comparable[name] = value
        return canonical, comparable, clean, objects

    def __call__(
        self, record: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str, str, tuple[str, ...]]:
        removed: list[str] | None = None
        if self.nested:
            removed = []
            for spec, parts in self.nested:
                record, found = _without_path(record, parts)
                if found:
                    removed.append(spec)
        canonical, comparable, clean, objects = self.pair(record)
        canonical_json = dumps(canonical)
        # Keys live only in objects, and each object puts one `{` into the JSON (a string
        # may add more, never fewer). So when the keys checked in `pair` were all safe and the
        # JSON holds no `{` beyond the objects checked, no key anywhere is credential-like:
        # two C-level tests for a typical record. Anything else is walked in full.
        suspect = not clean or canonical_json.count("{") != objects
        if suspect and not holds_no_credentials(record):
            cleaned, found_paths = strip_credentials(record)
            canonical, comparable, _, _ = self.pair(cleaned)
            canonical_json = dumps(canonical)
            removed = (removed or []) + found_paths
        if self.top and not self.top.isdisjoint(record):
            removed = (removed or []) + list(record.keys() & self.top)
        digest = hashlib.blake2b(_dumps_bytes(comparable), digest_size=16).hexdigest()
        paths = tuple(sorted(set(removed))) if removed else ()
        return canonical, canonical_json, digest, paths


@functools.cache
def canonicaliser(entity: Entity, dropped: frozenset[str] = frozenset()) -> Canonicaliser:
    return Canonicaliser(entity, dropped)


def canonicalise(
    entity: Entity, record: Mapping[str, Any], dropped: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], str, str, tuple[str, ...]]:
    """The canonical record, its JSON, the content hash of its comparable record, and the
    paths left out of it (see `Canonicaliser`)."""
    return canonicaliser(entity, dropped)(record)


def canonical_record(
    entity: Entity, record: Mapping[str, Any], drop_fields: Iterable[str] = ()
) -> dict[str, Any]:
    """The record with fields that must never be kept removed and variation ironed out.

    Unknown fields are kept as they came: the archive is lossless for what it may keep.
    """
    return canonicalise(entity, record, frozenset(drop_fields))[0]


def _without_href(value: Any) -> Any:
    """References keyed on sourcedId + type only: hrefs are unreliable in the wild."""
    if isinstance(value, dict) and "sourcedId" in value and "href" in value:
        stripped = value.copy()  # copy-and-delete: twice as fast as a comprehension here
        del stripped["href"]
        return stripped
    if isinstance(value, list):
        return [_without_href(item) for item in value]
    return value


def comparable_record(entity: Entity, canonical: Mapping[str, Any]) -> dict[str, Any]:
    """What the diff compares: the canonical record less `dateLastModified` and reference hrefs.

    A record whose only difference is `dateLastModified` is "touched", not changed.
    """
    comparable: dict[str, Any] = {}
    ref_names = _reference_names(entity)
    for name, value in canonical.items():
        if name == "dateLastModified":
            continue
        comparable[name] = _without_href(value) if name in ref_names else value
    return comparable


def content_hash(comparable: Mapping[str, Any]) -> str:
    """A short, stable hash of a comparable record (128-bit BLAKE2b, hex)."""
    return hashlib.blake2b(_dumps_bytes(comparable), digest_size=16).hexdigest()


def canonical_with_hash(
    entity: Entity, record: Mapping[str, Any], dropped: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], str]:
    """`canonical_record` and the `content_hash` of its `comparable_record` (a test holds
    them to the three functions composed)."""
    canonical, _json, digest, _removed = canonicalise(entity, record, dropped)
    return canonical, digest
