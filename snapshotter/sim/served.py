"""What the simulated server holds for each collection: records in their default order and each
record's JSON, serialised once per term (and per representation quirk), so a page is a join of
ready-made bytes.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from collections.abc import Sequence
from typing import Any

from ..model import COLLECTIONS, Entity, entity
from .curriculum import format_timestamp, snapshot_time_s
from .roster import ID_ALPHABET
from .school import generate

# (booleans as "true"/"false", `inactive` for `tobedeleted`, the term whose credential-like
# fields users carry or None: see `Quirks.credential_fields`)
Variant = tuple[bool, bool, int | None]
PLAIN: Variant = (False, False, None)
# Every value the `credential_fields` quirk sends starts with this: a test looks for it.
CREDENTIAL_MARK = "sim-leak"


def credential_fields(record: dict[str, Any], term: int) -> dict[str, Any]:
    """Fields a careless provider might send with a user: credentials under other names, and
    beside them ordinary fields that merely look alike (those must be kept)."""
    value = f"{CREDENTIAL_MARK}-{term}-{record['sourcedId']}"
    return {
        "Password": f"{value}-Password",
        "userPassword": f"{value}-userPassword",
        "api_token": f"{value}-api_token",
        "pinCode": f"{value}-pinCode",
        "metadata": {
            "password": f"{value}-metadata.password",
            "pwd": f"{value}-metadata.pwd",
            "logins": [{"service": "vle", "token": f"{value}-logins.token"}],
            "house": "Kestrel",
            "pinned": True,
        },
    }


# Built once: `json.dumps` with options builds a new encoder on every call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps_record(record: dict[str, Any]) -> bytes:
    return _encode(record).encode("utf-8")


@functools.lru_cache(maxsize=8)
def term_data(
    seed: int, pupils: int, term: int, plant_problems: bool = False
) -> dict[str, tuple[tuple[dict[str, Any], ...], tuple[bytes, ...]]]:
    """The school at a term with each record's JSON, shared by every server in the process.

    Treated as immutable: a server that drifts works on its own copy of the lists.
    """
    school = generate(seed=seed, pupils=pupils, term=term, plant_problems=plant_problems)
    return {
        name: (tuple(school[name]), tuple(dumps_record(r) for r in school[name]))
        for name in COLLECTIONS
    }


def _variant_record(entity_: Entity, record: dict[str, Any], variant: Variant) -> dict[str, Any]:
    booleans_as_strings, inactive_status, credential_term = variant
    shown = dict(record)
    if credential_term is not None and entity_.collection == "users":
        shown.update(credential_fields(record, credential_term))
    if booleans_as_strings:
        for name in entity_.booleans:
            if isinstance(shown.get(name), bool):
                shown[name] = "true" if shown[name] else "false"
    if inactive_status and shown.get("status") == "tobedeleted":
        shown["status"] = "inactive"
    return shown


class ServedCollection:
    """One collection's records in default order, with their JSON in each variant."""

    def __init__(
        self, name: str, records: Sequence[dict[str, Any]], plain_bodies: Sequence[bytes]
    ) -> None:
        self.name = name
        self.entity = entity(name)
        self.records: Sequence[dict[str, Any]] = records
        self._bodies: dict[Variant, Sequence[bytes]] = {PLAIN: plain_bodies}
        self.version = 0  # bumped on every drift, so cached orderings go stale
        self._drift_ids: set[str] = set()  # drift-inserted records, never removed by drift
        self._taken_ids: set[str] | None = None  # every sourcedId held, built on first drift

    def bodies(self, variant: Variant) -> Sequence[bytes]:
        bodies = self._bodies.get(variant)
        if bodies is None:
            bodies = [dumps_record(_variant_record(self.entity, r, variant)) for r in self.records]
            self._bodies[variant] = bodies
        return bodies

    def body_of(self, record: dict[str, Any], variant: Variant) -> bytes:
        return dumps_record(_variant_record(self.entity, record, variant))

    def copy_records(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.records))

    # --- offset drift: the collection changes between two page requests ---

    def _own_lists(self) -> tuple[list[dict[str, Any]], dict[Variant, list[bytes]]]:
        if not isinstance(self.records, list):
            self.records = list(self.records)
        for variant, bodies in self._bodies.items():
            if not isinstance(bodies, list):
                self._bodies[variant] = list(bodies)
        return self.records, self._bodies  # type: ignore[return-value]

    def _taken_ids_now(self) -> set[str]:
        if self._taken_ids is None:
            self._taken_ids = {r["sourcedId"] for r in self.records}
        return self._taken_ids

    def drift(
        self, insert: int, remove: int, rng: random.Random, term: int, at_end: bool = False
    ) -> None:
        """Insert new records at the start (or the end) and remove existing ones from near the
        start."""
        records, bodies = self._own_lists()
        for _ in range(remove):
            index = next(
                (i for i, r in enumerate(records) if r["sourcedId"] not in self._drift_ids), None
            )
            if index is None:
                break
            self._taken_ids_now().discard(records[index]["sourcedId"])
            del records[index]
            for variant_bodies in bodies.values():
                del variant_bodies[index]
        for _ in range(insert):
            if not records:
                break
            record = self._drift_record(rng, records, term)
            self._drift_ids.add(record["sourcedId"])
            self._taken_ids_now().add(record["sourcedId"])
            position = len(records) if at_end else 0
            records.insert(position, record)
            for variant, variant_bodies in bodies.items():
                variant_bodies.insert(position, self.body_of(record, variant))
        self.version += 1

    def _drift_record(
        self, rng: random.Random, records: list[dict[str, Any]], term: int
    ) -> dict[str, Any]:
        """A plausible new record: a copy of a random existing one under a new sourcedId."""
        taken = self._taken_ids_now()
        while True:
            sourced_id = "x" + "".join(rng.choices(ID_ALPHABET, k=8))
            if sourced_id not in taken:
                break
        record = copy.deepcopy(rng.choice(records))
        record["sourcedId"] = sourced_id
        record["status"] = "active"
        # Stamped just after the term's snapshot time: it arrived during the fetch.
        record["dateLastModified"] = format_timestamp(
            (snapshot_time_s(term) + rng.randrange(1, 3600)) * 1000
        )
        for name in ("title", "familyName"):
            if name in record:
                record[name] = f"{record[name]} (new)"
        if "username" in record:
            record["username"] = f"new{sourced_id.lower()}"
        return record
