"""Shared by the fetch, import and archive tests: fast settings and what a snapshot holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from snapshotter.api.retry import RetryPolicy
from snapshotter.archive.schema import HASH_COLUMN, METADATA_TABLE
from snapshotter.canonical import canonical_with_hash
from snapshotter.fetch import FetchOutcome, FetchSettings, fetch_snapshot
from snapshotter.model import COLLECTIONS, ENTITY_BY_COLLECTION

RP = "partner-rp"
ESTAB = "3281110"
SECRET = "super-secret"

# Retries that do not slow the suite: waits of a few milliseconds, and a short read timeout
# so that a stalled answer is retried quickly.
FAST_RETRIES = RetryPolicy(base_delay_s=0.002, max_delay_s=0.02, max_total_sleep_s=20)
FAST = FetchSettings(page_size=40, concurrency=4, timeout_s=2.0, retry_policy=FAST_RETRIES)


def fetch(sim: Any, archive: Path, settings: FetchSettings = FAST, **options: Any) -> FetchOutcome:
    return fetch_snapshot(sim.base_url, RP, ESTAB, SECRET, archive, settings=settings, **options)


def stored(path: Path) -> dict[str, dict[str, str]]:
    """{collection: {sourcedId: _hash}} of a snapshot file."""
    with sqlite3.connect(path) as conn:
        return {
            c: dict(conn.execute(f'SELECT sourcedId, {HASH_COLUMN} FROM "{c}"'))
            for c in COLLECTIONS
        }


def server_truth(sim: Any) -> dict[str, dict[str, str]]:
    """What the server holds right now, hashed as the snapshot hashes it."""
    truth = {}
    for collection in COLLECTIONS:
        entity = ENTITY_BY_COLLECTION[collection]
        truth[collection] = {
            record["sourcedId"]: canonical_with_hash(entity, record)[1]
            for record in sim.records(collection)
        }
    return truth


def metadata(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute(f"SELECT * FROM {METADATA_TABLE}").fetchone())


def assert_complete_and_exact(outcome: FetchOutcome, sim: Any) -> None:
    """A complete snapshot holding exactly what the server holds, record for record."""
    assert outcome.complete, outcome.reason
    assert outcome.path is not None and outcome.path.is_file()
    assert metadata(outcome.path)["complete"] == 1
    assert stored(outcome.path) == server_truth(sim)


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every path under a directory with its bytes (None for directories)."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(directory.rglob("*"))
    }
